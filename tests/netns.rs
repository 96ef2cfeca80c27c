//! The namespace lane (Linux): programs the shim cannot enter (a static Go
//! server, real Caddy) run in a private network namespace, reached through
//! the router like any listener, with their instance's ports, the host's
//! loopback and `*.localhost` names on their own loopback; and when user
//! namespaces are not to be had, wrap bridges and says why.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use common::bridge::free_port;
use common::router::{get, TestRouter};
use common::{go, http_get, wait_for, TestHome, Wrapped};

/// `wrap` of the static Go server as `app`/`instance`, with `args`.
fn go_server(home: &TestHome, app: &str, instance: &str, args: &[&str]) -> Wrapped {
    let mut cmd = vec![go::static_server().display().to_string()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    home.wrap(app, instance, &cmd)
}

/// What `path` answers on `app`/`instance`'s primary socket, once it does.
fn ask(home: &TestHome, app: &str, instance: &str, path: &str) -> String {
    let socket = home.socket(app, instance, None);
    wait_for(&format!("{app}/{instance} to answer {path}"), || {
        http_get(&socket, path)
            .ok()
            .filter(|(status, _)| *status == 200)
    })
    .1
}

/// A directory whose index page names its instance.
fn site(home: &TestHome, name: &str) -> String {
    let dir = home.dir.join(format!("site-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), format!("files of {name}\n")).unwrap();
    dir.display().to_string()
}

#[test]
fn two_caddies_with_one_hard_coded_port_each_serve_their_own_files() {
    let home = TestHome::new();
    let router = TestRouter::start(&home);
    let listen = format!(":{}", free_port());
    let caddies: Vec<Wrapped> = ["a", "b"]
        .iter()
        .map(|instance| {
            let root = site(&home, instance);
            let cmd = ["caddy", "file-server", "--listen", &listen, "--root", &root];
            home.wrap("caddy", instance, &cmd.map(String::from))
        })
        .collect();
    for caddy in &caddies {
        caddy.wait_stderr("running it in a private network namespace instead");
    }
    router.wait_instances("caddy", 2);
    for instance in ["a", "b"] {
        for _ in 0..40 {
            let answer = get(router.port, &format!("{instance}.caddy.localhost"), "/");
            assert_eq!(answer.status, 200, "{instance}: {}", answer.body);
            assert_eq!(answer.body, format!("files of {instance}\n"));
        }
    }
    let ps = home.run(&["ps", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["kind"], "netns", "{row}");
        assert_eq!(row["status"], "live", "{row}");
    }
}

#[test]
fn a_static_go_server_reaches_its_own_instances_api_on_localhost() {
    let home = TestHome::new();
    let port = free_port().to_string();
    let _apis: Vec<Wrapped> = ["a", "b"]
        .iter()
        .map(|instance| {
            let root = site(&home, &format!("api-{instance}"));
            let cmd = ["python3", "-m", "http.server", &port, "--directory", &root];
            home.wrap("api", instance, &cmd.map(String::from))
        })
        .collect();
    let _webs: Vec<Wrapped> = ["a", "b"]
        .iter()
        .map(|instance| go_server(&home, "web", instance, &["--listen", ":8080"]))
        .collect();
    for instance in ["a", "b"] {
        ask(&home, "api", instance, "/");
        let path = format!("/fetch?url=http://localhost:{port}/");
        let body = wait_for(&format!("web/{instance} to reach its api"), || {
            let body = ask(&home, "web", instance, &path);
            body.starts_with("200").then_some(body)
        });
        assert_eq!(body, format!("200 files of api-{instance}\n"));
        // And the other way: a shimmed client of the instance reaches the
        // static server on its own localhost:8080.
        let mut curl = home.agentfs(&["wrap", "--no-router", "--name", "cli", "--instance"]);
        curl.args([instance, "--", "curl", "-s", "http://localhost:8080/"]);
        let output = curl.output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("go server of {instance}\n"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_static_go_server_reaches_a_server_on_the_hosts_loopback() {
    let home = TestHome::new();
    let web = go_server(&home, "web", "a", &[]);
    web.wait_stderr("private network namespace");
    ask(&home, "web", "a", "/");
    // Started after the namespace: the host's ports are followed as they
    // come. One listens on IPv4 loopback, one on IPv6 loopback only.
    for (bind, url_host) in [("127.0.0.1:0", "localhost"), ("[::1]:0", "[::1]")] {
        let host = TcpListener::bind(bind).unwrap();
        let port = host.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut conn in host.incoming().flatten() {
                let mut request = [0u8; 1024];
                let _ = conn.read(&mut request);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nthe host",
                );
            }
        });
        let path = format!("/fetch?url=http://{url_host}:{port}/");
        let body = wait_for(
            &format!("the host's server on {bind} to be reached"),
            || {
                let (_, body) = http_get(&home.socket("web", "a", None), &path).ok()?;
                body.starts_with("200").then_some(body)
            },
        );
        assert_eq!(body, "200 the host");
    }
}

#[test]
fn a_static_go_program_resolves_localhost_names_to_loopback() {
    let home = TestHome::new();
    let _api = go_server(&home, "api", "a", &[]);
    for name in ["api.localhost", "a.api.localhost"] {
        let body = ask(&home, "api", "a", &format!("/resolve?name={name}"));
        let addrs: Vec<&str> = body.lines().collect();
        assert!(!addrs.is_empty(), "{name}: {body}");
        for addr in addrs {
            assert!(["127.0.0.1", "::1"].contains(&addr), "{name}: {body}");
        }
    }
    // The host's own file is untouched.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(!hosts.contains("api.localhost"), "{hosts}");
}

#[test]
fn without_user_namespaces_wrap_bridges_and_says_why() {
    let home = TestHome::new();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"")
        .arg(common::agentfs_bin())
        .args([
            "wrap",
            "--no-router",
            "--name",
            "web",
            "--instance",
            "a",
            "--",
        ])
        .arg(go::static_server())
        .env("AGENTFS_HOME", &home.dir);
    for var in agentfs_contract::env::INSTANCE_VARS {
        cmd.env_remove(var);
    }
    let web = Wrapped::spawn(cmd);
    let line = web.wait_stderr("behind a bridge");
    assert!(line.contains("no private network namespace"), "{line}");
    assert!(line.contains("max_user_namespaces is 0"), "{line}");
    assert!(
        line.contains("fix: sysctl -w user.max_user_namespaces="),
        "{line}"
    );
    assert_eq!(ask(&home, "web", "a", "/"), "go server of a\n");
    assert_eq!(home.wait_sidecar_json("web", "a", None)["kind"], "bridge");
}

#[test]
fn no_netns_keeps_the_bridge() {
    let home = TestHome::new();
    let mut cmd = home.agentfs(&["wrap", "--no-router", "--no-netns", "--name", "web"]);
    cmd.args(["--instance", "a", "--"]).arg(go::static_server());
    let web = Wrapped::spawn(cmd);
    web.wait_stderr("behind a bridge");
    assert_eq!(ask(&home, "web", "a", "/"), "go server of a\n");
    assert_eq!(home.wait_sidecar_json("web", "a", None)["kind"], "bridge");
}

/// Every process descended from `root`, from `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&pid) = tree.get(next) {
        next += 1;
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        tree.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    tree
}

/// Whether `pid` runs (a zombie has ended).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat[stat.rfind(')')? + 1..].trim_start().to_owned();
            Some(!rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn killing_the_wrap_ends_everything_in_the_namespace() {
    let home = TestHome::new();
    let mut web = go_server(&home, "web", "a", &[]);
    ask(&home, "web", "a", "/");
    let tree = descendants(web.child.id());
    let names: Vec<String> = tree
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .collect();
    // pasta runs as passt (or passt.avx2): one program under several names.
    assert!(names.iter().any(|n| n.starts_with("pas")), "{names:?}");
    assert!(
        names.iter().any(|n| n.trim() == "server-static"),
        "{names:?}"
    );
    web.signal(libc::SIGKILL);
    web.wait_exit();
    for pid in tree {
        wait_for(&format!("process {pid} to end"), || {
            (!runs(pid)).then_some(())
        });
    }
    wait_for("the instance's files to go", || {
        home.run_dir_files().is_empty().then_some(())
    });
}

#[test]
fn stop_ps_and_exit_codes_are_as_for_a_shimmed_app() {
    let home = TestHome::new();
    let mut web = go_server(&home, "web", "a", &[]);
    ask(&home, "web", "a", "/");
    let ps = home.run(&["ps", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(rows[0]["kind"], "netns");
    assert_eq!(rows[0]["status"], "live");
    assert_eq!(rows[0]["pid"], web.child.id());
    let stop = home.run(&["stop", "a.web"]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    // Go dies of SIGTERM: 128 + 15, as wrap reports for a shimmed app.
    assert_eq!(web.wait_exit().code(), Some(143));
    assert!(
        home.run_dir_files().is_empty(),
        "{:?}",
        home.run_dir_files()
    );
    let logs = home.run(&["logs", "a.web"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("listening on [::]:8080"), "{logs}");

    let mut exits = go_server(&home, "web", "b", &["--exit", "3"]);
    assert_eq!(exits.wait_exit().code(), Some(3));
    let mut cmd = home.agentfs(&["wrap", "--no-router", "--name", "web", "--instance", "c"]);
    cmd.args(["--", "/nonexistent/server"]);
    assert_eq!(Wrapped::spawn(cmd).wait_exit().code(), Some(127));
}

/// Doctor's `netns` check, as `doctor --json` reports it from `command`.
fn doctor_netns_check(mut command: Command) -> serde_json::Value {
    let output = command.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = if report["status"] == "success" {
        &report["data"]["checks"]
    } else {
        &report["error"]["checks"]
    };
    checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "netns")
        .cloned()
        .unwrap_or_else(|| panic!("no netns check in {report}"))
}

#[test]
fn doctor_says_whether_the_lane_works_and_why_not() {
    let home = TestHome::new();
    let check = doctor_netns_check(home.agentfs(&["doctor", "--json"]));
    assert_eq!(check["status"], "ok", "{check}");

    let mut without = Command::new("unshare");
    without
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" doctor --json")
        .arg(common::agentfs_bin())
        .env("AGENTFS_HOME", &home.dir);
    let check = doctor_netns_check(without);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("max_user_namespaces is 0"),
        "{check}"
    );
    assert!(check["fix"].as_str().unwrap().contains("sysctl"), "{check}");
}

/// Runs `agentfs wrap ... -- SERVER` on a new terminal (python's pty.fork:
/// its own session, the terminal its controlling one), waits until the
/// server says it listens, types `key` (or sends SIGTERM to wrap when
/// `key` is empty) and prints wrap's exit code.
const ON_A_TERMINAL: &str = r#"
import os, pty, signal, sys, time
agentfs, server, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(agentfs, ["agentfs", "wrap", "--no-router", "--name", "tty", "--instance", "a", "--", server])
seen, deadline = b"", time.time() + 30
while b"listening on" not in seen and time.time() < deadline:
    seen += os.read(fd, 4096)
if key:
    os.write(fd, key)
else:
    os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn on_a_terminal_ctrl_c_and_sigterm_end_the_program_as_for_a_shimmed_app() {
    let home = TestHome::new();
    for (key, code) in [("\x03", "130"), ("", "143")] {
        let output = Command::new("python3")
            .args(["-c", ON_A_TERMINAL, common::agentfs_bin()])
            .arg(go::static_server())
            .arg(key)
            .env("AGENTFS_HOME", &home.dir)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            said.trim(),
            code,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            home.run_dir_files().is_empty(),
            "{:?}",
            home.run_dir_files()
        );
    }
}
