//! Finding the ports a bridged app listens on, and keeping bridges in front
//! of them: the primary bridge on `PORT` when the app listens there, else on
//! the first port it opened; a secondary bridge `{app}-{instance}-{port}` for
//! each other port; and never a bridge to a port another process listens on
//! too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use agentfs_contract::rundir;
use agentfs_contract::sidecar::Kind;

use crate::app::procnet;
use crate::bridge::socket::{until_stopped, BoundBridge, Endpoint, TargetHandle};

/// How often the app's listening ports are looked up: fast while it starts,
/// then slower, since servers rarely open ports late.
const DISCOVERY_FAST: Duration = Duration::from_millis(200);
const DISCOVERY_SLOW: Duration = Duration::from_secs(2);
const FAST_FOR: Duration = Duration::from_secs(30);

/// Finds the app's listening ports and keeps bridges in front of them.
pub(super) struct Discovery {
    endpoint: Endpoint,
    primary: TargetHandle,
    /// Whether the primary bridge forwards to a port the app listens on.
    primary_found: bool,
    run_dir: std::path::PathBuf,
    /// Ports with a secondary bridge (or a failed attempt at one).
    bridged: BTreeSet<u16>,
    /// Listening ports in the order they were first seen.
    seen_order: Vec<SocketAddr>,
    /// Shared ports already reported, with the process sharing each.
    reported: BTreeMap<u16, String>,
}

impl Discovery {
    pub(super) fn new(
        endpoint: Endpoint,
        primary: TargetHandle,
        run_dir: std::path::PathBuf,
    ) -> Discovery {
        Discovery {
            endpoint,
            primary,
            primary_found: false,
            run_dir,
            bridged: BTreeSet::new(),
            seen_order: Vec::new(),
            reported: BTreeMap::new(),
        }
    }

    /// Looks until `stopped`; returns whether the app was ever seen listening.
    pub(super) async fn run(mut self, root: u32, mut stopped: watch::Receiver<bool>) -> bool {
        let started = tokio::time::Instant::now();
        let mut secondaries = JoinSet::new();
        loop {
            for bridge in self.poll(root) {
                secondaries.spawn(bridge.serve(until_stopped(stopped.clone())));
            }
            let pause = if started.elapsed() < FAST_FOR {
                DISCOVERY_FAST
            } else {
                DISCOVERY_SLOW
            };
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        while secondaries.join_next().await.is_some() {}
        self.primary_found
    }

    /// One look at the process tree: new bridges to serve, and the primary
    /// pointed at `PORT` if the app listens there, else at its first port.
    /// A port another process listens on too is never bridged.
    fn poll(&mut self, root: u32) -> Vec<BoundBridge> {
        let mut usable = Vec::new();
        for listener in listeners(root, self.endpoint.port) {
            if !listener.shared {
                usable.push(listener.addr);
                continue;
            }
            let was_routed =
                self.primary_found && self.primary.get().port() == listener.addr.port();
            let (why, news) = self.shared(root, listener.addr, was_routed);
            if was_routed || !self.primary_found {
                // Shared since it was found, or never routed: stop routing
                // there, and say why in the sidecar.
                self.primary_found = false;
                if let Err(err) = self.primary.unset(&why) {
                    eprintln!("agentfs: {err:#}");
                }
            }
            // Said once the sidecar says it: whoever reads the line finds it so.
            if let Some(news) = news {
                eprintln!("{news}");
            }
        }
        for addr in &usable {
            if !self.seen_order.iter().any(|s| s.port() == addr.port()) {
                self.seen_order.push(*addr);
            }
        }
        let port = self.endpoint.port;
        let wanted = if usable.iter().any(|a| a.port() == port) {
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        } else {
            self.seen_order
                .iter()
                .find(|seen| usable.iter().any(|l| l.port() == seen.port()))
                .map(|seen| procnet::connect_addr(*seen))
        };
        if let Some(wanted) = wanted.filter(|w| !self.primary_found || *w != self.primary.get()) {
            if wanted.port() != port {
                eprintln!(
                    "agentfs: {}/{} ignores PORT={port}; its port {} gets the instance's URL",
                    self.endpoint.app,
                    self.endpoint.instance,
                    wanted.port()
                );
            }
            match self.primary.set(wanted) {
                Ok(()) => self.primary_found = true,
                Err(err) => eprintln!("agentfs: {err:#}"),
            }
        }
        // The primary's own port needs no second bridge (nor a second row in `ps`).
        let primary_port = self.primary_found.then(|| self.primary.get().port());
        usable
            .iter()
            .filter(|addr| addr.port() != port && Some(addr.port()) != primary_port)
            .filter_map(|addr| self.secondary(*addr))
            .collect()
    }

    fn secondary(&mut self, listening: SocketAddr) -> Option<BoundBridge> {
        if !self.bridged.insert(listening.port()) {
            return None;
        }
        let endpoint = Endpoint {
            address: listening.ip().to_string(),
            port: listening.port(),
            primary: false,
            listening: true,
            ..self.endpoint.clone()
        };
        match BoundBridge::bind(&self.run_dir, &endpoint, procnet::connect_addr(listening)) {
            Ok(bridge) => Some(bridge),
            Err(err) => {
                eprintln!("agentfs: no bridge for port {}: {err:#}", listening.port());
                None
            }
        }
    }

    /// Why the app is not routed to `addr`, a port another process shares
    /// (naming that process), for its sidecar; and, the first time, the
    /// line to tell the user. `was_routed`: the app was routed there until now.
    fn shared(
        &mut self,
        root: u32,
        addr: SocketAddr,
        was_routed: bool,
    ) -> (String, Option<String>) {
        let port = addr.port();
        if let Some(who) = self.reported.get(&port) {
            return (format!("port {port} is shared with {who}"), None);
        }
        let (app, id) = (&self.endpoint.app, &self.endpoint.instance);
        let who = other_bridged_instance(&self.run_dir, app, id, port)
            .map(|other| format!("{app}/{other}"))
            .or_else(|| procnet::other_listener(root, addr).map(describe_process))
            .unwrap_or_else(|| "another process".to_owned());
        self.reported.insert(port, who.clone());
        let what = if was_routed {
            format!("{app}/{id} is no longer routed: port {port} is now shared with {who}")
        } else {
            format!("{app}/{id} listens on port {port}, and so does {who}")
        };
        let news = format!(
            "agentfs: {what}: connections there could reach either, so agentfs does not route \
             {app}/{id} to it. Make the app listen on $PORT instead (for Caddy, a Caddyfile whose \
             site address is :{{$PORT}})"
        );
        (format!("port {port} is shared with {who}"), Some(news))
    }
}

/// The app's listening sockets. Where the tree's sockets cannot be listed
/// (macOS, for a process of another user), the only one known is `PORT`,
/// when a connect to it succeeds.
fn listeners(root: u32, port: u16) -> Vec<procnet::TreeListener> {
    let found = procnet::tree_listeners(root);
    if cfg!(target_os = "linux") || !found.is_empty() {
        return found;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let open = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
    open.then_some(procnet::TreeListener {
        addr,
        pid: root,
        shared: false,
    })
    .into_iter()
    .collect()
}

/// A process as a user knows it: the agentfs instance it runs in (its
/// environment says, where we may read it), else its name and pid.
fn describe_process(pid: u32) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let var = |name: &str| {
        environ.split(|&b| b == 0).find_map(|entry| {
            let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
            String::from_utf8(value.to_vec()).ok()
        })
    };
    if let (Some(app), Some(id)) = (
        var(agentfs_contract::env::APP),
        var(agentfs_contract::env::INSTANCE),
    ) {
        return format!("{app}/{id}");
    }
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{} (pid {pid})", name.trim())
}

/// Another live instance of `app` whose bridge forwards to `port`.
fn other_bridged_instance(
    run_dir: &std::path::Path,
    app: &str,
    id: &str,
    port: u16,
) -> Option<String> {
    let scan = rundir::scan(run_dir).ok()?;
    let other = scan.of_app(app).find(|e| {
        e.is_live()
            && e.sidecar.instance != id
            && e.sidecar.kind == Kind::Bridge
            && e.sidecar.port == port
    })?;
    Some(other.sidecar.instance.clone())
}
