//! `agentfs reaper [--preload VALUE] -- CMD…` (hidden, started by wrap
//! itself as the app's first process): see `app::reaper`.

use std::ffi::OsString;

/// The reaper's arguments, as wrap passes them.
#[derive(Debug, clap::Args)]
pub struct ReaperArgs {
    /// The preload variable's value for the app (the reaper itself runs without it).
    #[arg(long, value_name = "VALUE")]
    pub preload: Option<OsString>,
    /// The app's command.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

pub fn run(args: ReaperArgs) -> i32 {
    crate::app::reaper::run(args.preload, &args.command)
}
