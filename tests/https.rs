//! https through the router with real clients: curl over HTTP/2 and
//! HTTP/1.1 (and the same port plain), a name outside `localhost` refused
//! in the handshake; Node's fetch and Python's urllib inside an instance
//! trusting the CA with no flags, and failing certificate verification
//! outside it; headless Chromium trusting the CA through the NSS database
//! `agentfs trust` filled, loading a Vite page over h2 whose HMR WebSocket
//! connects and hot-updates it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixtures::Fixture;
use common::router::TestRouter;
use common::{wait_for, TestHome};

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn ca(home: &TestHome) -> PathBuf {
    home.dir.join("ca/ca.pem")
}

/// curl with the CA: the HTTP version and status it got, or its failure.
fn curl(home: &TestHome, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca(home))
        .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// A router and instance `a` of app `web` (Node on 3000), routed.
fn web(home: &TestHome) -> (TestRouter, common::Wrapped) {
    let router = TestRouter::start(home);
    let app = home.wrap("web", "a", &Fixture::Node.command(&["3000"]));
    router.wait_instances("web", 1);
    (router, app)
}

#[test]
fn curl_reaches_an_instance_over_http2_http1_and_plain_on_one_port() {
    let home = TestHome::new();
    let (router, _app) = web(&home);
    let url = format!("https://a.web.localhost:{}/", router.port);
    let h2 = curl(&home, &["--http2", &url]);
    assert_eq!(
        String::from_utf8_lossy(&h2.stdout),
        "2 200",
        "{}",
        text(&h2)
    );
    let h1 = curl(&home, &["--http1.1", &url]);
    assert_eq!(
        String::from_utf8_lossy(&h1.stdout),
        "1.1 200",
        "{}",
        text(&h1)
    );
    let plain = curl(
        &home,
        &[&format!("http://a.web.localhost:{}/", router.port)],
    );
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "1.1 200",
        "{}",
        text(&plain)
    );

    let resolve = format!("example.com:{}:127.0.0.1", router.port);
    let foreign = curl(
        &home,
        &[
            "--resolve",
            &resolve,
            &format!("https://example.com:{}/", router.port),
        ],
    );
    assert!(!foreign.status.success(), "{}", text(&foreign));
    assert!(
        text(&foreign).contains("unrecognized name"),
        "{}",
        text(&foreign)
    );
}

/// The variables wrap sets unless the user did (some machines set them all
/// to the system's bundle).
const CA_VARS: [&str; 4] = [
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

/// `agentfs exec --instance a -- CMD`: a client inside instance `a`, run
/// by a user who set none of [`CA_VARS`].
fn inside(home: &TestHome, cmd: &[&str]) -> Output {
    let mut command = home.agentfs(&["exec", "--instance", "a", "--"]);
    command.args(cmd);
    for var in CA_VARS {
        command.env_remove(var);
    }
    command.output().unwrap()
}

/// CMD outside any instance, with none of [`CA_VARS`].
fn outside(cmd: &[&str]) -> Output {
    let mut command = Command::new(cmd[0]);
    command.args(&cmd[1..]);
    for var in CA_VARS {
        command.env_remove(var);
    }
    command.output().unwrap()
}

#[test]
fn node_and_python_inside_an_instance_trust_the_ca_with_no_flags() {
    let home = TestHome::new();
    let (router, _app) = web(&home);
    let node = |url: &str| {
        let script = format!(
            "fetch('{url}').then(r => console.log('status', r.status), \
             e => {{ console.log('failed', e.cause && e.cause.code); process.exit(3) }})"
        );
        vec!["node".to_owned(), "-e".to_owned(), script]
    };
    let python = |url: &str| {
        let script = format!(
            "import urllib.request\nprint('status', urllib.request.urlopen('{url}').status)"
        );
        vec!["python3".to_owned(), "-c".to_owned(), script]
    };
    let by_name = format!("https://a.web.localhost:{}/", router.port);
    // By address: resolvable outside an instance too, so only trust differs.
    let by_address = format!("https://127.0.0.1:{}/health", router.port);
    for client in [node, python] {
        for url in [&by_name, &by_address] {
            let cmd = client(url);
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let out = inside(&home, &cmd);
            assert!(out.status.success(), "{url}: {}", text(&out));
            assert!(text(&out).contains("status 200"), "{url}: {}", text(&out));
        }
        let cmd = client(&by_address);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = outside(&cmd);
        assert!(!out.status.success(), "outside, untrusted: {}", text(&out));
        let said = text(&out).to_lowercase();
        assert!(
            said.contains("certificate") || said.contains("self_signed") || said.contains("issuer"),
            "outside, a certificate failure: {said}"
        );
    }
}

#[test]
fn a_ca_variable_the_user_set_is_left_alone_and_said_under_agentfs_log() {
    let home = TestHome::new();
    let (_router, _app) = web(&home);
    let mut command = home.agentfs(&["exec", "--instance", "a", "--"]);
    command.args([
        "sh",
        "-c",
        "echo \"SSL_CERT_FILE=$SSL_CERT_FILE NODE=$NODE_EXTRA_CA_CERTS\"",
    ]);
    for var in CA_VARS {
        command.env_remove(var);
    }
    let out = command
        .env("SSL_CERT_FILE", "/users/own/bundle.pem")
        .env("AGENTFS_LOG", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SSL_CERT_FILE=/users/own/bundle.pem "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("NODE={}", ca(&home).display())),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SSL_CERT_FILE is already set (/users/own/bundle.pem): left as it is"),
        "{stderr}"
    );
}

#[test]
fn programs_the_shim_cannot_enter_trust_the_ca_too() {
    let home = TestHome::new();
    // --bridge (and the namespace lane, for programs the shim cannot enter)
    // run the program without the shim: its TLS clients still trust the CA.
    let mut command = home.agentfs(&["wrap", "--no-router", "--bridge", "--name", "b", "--"]);
    command.args([
        "sh",
        "-c",
        "echo \"NODE=$NODE_EXTRA_CA_CERTS SSL=$SSL_CERT_FILE\"",
    ]);
    for var in CA_VARS {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("NODE={} ", ca(&home).display())),
        "{stdout}"
    );
    assert!(
        !stdout.contains("SSL= ") && !stdout.trim_end().ends_with("SSL="),
        "{stdout}"
    );
}

#[test]
fn tls_from_inside_an_instance_reaches_its_own_instance_of_the_app() {
    let home = TestHome::new();
    let router = TestRouter::start(&home);
    let _apps = ["a", "b"].map(|id| home.wrap("web", id, &Fixture::Node.command(&["3000"])));
    router.wait_instances("web", 2);
    let own = home.wait_sidecar("web", "b", None).pid;
    let script = format!(
        "(async () => {{ for (let i = 0; i < 6; i++) {{ \
         const r = await fetch('https://web.localhost:{}/'); \
         console.log('pid', (await r.json()).pid, r.status); }} }})()",
        router.port
    );
    let mut command = home.agentfs(&["exec", "--instance", "b", "--", "node", "-e", &script]);
    for var in CA_VARS {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let answers: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(answers.len(), 6, "{}", text(&out));
    for answer in answers {
        assert_eq!(answer, format!("pid {own} 200"), "{}", text(&out));
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn chromium_trusting_the_ca_loads_a_vite_page_over_h2_and_hot_updates_it() {
    let home = TestHome::new();
    let user = home.dir.join("user");
    std::fs::create_dir_all(&user).unwrap();
    let trusted = home
        .agentfs(&["trust", "--no-system"])
        .env("HOME", &user)
        .output()
        .unwrap();
    assert!(trusted.status.success(), "{}", text(&trusted));

    let router = TestRouter::start(&home);
    let project = home.dir.join("vite");
    std::fs::create_dir_all(&project).unwrap();
    for file in ["index.html", "main.js"] {
        std::fs::copy(repo("fixtures/vite").join(file), project.join(file)).unwrap();
    }
    let vite_bin = repo("tests/node/node_modules/vite/bin/vite.js");
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        "vite-demo",
        "--instance",
        "a",
        "--",
    ]);
    command
        .args([
            "node",
            &vite_bin.display().to_string(),
            "--port",
            "5173",
            "--strictPort",
        ])
        .args(["--host", "127.0.0.1"])
        .current_dir(&project)
        .env("VITE_INSTANCE", "a");
    let _vite = common::Wrapped::spawn(command);
    router.wait_instances("vite-demo", 1);
    let url = format!("https://a.vite-demo.localhost:{}/", router.port);
    wait_for("vite to answer through the router", || {
        let out = curl(&home, &[&url]);
        String::from_utf8_lossy(&out.stdout)
            .ends_with(" 200")
            .then_some(())
    });

    let out = Command::new("node")
        .current_dir(repo("tests/node"))
        .env("HOME", &user)
        .arg("https_browser.js")
        .arg(&url)
        .arg(project.join("main.js"))
        .output()
        .expect("node runs the browser driver");
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    assert_eq!(result["text"], "instance a v1", "{result}");
    assert_eq!(result["protocol"], "h2", "{result}");
    assert_eq!(result["connected"], true, "HMR did not connect: {result}");
    assert_eq!(result["updated"], true, "no hot update: {result}");
    // 200, not 101: the WebSocket went over the page's HTTP/2 connection.
    assert_eq!(result["wsStatus"], serde_json::json!([200]), "{result}");
}
