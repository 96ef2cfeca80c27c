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
  open \"$(agentfs url shop)\"            # the only instance of shop")]
pub struct UrlArgs {
    #[command(flatten)]
    pub name: NameArg,
}

pub fn run(args: UrlArgs) -> Result<i32> {
    let found = args.name.running()?;
    // The instance's first listener: the one its own name routes to.
    let entry = found
        .entries()
        .next()
        .with_context(|| format!("{} has no listener", found.name))?;
    let url = urls::urls(&entry.sidecar, router_process::url_port(&found.home)).swap_remove(0);
    println!("{url}");
    Ok(0)
}
