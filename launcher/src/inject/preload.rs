//! What a command needs in its environment to run with the shim: the shim
//! written out, the preload variable naming it, `AGENTFS_SHIM`, the
//! interpreter stand-ins first in `PATH` when asked for, and the router's
//! port (so a connect to it from inside the instance is known for what it
//! is). wrap and exec set a command up the same way.

use std::path::PathBuf;

use anyhow::Result;

use agentfs_contract::env;

use super::library::{self, EmbeddedShim};
use super::stand_ins;

/// Whether to put interpreter stand-ins first in `PATH`: asked for, or the
/// default on macOS unless refused.
pub fn wants_stand_ins(asked: bool, refused: bool) -> bool {
    asked || (cfg!(target_os = "macos") && !refused)
}

/// Sets `command` up to run with the shim of `home`; returns the shim's path.
pub fn set_up(
    command: &mut tokio::process::Command,
    shim: &EmbeddedShim,
    home: &std::path::Path,
    stand_ins: bool,
    router_port: Option<u16>,
) -> Result<PathBuf> {
    let shim_path = shim.install(home)?;
    command.env(env::SHIM, &shim_path);
    if stand_ins {
        let dir = stand_ins::install(&shim_path.with_file_name("stand-ins"))?;
        command.env(
            "PATH",
            stand_ins::path_with(&dir, std::env::var_os("PATH").as_deref())?,
        );
        command.env(env::STAND_INS, &dir);
    }
    command.env(
        env::PRELOAD,
        library::preload_value(&shim_path, std::env::var_os(env::PRELOAD)),
    );
    if let Some(port) = router_port {
        command.env(env::ROUTER_PORT, port.to_string());
    }
    Ok(shim_path)
}
