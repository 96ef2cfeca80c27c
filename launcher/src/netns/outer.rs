//! `agentfs netns-run --owner PID -- CMD`: what wrap starts as the app. It
//! makes a user namespace with a PID namespace in it, starts
//! `agentfs netns-init` as that PID namespace's init, starts pasta once init
//! has made the network namespace, tells init to go on, and then waits for
//! it and exits as it did.
//!
//! Signals: it never dies of the signals wrap passes on (that would take
//! init and the program down by SIGKILL). When it leads its process group
//! (wrap not in a terminal), wrap signals the whole group, which reaches the
//! program itself; otherwise wrap signals this process alone, and it passes
//! SIGTERM and SIGHUP on to init, which passes them to the program. SIGINT
//! and SIGQUIT come from the terminal to every process of the group.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpgrp, getpid, Pid};
use tokio::signal::unix::{signal, SignalKind};

use super::{pasta, probe, userns, INIT_SUBCOMMAND};

/// How long init may take to make its namespaces.
const NAMESPACE_WITHIN: Duration = Duration::from_secs(10);

pub fn run(owner: u32, cmd: &[OsString]) -> Result<i32> {
    let pasta_path = probe::find_in_path(probe::PASTA).ok_or_else(|| {
        anyhow!("pasta is not installed: apt-get install passt, or run wrap with --no-netns")
    })?;
    userns::enter(CloneFlags::CLONE_NEWPID)
        .map_err(|r| anyhow!("{}: {}, or run wrap with --no-netns", r.reason, r.fix))?;
    let scratch = Scratch::create()?;
    let forward_signals = getpgrp() != getpid();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        let mut signals = Signals::new()?;
        let mut init = tokio::process::Command::new(std::env::current_exe()?);
        init.arg(INIT_SUBCOMMAND)
            .args(["--owner", &owner.to_string()])
            .args(["--parent", &std::process::id().to_string()])
            .arg("--scratch")
            .arg(&scratch.0);
        if forward_signals {
            init.arg("--forward-signals");
        }
        let mut init = init.arg("--").args(cmd).spawn()?;
        let init_pid = init.id().context("init exited at once")?;
        let mut network = None;
        if wait_for_namespace(init_pid).await {
            let started = match pasta::start(&pasta_path, init_pid, &scratch.0) {
                Ok(child) => pasta::ready(network.insert(child), &scratch.0).await,
                Err(err) => Err(err),
            };
            scratch.tell(started.map_err(|e| format!("{e:#}")))?;
        }
        // pasta is reaped as soon as it ends: init's own exit waits until
        // every process of its PID namespace is gone, pasta's zombie too.
        let status = loop {
            tokio::select! {
                status = init.wait() => break status?,
                _ = wait_some(&mut network), if network.is_some() => network = None,
                Some(sig) = signals.next() => if forward_signals {
                    let _ = kill(Pid::from_raw(init_pid as i32), sig);
                },
            }
        };
        if let Some(mut pasta) = network {
            let _ = pasta.start_kill();
            let _ = pasta.wait().await;
        }
        Ok::<_, anyhow::Error>(exit_code(status))
    });
    drop(scratch);
    code
}

/// Waits until init is in a network namespace of its own; false when init
/// ended or did not get there in time.
async fn wait_for_namespace(init_pid: u32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    let theirs = format!("/proc/{init_pid}/ns/net");
    let deadline = tokio::time::Instant::now() + NAMESPACE_WITHIN;
    while tokio::time::Instant::now() < deadline {
        match std::fs::read_link(&theirs) {
            Ok(link) if Some(&link) != ours.as_ref() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

async fn wait_some(child: &mut Option<tokio::process::Child>) {
    if let Some(child) = child {
        let _ = child.wait().await;
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A private directory for the handshake with init: pasta's pid file and
/// log, and `go`, which says whether the network is there. init removes
/// it once it has read `go`; whatever is left goes when this drops.
pub struct Scratch(pub PathBuf);

impl Scratch {
    fn create() -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("agentfs-netns-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// Tells init the network is ready, or why it is not.
    fn tell(&self, outcome: Result<(), String>) -> Result<()> {
        let text = match outcome {
            Ok(()) => "ok\n".to_owned(),
            Err(why) => format!("{why}\n"),
        };
        agentfs_contract::sidecar::write_atomic(&self.0.join(GO), text.as_bytes())?;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file in the scratch directory that lets init go on.
pub const GO: &str = "go";

/// How long init waits for `go`.
const GO_WITHIN: Duration = Duration::from_secs(20);

/// init's side: waits for `go` in `scratch`, then removes the directory.
/// An error says why the namespace has no network.
pub fn wait_for_go(scratch: &Path) -> Result<()> {
    let deadline = std::time::Instant::now() + GO_WITHIN;
    let go = scratch.join(GO);
    let said = loop {
        if let Ok(text) = std::fs::read_to_string(&go) {
            break text;
        }
        if std::time::Instant::now() > deadline {
            bail!("the namespace's network was not set up within {GO_WITHIN:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = std::fs::remove_dir_all(scratch);
    match said.trim() {
        "ok" => Ok(()),
        why => bail!("{why}"),
    }
}

/// The signals wrap passes on: caught so that they never end this process.
pub(super) struct Signals([tokio::signal::unix::Signal; 4]);

impl Signals {
    pub(super) fn new() -> Result<Signals> {
        Ok(Signals([
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::quit())?,
        ]))
    }

    /// The next signal to pass on (SIGINT and SIGQUIT come from the
    /// terminal to the whole group: never passed on).
    pub(super) async fn next(&mut self) -> Option<Signal> {
        let [interrupt, terminate, hangup, quit] = &mut self.0;
        tokio::select! {
            Some(()) = interrupt.recv() => None,
            Some(()) = quit.recv() => None,
            Some(()) = terminate.recv() => Some(Signal::SIGTERM),
            Some(()) = hangup.recv() => Some(Signal::SIGHUP),
        }
    }
}
