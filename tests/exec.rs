//! `agentfs exec`: a client of an instance. Its connects reach the
//! instance's listeners and its `*.localhost` names resolve, nothing it
//! listens on is announced or routed, it exits with its command's code, and
//! an instance that runs nothing here is refused in one line that names the
//! instances that do.

mod common;

use common::clients::{python, serve};
use common::{wait_for, TestHome, Wrapped};

fn exec(home: &TestHome, instance: &str, cmd: &[String]) -> std::process::Output {
    let mut command = home.agentfs(&["exec", "--instance", instance, "--"]);
    command.args(cmd);
    command.output().unwrap()
}

#[test]
fn a_client_reaches_its_instance_and_exits_with_its_code() {
    let home = TestHome::new();
    let _api = serve(&home, "api", "x", &[7340]);
    let out = exec(
        &home,
        "x",
        &python("client.py", &["get", "http://localhost:7340/"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("hello from api/x on 7340"), "{stdout}");
    let names = exec(
        &home,
        "x",
        &python("client.py", &["resolve", "api.localhost"]),
    );
    assert!(
        String::from_utf8_lossy(&names.stdout).contains("127.0.0.1"),
        "{names:?}"
    );
    let failed = exec(&home, "x", &["sh".into(), "-c".into(), "exit 3".into()]);
    assert_eq!(failed.status.code(), Some(3));
    let missing = exec(&home, "x", &["no-such-command-here".into()]);
    assert_eq!(missing.status.code(), Some(127));
}

#[test]
fn nothing_a_client_listens_on_is_announced_or_routed() {
    let home = TestHome::new();
    let _api = serve(&home, "api", "x", &[7341]);
    let before = home.run_dir_files();
    let mut command = home.agentfs(&["exec", "--instance", "x", "--"]);
    command.args(python("port_zero.py", &["serve"]));
    let client = Wrapped::spawn(command);
    let line = client.wait_stdout("listening on 127.0.0.1 ");
    let port: u16 = line.rsplit(' ').next().unwrap().parse().unwrap();
    // A real TCP listener, reachable from outside the instance.
    let plain = common::clients::run_plain(&python(
        "client.py",
        &["get", &format!("http://127.0.0.1:{port}/")],
    ));
    assert_eq!(plain.report["status"], 200, "{}", plain.report);
    assert_eq!(
        home.run_dir_files(),
        before,
        "nothing of the client's in the run dir"
    );
}

#[test]
fn an_instance_that_runs_nothing_here_is_refused_with_the_ones_that_do() {
    let home = TestHome::new();
    let _api = serve(&home, "api", "x", &[7342]);
    let out = exec(&home, "nope", &["true".into()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("instance nope has nothing running"),
        "{stderr}"
    );
    assert!(stderr.contains("x (api)"), "{stderr}");
    wait_for("nothing left of the refused client", || {
        home.run_dir_files()
            .iter()
            .all(|f| f.starts_with("api_"))
            .then_some(())
    });
}
