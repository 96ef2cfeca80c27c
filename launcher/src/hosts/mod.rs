//! The live names in a managed block of a hosts file, for clients that do
//! not resolve `*.localhost` themselves (Safari, and Node and Python on
//! systems without `nss-myhostname`). `block` is the block and the text
//! around it; `file` writes the file without a moment where it is half
//! written.
//!
//! Hosts files have no wildcards: each live name gets a `127.0.0.1` and a
//! `::1` line, and the block is rewritten as instances come and go
//! (`agentfs hosts sync`, or the router with `--sync-hosts`).

pub mod block;
pub mod file;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use agentfs_contract::{layout, urls};

use crate::instance::names;

/// The hosts file agentfs keeps current unless told another.
pub const DEFAULT_FILE: &str = "/etc/hosts";

/// The router's own name (the dashboard and the API), always listed.
pub const ROUTER_NAME: &str = "agentfs.localhost";

/// What a sync did.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The file already said this.
    Unchanged,
    Written(file::Written),
}

/// Why a hosts file could not be changed.
#[derive(Debug)]
pub enum SyncError {
    /// This user may not write it: the command a person could run.
    NoPermission {
        path: PathBuf,
        command: String,
    },
    Other(anyhow::Error),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::NoPermission { path, command } => write!(
                f,
                "{} may not be written by this user; run: {command}",
                path.display()
            ),
            SyncError::Other(err) => write!(f, "{err:#}"),
        }
    }
}

/// The names to list: the router's own and each live instance's, sorted.
/// Read from the run directory; when that is not this user's (run through
/// `sudo` for another user's home), from that home's router.
pub fn live_names(home: &Path) -> Result<Vec<String>> {
    let mut names: BTreeSet<String> = BTreeSet::from([ROUTER_NAME.to_owned()]);
    match names::scan(home) {
        Ok(scan) => names.extend(scan.live().flat_map(|e| urls::hostnames(&e.sidecar))),
        Err(scan_err) => {
            let socket = layout::router_socket(home);
            let routes = agentfs_router::client::get_blocking(
                &socket,
                "/api/routes",
                std::time::Duration::from_secs(5),
            )
            .map_err(|e| {
                anyhow!(
                    "{scan_err:#}; and no router answered on {}: {e}",
                    socket.display()
                )
            })?;
            names.extend(hosts_in_urls(&routes));
        }
    }
    Ok(names.into_iter().collect())
}

/// Every host named by a `url` or `urls` string in the router's routes.
fn hosts_in_urls(value: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    match value {
        serde_json::Value::String(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let host = rest.split([':', '/']).next().unwrap_or_default();
            if agentfs_tls::is_local_name(host) {
                found.push(host.to_owned());
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| found.extend(hosts_in_urls(v)))
        }
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "url" | "urls" | "apps" | "instances" | "listeners"
                )
            })
            .for_each(|(_, v)| found.extend(hosts_in_urls(v))),
        _ => {}
    }
    found
}

/// The names a route table serves: the router's own and each route's.
pub fn names_in(table: &agentfs_router::Table) -> Vec<String> {
    let mut names: BTreeSet<String> = BTreeSet::from([ROUTER_NAME.to_owned()]);
    names.extend(table.backends().flat_map(|b| urls::hostnames(&b.sidecar)));
    names.into_iter().collect()
}

/// The router's `--sync-hosts`: rewrites the block of `path` whenever the
/// live names change, until the router stops. A file this user may not
/// write is said once per change of names, with the command that would
/// write it.
pub async fn keep_current(
    path: PathBuf,
    mut routes: tokio::sync::watch::Receiver<std::sync::Arc<agentfs_router::Table>>,
) {
    let mut written: Option<Vec<String>> = None;
    loop {
        let names = names_in(&routes.borrow_and_update());
        if written.as_ref() != Some(&names) {
            let (file, listed) = (path.clone(), names.clone());
            let synced = tokio::task::spawn_blocking(move || sync(&file, Some(&listed))).await;
            match synced {
                Ok(Ok(_)) => tracing::info!(names = names.len(), "{} synced", path.display()),
                Ok(Err(err)) => tracing::warn!("--sync-hosts: {err}"),
                Err(err) => tracing::warn!(%err, "--sync-hosts failed"),
            }
            written = Some(names);
        }
        if routes.changed().await.is_err() {
            return;
        }
    }
}

/// Writes the block for `names` into `path` (or takes it out, for `None`),
/// unless the file already says exactly that.
pub fn sync(path: &Path, names: Option<&[String]>) -> Result<Change, SyncError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SyncError::Other(anyhow!("could not read {}: {e}", path.display())))?;
    let rendered = names.map(block::render);
    let new = block::splice(&text, rendered.as_deref())
        .map_err(|e| SyncError::Other(anyhow!("{}: {e}", path.display())))?;
    if new == text {
        return Ok(Change::Unchanged);
    }
    match file::write(path, &new) {
        Ok(written) => Ok(Change::Written(written)),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(SyncError::NoPermission {
            path: path.to_owned(),
            command: as_root_command(path, names.is_some()),
        }),
        Err(e) => Err(SyncError::Other(anyhow!(
            "could not write {}: {e}",
            path.display()
        ))),
    }
}

/// Whether the file's block lists exactly `names`: `Ok(None)` when it
/// does, else what is wrong.
pub fn check(path: &Path, names: &[String]) -> Result<Option<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("could not read {}: {e}", path.display()))?;
    let Some(range) = block::find(&text).map_err(|e| anyhow!("{}: {e}", path.display()))? else {
        return Ok(Some(format!("{} has no agentfs block", path.display())));
    };
    if text[range] == block::render(names) {
        return Ok(None);
    }
    Ok(Some(format!(
        "{}'s agentfs block does not list the live names",
        path.display()
    )))
}

/// The one command that would do it as root: this binary, this home.
fn as_root_command(path: &Path, sync: bool) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "agentfs".into());
    let home = layout::home_from_env()
        .map(|h| h.display().to_string())
        .unwrap_or_default();
    let verb = if sync { "sync" } else { "clean" };
    let file = if path == Path::new(DEFAULT_FILE) {
        String::new()
    } else {
        format!(" --file {}", path.display())
    };
    format!("sudo env AGENTFS_HOME={home} {exe} hosts {verb}{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_routes_urls() {
        let routes = serde_json::json!({"apps": [{"url": "http://web.localhost:7380",
            "instances": [{"url": "http://blue.web.localhost:7380", "urls": ["http://blue.web.localhost:7380"],
            "listeners": [{"url": "http://3000.blue.web.localhost:7380/"}]}]}]});
        let mut hosts = hosts_in_urls(&routes);
        hosts.sort();
        hosts.dedup();
        assert_eq!(
            hosts,
            [
                "3000.blue.web.localhost",
                "blue.web.localhost",
                "web.localhost"
            ]
        );
    }
}
