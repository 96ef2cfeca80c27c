//! `/api/routes`: apps, their instances and each instance's listeners,
//! with the URLs they are reached at and the per-socket counters.

use agentfs_contract::naming::{app_hostname, instance_hostname, port_hostname};
use agentfs_contract::urls;
use serde_json::{json, Value};

use super::window::{self, Window};
use crate::table::{Backend, Instance, Table};

/// The routes in `window`, grouped by app, with how many instances there
/// are in all: `{port, total, offset, limit, apps}`.
pub fn routes(table: &Table, port: u16, window: &Window) -> Value {
    json!({
        "port": port,
        "total": window::count(table),
        "offset": window.offset,
        "limit": window.limit,
        "apps": by_app(table, port, window, instance),
    })
}

/// The names in `window` and their URLs, grouped by app, without
/// listeners or counters: what a 404 offers instead.
pub fn names(table: &Table, port: u16, window: &Window) -> Value {
    by_app(table, port, window, |app, name, _, port| {
        json!({ "instance": name, "url": urls::url(&instance_hostname(app, name), port) })
    })
    .into()
}

/// The instances in `window` as `each` makes them, grouped by app.
fn by_app(
    table: &Table,
    port: u16,
    window: &Window,
    each: impl Fn(&str, &str, &Instance, u16) -> Value,
) -> Vec<Value> {
    let mut apps: Vec<Value> = Vec::new();
    let mut current: Option<&str> = None;
    for (app, name, inst) in window.of(table) {
        if current != Some(app) {
            current = Some(app);
            apps.push(json!({
                "app": app,
                "url": urls::url(&app_hostname(app), port),
                "instances": [],
            }));
        }
        let listed = apps.last_mut().expect("pushed above");
        if let Some(instances) = listed["instances"].as_array_mut() {
            instances.push(each(app, name, inst, port));
        }
    }
    apps
}

/// One instance: its own URL (the one to open: it always reaches that
/// instance) first, then the app's shared one.
fn instance(app: &str, name: &str, inst: &Instance, port: u16) -> Value {
    let own = urls::url(&instance_hostname(app, name), port);
    json!({
        "instance": name,
        "url": own,
        "urls": [own, urls::url(&app_hostname(app), port)],
        "pid": inst.primary().map(|b| b.sidecar.pid),
        "listeners": inst.listeners.iter().map(|b| listener(b, port)).collect::<Vec<_>>(),
    })
}

/// One listener: `url` names its port; `urls` are all its names, the most
/// specific first (see [`urls::urls`]).
fn listener(backend: &Backend, port: u16) -> Value {
    let car = &backend.sidecar;
    json!({
        "port": car.port,
        "primary": car.primary,
        "kind": car.kind,
        "socket": car.socket,
        "url": urls::url(&port_hostname(&car.app, &car.instance, car.port), port),
        "urls": urls::urls(car, port),
        "in_flight": backend.in_flight(),
        "requests": backend.requests(),
        "down": backend.is_down(),
    })
}
