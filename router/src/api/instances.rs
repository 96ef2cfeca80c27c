//! `/api/instances`: one entry per live instance, as the dashboard shows it
//! and as each of its events carries it.
//!
//! Nothing in it changes by itself as time passes (an uptime is a start
//! time, a failure or request carries when it happened), so two snapshots
//! differ only when something happened: the event stream sends one only then.

use std::time::{Duration, SystemTime};

use agentfs_contract::naming::instance_hostname;
use agentfs_contract::urls;
use serde_json::{json, Value};

use super::window::{self, Window};
use crate::activity::{Failure, Seen, RECENT};
use crate::table::{Backend, Instance, Table};

/// The instances in `window`: `{port, total, offset, limit, instances}`.
pub fn snapshot(table: &Table, port: u16, window: &Window) -> Value {
    let instances: Vec<Value> = window
        .of(table)
        .map(|(app, name, inst)| instance(app, name, inst, port))
        .collect();
    json!({
        "port": port,
        "total": window::count(table),
        "offset": window.offset,
        "limit": window.limit,
        "instances": instances,
    })
}

/// One instance: what its primary listener's sidecar says, the counters
/// summed over its listeners, its latest failure and requests.
fn instance(app: &str, name: &str, inst: &Instance, port: u16) -> Value {
    let primary = inst.primary();
    let car = primary.map(|b| &b.sidecar);
    let requests: u64 = inst.listeners.iter().map(|b| b.requests()).sum();
    let in_flight: usize = inst.listeners.iter().map(|b| b.in_flight()).sum();
    json!({
        "app": app,
        "instance": name,
        "url": urls::url(&instance_hostname(app, name), port),
        "kind": car.map(|c| c.kind),
        "pid": car.map(|c| c.pid),
        "started_at": car.map(|c| c.started_at.as_str()),
        "cwd": car.map(|c| c.cwd.as_str()),
        "branch": primary.and_then(|b| b.checkout.as_deref()),
        "ports": inst.listeners.iter().map(|b| listener(b, port)).collect::<Vec<_>>(),
        "requests": requests,
        "in_flight": in_flight,
        "last_error": last_error(inst).map(|f| json!({
            "message": f.message,
            "at": time(f.at),
        })),
        "recent": recent(inst).iter().map(|seen| json!({
            "method": seen.method,
            "path": seen.path,
            "status": seen.status,
            "duration_ms": millis(seen.took),
            "at": time(seen.at),
        })).collect::<Vec<_>>(),
    })
}

/// One listener: its port and names, the instance's own first.
fn listener(backend: &Backend, port: u16) -> Value {
    let car = &backend.sidecar;
    json!({
        "port": car.port,
        "primary": car.primary,
        "urls": urls::urls(car, port),
        "requests": backend.requests(),
        "in_flight": backend.in_flight(),
        "down": backend.is_down(),
    })
}

/// The latest failure at any of the instance's listeners.
pub fn last_error(inst: &Instance) -> Option<Failure> {
    inst.listeners
        .iter()
        .filter_map(|b| b.activity.last_error())
        .max_by_key(|f| f.at)
}

/// The instance's last requests over all its listeners, newest first.
pub fn recent(inst: &Instance) -> Vec<Seen> {
    let mut seen: Vec<Seen> = inst
        .listeners
        .iter()
        .flat_map(|b| b.activity.recent())
        .collect();
    seen.sort_by_key(|s| std::cmp::Reverse(s.at));
    seen.truncate(RECENT);
    seen
}

/// RFC 3339, UTC, to the millisecond.
pub fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds to a tenth.
fn millis(took: Duration) -> f64 {
    (took.as_secs_f64() * 10_000.0).round() / 10.0
}
