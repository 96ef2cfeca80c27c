//! `agentfs stop [-t SECS] NAME`: ends an instance the way Ctrl-C on its
//! wrap would, and says what it stopped.
//!
//! Each process that owns one of the instance's listeners (its sidecar's
//! `pid`) gets SIGTERM sent to its process group, as a terminal sends
//! Ctrl-C's SIGINT to the foreground group (wrap gives an app that does not
//! share its terminal a group of its own). A bridge's `pid` is the bridge
//! itself (wrap or `agentfs bridge`), whose group may be its caller's: it
//! alone gets the signal, and passes it on to its app. Whatever still runs
//! after the grace period gets SIGKILL. Then the instance's files are
//! removed: wrap removes them itself once its app is gone, and stop removes
//! whatever is left (when the app ran without a wrap, or wrap was killed).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use agentfs_contract::naming;
use agentfs_contract::rundir::{self, Entry, State};
use agentfs_contract::sidecar::Kind;

use crate::app::process_group::{self, Target};
use crate::instance::names::{self, InstanceName, NameArg, Running};

/// How long stop waits for the processes once they got SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Gap between two looks at whether the processes are gone.
const POLL_GAP: Duration = Duration::from_millis(20);

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs stop blue.shop
  agentfs stop -t 2 shop      # the only instance of shop; SIGKILL after 2 s")]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before sending SIGKILL.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub timeout: u64,
    /// Print `{"stopped": "INSTANCE.APP", "how": …}` instead.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub name: NameArg,
}

pub fn run(mut args: StopArgs) -> Result<i32> {
    args.name.name = crate::stack::target::qualify(&args.name.name);
    let found = args.name.running()?;
    let name = &found.name;
    let entries: Vec<&Entry> = found
        .entries()
        .filter(|e| e.sidecar.kind != Kind::Manual)
        .collect();
    if entries.is_empty() {
        bail!(
            "{name} is a manual route, not a process agentfs runs: remove it with \
             `agentfs route --remove {name}`"
        );
    }
    let targets = targets(&entries);
    if targets.is_empty() {
        return already_ended(&found, args.json);
    }
    let started = Instant::now();
    for target in &targets {
        target
            .signal(Signal::SIGTERM)
            .with_context(|| format!("could not signal {}", describe_target(*target)))?;
    }
    let grace = Duration::from_secs(args.timeout);
    let how = if gone(&targets, grace) {
        format!(
            "it ended {:.1}s after SIGTERM",
            started.elapsed().as_secs_f64()
        )
    } else {
        for target in &targets {
            let _ = target.signal(Signal::SIGKILL);
        }
        if !gone(&targets, KILL_WAIT) {
            bail!("{name} still runs after SIGKILL ({})", describe(&targets));
        }
        format!("it did not end within {}s of SIGTERM: killed", args.timeout)
    };
    remove_files(&found.home, name);
    if args.json {
        let value = serde_json::json!({
            "stopped": name.to_string(),
            "command": command_line(&entries),
            "signalled": describe(&targets),
            "how": how,
        });
        println!("{value}");
    } else {
        println!(
            "stopped {name} ({}; {}): {how}",
            command_line(&entries),
            describe(&targets)
        );
    }
    Ok(0)
}

/// Who gets the signals: each entry's owner, as its sidecar names it; when
/// that process is gone, whoever holds its lock (a process it forked).
fn targets(entries: &[&Entry]) -> BTreeSet<Target> {
    let mut targets = BTreeSet::new();
    for entry in entries {
        let car = &entry.sidecar;
        let group = car.kind == Kind::Shim;
        match Target::of(car.pid, group) {
            Some(target) => {
                targets.insert(target);
            }
            None => targets.extend(
                process_group::lock_holders(&naming::lock_path(&car.socket))
                    .into_iter()
                    .filter_map(|pid| Target::of(pid, group)),
            ),
        }
    }
    targets
}

/// No process that holds the instance's listeners was found: it just
/// ended, or it cannot be seen from here.
fn already_ended(found: &Running, json: bool) -> Result<i32> {
    let name = &found.name;
    remove_files(&found.home, name);
    let scan = names::scan(&found.home)?;
    let held = scan
        .of_instance(&name.app, &name.instance)
        .find(|e| e.state != State::Stale);
    if let Some(entry) = held {
        bail!(
            "{name}'s listeners are held by a process other than the one that made them              (pid {}, gone): `fuser -v {}` names it",
            entry.sidecar.pid,
            naming::lock_path(&entry.sidecar.socket).display()
        );
    }
    if json {
        let value =
            serde_json::json!({ "stopped": name.to_string(), "how": "it had already ended" });
        println!("{value}");
    } else {
        println!("stopped {name}: it had already ended");
    }
    Ok(0)
}

/// Waits up to `within` for every target to be gone.
fn gone(targets: &BTreeSet<Target>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !targets.iter().any(|t| t.runs()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_GAP);
    }
}

/// Removes what is left of the instance once its owners are gone.
fn remove_files(home: &std::path::Path, name: &InstanceName) {
    let Ok(scan) = names::scan(home) else {
        return;
    };
    for entry in scan.of_instance(&name.app, &name.instance) {
        let _ = rundir::remove(entry);
    }
}

/// The command the instance runs, from its first listener's sidecar.
fn command_line(entries: &[&Entry]) -> String {
    entries
        .first()
        .map(|e| e.sidecar.argv.join(" "))
        .filter(|argv| !argv.is_empty())
        .unwrap_or_else(|| "?".into())
}

fn describe(targets: &BTreeSet<Target>) -> String {
    targets
        .iter()
        .map(|t| describe_target(*t))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_target(target: Target) -> String {
    match target {
        Target::Group(pgid) => format!("process group {pgid}"),
        Target::Process(pid) => format!("pid {pid}"),
    }
}
