//! What a command needs in its environment to run with the shim: the shim
//! written out, the preload variable naming it, `AGENTFS_SHIM`, the
//! interpreter stand-ins first in `PATH` when asked for, and the router's
//! port (so a connect to it from inside the instance is known for what it
//! is), and the local CA trusted by the command's TLS clients (Node,
//! OpenSSL, Python's `ssl` and `requests`, curl). wrap and exec set a
//! command up the same way.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use agentfs_contract::env;
use agentfs_tls::{bundle, Ca};

use super::library::{self, EmbeddedShim};
use super::stand_ins;

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
    trust_the_ca(command, home);
    Ok(shim_path)
}

/// Adds the CA to the roots Node trusts (`NODE_EXTRA_CA_CERTS` adds; it
/// replaces nothing).
const NODE_EXTRA_CA_CERTS: &str = "NODE_EXTRA_CA_CERTS";

/// Variables that *replace* a client's roots: OpenSSL (and so Python's
/// `ssl`, `urllib`, Ruby, most C clients), `requests`, curl. They name the
/// bundle, the system's roots plus the CA, never the CA alone.
pub const BUNDLE_VARS: [&str; 3] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// Points the command's TLS clients at the CA of `home` (made now if it
/// does not exist yet), so `https://…localhost` through the router works
/// with no flags. A variable the user set is left alone (said under
/// `AGENTFS_LOG`); a CA that cannot be had is said and skipped: the app
/// runs as it would without it. Programs the shim cannot enter (bridged,
/// or in the namespace lane) get the same.
pub fn trust_the_ca(command: &mut tokio::process::Command, home: &Path) {
    let ca = match Ca::open_or_create(home) {
        Ok(ca) => ca,
        Err(err) => {
            eprintln!("agentfs: https clients in this app will not trust agentfs's CA: {err}");
            return;
        }
    };
    set_unless_set(command, NODE_EXTRA_CA_CERTS, &ca.cert_path());
    let Some(system) = bundle::system_bundle() else {
        note(&format!(
            "no system CA bundle found (looked at {}): {} left unset",
            bundle::SYSTEM_BUNDLES.join(", "),
            BUNDLE_VARS.join(", ")
        ));
        return;
    };
    match bundle::ensure(&ca, &system) {
        Ok(path) => {
            for var in BUNDLE_VARS {
                set_unless_set(command, var, &path);
            }
        }
        Err(err) => eprintln!("agentfs: {} left unset: {err}", BUNDLE_VARS.join(", ")),
    }
}

/// Sets `var` to `path` unless this process's environment already has it
/// (the user's choice, or an outer wrap's, which is the same path).
fn set_unless_set(command: &mut tokio::process::Command, var: &str, path: &Path) {
    match std::env::var_os(var) {
        Some(value) if value == path.as_os_str() => {}
        Some(value) => note(&format!(
            "{var} is already set ({}): left as it is, so clients that read it may not \
             trust agentfs's CA ({})",
            Path::new(&value).display(),
            path.display()
        )),
        None => {
            command.env(var, path);
        }
    }
}

/// A line on stderr when `AGENTFS_LOG` asks for diagnostics.
fn note(line: &str) {
    let log = std::env::var_os(env::LOG);
    if env::log_enabled(log.as_deref().and_then(OsStr::to_str)) {
        eprintln!("agentfs: {line}");
    }
}
