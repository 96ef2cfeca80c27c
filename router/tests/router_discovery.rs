//! Discovery: instances appear and disappear with their sidecars, stale ones
//! are cleaned up, hostile run-dir content is ignored, and a restarted router
//! finds every live instance again.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use agentfs_contract::naming;
use agentfs_contract::sidecar::{self, Sidecar};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_come_and_go_with_their_sidecars() {
    let home = Home::new();
    let router = TestRouter::start(&home);
    let mut a = Instance::spawn(&home, "web", "a1", 3000);
    router.wait_instances("web", 1).await;
    assert_eq!(
        get(router.port, "web.localhost", "/").await.json()["instance"],
        "a1"
    );

    // SIGKILL leaves the files behind. The router notices through the lock
    // file's close event, or else through the first request that cannot
    // connect (a 502, since no instance is left), and drops the stale entry.
    a.kill();
    let status = get(router.port, "web.localhost", "/").await.status;
    assert!(status == 502 || status == 404, "{status}");
    router.wait_instances("web", 0).await;
    let run_dir = home.run_dir();
    wait_until("stale files removed", || file_names(&run_dir).is_empty()).await;
    assert_eq!(get(router.port, "web.localhost", "/").await.status, 404);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_router_rediscovers_live_instances_and_drops_stale_ones() {
    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let _b = Instance::spawn(&home, "api", "b1", 4000);
    let mut dead = Instance::spawn(&home, "old", "x1", 5000);
    dead.kill();
    let first = TestRouter::start(&home);
    first
        .wait_routes("web and api", |t| t.apps.len() == 2)
        .await;
    first.stop().await;
    assert!(
        !naming::sidecar_path(&dead.socket).exists(),
        "stale sidecar kept"
    );
    assert!(!dead.socket.exists(), "stale socket kept");

    let second = TestRouter::start(&home);
    second
        .wait_routes("web and api again", |t| t.apps.len() == 2)
        .await;
    assert_eq!(get(second.port, "web.localhost", "/").await.status, 200);
    assert_eq!(get(second.port, "b1.api.localhost", "/").await.status, 200);
    second.stop().await;
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    sidecar::write_atomic(path, bytes).unwrap();
}

/// Hostile files of every kind the issue names, plus a few more.
fn plant_hostile_files(home: &Home, good: &Sidecar) {
    let run = home.run_dir();
    let json = |car: &Sidecar| car.to_json().into_bytes();
    write(&run.join("huge.json"), &vec![b' '; 65 * 1024]);
    write(&run.join("garbage.json"), b"{\"version\":1, nope");
    write(&run.join("binary.json"), &[0xff, 0xfe, 0, 1, 2]);
    let mut future = serde_json::to_value(good).unwrap();
    future["version"] = 2.into();
    write(&run.join("future.json"), future.to_string().as_bytes());
    std::os::unix::fs::symlink(naming::sidecar_path(&good.socket), run.join("link.json")).unwrap();
    // A real socket outside the run dir.
    let outside_dir = home.dir.join("elsewhere");
    fs::create_dir_all(&outside_dir).unwrap();
    let outside = outside_dir.join("x.sock");
    let _keep = std::os::unix::net::UnixListener::bind(&outside).unwrap();
    let mut car = good.clone();
    car.socket = outside;
    write(&run.join("x.json"), &json(&car));
    // Names a regular file, not a socket.
    fs::write(run.join("plain.sock"), b"").unwrap();
    car.socket = run.join("plain.sock");
    write(&run.join("plain.json"), &json(&car));
    // Names another instance's socket.
    car = good.clone();
    car.instance = "thief".into();
    write(&run.join("thief.json"), &json(&car));
    // Not regular files at all.
    fs::create_dir(run.join("dir.json")).unwrap();
    let fifo = run.join("fifo.json");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Someone else's file (only possible to plant as root).
    if agentfs_contract::layout::current_uid() == 0 {
        let foreign = run.join("foreign.json");
        write(&foreign, &json(good));
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    }
    fs::write(run.join("unreadable.json"), json(good)).unwrap();
    fs::set_permissions(
        run.join("unreadable.json"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_run_dir_content_is_ignored() {
    let home = Home::new();
    let a = Instance::spawn(&home, "web", "a1", 3000);
    let good = sidecar::read_checked(&naming::sidecar_path(&a.socket), &home.run_dir()).unwrap();
    plant_hostile_files(&home, &good);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 1).await;

    // More hostile content while running, then a new instance: it must still
    // be discovered, so nothing wedged the router.
    let later = home.dir.join("later");
    fs::create_dir_all(&later).unwrap();
    let late_home = Home { dir: later };
    agentfs_contract::layout::ensure_private_dir(&late_home.run_dir()).unwrap();
    plant_hostile_files(&late_home, &good);
    for name in file_names(&late_home.run_dir()) {
        let _ = fs::rename(
            late_home.run_dir().join(&name),
            home.run_dir().join(format!("2{name}")),
        );
    }
    let _b = Instance::spawn(&home, "web", "b2", 3000);
    router.wait_instances("web", 2).await;

    let routes = get(router.port, "agentfs.localhost", "/api/routes")
        .await
        .json();
    let apps = &routes["data"]["apps"];
    assert_eq!(apps.as_array().unwrap().len(), 1, "{apps}");
    let instances: Vec<_> = apps[0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(instances, ["a1", "b2"]);
    assert_eq!(
        get(router.port, "thief.web.localhost", "/").await.status,
        404
    );
    assert_eq!(get(router.port, "a1.web.localhost", "/").await.status, 200);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_its_live_owner_closed_is_dropped_and_its_files_go() {
    let home = Home::new();
    let router = TestRouter::start_with(&home, |config| {
        config.reconcile = std::time::Duration::from_millis(50);
    });
    let mut web = Instance::spawn(&home, "web", "a1", 3000);
    router.wait_instances("web", 1).await;
    // Its owner lives on and keeps the lock, but the socket refuses.
    web.close_listener();
    router.wait_instances("web", 0).await;
    assert_eq!(get(router.port, "web.localhost", "/").await.status, 404);
    let sidecar = naming::sidecar_path(&web.socket);
    wait_until("the sidecar removed", || !sidecar.exists()).await;
    assert!(!web.has_exited(), "the owner itself is left alone");
    assert!(
        naming::lock_path(&web.socket).exists(),
        "its lock is its own"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_is_answered_before_the_first_scan_is_done() {
    let home = Home::new();
    let _web = Instance::spawn(&home, "web", "a1", 3000);
    // Enough junk that the first scan takes a while (each file is read and parsed).
    let junk = format!("[{}0]", "0,".repeat(16 * 1024));
    for n in 0..1500 {
        fs::write(home.run_dir().join(format!("junk{n}.json")), &junk).unwrap();
    }
    let router = TestRouter::start(&home);
    let answer = get(router.port, "web.localhost", "/").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_reached_through_a_symlink_is_watched_by_its_events() {
    // The home is a symlink to a private directory (as /tmp and $TMPDIR
    // are on macOS, whose events name the other spelling); its run
    // directory is a real one.
    let real = Home::new();
    let link = real.dir.with_file_name(format!(
        "{}-link",
        real.dir.file_name().unwrap().to_string_lossy()
    ));
    std::os::unix::fs::symlink(&real.dir, &link).unwrap();
    let home = Home { dir: link };
    // No full read after the first: whatever appears later is found by its
    // file events alone.
    let router = TestRouter::start_with(&home, |config| {
        config.reconcile = std::time::Duration::from_secs(3600);
    });
    let mut web = Instance::spawn(&home, "web", "a1", 3000);
    router.wait_instances("web", 1).await;
    assert_eq!(
        get(router.port, "web.localhost", "/").await.json()["instance"],
        "a1"
    );
    web.kill();
    router.wait_instances("web", 0).await;
    router.stop().await;
}
