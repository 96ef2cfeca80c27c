//! Listeners that ask for port 0: each gets a real port no other socket on
//! the machine has (the shim keeps it reserved with a bound TCP socket for
//! the listener's lifetime), so several processes of one instance never
//! collide and a connect from inside the instance reaches the right one;
//! and closing such a listener gives everything back (its lock, its
//! reserved port, its files), however many times a process does it.

mod common;

use std::collections::BTreeSet;

use common::clients::{python, run_wrapped};
use common::{wait_for, wait_within, TestHome, Wrapped};

/// The port a `port_zero.py serve` process printed.
fn printed_port(server: &Wrapped) -> u16 {
    let line = server.wait_stdout("listening on 127.0.0.1 ");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn port_zero_listeners_of_one_instance_get_distinct_ports_that_connects_reach() {
    let home = TestHome::new();
    // Two processes of one app and one of another, all of instance x.
    let servers = [
        home.wrap("web", "x", &python("port_zero.py", &["serve"])),
        home.wrap("web", "x", &python("port_zero.py", &["serve"])),
        home.wrap("api", "x", &python("port_zero.py", &["serve"])),
    ];
    let ports: Vec<u16> = servers.iter().map(printed_port).collect();
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "every port-0 listener has its own port: {ports:?}"
    );
    // The port is really the listener's: nothing else on the machine can
    // take it while the listener lives.
    for port in &ports {
        let taken = std::net::TcpListener::bind(("127.0.0.1", *port));
        assert!(
            taken.is_err(),
            "port {port} is reserved while its listener lives"
        );
    }
    for port in &ports {
        let url = format!("http://127.0.0.1:{port}/");
        let ran = run_wrapped(&home, "client", "x", &python("client.py", &["get", &url]));
        let body = ran.report["body"].as_str().unwrap_or_default().to_owned();
        assert!(
            body.ends_with(&format!(" on {port}")),
            "a connect to {port} from inside the instance reaches its listener: {}",
            ran.report
        );
    }
}

/// Headless Chromium with a DevTools port the kernel picks (port 0), as a
/// test runner's worker starts it, in `user_data_dir`.
fn chromium(user_data_dir: &std::path::Path) -> Vec<String> {
    [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([
        format!("--user-data-dir={}", user_data_dir.display()),
        "about:blank".to_owned(),
    ])
    .collect()
}

#[test]
fn three_chromiums_started_at_once_in_one_instance_all_serve_devtools() {
    let home = TestHome::new();
    let dirs: Vec<std::path::PathBuf> = (0..3)
        .map(|i| home.dir.join(format!("chrome{i}")))
        .collect();
    let _browsers: Vec<Wrapped> = dirs
        .iter()
        .map(|dir| home.wrap("chrome", "w", &chromium(dir)))
        .collect();
    let ports: Vec<u16> = dirs
        .iter()
        .map(|dir| {
            wait_for("Chromium's DevToolsActivePort", || {
                let text = std::fs::read_to_string(dir.join("DevToolsActivePort")).ok()?;
                text.lines().next()?.parse().ok()
            })
        })
        .collect();
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{ports:?}");
    for port in ports {
        let url = format!("http://127.0.0.1:{port}/json/version");
        let mut command = home.agentfs(&["exec", "--instance", "w", "--"]);
        command.args(python("client.py", &["get", &url]));
        let ran = common::clients::finish(Wrapped::spawn(command));
        let body = ran.report["body"].as_str().unwrap_or_default();
        assert!(
            body.contains("\"Browser\""),
            "DevTools on {port}: {}",
            ran.report
        );
    }
}

/// Runs a churn fixture (`port_zero.py churn N` or `churn.js N`) under
/// `ulimit -n 1024` and returns its `fds before B after A` counts, checking
/// the run directory while the process still lives.
fn churn(home: &TestHome, app: &str, program: &[String], cycles: u32) -> (u32, u32) {
    let script = format!("ulimit -n 1024 && exec \"$@\" {cycles}");
    let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned()];
    cmd.extend(program.iter().cloned());
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        app,
        "--instance",
        "c",
        "--",
    ]);
    command.args(&cmd);
    let mut churning = Wrapped::spawn_with_stdin(command, std::process::Stdio::piped());
    // Each cycle writes a sidecar twice and removes three files: minutes,
    // not seconds, on a loaded machine.
    let done = wait_within(
        std::time::Duration::from_secs(300),
        "the churn to end",
        || {
            let out = churning.stdout();
            if let Some(failed) = out.iter().find(|l| l.starts_with("failed")) {
                let stderr = churning.stderr();
                panic!(
                    "{failed} (last of stderr: {:?})",
                    &stderr[stderr.len().saturating_sub(3)..]
                );
            }
            out.iter().any(|l| l.starts_with("churned")).then_some(out)
        },
    );
    // The process lives on (waiting for stdin): nothing of its closed
    // listeners is left behind.
    assert_eq!(home.run_dir_files(), Vec::<String>::new(), "{app}: run dir");
    let counts = done
        .iter()
        .find_map(|l| l.strip_prefix("fds before "))
        .expect("a count line");
    let (before, after) = counts.split_once(" after ").unwrap();
    drop(churning.child.stdin.take());
    assert!(churning.wait_exit().success());
    (before.parse().unwrap(), after.parse().unwrap())
}

/// How many descriptors the churn fixture gains when run without agentfs
/// (Node opens one of its own at its first listen).
fn plain_growth(program: &[String], cycles: u32) -> i64 {
    let out = std::process::Command::new(&program[0])
        .args(&program[1..])
        .arg(cycles.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let counts = out
        .lines()
        .find_map(|l| l.strip_prefix("fds before "))
        .unwrap_or_else(|| panic!("no count line: {out}"));
    let (before, after) = counts.split_once(" after ").unwrap();
    after.parse::<i64>().unwrap() - before.parse::<i64>().unwrap()
}

#[test]
fn ten_thousand_listeners_closed_in_one_process_leave_nothing_behind() {
    let home = TestHome::new();
    let program = python("port_zero.py", &["churn"]);
    let (before, after) = churn(&home, "pychurn", &program, 10_000);
    assert_eq!(
        i64::from(after) - i64::from(before),
        plain_growth(&program, 10),
        "descriptors of closed listeners are released"
    );
}

#[test]
fn listeners_closed_by_libuv_raw_system_calls_leave_nothing_behind() {
    let home = TestHome::new();
    let program = common::clients::node("churn.js", &[]);
    let (before, after) = churn(&home, "nodechurn", &program, 2_000);
    assert_eq!(
        i64::from(after) - i64::from(before),
        plain_growth(&program, 10),
        "descriptors of closed listeners are released"
    );
}
