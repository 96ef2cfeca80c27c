//! `agentfs wait [SERVICE…] [--instance ID] [--timeout SECS]`: waits until
//! the stack's services (those named, or all) are ready.
//!
//! Exits 0 once all are; 1 at once when one has failed (saying which, with
//! its last lines of output) or the stack is not up; 2 when the timeout
//! passes first (saying what is not ready yet, and why when known).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::commands::up;
use crate::stack::client::{self, Until};
use crate::stack::{report, target};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs up -d && agentfs wait && npx playwright test
  agentfs wait api --timeout 30

Exit codes: 0 all ready; 1 one has failed (which, and its last lines), or the
stack is not up; 2 the timeout passed first (what is not ready, and why).")]
pub struct WaitArgs {
    /// Services to wait for (default: every service `up` was asked to start).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// The stack's instance (default: the git branch, as for wrap).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Seconds to wait.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Print the stack as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: WaitArgs) -> Result<i32> {
    let target = target::locate(args.instance.as_deref(), false)?;
    let timeout = Duration::from_secs(args.timeout);
    let waited = client::wait(&target, &args.services, Until::Ready, timeout);
    if args.json {
        let mut extra = json!({ "problems": waited.problems });
        if waited.status.is_none() {
            extra["error"] = client::not_up(&target).into();
        }
        let value = report::json(&target, waited.status.as_ref(), extra);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        up::show(&target, &waited, args.timeout);
    }
    Ok(waited.code)
}
