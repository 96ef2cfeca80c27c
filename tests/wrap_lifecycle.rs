//! Lifetimes: exit codes, cleanup on exit and signals, stale files after
//! SIGKILL replaced on restart, live sockets never taken over.

mod common;

use common::fixtures::Fixture;
use common::{get_json, process_alive, send_signal, wait_for, TestHome};

#[test]
fn wrap_exits_with_the_childs_code() {
    let home = TestHome::new();
    let status = home
        .agentfs(&["wrap", "--no-router", "--", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn a_missing_command_is_a_clear_error_with_code_127() {
    let home = TestHome::new();
    let output = home
        .agentfs(&["wrap", "--no-router", "--", "no-such-command-xyz"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no-such-command-xyz: command not found")
    );
}

#[test]
fn sigterm_to_wrap_reaches_the_app_and_files_are_removed() {
    let home = TestHome::new();
    let mut app = home.wrap("term", "a", &Fixture::Node.command(&["3000"]));
    let car = home.wait_sidecar("term", "a", Some(3000));
    app.signal(libc::SIGTERM);
    let status = app.wait_exit();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(!process_alive(car.pid));
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
}

/// Runs a fixture with the shim preloaded directly, without wrap (whose own
/// cleanup would otherwise hide what the shim does).
fn preloaded(
    home: &TestHome,
    shim: &std::path::Path,
    app: &str,
    cmd: &[String],
) -> std::process::Child {
    std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("LD_PRELOAD", shim)
        .env("AGENTFS_APP", app)
        .env("AGENTFS_INSTANCE", "a")
        .env("AGENTFS_RUN_DIR", home.run_dir())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn the_shim_removes_its_files_on_sigint_and_sigterm() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut app = preloaded(
            &home,
            &shim,
            "direct",
            &Fixture::C.command(&["8080", "plain"]),
        );
        home.wait_sidecar("direct", "a", Some(8080));
        send_signal(app.id(), signal);
        let status = app.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(signal),
            "dies of the signal as before"
        );
        assert_eq!(home.run_dir_files(), Vec::<String>::new());
    }
}

#[test]
fn the_shim_removes_its_files_at_normal_exit() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    let script = "import socket,sys\n\
                  s=socket.socket(); s.bind(('127.0.0.1',3000)); s.listen()\n\
                  sys.stdin.read()";
    let mut cmd: Vec<String> = vec!["python3".into(), "-c".into(), script.into()];
    let mut app = std::process::Command::new(cmd.remove(0))
        .args(&cmd)
        .env("LD_PRELOAD", &shim)
        .env("AGENTFS_APP", "exits")
        .env("AGENTFS_INSTANCE", "a")
        .env("AGENTFS_RUN_DIR", home.run_dir())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    home.wait_sidecar("exits", "a", Some(3000));
    drop(app.stdin.take());
    assert!(app.wait().unwrap().success());
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
}

#[test]
fn after_sigkill_the_stale_socket_is_replaced_at_restart() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    let run = || {
        preloaded(
            &home,
            &shim,
            "killed",
            &Fixture::PythonProbe.command(&["--port", "9000"]),
        )
    };
    let mut first = run();
    let car = home.wait_sidecar("killed", "a", Some(9000));
    first.kill().unwrap();
    first.wait().unwrap();
    // The files stay behind, but nobody holds the lock any more.
    assert!(car.socket.exists());
    assert!(!agentfs_contract::liveness::socket_is_live(&car.socket));
    let mut second = run();
    let restarted = wait_for("the restarted app's sidecar", || {
        home.sidecars()
            .into_iter()
            .find(|c| c.app == "killed" && c.pid != car.pid)
    });
    assert_eq!(restarted.socket, car.socket);
    assert_eq!(
        get_json(&restarted.socket, "/")["pid"].as_u64().unwrap(),
        u64::from(second.id())
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn a_live_socket_is_never_taken_over() {
    let home = TestHome::new();
    let _first = home.wrap(
        "busy",
        "a",
        &Fixture::PythonProbe.command(&["--port", "8000"]),
    );
    let car = home.wait_sidecar("busy", "a", Some(8000));
    let output = home
        .agentfs(&[
            "wrap",
            "--no-router",
            "--name",
            "busy",
            "--instance",
            "a",
            "--",
        ])
        .args(Fixture::PythonProbe.command(&["--port", "8000"]))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Address already in use"));
    assert_eq!(
        get_json(&car.socket, "/")["pid"].as_u64().unwrap(),
        u64::from(car.pid)
    );
}

#[test]
fn a_broken_environment_leaves_the_app_on_plain_tcp() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    let loose = home.dir.join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases: [(&str, &str, &std::path::Path); 3] = [
        ("Bad Name!", "a", &home.run_dir()),
        ("app", "a", &loose),
        ("app", "a", std::path::Path::new("relative")),
    ];
    for (app, instance, run_dir) in cases {
        let mut server = std::process::Command::new("python3")
            .args(
                &Fixture::PythonProbe.command(&[
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &free_port.to_string(),
                ])[1..],
            )
            .env("LD_PRELOAD", &shim)
            .env("AGENTFS_APP", app)
            .env("AGENTFS_INSTANCE", instance)
            .env("AGENTFS_RUN_DIR", run_dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stream = wait_for("the app on real TCP", || {
            std::net::TcpStream::connect(("127.0.0.1", free_port)).ok()
        });
        std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        server.kill().unwrap();
        let output = server.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("listening on 127.0.0.1 port {free_port}")
        );
        assert!(
            std::fs::read_dir(&loose).unwrap().next().is_none(),
            "nothing written to a non-private dir"
        );
    }
}

#[test]
fn an_app_that_closes_and_listens_again_keeps_its_primary_socket() {
    // Dev servers (Vite on a config change) close their server and listen on
    // the same port again inside one process.
    let home = TestHome::new();
    let script = "import socket,sys\n\
                  s=socket.socket(); s.bind(('127.0.0.1',3000)); s.listen(); s.close()\n\
                  s=socket.socket(); s.bind(('127.0.0.1',3000)); s.listen()\n\
                  print('again', flush=True)\n\
                  c,_=s.accept(); c.recv(100); c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nagain'); c.close()";
    let app = home.wrap(
        "restart",
        "a",
        &["python3".into(), "-c".into(), script.into()],
    );
    app.wait_stdout("again");
    let car = home.wait_sidecar("restart", "a", Some(3000));
    assert!(car.primary);
    assert_eq!(car.socket, home.socket("restart", "a", None));
    let (status, body) = common::http_get(&car.socket, "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "again"));
    assert_eq!(
        home.run_dir_files()
            .iter()
            .filter(|f| f.ends_with(".sock"))
            .count(),
        1
    );
}

#[test]
fn an_error_and_its_cause_are_printed_once() {
    // A home under a regular file cannot be created: Not a directory.
    let home = TestHome::new();
    let file = home.dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let out = home
        .agentfs(&["wrap", "--no-router", "--", "true"])
        .env("AGENTFS_HOME", file.join("home"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
}

#[test]
fn an_app_whose_wrap_is_killed_goes_too() {
    let home = TestHome::new();
    let mut wrap = home.wrap(
        "orphan",
        "a",
        &Fixture::PythonProbe.command(&["--port", "8123"]),
    );
    let car = home.wait_sidecar("orphan", "a", Some(8123));
    assert!(process_alive(car.pid));
    wrap.signal(libc::SIGKILL);
    wrap.wait_exit();
    // The watchdog wrap left behind ends the app's process group; the shim
    // in it removes its files on the way out.
    wait_for("the app to end with its wrap", || {
        (!process_alive(car.pid)).then_some(())
    });
    wait_for("its files to go", || (!car.socket.exists()).then_some(()));
}
