//! `agentfs logs`: wrap keeps what the app writes to stdout and stderr in a
//! private, bounded log while still passing it on unchanged (a terminal
//! stays a terminal for the app); `logs` prints it, `-n` its end, and `-f`
//! follows it across rotations and restarts of the instance.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{wait_for, TestHome, Wrapped};

/// What the app tells about its streams: whether each is a terminal (and
/// its size), a coloured line always, and a green one only on a terminal,
/// as programs that colour by `isatty` do.
const REPORT: &str = r#"
import os, sys
try:
    size = "%dx%d" % tuple(os.get_terminal_size(1))
except OSError:
    size = "none"
sys.stdout.write("stdout tty=%s size=%s\n" % (os.isatty(1), size))
sys.stdout.write("\033[31malways\033[0m\n")
if os.isatty(1):
    sys.stdout.write("\033[32mgreen\033[0m\n")
sys.stdout.flush()
sys.stderr.write("stderr tty=%s\n" % os.isatty(2))
"#;

fn log_path(home: &TestHome, app: &str, id: &str) -> std::path::PathBuf {
    home.dir.join("logs").join(format!("{app}_{id}.log"))
}

fn wrap_to_end(home: &TestHome, app: &str, id: &str, cmd: &[&str]) -> Wrapped {
    let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let mut wrapped = home.wrap(app, id, &cmd);
    assert!(wrapped.wait_exit().success());
    wrapped
}

fn logs(home: &TestHome, args: &[&str]) -> Vec<u8> {
    let out = home.run(&[&["logs"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn output_is_passed_on_unchanged_and_kept_in_a_private_log() {
    let home = TestHome::new();
    let wrapped = wrap_to_end(&home, "web", "a", &["python3", "-c", REPORT]);
    wrapped.wait_stdout("stdout tty=False size=none");
    wrapped.wait_stdout("\x1b[31malways\x1b[0m");
    wrapped.wait_stderr("stderr tty=False");
    assert!(!wrapped.stdout().iter().any(|l| l.contains("green")));

    let path = log_path(&home, "web", "a");
    let kept = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&kept);
    // Each stream's lines as the app wrote them; the two streams are copied
    // by two threads, so their lines may interleave in the log.
    for part in [
        "stdout tty=False size=none\n",
        "\x1b[31malways\x1b[0m\n",
        "stderr tty=False\n",
    ] {
        assert!(text.contains(part), "{text:?}");
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    // The instance has ended: its log still answers to its names.
    assert_eq!(logs(&home, &["a.web"]), kept);
    assert_eq!(logs(&home, &["web"]), kept);
    let last = logs(&home, &["-n", "1", "a"]);
    assert_eq!(last, &kept[kept.len() - last.len()..]);
    assert_eq!(String::from_utf8_lossy(&last).lines().count(), 1);

    let unknown = home.run(&["logs", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there are: a.web"));
}

/// A pseudo-terminal of `cols`x`rows` for the test to play the user's terminal.
fn terminal(cols: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors, which we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn on_a_terminal_the_app_gets_a_terminal_and_keeps_its_colours() {
    let home = TestHome::new();
    let (master, slave) = terminal(101, 33);
    let mut wrap = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        "tty",
        "--instance",
        "a",
        "--",
        "python3",
        "-c",
        REPORT,
    ]);
    wrap.stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = wrap.spawn().unwrap();
    // What "the user" sees, read until the terminal's last writer closes it.
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let _ = std::fs::File::from(master).read_to_end(&mut seen);
        seen
    });
    drop(wrap);
    let status = wait_for("wrap to exit", || child.try_wait().unwrap());
    assert!(status.success());
    let seen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let kept = String::from_utf8(std::fs::read(log_path(&home, "tty", "a")).unwrap()).unwrap();
    for part in [
        "stdout tty=True size=101x33",
        "\x1b[31malways\x1b[0m",
        "\x1b[32mgreen\x1b[0m",
        "stderr tty=True",
    ] {
        assert!(seen.contains(part), "the terminal showed {seen:?}");
        assert!(kept.contains(part), "the log has {kept:?}");
    }
    // Bytes as the app wrote them: no `\r` added by the pseudo-terminal.
    assert!(!kept.contains('\r'), "{kept:?}");
}

#[test]
fn follow_goes_across_rotation_and_restarts() {
    let home = TestHome::new();
    wrap_to_end(&home, "web", "a", &["sh", "-c", "echo first run"]);
    let follow = Wrapped::spawn(home.agentfs(&["logs", "-f", "-n", "5", "a.web"]));
    follow.wait_stdout("first run");

    // Past the 4 MiB bound, so the log is rotated while it is followed.
    let lines = 50_000;
    let writer = format!(
        "import sys\nfor i in range({lines}): sys.stdout.write('line %07d %s\\n' % (i, 'x' * 90))"
    );
    wrap_to_end(&home, "web", "a", &["python3", "-c", &writer]);
    let logs_dir = home.dir.join("logs");
    assert!(logs_dir.join("web_a.log.1").exists(), "rotated");
    let last = format!("line {:07}", lines - 1);
    follow.wait_stdout(&last);
    let seen: Vec<String> = follow
        .stdout()
        .into_iter()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(seen.len(), lines, "every line once, in order");
    for (i, line) in seen.iter().enumerate() {
        assert!(line.starts_with(&format!("line {i:07} ")), "{line}");
    }

    wrap_to_end(&home, "web", "a", &["sh", "-c", "echo third run"]);
    follow.wait_stdout("third run");
    let total: u64 = ["web_a.log", "web_a.log.1"]
        .iter()
        .map(|f| std::fs::metadata(logs_dir.join(f)).unwrap().len())
        .sum();
    assert!(total <= 8 * 1024 * 1024, "bounded: {total} bytes");
}
