//! The dashboard at `agentfs.localhost/`: every live instance with its
//! details in the page itself (no JavaScript needed), the same data at
//! `/api/instances`, and kept current over `/api/events`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use common::*;

/// A work tree on branch `feature/dash` with a subdirectory, and a linked
/// worktree of it on a detached HEAD, as git lays them out (`.git/HEAD`; a
/// `.git` file naming the worktree's git directory): (repository, worktree).
fn git_work_trees(root: &Path) -> (PathBuf, PathBuf) {
    let repo = root.join("shop");
    let linked_git_dir = repo.join(".git/worktrees/detached");
    std::fs::create_dir_all(repo.join("web")).unwrap();
    std::fs::create_dir_all(&linked_git_dir).unwrap();
    std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/dash\n").unwrap();
    let linked = root.join("shop-detached");
    std::fs::create_dir_all(&linked).unwrap();
    let pointer = format!("gitdir: {}\n", linked_git_dir.display());
    std::fs::write(linked.join(".git"), pointer).unwrap();
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
    std::fs::write(linked_git_dir.join("HEAD"), commit).unwrap();
    (repo, linked)
}

/// Three instances started in a repository's subdirectory, a detached
/// worktree and a directory whose name is markup; one request answered and
/// one failed on `web`; the router routing them.
struct Scene {
    _home: Home,
    _tmp: tempfile::TempDir,
    _instances: Vec<common::Instance>,
    router: TestRouter,
    repo: PathBuf,
}

async fn scene() -> Scene {
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    let (repo, linked) = git_work_trees(tmp.path());
    let web = common::Instance::spawn(&home, "web", "a1", 3000);
    web.set_cwd(repo.join("web").to_str().unwrap());
    let docs = common::Instance::spawn(&home, "docs", "d1", 4000);
    docs.set_cwd(linked.to_str().unwrap());
    let evil = common::Instance::spawn(&home, "evil", "e1", 5000);
    evil.set_cwd("/nowhere/<script>alert(1)</script>");
    let router = TestRouter::start(&home);
    for app in ["web", "docs", "evil"] {
        router.wait_instances(app, 1).await;
    }
    let mut client = Client::connect(router.port).await;
    let ok = client
        .get("web.localhost", "/hello?token=secret")
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let failed = client.get("a1.web.localhost", "/garbage").await.unwrap();
    assert_eq!(failed.status, 502);
    Scene {
        _home: home,
        _tmp: tmp,
        _instances: vec![web, docs, evil],
        router,
        repo,
    }
}

/// The instance entry of `app` in a snapshot.
fn entry<'a>(data: &'a Value, app: &str) -> &'a Value {
    data["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["app"] == app)
        .unwrap_or_else(|| panic!("no {app} in {data}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_instance_without_javascript() {
    let scene = scene().await;
    let port = scene.router.port;
    let page = get(port, "agentfs.localhost", "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text();

    assert!(html.contains("<td class=\"app\">web</td>"), "{html}");
    assert!(html.contains(">a1</a>"));
    assert!(html.contains("<td>shim</td>"));
    let own = html
        .find(&format!("http://a1.web.localhost:{port}"))
        .unwrap();
    let shared = html.find(&format!("http://web.localhost:{port}")).unwrap();
    assert!(own < shared, "the instance's own URL comes first");
    assert!(html.contains(&scene.repo.join("web").display().to_string()));
    assert!(html.contains("<td class=\"branch\">feature/dash</td>"));
    // The detached worktree shows its commit, short.
    let docs_branch = html
        .split("data-key=\"docs/d1\"")
        .nth(1)
        .and_then(|rest| rest.split("<td class=\"branch\">").nth(1))
        .and_then(|rest| rest.split('<').next())
        .unwrap();
    assert_eq!(docs_branch, "4b825dc");
    // The last requests (the path, never the query) and the last error.
    assert!(html.contains("<td class=\"path\">/hello</td>"));
    assert!(html.contains("<td class=\"path\">/garbage</td>"));
    assert!(html.contains("status s5\">502"));
    assert!(!html.contains("secret"));
    assert!(html.contains("instance failed while answering"));
    // Markup from a sidecar is text; the only script is the dashboard's.
    assert!(html.contains("/nowhere/&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(html.matches("<script").count(), 1, "{html}");

    let script = get(port, "agentfs.localhost", "/dashboard.js").await;
    assert_eq!(script.status, 200);
    assert!(script.text().contains("new EventSource"));
    let style = get(port, "agentfs.localhost", "/dashboard.css").await;
    assert_eq!(style.headers["content-type"], "text/css; charset=utf-8");
    scene.router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_instances_has_what_the_dashboard_shows() {
    let scene = scene().await;
    let port = scene.router.port;
    let answer = get(port, "agentfs.localhost", "/api/instances").await;
    let data = &answer.json()["data"];
    assert_eq!(data["total"], 3);
    let web = entry(data, "web");
    assert_eq!(web["instance"], "a1");
    assert_eq!(web["kind"], "shim");
    assert!(web["pid"].as_u64().unwrap() > 0);
    assert_eq!(
        web["ports"][0]["urls"],
        serde_json::json!([
            format!("http://a1.web.localhost:{port}"),
            format!("http://web.localhost:{port}")
        ])
    );
    assert_eq!(web["requests"], 2);
    assert_eq!(web["in_flight"], 0);
    assert_eq!(web["branch"], "feature/dash");
    assert_eq!(web["cwd"], scene.repo.join("web").display().to_string());
    let error = &web["last_error"];
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("failed while answering"));
    assert!(humantime::parse_rfc3339(error["at"].as_str().unwrap()).is_ok());
    let recent = web["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["path"], "/garbage", "newest first");
    assert_eq!(recent[0]["status"], 502);
    assert_eq!(recent[1]["method"], "GET");
    assert_eq!(recent[1]["path"], "/hello");
    assert_eq!(recent[1]["status"], 200);
    assert!(recent[1]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(entry(data, "evil")["branch"], Value::Null);
    assert_eq!(entry(data, "docs")["recent"], serde_json::json!([]));
    scene.router.stop().await;
}

/// A server-sent event stream, read event by event.
struct Events {
    body: Incoming,
    buf: String,
}

impl Events {
    /// `GET /api/events` over TCP.
    async fn open(port: u16) -> Events {
        let mut client = Client::connect(port).await;
        let req = Request::get("/api/events")
            .header("host", "agentfs.localhost")
            .body(Full::default())
            .unwrap();
        Events::from(client.send(req).await.unwrap())
    }

    /// `GET /api/events` over the control socket.
    async fn open_control(socket: &Path) -> Events {
        let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get("/api/events")
            .header("host", "agentfs")
            .body(Full::<Bytes>::default())
            .unwrap();
        Events::from(sender.send_request(req).await.unwrap())
    }

    fn from(resp: hyper::Response<Incoming>) -> Events {
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event's data, or `None` when the stream ended.
    async fn next(&mut self) -> Option<String> {
        let read = async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    match block.lines().find_map(|l| l.strip_prefix("data: ")) {
                        Some(data) => return Some(data.to_owned()),
                        None => continue,
                    }
                }
                let frame = self.body.frame().await?.expect("the stream ends cleanly");
                if let Ok(data) = frame.into_data() {
                    self.buf.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("an event or the end within the deadline")
    }

    /// The data of the next event that satisfies `ready` (an envelope's
    /// `data`), skipping others.
    async fn until(&mut self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        loop {
            let data = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before: {what}"));
            let envelope: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(envelope["status"], "success");
            if ready(&envelope["data"]) {
                return envelope["data"].clone();
            }
        }
    }
}

fn has(data: &Value, instance: &str) -> bool {
    data["instances"]
        .as_array()
        .is_some_and(|list| list.iter().any(|i| i["instance"] == instance))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_instances_as_they_come_and_go() {
    let home = Home::new();
    let _a1 = common::Instance::spawn(&home, "web", "a1", 3000);
    let router = TestRouter::start_with(&home, |c| {
        c.reconcile = std::time::Duration::from_millis(200)
    });
    router.wait_instances("web", 1).await;
    let mut events = Events::open(router.port).await;
    let first = events.until("the first snapshot", |_| true).await;
    assert_eq!(first["instances"].as_array().unwrap().len(), 1);

    let mut b1 = common::Instance::spawn(&home, "web", "b1", 3000);
    events.until("b1 listed", |d| has(d, "b1")).await;
    let mut client = Client::connect(router.port).await;
    for _ in 0..2 {
        assert_eq!(
            client.get("b1.web.localhost", "/").await.unwrap().status,
            200
        );
    }
    events
        .until("b1's two requests", |d| {
            d["instances"].as_array().unwrap().iter().any(|i| {
                i["instance"] == "b1"
                    && i["requests"] == 2
                    && i["recent"].as_array().unwrap().len() == 2
            })
        })
        .await;
    b1.kill();
    let after = events.until("b1 gone", |d| !has(d, "b1")).await;
    assert!(has(&after, "a1"));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_served_on_the_control_socket_too() {
    let (home, _a1, router) = web_behind_router(Mode::Serve).await;
    let mut events = Events::open_control(&home.control()).await;
    let first = events.until("the first snapshot", |_| true).await;
    assert!(has(&first, "a1"));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_does_not_hold_the_router_at_shutdown() {
    let (_home, _a1, router) = web_behind_router(Mode::Serve).await;
    let mut events = Events::open(router.port).await;
    events.until("the first snapshot", |_| true).await;
    let stopping = Instant::now();
    router.stop().await;
    let took = stopping.elapsed();
    assert!(
        took < agentfs_router::DRAIN_TIMEOUT,
        "shutdown waited {took:?} for the event stream"
    );
    assert_eq!(
        events.next().await,
        None,
        "the stream ended with the router"
    );
}
