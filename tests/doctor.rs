//! `agentfs doctor`: real checks on this machine, each with a broken case:
//! the shim proven end to end through a probe (and a shim the loader
//! refuses, and a home too long for socket paths), a running and a stopped
//! router (and one whose port another program holds), a loose and a
//! foreign-owned run directory, name resolution as this machine does it,
//! and an interpreter that cannot take the shim first in `PATH`.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::fixtures::{compile_c_server, Fixture};
use common::TestHome;

/// `agentfs doctor --json` with `env`; its exit code and envelope.
fn doctor(home: &TestHome, env: &[(&str, &std::ffi::OsStr)]) -> (Option<i32>, Value) {
    let mut cmd = home.agentfs(&["doctor", "--json"]);
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// The check `id` of a report, whichever envelope it came in.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    let checks = report["data"]["checks"]
        .as_array()
        .or_else(|| report["error"]["checks"].as_array())
        .unwrap_or_else(|| panic!("no checks in {report}"));
    checks
        .iter()
        .find(|c| c["check"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn status(report: &Value, id: &str) -> String {
    check(report, id)["status"].as_str().unwrap().to_owned()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

#[test]
fn with_a_router_the_shim_is_proven_end_to_end() {
    let home = TestHome::new();
    let router = home.start_router();
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["status"], "success");
    for id in [
        "home",
        "run-dir",
        "router",
        "router.ipv4",
        "shim.bind",
        "shim.illusion",
        "shim.router",
    ] {
        assert_eq!(status(&report, id), "ok", "{id}: {:#}", check(&report, id));
    }
    let bind = check(&report, "shim.bind");
    let socket = PathBuf::from(text(&bind["details"]["socket"]));
    assert_eq!(socket.parent(), Some(home.run_dir().as_path()));
    let told = &check(&report, "shim.illusion")["details"];
    let sockname: std::net::SocketAddr = text(&told["getsockname"]).parse().unwrap();
    assert!(sockname.ip().is_loopback() && sockname.is_ipv4() && sockname.port() != 0);
    for peer in ["accept", "getpeername"] {
        let addr: std::net::SocketAddr = text(&told[peer]).parse().unwrap();
        assert!(addr.ip().is_loopback(), "{peer}: {addr}");
    }
    assert!(text(&check(&report, "shim.router")["message"])
        .contains(&format!(".agentfs-doctor.localhost:{}", router.port)));
    // /health says no version yet: reported as a caveat, never as a pass.
    let version = check(&report, "router.version");
    match text(&version["status"]) {
        "ok" => assert!(text(&version["message"]).contains(env!("CARGO_PKG_VERSION"))),
        "warn" => assert!(text(&version["message"]).contains("does not say its version")),
        other => panic!("router.version {other}: {version}"),
    }
    // The probe is gone, and so are its files.
    assert_eq!(home.run_dir_files(), Vec::<String>::new());

    let out = home.run(&["doctor"]);
    assert!(out.status.success());
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        lines.contains("✔ shim: the router reached the probe"),
        "{lines}"
    );
    assert!(
        lines.trim_end().ends_with("warning(s) above.") || lines.contains("agentfs works here.")
    );
}

#[test]
fn a_stopped_router_is_a_caveat_and_a_taken_port_a_failure() {
    let home = TestHome::new();
    drop(home.start_router());
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    let router = check(&report, "router");
    assert_eq!(router["status"], "warn");
    assert!(text(&router["message"]).contains("none runs"), "{router}");
    assert_eq!(router["fix"], "agentfs router");
    assert_eq!(status(&report, "shim.router"), "skipped");
    assert_eq!(status(&report, "shim.bind"), "ok");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, report) = doctor(&home, &[("AGENTFS_ROUTER_PORT", port.as_ref())]);
    assert_eq!(code, Some(1));
    assert_eq!(report["error"]["code"], "CHECK_FAILED");
    let router = check(&report, "router");
    assert_eq!(router["status"], "fail");
    assert!(text(&router["message"]).contains(&format!("127.0.0.1:{port}")));
    assert!(text(&router["fix"]).starts_with("export AGENTFS_ROUTER_PORT="));
}

#[test]
fn a_loose_run_dir_fails_with_its_fix_and_is_left_as_it_was() {
    let home = TestHome::new();
    let run_dir = home.run_dir();
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    let run = check(&report, "run-dir");
    assert_eq!(run["status"], "fail");
    assert!(text(&run["message"]).contains("mode 755"), "{run}");
    assert!(text(&run["fix"]).starts_with(&format!("chmod 700 {}", run_dir.display())));
    assert_eq!(status(&report, "shim.bind"), "skipped");
    let mode = std::fs::metadata(&run_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "doctor reports; it does not change things");
}

#[test]
fn a_run_dir_of_another_user_fails_with_its_fix() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: giving the run directory to another user needs root");
        return;
    }
    let Some(other) = other_user() else {
        eprintln!("skipped: no second user (`nobody`) on this machine, and useradd failed");
        return;
    };
    let home = TestHome::new();
    std::os::unix::fs::chown(home.run_dir(), Some(other), None).unwrap();
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    let run = check(&report, "run-dir");
    assert_eq!(run["status"], "fail");
    assert!(
        text(&run["message"]).contains(&format!("owned by uid {other}")),
        "{run}"
    );
    assert!(text(&run["fix"]).starts_with("sudo chown -R 0:0 "), "{run}");
}

/// The uid of a user other than root: `nobody`, else one made with useradd.
fn other_user() -> Option<u32> {
    let uid = |name: &str| -> Option<u32> {
        let out = Command::new("id").args(["-u", name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    uid("nobody").or_else(|| {
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "agentfs-test"])
            .status();
        made.ok().filter(|s| s.success())?;
        uid("agentfs-test")
    })
}

/// A tmpfs mounted `noexec`, unmounted on drop: a home the loader cannot map the shim from.
struct NoexecMount(PathBuf);

impl NoexecMount {
    fn new(at: &Path) -> Option<NoexecMount> {
        std::fs::create_dir_all(at).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        mounted
            .status
            .success()
            .then(|| NoexecMount(at.to_owned()))
            .or_else(|| {
                eprintln!(
                    "skipped: could not mount a noexec tmpfs ({})",
                    String::from_utf8_lossy(&mounted.stderr).trim()
                );
                None
            })
    }
}

impl Drop for NoexecMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_shim_the_loader_refuses_is_caught() {
    let home = TestHome::new();
    let Some(mount) = NoexecMount::new(&home.dir.join("noexec")) else {
        return;
    };
    let noexec_home = mount.0.join("home");
    let (code, report) = doctor_at(&home, &noexec_home);
    assert_eq!(code, Some(1));
    let bind = check(&report, "shim.bind");
    assert_eq!(bind["status"], "fail");
    assert!(
        text(&bind["message"]).contains("stayed a real TCP socket"),
        "{bind}"
    );
    assert!(
        text(&bind["message"]).contains("failed to map segment"),
        "{bind}"
    );
    assert!(text(&bind["fix"]).contains("noexec"), "{bind}");
    assert_eq!(
        common::files_in(&noexec_home.join("run")),
        Vec::<String>::new()
    );
}

#[test]
fn a_home_too_long_for_socket_paths_is_caught() {
    let home = TestHome::new();
    let long = home.dir.join("x".repeat(110));
    let (code, report) = doctor_at(&home, &long);
    assert_eq!(code, Some(1));
    let bind = check(&report, "shim.bind");
    assert_eq!(bind["status"], "fail");
    assert!(text(&bind["message"]).contains("too long for a Unix socket path"));
    assert!(
        text(&bind["fix"]).starts_with("export AGENTFS_HOME="),
        "{bind}"
    );
}

/// `agentfs doctor --json` with `AGENTFS_HOME` set to `at`.
fn doctor_at(home: &TestHome, at: &Path) -> (Option<i32>, Value) {
    doctor(home, &[("AGENTFS_HOME", at.as_os_str())])
}

#[test]
fn name_resolution_is_reported_as_this_machine_does_it() {
    let home = TestHome::new();
    let _app = home.wrap("web", "a", &Fixture::Node.command(&["3000"]));
    home.wait_sidecar("web", "a", Some(3000));
    let (_, report) = doctor(&home, &[]);
    let resolver = check(&report, "resolver");
    // getent asks the same resolver (NSS) as getaddrinfo.
    let getent: Output = Command::new("getent")
        .args(["ahosts", "x.localhost"])
        .output()
        .unwrap();
    let answered = String::from_utf8_lossy(&getent.stdout).into_owned();
    let loopback = getent.status.success()
        && answered
            .lines()
            .all(|l| l.starts_with("127.") || l.starts_with("::1"));
    if loopback {
        assert_eq!(resolver["status"], "ok", "{resolver}");
    } else {
        assert_eq!(
            resolver["status"], "warn",
            "getent said {answered:?}: {resolver}"
        );
        let fix = text(&resolver["fix"]);
        for line in [
            "127.0.0.1 a.web.localhost",
            "::1 web.localhost",
            "127.0.0.1 agentfs.localhost",
        ] {
            assert!(fix.lines().any(|l| l.trim() == line), "{line} in {fix}");
        }
    }
}

#[test]
fn an_uninjectable_interpreter_first_in_path_is_named_with_the_reason() {
    let home = TestHome::new();
    let bin = home.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let built = compile_c_server(&bin, true);
    std::fs::rename(&built, bin.join("node")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let (code, report) = doctor(&home, &[("PATH", path.as_ref())]);
    assert_eq!(code, Some(0), "a caveat, not a failure: {report:#}");
    let node = check(&report, "interpreter.node");
    assert_eq!(node["status"], "warn");
    assert!(text(&node["message"]).contains(&format!("{}/node", bin.display())));
    assert!(
        text(&node["message"]).contains("statically linked"),
        "{node}"
    );
    assert!(text(&node["fix"]).contains("behind a bridge"), "{node}");
    let (_, plain) = doctor(&home, &[]);
    assert_ne!(status(&plain, "interpreter.node"), "warn", "{plain:#}");
}

#[test]
fn where_the_local_ca_is_trusted_is_reported() {
    if std::process::Command::new("certutil")
        .arg("-H")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: certutil (libnss3-tools) is not installed");
        return;
    }
    let home = TestHome::new();
    let user = home.dir.join("user");
    std::fs::create_dir_all(&user).unwrap();
    let env = [("HOME", user.as_os_str())];
    let (_, before) = doctor(&home, &env);
    assert_eq!(status(&before, "trust"), "skipped", "no CA yet: {before:#}");
    let trusted = home
        .agentfs(&["trust", "--no-system"])
        .env("HOME", &user)
        .output()
        .unwrap();
    assert!(trusted.status.success());
    let (_, after) = doctor(&home, &env);
    let trust = check(&after, "trust");
    // As root, doctor looks at the system store too, which this test leaves alone.
    let root = agentfs_contract::layout::current_uid() == 0;
    assert_eq!(
        trust["status"],
        if root { "warn" } else { "ok" },
        "{trust:#}"
    );
    assert!(text(&trust["message"]).contains(".pki/nssdb"), "{trust:#}");
}
