//! `agentfs exec [--instance ID] -- CMD [ARGS...]`: runs CMD as a client of
//! an instance: a test runner, a browser driver, curl, a migration script.
//!
//! CMD runs with the shim as a client (no `AGENTFS_APP`): its connects to
//! `localhost:PORT` reach the instance's listeners, its `*.localhost` names
//! resolve to loopback, and nothing it does is announced or routed (its
//! listeners, a browser's DevTools port among them, stay real TCP). Its
//! output is its own (no log), its process tree ends with it, and exec exits
//! with its exit code.
//!
//! The instance must have something running in this `AGENTFS_HOME`: a
//! client of an instance that runs nothing would reach the host's ports
//! instead, so exec refuses, in one line, and names the instances that do run.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use agentfs_contract::{env, layout, rundir};

use super::args::{Cmd, StandIns};
use crate::app::App;
use crate::inject::library::EmbeddedShim;
use crate::inject::preload;
use crate::instance::{self, IdFrom};
use crate::router_process;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs exec -- npx playwright test        # against this worktree's stack
  agentfs exec --instance feat-x -- curl -s localhost:3000/health
  agentfs exec --instance feat-x -- psql -h localhost -p 5432

A client is not an app: nothing it listens on is announced or routed (use
`agentfs wrap` for servers). Exit codes: the command's own; 127 when it is not
found; 1 when the instance runs nothing here or agentfs itself fails.")]
pub struct ExecArgs {
    /// The instance to be a client of. Default: the instance of the wrapped process this
    /// runs in, else the git branch (or work tree, on a detached HEAD).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    #[command(flatten)]
    pub stand_ins: StandIns,
    #[command(flatten)]
    pub cmd: Cmd,
}

pub fn run(args: ExecArgs, shim: &EmbeddedShim) -> Result<i32> {
    let home = layout::home_from_env()?;
    let run_dir = layout::run_dir(&home);
    layout::ensure_private_dir(&home)?;
    layout::ensure_private_dir(&run_dir)?;
    let running = running_instances(&run_dir);
    let Some((id, from)) = instance::existing_id(args.instance.as_deref())? else {
        bail!(
            "which instance? give --instance ID (running here: {})",
            list(&running)
        );
    };
    if !running.contains_key(&id) {
        let why = from
            .explain()
            .map_or_else(String::new, |why| format!(" (from {why})"));
        bail!(
            "instance {id}{why} has nothing running in {}; running here: {}. Start it first \
             (agentfs up, or agentfs wrap --instance {id} -- CMD)",
            home.display(),
            list(&running)
        );
    }
    let mut command = tokio::process::Command::new(&args.cmd.command[0]);
    command.args(&args.cmd.command[1..]);
    // A client of `id`, never part of whatever app this runs in.
    for var in [env::APP, env::SOCKET, env::HOSTNAME, env::WORKDIR] {
        command.env_remove(var);
    }
    command
        .env(env::HOME, &home)
        .env(env::RUN_DIR, &run_dir)
        .env(env::INSTANCE, &id);
    let router_port = router_process::running(&home).map(|info| info.port);
    let stand_ins = args.stand_ins.wanted();
    preload::set_up(&mut command, shim, &home, stand_ins, router_port)?;
    if from != IdFrom::Flag {
        let why = from.explain().unwrap_or_default();
        eprintln!("agentfs: a client of instance {id} ({why})");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match App::spawn_client(command)? {
            Ok(client) => client.wait().await,
            Err(code) => Ok(code),
        }
    })
}

/// The instances with a live listener, each with its apps.
fn running_instances(run_dir: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(scan) = rundir::scan(run_dir) {
        for entry in scan.live() {
            let apps = running.entry(entry.sidecar.instance.clone()).or_default();
            if !apps.contains(&entry.sidecar.app) {
                apps.push(entry.sidecar.app.clone());
            }
        }
    }
    running
}

/// `a (web, api), b (web)`, or `none`.
fn list(running: &BTreeMap<String, Vec<String>>) -> String {
    if running.is_empty() {
        return "none".into();
    }
    running
        .iter()
        .map(|(id, apps)| format!("{id} ({})", apps.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}
