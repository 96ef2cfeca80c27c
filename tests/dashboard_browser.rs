//! The dashboard in a real browser: Debian's headless Chromium, driven by
//! puppeteer-core (`tests/node/dashboard.mjs`), on a real `agentfs router`
//! with apps wrapped for real (`python3 -m http.server`), each started in a
//! git work tree whose branch names its instance. The page, loaded once,
//! lists instances that start after it loaded, counts their requests, and
//! drops an instance when it stops.
//!
//! With `AGENTFS_DASHBOARD_SCREENSHOT=PATH` the test also saves the page,
//! with two instances of one app and one of another, as a PNG at PATH
//! (README's `docs/dashboard.png` is made so).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

use common::router::{get, Home, TestRouter, DEADLINE};
use common::Wrapped;

const CHROMIUM: &str = "/usr/bin/chromium";

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `tests/node/dashboard.mjs` driving Chromium on one page.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Browser {
    /// Opens `url`; returns once the page's event stream is connected.
    fn open(url: &str) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
        );
        assert!(
            node_dir().join("node_modules/puppeteer-core").exists(),
            "puppeteer-core is missing: run `npm ci` in tests/node (.ci/run does)"
        );
        let mut child = Command::new("node")
            .arg(node_dir().join("dashboard.mjs"))
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        let mut browser = Browser {
            child,
            stdin,
            lines,
        };
        assert_eq!(browser.answer("opening the dashboard"), "ready");
        browser
    }

    /// The next line the script prints, within the deadline of its own waits.
    fn answer(&mut self, what: &str) -> String {
        let line = self
            .lines
            .recv_timeout(DEADLINE + DEADLINE)
            .unwrap_or_else(|_| panic!("the browser script said nothing about {what}"));
        assert!(!line.starts_with("error"), "{what}: {line}");
        line
    }

    /// Runs one command; returns what follows its "ok".
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let line = self.answer(command);
        line.strip_prefix("ok").unwrap_or(&line).trim().to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// Runs git in `dir` (with an identity, for commits), which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository `name` on branch `main` under `root`.
fn repository(root: &Path, name: &str) -> PathBuf {
    let repo = root.join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
    repo
}

/// `agentfs wrap --name APP -- python3 -m http.server 8000` started in
/// `dir`, whose git branch names the instance. Every instance asks for
/// the same port: the shim gives each its own socket.
fn serve(home: &Home, app: &str, dir: &Path) -> Wrapped {
    let mut cmd = home.agentfs(&["wrap", "--no-router", "--name", app, "--"]);
    cmd.args([
        "python3",
        "-m",
        "http.server",
        "8000",
        "--bind",
        "127.0.0.1",
    ]);
    cmd.current_dir(dir);
    Wrapped::spawn(cmd)
}

#[test]
fn the_dashboard_shows_instances_that_start_after_it_loaded_and_drops_those_that_stop() {
    let home = Home::new();
    let router = TestRouter::start_with_args(&home, &["--port", "0"]);
    let port = router.port;
    let mut page = Browser::open(&format!("http://agentfs.localhost:{port}/"));

    let work = home.dir.join("src");
    let shop = repository(&work, "shop");
    let feature = work.join("shop-checkout");
    git(
        &shop,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature/Checkout",
            feature.to_str().unwrap(),
        ],
    );
    let api = repository(&work, "api");

    let _main = serve(&home, "shop", &shop);
    router.wait_instances("shop", 1);
    page.ask("listed shop/main");
    let row = page.ask("text shop/main");
    assert!(
        row.contains(&format!("http://main.shop.localhost:{port}")),
        "{row}"
    );
    assert!(row.contains(&shop.display().to_string()), "{row}");

    let mut checkout = serve(&home, "shop", &feature);
    let _api = serve(&home, "api", &api);
    router.wait_instances("shop", 2);
    router.wait_instances("api", 1);
    page.ask("listed shop/feature-checkout");
    page.ask("listed api/main");
    // Named after its branch, which its row shows as git names it.
    let row = page.ask("text shop/feature-checkout");
    assert!(row.contains("feature/Checkout"), "{row}");
    assert!(row.contains(&feature.display().to_string()), "{row}");

    for path in ["/", "/cart", "/favicon.ico"] {
        get(port, "main.shop.localhost", path);
    }
    get(port, "feature-checkout.shop.localhost", "/");
    get(port, "api.localhost", "/");
    page.ask("requests shop/main 3");
    page.ask("requests shop/feature-checkout 1");
    page.ask("open shop/main");
    let row = page.ask("text shop/main");
    assert!(row.contains("/cart") && row.contains("404"), "{row}");
    if let Some(path) = std::env::var_os("AGENTFS_DASHBOARD_SCREENSHOT") {
        page.ask(&format!("screenshot {}", Path::new(&path).display()));
    }

    checkout.signal(libc::SIGTERM);
    checkout.wait_exit();
    router.wait_instances("shop", 1);
    page.ask("gone shop/feature-checkout");
    page.ask("listed shop/main");
    assert_eq!(page.ask("loads"), "1", "the page was reloaded");
}
