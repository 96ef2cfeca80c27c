//! `agentfs restart SERVICE [--instance ID]`: stops one service of the
//! running stack and starts it again at once (with the stack file as it is
//! now), whatever state it was in; what needs it keeps running.

use anyhow::Result;
use serde_json::json;

use crate::stack::client::{self, exit};
use crate::stack::{report, target};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs restart api
  agentfs restart api && agentfs wait api

Exit codes: 0 restarted (it may not be ready yet: `agentfs wait SERVICE`);
1 the stack is not up, or there is no such service.")]
pub struct RestartArgs {
    /// The service to restart.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The stack's instance (default: the git branch, as for wrap).
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Print the stack as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RestartArgs) -> Result<i32> {
    let target = target::locate(args.instance.as_deref(), false)?;
    client::restart(&target, &args.service)?;
    let status = target.dir.status();
    if args.json {
        let extra = json!({ "restarted": args.service });
        let value = report::json(&target, status.as_ref(), extra);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        eprintln!("agentfs: restarted {}", args.service);
        if let Some(status) = status {
            print!("{}", report::table(&status));
        }
    }
    Ok(exit::OK)
}
