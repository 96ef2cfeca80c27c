//! `agentfs url NAME`: the instance's URL through the router, for
//! `open "$(agentfs url web)"` or a test's base URL.
//!
//! The URL is the instance's own (`http://INSTANCE.APP.localhost:PORT`, from
//! the contract's one URL builder), with the running router's port, else
//! `AGENTFS_ROUTER_PORT`, else 7380.

use anyhow::{Context, Result};

use agentfs_contract::urls;

use crate::instance::names::NameArg;
use crate::router_process;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs url blue.shop                 # http://blue.shop.localhost:7380
  open \"$(agentfs url shop)\"            # the only instance of shop
  agentfs url web                       # in a stack's work tree: its web service")]
pub struct UrlArgs {
    /// Print `{"name": "INSTANCE.APP", "url": URL}` instead.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub name: NameArg,
}

pub fn run(mut args: UrlArgs) -> Result<i32> {
    args.name.name = crate::stack::target::qualify(&args.name.name);
    let found = args.name.running()?;
    // The instance's first listener: the one its own name routes to.
    let entry = found
        .entries()
        .next()
        .with_context(|| format!("{} has no listener", found.name))?;
    let url = urls::urls(&entry.sidecar, router_process::url_port(&found.home)).swap_remove(0);
    if args.json {
        let name = found.name.to_string();
        println!("{}", serde_json::json!({ "name": name, "url": url }));
    } else {
        println!("{url}");
    }
    Ok(0)
}
