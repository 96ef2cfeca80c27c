//! pasta, the user-mode network tool that connects the namespace to the
//! host: it configures the namespace's interface and routes from the
//! host's (the internet works as before) and brings its loopback up. UDP
//! ports the host listens on at start (a DNS stub on `127.0.0.53`) are
//! mapped into the namespace (`-U auto`). Nothing is forwarded from the
//! host into the namespace (`-t none -u none`): the program is reached
//! through the run directory only. The host's TCP ports are reached
//! through `netns-run`'s door instead (`-T none`; see `door`).
//!
//! pasta runs in the foreground as a child of `netns-run`, in the PID
//! namespace (so it dies with it) but the host's network namespace, in a
//! process group of its own, started through `sh` with SIGINT and SIGHUP
//! ignored (which pasta keeps): a Ctrl-C or a reload signal meant for the
//! program must not take its network away. pasta exits on SIGTERM, which
//! wrap's reaper sends every process of the tree when the app is told to
//! stop; only the internet goes then, not the host's loopback. Started as
//! root it would switch to `nobody`, who may not enter the namespace; as
//! root it is told to stay root. It writes its pid file once it is ready.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;

use std::time::Duration;
use tokio::process::{Child, Command};

use tokio::time::Instant;

use anyhow::{bail, Context, Result};

/// How long pasta may take to be ready (it takes tens of milliseconds).
const READY_WITHIN: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(1);

/// Starts pasta for the namespaces of `init_pid`, with its pid file and
/// log in `scratch`.
pub fn start(pasta: &Path, init_pid: u32, scratch: &Path) -> Result<Child> {
    let log = File::create(scratch.join("pasta.log"))?;
    let mut command = Command::new("sh");
    command
        .args(["-c", "trap '' INT HUP; exec \"$0\" \"$@\""])
        .arg(pasta)
        .args(["--config-net", "--foreground", "--quiet"])
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "auto"])
        .arg("--userns")
        .arg(format!("/proc/{init_pid}/ns/user"))
        .arg("--netns")
        .arg(format!("/proc/{init_pid}/ns/net"))
        .arg("--pid")
        .arg(scratch.join("pasta.pid"));
    if nix::unistd::geteuid().is_root() {
        command.args(["--runas", "0"]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {}", pasta.display()))
}

/// Waits until pasta is ready; an error says why it is not (its own words).
pub async fn ready(child: &mut Child, scratch: &Path) -> Result<()> {
    let pid_file = scratch.join("pasta.pid");
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if std::fs::metadata(&pid_file).is_ok_and(|m| m.len() > 0) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("pasta exited ({status}): {}", last_words(scratch));
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            bail!(
                "pasta was not ready within {READY_WITHIN:?}: {}",
                last_words(scratch)
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// pasta's last meaningful line, without its syslog complaints.
fn last_words(scratch: &Path) -> String {
    let log = std::fs::read_to_string(scratch.join("pasta.log")).unwrap_or_default();
    log.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.contains("syslog"))
        .unwrap_or("no message")
        .to_owned()
}
