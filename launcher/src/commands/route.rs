//! `agentfs route HOST SOCKET` and `agentfs route --remove HOST`: a name for
//! a Unix socket that no agentfs process made.
//!
//! A manual route is only a sidecar, `{stem}.json` of kind `manual`, whose
//! `socket` is the user's socket wherever it lives: nothing runs, nothing is
//! copied or linked into the run directory, and it stays until removed. It
//! is live while that socket exists; pruning a stale one removes the sidecar
//! and never the socket it names (see `liveness::remove_stale_entry`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use agentfs_contract::layout::{self, current_uid};
use agentfs_contract::sidecar::{self, Kind, Sidecar};
use agentfs_contract::{liveness, naming};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs route api /run/user/1000/api.sock      # http://api.localhost:PORT
  agentfs route v2.api ~/sockets/api-v2.sock      # http://v2.api.localhost:PORT
  agentfs route --remove v2.api

HOST is APP or INSTANCE.APP, with or without .localhost; a bare APP gets the
instance id `manual`. The socket must exist, be a socket and belong to you.")]
pub struct RouteArgs {
    /// The name to route: APP, INSTANCE.APP, optionally ending in .localhost.
    #[arg(value_name = "HOST")]
    pub host: String,
    /// The Unix socket to route it to.
    #[arg(value_name = "SOCKET", required_unless_present = "remove")]
    pub socket: Option<PathBuf>,
    /// Remove the manual route HOST instead.
    #[arg(long, conflicts_with = "socket")]
    pub remove: bool,
}

/// The instance id of a route given as a bare APP.
const DEFAULT_INSTANCE: &str = "manual";

pub fn run(args: RouteArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let run_dir = layout::run_dir(&home);
    layout::ensure_private_dir(&home)?;
    layout::ensure_private_dir(&run_dir)?;
    let (app, instance) = parse_host(&args.host)?;
    let sidecar_path = naming::sidecar_path(&naming::socket_path(&run_dir, &app, &instance, None)?);
    match args.socket {
        _ if args.remove => remove(&sidecar_path, &args.host)?,
        Some(socket) if layout::is_router_socket(&home, &socket) => bail!(
            "{} is the router's own control socket: routing a name to it would serve the \
             router's API to anyone who can reach that name",
            socket.display()
        ),
        Some(socket) => add(&sidecar_path, &app, &instance, &socket)?,
        None => bail!("give the SOCKET to route {} to", args.host),
    }
    Ok(0)
}

/// `APP`, `INSTANCE.APP`, either with `.localhost` (and a `:port`) after it.
fn parse_host(host: &str) -> Result<(String, String)> {
    let name = host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = name.trim_end_matches('.');
    let name = name.strip_suffix(".localhost").unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    let (app, instance) = match labels.as_slice() {
        [app] => (*app, DEFAULT_INSTANCE),
        [instance, app] => (*app, *instance),
        _ => bail!("{host:?}: give APP or INSTANCE.APP (optionally ending in .localhost)"),
    };
    for label in [app, instance] {
        if !naming::is_label(label) {
            bail!("{host:?}: {label:?} is not a DNS label (lowercase letters, digits, '-')");
        }
    }
    Ok((app.to_owned(), instance.to_owned()))
}

fn add(sidecar_path: &Path, app: &str, instance: &str, socket: &Path) -> Result<()> {
    let socket = check_socket(socket)?;
    if let Ok(existing) = sidecar::read_file_checked(sidecar_path) {
        if existing.kind != Kind::Manual && liveness::entry_is_live(&existing) {
            bail!(
                "{} is already served by {} (pid {}): stop it first",
                naming::instance_hostname(app, instance),
                kind_name(existing.kind),
                existing.pid
            );
        }
        if existing.kind != Kind::Manual {
            // A dead instance's socket and lock go with its sidecar.
            liveness::remove_stale_entry(sidecar_path, &existing)?;
        }
    }
    let car = Sidecar {
        version: sidecar::VERSION,
        kind: Kind::Manual,
        app: app.to_owned(),
        instance: instance.to_owned(),
        pid: 0,
        socket: socket.clone(),
        address: "unix".into(),
        port: 0,
        primary: true,
        listening: true,
        hostname: naming::instance_hostname(app, instance),
        argv: std::env::args().collect(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        started_at: sidecar::now_rfc3339(),
        target: None,
        not_routed: None,
    };
    car.write_atomic(sidecar_path)
        .with_context(|| format!("could not write {}", sidecar_path.display()))?;
    eprintln!("agentfs: {} → {}", car.hostname, socket.display());
    Ok(())
}

/// The socket's real absolute path, if it exists, is a socket and is ours.
fn check_socket(socket: &Path) -> Result<PathBuf> {
    let real = socket
        .canonicalize()
        .with_context(|| format!("{} does not exist", socket.display()))?;
    let meta = std::fs::symlink_metadata(&real)
        .with_context(|| format!("could not inspect {}", real.display()))?;
    if !meta.file_type().is_socket() {
        bail!("{} is not a Unix socket", real.display());
    }
    if meta.uid() != current_uid() {
        bail!(
            "{} belongs to uid {}, not to you: agentfs routes only your own sockets",
            real.display(),
            meta.uid()
        );
    }
    if real.as_os_str().len() > naming::MAX_SOCKET_PATH {
        bail!("{} is too long a path for a Unix socket", real.display());
    }
    Ok(real)
}

fn remove(sidecar_path: &Path, host: &str) -> Result<()> {
    let car = sidecar::read_file_checked(sidecar_path)
        .map_err(|_| anyhow!("there is no manual route {host}"))?;
    if car.kind != Kind::Manual {
        bail!(
            "{host} is not a manual route: it is served by {} (pid {})",
            kind_name(car.kind),
            car.pid
        );
    }
    std::fs::remove_file(sidecar_path)
        .with_context(|| format!("could not remove {}", sidecar_path.display()))?;
    eprintln!("agentfs: removed the route {}", car.hostname);
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Shim => "a wrapped app",
        Kind::Bridge => "a bridge",
        Kind::Netns => "an app in a private network namespace",
        Kind::Manual => "a manual route",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        let ok = |h: &str| parse_host(h).unwrap();
        assert_eq!(ok("api"), ("api".into(), "manual".into()));
        assert_eq!(ok("v2.api"), ("api".into(), "v2".into()));
        assert_eq!(ok("V2.Api.localhost:7380"), ("api".into(), "v2".into()));
        assert_eq!(ok("api.localhost."), ("api".into(), "manual".into()));
        for bad in ["", "a.b.c", "a_b", "-x", "x..y"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
