//! `agentfs netns-run --owner PID -- CMD`: what wrap starts as the app (under
//! its reaper). It makes a user namespace with a PID namespace in it,
//! starts `agentfs netns-init` as that PID namespace's init, starts pasta
//! once init has made the network namespace, tells init to go on, serves
//! the door to the host's loopback ([`super::door`]), and then waits for
//! init and exits as it did. It catches the signals the reaper passes on
//! ([`super::signals`]) and lets them go: the program has them already.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use nix::sched::CloneFlags;

use super::handshake::Scratch;
use super::signals::Caught;
use super::{door, pasta, probe, userns, INIT_SUBCOMMAND};

/// How long init may take to make its namespaces.
const NAMESPACE_WITHIN: Duration = Duration::from_secs(10);

pub fn run(owner: u32, cmd: &[OsString]) -> Result<i32> {
    let pasta_path = probe::find_in_path(probe::PASTA).ok_or_else(|| {
        anyhow!("pasta is not installed: apt-get install passt, or run wrap with --no-netns")
    })?;
    userns::enter(CloneFlags::CLONE_NEWPID)
        .map_err(|r| anyhow!("{}: {}, or run wrap with --no-netns", r.reason, r.fix))?;
    let scratch = Scratch::create()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut caught = Caught::new()?;
        tokio::spawn(door::serve(door::open(&scratch.0)?));
        let mut init = tokio::process::Command::new(std::env::current_exe()?)
            .arg(INIT_SUBCOMMAND)
            .args(["--owner", &owner.to_string()])
            .args(["--parent", &std::process::id().to_string()])
            .arg("--scratch")
            .arg(&scratch.0)
            .arg("--")
            .args(cmd)
            .spawn()?;
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
                () = caught.next() => {}
            }
        };
        if let Some(mut pasta) = network {
            let _ = pasta.start_kill();
            let _ = pasta.wait().await;
        }
        Ok(exit_code(status))
    })
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
