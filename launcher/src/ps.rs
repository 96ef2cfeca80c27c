//! `agentfs ps [--json] [--prune]`: every instance in the run directory.
//!
//! One row per sidecar: app, instance, kind, pid, port asked for, URL,
//! status (`live` or `stale`), uptime, and the router's request count when
//! a router runs. `--json` prints a stable array: each sidecar's fields
//! (`version`, `kind`, `app`, `instance`, `pid`, `socket`, `address`,
//! `port`, `primary`, `hostname`, `argv`, `cwd`, `started_at`, `target`
//! when set) plus `status` (`"live"`/`"stale"`), `url`, and `requests`
//! (a number, or `null` when no router answers). `--prune` removes the stale
//! entries; a manual route loses only its sidecar, never the socket it names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde_json::Value;

use agentfs_contract::env::{self, DEFAULT_ROUTER_PORT};
use agentfs_contract::sidecar::{self, Kind, Sidecar};
use agentfs_contract::{layout, liveness, naming};

/// How long the router may take to list its routes before ps goes without counts.
const ROUTER_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Remove stale entries (their owners are gone) instead of listing them.
    #[arg(long)]
    pub prune: bool,
}

/// One listed entry.
#[derive(Debug)]
pub struct Entry {
    pub sidecar_path: PathBuf,
    pub car: Sidecar,
    pub live: bool,
    pub url: String,
    pub requests: Option<u64>,
}

pub fn run(args: PsArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let run_dir = layout::run_dir(&home);
    let router = router_view(&home);
    let router_port = router.as_ref().map_or_else(configured_router_port, |r| r.0);
    let counts = router.map(|r| r.1);
    let entries = list(&run_dir, router_port, counts.as_ref());
    if args.prune {
        let mut removed = 0;
        for entry in entries.iter().filter(|e| !e.live) {
            if liveness::remove_stale_entry(&entry.sidecar_path, &entry.car)? {
                removed += 1;
            }
        }
        eprintln!(
            "agentfs: removed {removed} stale entr{}",
            if removed == 1 { "y" } else { "ies" }
        );
        return Ok(0);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&entries))?);
    } else {
        print!("{}", table(&entries, SystemTime::now()));
    }
    Ok(0)
}

/// Every readable sidecar in `run_dir`, sorted by app, instance, then port.
pub fn list(
    run_dir: &Path,
    router_port: u16,
    counts: Option<&HashMap<PathBuf, u64>>,
) -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == naming::SIDECAR_EXT)
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|path| {
            let car = sidecar::read_file_checked(&path).ok()?;
            Some(entry(path, car, router_port, counts))
        })
        .collect();
    entries.sort_by(|a, b| {
        (&a.car.app, &a.car.instance, !a.car.primary, a.car.port).cmp(&(
            &b.car.app,
            &b.car.instance,
            !b.car.primary,
            b.car.port,
        ))
    });
    entries
}

fn entry(
    path: PathBuf,
    car: Sidecar,
    router_port: u16,
    counts: Option<&HashMap<PathBuf, u64>>,
) -> Entry {
    // Shim and bridge entries are judged by the lock beside their sidecar,
    // whatever socket the sidecar claims.
    let live = match car.kind {
        Kind::Manual => liveness::entry_is_live(&car),
        Kind::Shim | Kind::Bridge => {
            liveness::socket_is_live(&path.with_extension(naming::SOCKET_EXT))
        }
    };
    let host = if car.primary {
        naming::instance_hostname(&car.app, &car.instance)
    } else {
        format!(
            "{}.{}",
            car.port,
            naming::instance_hostname(&car.app, &car.instance)
        )
    };
    let requests = counts.map(|c| c.get(&car.socket).copied().unwrap_or(0));
    Entry {
        url: format!("http://{host}:{router_port}"),
        sidecar_path: path,
        car,
        live,
        requests,
    }
}

fn configured_router_port() -> u16 {
    std::env::var(env::ROUTER_PORT)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_ROUTER_PORT)
}

/// The running router's port and its request count per socket, if it answers.
fn router_view(home: &Path) -> Option<(u16, HashMap<PathBuf, u64>)> {
    let data = agentfs_router::client::get_blocking(
        &layout::router_socket(home),
        "/api/routes",
        ROUTER_TIMEOUT,
    )
    .ok()?;
    let port = u16::try_from(data["port"].as_u64()?).ok()?;
    let mut counts = HashMap::new();
    let listeners = data["apps"]
        .as_array()?
        .iter()
        .flat_map(|app| app["instances"].as_array().into_iter().flatten())
        .flat_map(|inst| inst["listeners"].as_array().into_iter().flatten());
    for listener in listeners {
        if let (Some(socket), Some(requests)) =
            (listener["socket"].as_str(), listener["requests"].as_u64())
        {
            counts.insert(PathBuf::from(socket), requests);
        }
    }
    Some((port, counts))
}

pub fn to_json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut value = serde_json::to_value(&e.car).unwrap_or(Value::Null);
                value["status"] = status(e.live).into();
                value["url"] = e.url.clone().into();
                value["requests"] = e.requests.map_or(Value::Null, Value::from);
                value
            })
            .collect(),
    )
}

fn status(live: bool) -> &'static str {
    if live {
        "live"
    } else {
        "stale"
    }
}

/// The table, aligned, with a header; a note when there is nothing.
pub fn table(entries: &[Entry], now: SystemTime) -> String {
    if entries.is_empty() {
        return "no instances\n".into();
    }
    let mut rows = vec![[
        "APP", "INSTANCE", "KIND", "PID", "PORT", "URL", "STATUS", "UPTIME", "REQUESTS",
    ]
    .map(String::from)
    .to_vec()];
    for e in entries {
        let car = &e.car;
        rows.push(vec![
            car.app.clone(),
            car.instance.clone(),
            serde_json::to_value(car.kind)
                .ok()
                .and_then(|k| k.as_str().map(String::from))
                .unwrap_or_default(),
            if car.pid == 0 {
                "-".into()
            } else {
                car.pid.to_string()
            },
            if car.port == 0 {
                "-".into()
            } else {
                car.port.to_string()
            },
            e.url.clone(),
            status(e.live).into(),
            uptime(&car.started_at, now),
            e.requests.map_or("-".into(), |r| r.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `3d4h`, `2h5m`, `4m10s`, `9s`; `-` when the start time is unreadable.
pub fn uptime(started_at: &str, now: SystemTime) -> String {
    let Ok(started) = humantime::parse_rfc3339(started_at) else {
        return "-".into();
    };
    let secs = now.duration_since(started).unwrap_or_default().as_secs();
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_well() {
        let start = humantime::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let at = |secs| uptime("2024-01-01T00:00:00Z", start + Duration::from_secs(secs));
        assert_eq!(at(9), "9s");
        assert_eq!(at(250), "4m10s");
        assert_eq!(at(2 * 3600 + 300), "2h5m");
        assert_eq!(at(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(uptime("garbage", start), "-");
    }
}
