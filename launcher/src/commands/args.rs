//! Arguments several commands take the same way.

use std::ffi::OsString;

/// The command to run: everything after `--`, taken as it is.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// The command to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// Whether interpreter stand-ins go first in `PATH`.
#[derive(Debug, clap::Args)]
pub struct StandIns {
    /// Put interpreter stand-ins (node, python3, ...) first in PATH, which restore the
    /// preload variable wherever something strips it (default on macOS, where
    /// SIP-protected sh and env strip DYLD_INSERT_LIBRARIES).
    #[arg(long, overrides_with = "no_stand_ins")]
    pub stand_ins: bool,
    /// Don't put interpreter stand-ins in PATH (the default on Linux).
    #[arg(long)]
    pub no_stand_ins: bool,
}

impl StandIns {
    /// Asked for, or the default on macOS unless refused.
    pub fn wanted(&self) -> bool {
        self.stand_ins || (cfg!(target_os = "macos") && !self.no_stand_ins)
    }
}
