//! The namespace lane's own processes, hidden subcommands that wrap starts
//! (see `netns/`): `netns-run`, the app wrap supervises; `netns-init`, the
//! PID namespace's init; `netns-probe`, whether the lane works here.

use std::path::PathBuf;

use anyhow::Result;

use crate::netns;

use super::args::Cmd;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The wrap's pid, which the sidecars name as their owner.
    #[arg(long)]
    pub owner: u32,
    #[command(flatten)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[arg(long)]
    pub owner: u32,
    /// `netns-run`'s pid, which must still be init's parent.
    #[arg(long)]
    pub parent: u32,
    /// The handshake directory `netns-run` made.
    #[arg(long)]
    pub scratch: PathBuf,
    #[command(flatten)]
    pub cmd: Cmd,
}

pub fn run(args: RunArgs) -> Result<i32> {
    #[cfg(target_os = "linux")]
    {
        netns::outer::run(args.owner, &args.cmd.command)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = args;
        anyhow::bail!("network namespaces are Linux's")
    }
}

pub fn init(args: InitArgs) -> Result<i32> {
    #[cfg(target_os = "linux")]
    {
        netns::init::run(netns::init::InitArgs {
            owner: args.owner,
            parent: args.parent,
            scratch: args.scratch,
            command: args.cmd.command,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = args;
        anyhow::bail!("network namespaces are Linux's")
    }
}

pub fn probe() -> i32 {
    netns::probe::run_probe()
}
