//! `agentfs reaper [--preload VALUE] -- CMD…` (hidden, started by wrap
//! itself as the app's first process): see `app::reaper`.

use std::ffi::OsString;

use super::args::Cmd;

/// The reaper's arguments, as wrap passes them.
#[derive(Debug, clap::Args)]
pub struct ReaperArgs {
    /// The preload variable's value for the app (the reaper itself runs without it).
    #[arg(long, value_name = "VALUE")]
    pub preload: Option<OsString>,
    #[command(flatten)]
    pub cmd: Cmd,
}

pub fn run(args: ReaperArgs) -> i32 {
    crate::app::reaper::run(args.preload, &args.cmd.command)
}
