//! `agentfs up [SERVICE…] [--instance ID] [-d] [--wait] [--timeout SECS]`:
//! brings the work tree's stack up (the services named and what they need,
//! or all) in dependency order.
//!
//! Either way a supervisor process runs the stack (starting it unless one
//! runs: `up` twice starts only what is not running). With `-d` up returns
//! once every service has started (`--wait`: is ready) and prints their
//! URLs; without it, up shows every service's output prefixed by its name
//! until Ctrl-C, which stops the stack in reverse order. The hidden
//! `agentfs stack-supervisor` is that supervisor.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use agentfs_contract::layout;

use crate::stack::client::{self, exit, Until, Waited};
use crate::stack::follow::Follower;
use crate::stack::state::State;
use crate::stack::target::{self, Target};
use crate::stack::{order, report};

pub use crate::stack::supervisor::SupervisorArgs;

/// How often the foreground up shows new output and looks at the stack.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How long the foreground up gives each service to stop on Ctrl-C.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs up                  # all services, output prefixed by name; Ctrl-C stops them
  agentfs up -d --wait        # in the background; returns once every service is ready
  agentfs up -d web           # web and what it needs (its `after`)

The stack file is agentfs.toml (else a Procfile) in this directory or above it,
up to the git work tree's root. Each service is an app of the stack's instance
(--instance, else the git branch), at http://INSTANCE.SERVICE.localhost:7380.

Exit codes: 0 started (with --wait: ready); 1 a service failed (its last lines
are shown), a bad stack file, or another error; 2 --timeout passed first.")]
pub struct UpArgs {
    /// Services to start, with what they need (default: all).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// The stack's instance (default: the git branch, as for wrap).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Keep the stack running in the background and return once it has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// With -d: return once every service is ready, not only started.
    #[arg(long, requires = "detach")]
    pub wait: bool,
    /// Seconds to wait for the services to start (or be ready).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// With -d: print the stack as JSON.
    #[arg(long, requires = "detach")]
    pub json: bool,
}

pub fn run(args: UpArgs) -> Result<i32> {
    let target = target::locate(args.instance.as_deref(), true)?;
    let file = target.file()?;
    let wanted = order::start_order(&file.services, &args.services)?;
    let logs_dir = layout::logs_dir(&target.home);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // From where the logs stand now, so the foreground shows this start.
    let follower = Follower::new(&logs_dir, &target.instance, &wanted, true, colour);
    let reply = client::start(&target, &args.services)?;
    if !args.json {
        say_started(&target, &reply);
    }
    if !args.detach {
        return foreground(&target, &wanted, follower);
    }
    let until = if args.wait {
        Until::Ready
    } else {
        Until::Started
    };
    let waited = client::wait(&target, &wanted, until, Duration::from_secs(args.timeout));
    if args.json {
        let extra = json!({
            "started": reply["started"],
            "already": reply["already"],
            "problems": waited.problems,
        });
        let value = report::json(&target, waited.status.as_ref(), extra);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        show(&target, &waited, args.timeout);
    }
    Ok(waited.code)
}

/// The hidden `agentfs stack-supervisor`.
pub fn supervise(args: SupervisorArgs) -> Result<i32> {
    crate::stack::supervisor::run(args)
}

fn say_started(target: &Target, reply: &serde_json::Value) {
    let list = |key: &str| {
        let names: Vec<&str> = reply[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        names.join(", ")
    };
    let (started, already) = (list("started"), list("already"));
    let file = target.file.as_ref().map(|f| f.path.display().to_string());
    eprintln!(
        "agentfs: stack {} ({}): {}{}",
        target.instance,
        file.unwrap_or_default(),
        if started.is_empty() {
            "nothing to start".to_owned()
        } else {
            format!("starting {started}")
        },
        if already.is_empty() {
            String::new()
        } else {
            format!("; already running: {already}")
        }
    );
}

/// What `up -d` (and `wait`) print for how waiting ended.
pub fn show(target: &Target, waited: &Waited, timeout: u64) {
    let Some(status) = &waited.status else {
        eprintln!("agentfs: {}", client::not_up(target));
        return;
    };
    print!("{}", report::table(status));
    match waited.code {
        exit::OK => {}
        exit::FAILED => eprint!("{}", report::problems(status, &waited.problems)),
        _ => eprint!(
            "agentfs: not ready within {timeout}s:\n{}",
            report::problems(status, &waited.problems)
        ),
    }
}

/// Shows the services' output until Ctrl-C (or SIGTERM, SIGHUP), then
/// stops the stack; ends early when the stack goes down from elsewhere, or
/// when a setup fails (with its output).
fn foreground(target: &Target, wanted: &[String], mut follower: Follower) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let mut poll = tokio::time::interval(FOLLOW_POLL);
        let mut announced = false;
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                _ = hangup.recv() => break,
            }
            let mut out = std::io::stdout().lock();
            if follower.pump(&mut out).is_err() {
                break;
            }
            let Some(status) = target.dir.status() else {
                eprintln!("agentfs: the stack went down");
                return anyhow::Ok(exit::OK);
            };
            let failed_setup = status
                .services
                .iter()
                .find(|s| s.state == State::Failed && s.detail.starts_with("its setup"));
            if let Some(service) = failed_setup {
                let _ = follower.pump(&mut out);
                eprint!(
                    "{}",
                    report::problems(&status, std::slice::from_ref(&service.name))
                );
                stop(target);
                return Ok(exit::FAILED);
            }
            if !announced && client::judge_started(&status, wanted) {
                announced = true;
                for service in status.services.iter().filter(|s| wanted.contains(&s.name)) {
                    eprintln!("agentfs: {} → {}", service.name, service.url);
                }
            }
        }
        stop(target);
        Ok(exit::OK)
    })?;
    Ok(code)
}

fn stop(target: &Target) {
    eprintln!("agentfs: stopping the stack of {}", target.instance);
    if let Err(err) = client::down(target, STOP_GRACE) {
        eprintln!("agentfs: {err:#}");
    }
}
