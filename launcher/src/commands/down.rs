//! `agentfs down [--instance ID] [--timeout SECS]`: stops the work tree's
//! stack, its services in reverse dependency order (each as `agentfs stop`
//! would: SIGTERM, SIGKILL after the timeout), then its supervisor. The
//! services' logs stay. A stack that is not up is not an error.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::stack::client::{self, exit};
use crate::stack::{report, target};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs down                    # the stack of this work tree's instance
  agentfs down --instance feat-x  # another instance's, from anywhere

Exit codes: 0 stopped (or was not up); 1 something could not be stopped.")]
pub struct DownArgs {
    /// The stack's instance (default: the git branch, as for wrap).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Seconds each service gets after SIGTERM before SIGKILL.
    #[arg(short = 't', long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
    /// Print what was stopped as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DownArgs) -> Result<i32> {
    let target = target::locate(args.instance.as_deref(), false)?;
    let was_up = target.dir.is_up();
    let stopped = client::down(&target, Duration::from_secs(args.timeout))?;
    if args.json {
        let extra = json!({ "was_up": was_up, "stopped": stopped });
        let value = report::json(&target, None, extra);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if !was_up && stopped.is_empty() {
        println!("the stack of {} was not up", target.instance);
    } else {
        println!(
            "stopped the stack of {}: {} (their logs stay: agentfs logs SERVICE)",
            target.instance,
            if stopped.is_empty() {
                "nothing was running".to_owned()
            } else {
                stopped.join(", ")
            }
        );
    }
    Ok(exit::OK)
}
