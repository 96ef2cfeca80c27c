//! The route table: which sockets serve which names, and their live counters.
//!
//! Discovery builds a whole new [`Table`] and swaps it in only when it
//! changed; requests read whichever table is current. Besides the live
//! routes, a table knows the entries that exist but are not routed, and
//! why ([`Unrouted`]), so a 404 for their name can say so. A [`Backend`] (one
//! listener socket) outlives table swaps while its sidecar stays the same, so
//! its connection pool and counters carry over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agentfs_contract::sidecar::{Kind, Sidecar};
use hyper::header::HeaderValue;

use crate::activity::Activity;
use crate::affinity;
use crate::host::Target;
use crate::upstream::pool::Pool;

/// How long a backend that refused a connection is skipped, unless nothing
/// else is left. Discovery is asked to re-check it at once, so a dead one is
/// normally gone from the table long before this expires.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// One listener socket of one instance.
#[derive(Debug)]
pub struct Backend {
    /// Shared with discovery's reader, which keeps it while the file is unchanged.
    pub sidecar: Arc<Sidecar>,
    pub pool: Pool,
    /// The `Set-Cookie` value that keeps a client on this instance, made once.
    pub cookie: Option<HeaderValue>,
    /// Its last requests and failure, for the dashboard.
    pub activity: Activity,
    /// The git branch (or a detached HEAD's short commit) of the sidecar's
    /// `cwd`, read once when the backend is made, not per request.
    pub checkout: Option<String>,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds since [`epoch`] until which this backend counts as down.
    down_until: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Backend {
    /// A backend for a live sidecar. Reads its `cwd`'s git checkout, so it
    /// is made off the async threads (discovery reads in a blocking task).
    pub fn new(sidecar: impl Into<Arc<Sidecar>>) -> Backend {
        let sidecar = sidecar.into();
        Backend {
            pool: Pool::new(sidecar.socket.clone()),
            cookie: affinity::set_cookie(&sidecar.instance),
            activity: Activity::default(),
            checkout: checkout(&sidecar.cwd),
            sidecar,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            down_until: AtomicU64::new(0),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn is_down(&self) -> bool {
        self.down_until.load(Ordering::Relaxed) > now_ms()
    }

    pub fn mark_down(&self) {
        let until = now_ms() + DOWN_FOR.as_millis() as u64;
        self.down_until.store(until, Ordering::Relaxed);
    }

    pub fn is_bridge(&self) -> bool {
        self.sidecar.kind == Kind::Bridge
    }

    /// Counts a request as started; it stays in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// The git checkout of a directory, as the dashboard shows it. A relative
/// `cwd` (never written by agentfs) would be read from the router's own
/// directory: nothing.
fn checkout(cwd: &str) -> Option<String> {
    let dir = std::path::Path::new(cwd);
    if !dir.is_absolute() {
        return None;
    }
    agentfs_contract::git::head(dir).map(|head| head.checkout.short().to_owned())
}

/// A request in flight on a backend; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Backend>);

impl InFlight {
    pub fn backend(&self) -> &Backend {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An instance's listeners, primary first.
#[derive(Debug, Default)]
pub struct Instance {
    pub listeners: Vec<Arc<Backend>>,
}

impl Instance {
    pub fn primary(&self) -> Option<&Arc<Backend>> {
        self.listeners
            .iter()
            .find(|b| b.sidecar.primary)
            .or_else(|| self.listeners.first())
    }
}

/// An entry of the run directory that is known but not routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrouted {
    pub app: String,
    pub instance: String,
    pub port: u16,
    /// Why, in a short sentence: the sidecar's own `not_routed`, else what
    /// its state says.
    pub why: String,
}

impl Unrouted {
    /// `APP/INSTANCE: why`
    pub fn describe(&self) -> String {
        format!("{}/{}: {}", self.app, self.instance, self.why)
    }
}

/// Every live route, by app then instance.
#[derive(Debug, Default)]
pub struct Table {
    pub apps: BTreeMap<String, BTreeMap<String, Instance>>,
    /// Each app's instances' primary listeners, what `APP.localhost`
    /// balances over: made with the table, not per request.
    primaries: BTreeMap<String, Vec<Arc<Backend>>>,
    /// Entries known but not routed, by app, in instance and port order.
    unrouted: BTreeMap<String, Vec<Unrouted>>,
}

impl Table {
    /// Builds a table from backends (in any order).
    pub fn from_backends(backends: impl IntoIterator<Item = Arc<Backend>>) -> Table {
        Table::new(backends, [])
    }

    /// Builds a table from backends and the entries not routed (in any order).
    pub fn new(
        backends: impl IntoIterator<Item = Arc<Backend>>,
        unrouted: impl IntoIterator<Item = Unrouted>,
    ) -> Table {
        let mut table = Table::default();
        for entry in unrouted {
            table
                .unrouted
                .entry(entry.app.clone())
                .or_default()
                .push(entry);
        }
        for entries in table.unrouted.values_mut() {
            entries.sort_by(|a, b| (&a.instance, a.port).cmp(&(&b.instance, b.port)));
        }
        for backend in backends {
            let car = &backend.sidecar;
            let instance = table
                .apps
                .entry(car.app.clone())
                .or_default()
                .entry(car.instance.clone())
                .or_default();
            instance.listeners.push(backend);
        }
        for instance in table.apps.values_mut().flat_map(|a| a.values_mut()) {
            instance
                .listeners
                .sort_by_key(|b| (!b.sidecar.primary, b.sidecar.port));
        }
        for (app, instances) in &table.apps {
            let primaries = instances.values().filter_map(|i| i.primary().cloned());
            table.primaries.insert(app.clone(), primaries.collect());
        }
        table
    }

    /// Every backend, in table order.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.apps
            .values()
            .flat_map(|a| a.values())
            .flat_map(|i| i.listeners.iter())
    }

    /// The backends that may serve a target, or `None` if it names nothing.
    pub fn candidates(&self, target: &Target) -> Option<&[Arc<Backend>]> {
        let found: &[Arc<Backend>] = match target {
            Target::App { app } => self.primaries.get(app)?,
            Target::Instance { app, instance } => self.primary_of(app, instance)?,
            Target::Port {
                app,
                instance,
                port,
            } => {
                let inst = self.apps.get(app)?.get(instance)?;
                std::slice::from_ref(inst.listeners.iter().find(|b| b.sidecar.port == *port)?)
            }
            _ => return None,
        };
        (!found.is_empty()).then_some(found)
    }

    /// The entries a target names that are known but not routed.
    pub fn unrouted<'a>(&'a self, target: &'a Target) -> impl Iterator<Item = &'a Unrouted> + 'a {
        let (app, instance, port) = match target {
            Target::App { app } => (Some(app), None, None),
            Target::Instance { app, instance } => (Some(app), Some(instance), None),
            Target::Port {
                app,
                instance,
                port,
            } => (Some(app), Some(instance), Some(*port)),
            _ => (None, None, None),
        };
        app.and_then(|app| self.unrouted.get(app))
            .into_iter()
            .flatten()
            .filter(move |u| instance.is_none_or(|i| u.instance == *i))
            .filter(move |u| port.is_none_or(|p| u.port == p))
    }

    /// The primary listener of `instance` of `app`, if it is live: what
    /// `INSTANCE.APP.localhost` reaches.
    pub fn primary_of(&self, app: &str, instance: &str) -> Option<&[Arc<Backend>]> {
        let primary = self.apps.get(app)?.get(instance)?.primary()?;
        Some(std::slice::from_ref(primary))
    }
}

/// Picks the backend with the fewest requests in flight, skipping those
/// already tried and preferring those not marked down. Ties rotate, so equal
/// instances share the load.
pub fn pick(candidates: &[Arc<Backend>], tried: &[Arc<Backend>]) -> Option<Arc<Backend>> {
    static ROTATE: AtomicUsize = AtomicUsize::new(0);
    let n = candidates.len();
    let start = ROTATE.fetch_add(1, Ordering::Relaxed);
    (0..n)
        .map(|i| &candidates[(start + i) % n])
        .filter(|b| !tried.iter().any(|t| Arc::ptr_eq(t, b)))
        .min_by_key(|b| (b.is_down(), b.in_flight()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfs_contract::sidecar::{now_rfc3339, VERSION};

    fn backend(app: &str, instance: &str, port: u16, primary: bool) -> Arc<Backend> {
        Arc::new(Backend::new(Sidecar {
            version: VERSION,
            kind: Kind::Shim,
            app: app.into(),
            instance: instance.into(),
            pid: 1,
            socket: format!("/run/{app}-{instance}-{port}.sock").into(),
            address: "0.0.0.0".into(),
            port,
            primary,
            listening: true,
            hostname: format!("{instance}.{app}.localhost"),
            argv: vec![],
            cwd: "/".into(),
            started_at: now_rfc3339(),
            target: None,
            not_routed: None,
        }))
    }

    #[test]
    fn lookup_by_app_instance_and_port() {
        let table = Table::from_backends([
            backend("web", "a", 3001, false),
            backend("web", "a", 3000, true),
            backend("web", "b", 3000, true),
        ]);
        let app = Target::App { app: "web".into() };
        assert_eq!(table.candidates(&app).unwrap().len(), 2);
        let inst = Target::Instance {
            app: "web".into(),
            instance: "a".into(),
        };
        assert_eq!(table.candidates(&inst).unwrap()[0].sidecar.port, 3000);
        let port = Target::Port {
            app: "web".into(),
            instance: "a".into(),
            port: 3001,
        };
        assert_eq!(table.candidates(&port).unwrap()[0].sidecar.port, 3001);
        let missing = Target::App { app: "api".into() };
        assert!(table.candidates(&missing).is_none());
    }

    #[test]
    fn entries_not_routed_are_found_by_the_names_that_would_reach_them() {
        let unrouted = |instance: &str, port| Unrouted {
            app: "caddy".into(),
            instance: instance.into(),
            port,
            why: format!("port {port} is shared with another process"),
        };
        let table = Table::new([], [unrouted("c2", 8090), unrouted("c1", 8090)]);
        let named = |target: Target| {
            table
                .unrouted(&target)
                .map(Unrouted::describe)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            named(Target::App {
                app: "caddy".into()
            }),
            [
                "caddy/c1: port 8090 is shared with another process",
                "caddy/c2: port 8090 is shared with another process"
            ]
        );
        let c2 = Target::Instance {
            app: "caddy".into(),
            instance: "c2".into(),
        };
        assert_eq!(named(c2).len(), 1);
        let other_port = Target::Port {
            app: "caddy".into(),
            instance: "c1".into(),
            port: 1,
        };
        assert!(named(other_port).is_empty());
        assert!(named(Target::App { app: "web".into() }).is_empty());
        assert!(table.apps.is_empty());
    }

    #[test]
    fn pick_prefers_least_in_flight_and_healthy() {
        let (a, b) = (backend("w", "a", 1, true), backend("w", "b", 1, true));
        let both = vec![a.clone(), b.clone()];
        let _busy = a.start();
        assert!(Arc::ptr_eq(&pick(&both, &[]).unwrap(), &b));
        b.mark_down();
        assert!(Arc::ptr_eq(&pick(&both, &[]).unwrap(), &a));
        assert!(Arc::ptr_eq(
            &pick(&both, std::slice::from_ref(&a)).unwrap(),
            &b
        ));
        assert!(pick(&both, &both).is_none());
        drop(_busy);
        assert_eq!(a.in_flight(), 0);
        assert_eq!(a.requests(), 1);
    }
}
