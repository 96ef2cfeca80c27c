//! `agentfs netns-init`: the PID namespace's init. It makes the network and
//! mount namespaces (in a nested user namespace, for the capabilities the
//! exec took away), binds the private hosts file, waits for pasta, starts
//! the program, and then, until no process is left in the namespace:
//! reaps every child and orphan, and keeps the in and out forwarders
//! current. Exits with the program's status (128 + N when a signal N ended
//! it). Signals: wrap's reaper sends them to the program itself; init
//! catches them and lets them go ([`super::signals`]).
//!
//! It dies with `netns-run`: a parent-death SIGKILL, and a check that the
//! parent is still the one that started it (it may have died before the
//! parent-death signal was set). When init dies, the kernel kills every
//! process of the namespace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

use agentfs_contract::{env, rundir};

use super::diag::Diag;
use super::door;
use super::handshake::wait_for_go;
use super::hosts::Hosts;
use super::inbound::{Inbound, Owner};
use super::outbound::Outbound;
use super::signals::Caught;
use super::userns;

/// How often the forwarders look for changes (and orphans are reaped, in
/// case a SIGCHLD was coalesced).
const TICK: Duration = Duration::from_millis(100);

/// What `netns-run` tells init.
pub struct InitArgs {
    pub owner: u32,
    pub parent: u32,
    pub scratch: PathBuf,
    pub command: Vec<OsString>,
}

pub fn run(args: InitArgs) -> Result<i32> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    let own_pid = host_pid()?;
    if parent_of(own_pid) != Some(args.parent) {
        return Ok(1);
    }
    let owner = owner_from_env(args.owner, &args.command)?;
    // Opened here, it answers for the host's namespace after init has left it.
    let host_diag = Diag::open()?;
    userns::enter(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        .map_err(|r| anyhow!("{}: {}", r.reason, r.fix))?;
    let hosts = Hosts::install(&args.scratch, &owner.app, &owner.instance)
        .map_err(|e| {
            eprintln!("agentfs: *.localhost names will not resolve in the namespace: {e:#}")
        })
        .ok();
    if let Err(why) = wait_for_go(&args.scratch) {
        eprintln!("agentfs: the namespace has no network ({why:#}); run wrap with --no-netns to bridge the app instead");
        return Ok(1);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The instance's and the host's ports are taken before the program
        // starts, so which of them it may listen on does not depend on who
        // is first: none of them, as on one machine.
        // Caught before the program starts, so none is lost.
        let caught = (signal(SignalKind::child())?, Caught::new()?);
        let mut reader = rundir::Reader::new(owner.run_dir.clone());
        let mut outbound = Outbound::new(
            owner.app.clone(),
            owner.instance.clone(),
            host_diag,
            door::path(&args.scratch),
        );
        outbound.update(&live_sidecars(&mut reader));
        let program = match spawn(&args.command) {
            Ok(pid) => pid,
            Err(code) => return Ok(code),
        };
        let forwarders = Forwarders {
            reader,
            outbound,
            inbound: Inbound::new(owner, own_pid, Diag::open()?),
            hosts,
        };
        supervise(program, forwarders, caught).await
    })
}

/// What init keeps current on every tick.
struct Forwarders {
    reader: rundir::Reader,
    outbound: Outbound,
    inbound: Inbound,
    hosts: Option<Hosts>,
}

impl Forwarders {
    fn tick(&mut self) {
        self.inbound.poll();
        let sidecars = live_sidecars(&mut self.reader);
        self.outbound.update(&sidecars);
        if let Some(hosts) = self.hosts.as_mut() {
            hosts.update(&sidecars);
        }
    }
}

/// Forwards and reaps until no process is left.
async fn supervise(
    program: Pid,
    mut forwarders: Forwarders,
    (mut children, mut signals): (tokio::signal::unix::Signal, Caught),
) -> Result<i32> {
    let mut tick = tokio::time::interval(TICK);
    let mut code = None;
    loop {
        tokio::select! {
            _ = children.recv() => {}
            _ = tick.tick() => forwarders.tick(),
            () = signals.next() => {}
        }
        if reap(program, &mut code) {
            break;
        }
    }
    // The sockets' files go before the process does.
    drop(forwarders);
    Ok(code.unwrap_or(1))
}

/// Reaps whatever ended; records the program's status. True once no
/// child is left.
fn reap(program: Pid, code: &mut Option<i32>) -> bool {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == program => *code = Some(status),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == program => {
                *code = Some(128 + sig as i32);
            }
            Ok(WaitStatus::StillAlive) => return false,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return true,
        }
    }
}

/// The sidecars of the run directory as they are now (unjudged: see
/// `outbound` for why liveness is asked there by lock).
fn live_sidecars(reader: &mut rundir::Reader) -> Vec<Arc<agentfs_contract::sidecar::Sidecar>> {
    reader
        .sidecars()
        .map(|found| {
            found
                .sidecars
                .into_iter()
                .filter_map(|(_, outcome)| outcome.ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the program with init's stdio and environment; when it cannot be
/// started, says why and gives the exit code a shell would.
fn spawn(command: &[OsString]) -> Result<Pid, i32> {
    let (program, rest) = command.split_first().ok_or(2)?;
    match std::process::Command::new(program).args(rest).spawn() {
        Ok(child) => Ok(Pid::from_raw(child.id() as i32)),
        Err(err) => {
            let name = program.to_string_lossy();
            Err(match err.kind() {
                std::io::ErrorKind::NotFound => {
                    eprintln!("agentfs: {name}: command not found");
                    127
                }
                std::io::ErrorKind::PermissionDenied => {
                    eprintln!("agentfs: {name}: permission denied");
                    126
                }
                _ => {
                    eprintln!("agentfs: could not run {name}: {err}");
                    126
                }
            })
        }
    }
}

/// The instance this runs as, from the variables wrap gave the app.
fn owner_from_env(pid: u32, command: &[OsString]) -> Result<Owner> {
    let var = |name: &str| std::env::var(name).map_err(|_| anyhow!("{name} is not set"));
    Ok(Owner {
        app: var(env::APP)?,
        instance: var(env::INSTANCE)?,
        run_dir: PathBuf::from(var(env::RUN_DIR)?),
        pid,
        argv: command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    })
}

/// This process's pid as the host's `/proc` numbers it (in its own PID
/// namespace it is 1).
fn host_pid() -> Result<u32> {
    let link = std::fs::read_link("/proc/self")?;
    link.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("/proc/self is {}", link.display()))
}

/// The parent of `pid`, as the host's `/proc` says.
fn parent_of(pid: u32) -> Option<u32> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    agentfs_procs::tree::parent_of(&stat)
}
