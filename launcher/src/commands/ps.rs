//! `agentfs ps [--json] [--prune]`: every instance in the run directory.
//!
//! One row per sidecar, as the contract's run-directory reader sees it: app,
//! instance, kind, pid, port asked for, URL (the instance's own), status,
//! uptime, and the router's request count when a router runs. Status is
//! `live`, `bound` (not listening yet), `closed` (its owner closed that
//! listener) or `stale` (its owner is gone). `--json` prints a stable
//! array: each sidecar's fields (`version`, `kind`, `app`, `instance`,
//! `pid`, `socket`, `address`, `port`, `primary`, `listening`, `hostname`,
//! `argv`, `cwd`, `started_at`, `target` when set) plus `status`, `url`,
//! and `requests` (a number, or `null` when no router answers). `--prune`
//! removes stale and closed entries (a manual route loses only its sidecar,
//! never the socket it names); with `--json` it prints the removed entries.
//!
//! Stacks (`agentfs up`) come first in the table, one block per stack with
//! each service's state (`starting`, `ready`, `restarting`, `failed`,
//! `stopped`); in `--json` each entry's `stack` is the instance of the stack
//! that runs it (`null` when none does). `--stacks` lists only the stacks:
//! with `--json`, one object per stack as `agentfs up --json` prints it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde_json::Value;

use agentfs_contract::{layout, liveness, rundir, urls};

use crate::instance::names;
use crate::router_process;
use crate::stack::report as stack_report;
use crate::stack::state::{self as stack_state, StackStatus};

/// How long the router may take to list its routes before ps goes without counts.
const ROUTER_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Remove stale entries (their owners are gone) instead of listing them.
    #[arg(long)]
    pub prune: bool,
    /// List only the stacks (`agentfs up`) and their services' states.
    #[arg(long, conflicts_with = "prune")]
    pub stacks: bool,
}

/// One listed entry.
#[derive(Debug)]
struct Listed {
    entry: rundir::Entry,
    url: String,
    requests: Option<u64>,
}

pub fn run(args: PsArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let stacks = stack_state::running(&home);
    if args.stacks {
        return list_stacks(&stacks, args.json);
    }
    let router = router_view(&home);
    let router_port = router
        .as_ref()
        .map_or_else(router_process::configured_port, |r| r.0);
    let counts = router.map(|r| r.1);
    let scan = names::scan(&home)?;
    let mut listed = list(&scan, router_port, counts.as_ref());
    if args.prune {
        listed.retain(|l| matches!(rundir::remove(&l.entry), Ok(true)));
        for orphan in &scan.orphans {
            let _ = liveness::remove_if_stale(orphan);
        }
        let removed = listed.len();
        eprintln!(
            "agentfs: removed {removed} stale entr{}",
            if removed == 1 { "y" } else { "ies" }
        );
        if !args.json {
            return Ok(0);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&listed, &stacks))?
        );
    } else {
        for stack in &stacks {
            println!("{}", stack_block(stack));
        }
        print!("{}", table(&listed, SystemTime::now()));
    }
    Ok(0)
}

/// `ps --stacks`: each running stack and its services.
fn list_stacks(stacks: &[StackStatus], json: bool) -> Result<i32> {
    if json {
        let value: Vec<Value> = stacks.iter().map(stack_report::status_json).collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if stacks.is_empty() {
        println!("no stacks are up");
    } else {
        let blocks: Vec<String> = stacks.iter().map(stack_block).collect();
        print!("{}", blocks.join("\n"));
    }
    Ok(0)
}

fn stack_block(stack: &StackStatus) -> String {
    format!(
        "stack {} ({}, supervisor pid {})\n{}",
        stack.instance,
        stack.file.display(),
        stack.supervisor,
        stack_report::table(stack)
    )
}

/// Every entry of a scan, in its order, with its URL and request count.
fn list(
    scan: &rundir::Scan,
    router_port: u16,
    counts: Option<&HashMap<PathBuf, u64>>,
) -> Vec<Listed> {
    scan.entries
        .iter()
        .map(|entry| Listed {
            url: urls::urls(&entry.sidecar, router_port).swap_remove(0),
            requests: counts.map(|c| c.get(&entry.sidecar.socket).copied().unwrap_or(0)),
            entry: entry.clone(),
        })
        .collect()
}

/// The running router's port and its request count per socket, if it answers.
fn router_view(home: &Path) -> Option<(u16, HashMap<PathBuf, u64>)> {
    let data = agentfs_router::client::get_blocking(
        &layout::router_socket(home),
        "/api/routes",
        ROUTER_TIMEOUT,
    )
    .ok()?;
    let port = u16::try_from(data["port"].as_u64()?).ok()?;
    let mut counts = HashMap::new();
    let listeners = data["apps"]
        .as_array()?
        .iter()
        .flat_map(|app| app["instances"].as_array().into_iter().flatten())
        .flat_map(|inst| inst["listeners"].as_array().into_iter().flatten());
    for listener in listeners {
        if let (Some(socket), Some(requests)) =
            (listener["socket"].as_str(), listener["requests"].as_u64())
        {
            counts.insert(PathBuf::from(socket), requests);
        }
    }
    Some((port, counts))
}

fn to_json(listed: &[Listed], stacks: &[StackStatus]) -> Value {
    Value::Array(
        listed
            .iter()
            .map(|l| {
                let car = &l.entry.sidecar;
                let stack = stacks
                    .iter()
                    .find(|s| s.instance == car.instance && s.service(&car.app).is_some());
                let mut value = serde_json::to_value(&**car).unwrap_or(Value::Null);
                value["stack"] = stack.map_or(Value::Null, |s| s.instance.clone().into());
                value["status"] = l.entry.state.as_str().into();
                value["url"] = l.url.clone().into();
                value["requests"] = l.requests.map_or(Value::Null, Value::from);
                value
            })
            .collect(),
    )
}

/// The table, aligned, with a header; a note when there is nothing.
fn table(listed: &[Listed], now: SystemTime) -> String {
    if listed.is_empty() {
        return "no instances\n".into();
    }
    let mut rows = vec![[
        "APP", "INSTANCE", "KIND", "PID", "PORT", "URL", "STATUS", "UPTIME", "REQUESTS",
    ]
    .map(String::from)
    .to_vec()];
    for l in listed {
        let car = &l.entry.sidecar;
        rows.push(vec![
            car.app.clone(),
            car.instance.clone(),
            serde_json::to_value(car.kind)
                .ok()
                .and_then(|k| k.as_str().map(String::from))
                .unwrap_or_default(),
            if car.pid == 0 {
                "-".into()
            } else {
                car.pid.to_string()
            },
            if car.port == 0 {
                "-".into()
            } else {
                car.port.to_string()
            },
            l.url.clone(),
            l.entry.state.as_str().into(),
            uptime(&car.started_at, now),
            l.requests.map_or("-".into(), |r| r.to_string()),
        ]);
    }
    crate::table::aligned(&rows, "")
}

/// `3d4h`, `2h5m`, `4m10s`, `9s`; `-` when the start time is unreadable.
fn uptime(started_at: &str, now: SystemTime) -> String {
    let Ok(started) = humantime::parse_rfc3339(started_at) else {
        return "-".into();
    };
    let secs = now.duration_since(started).unwrap_or_default().as_secs();
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_well() {
        let start = humantime::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let at = |secs| uptime("2024-01-01T00:00:00Z", start + Duration::from_secs(secs));
        assert_eq!(at(9), "9s");
        assert_eq!(at(250), "4m10s");
        assert_eq!(at(2 * 3600 + 300), "2h5m");
        assert_eq!(at(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(uptime("garbage", start), "-");
    }
}
