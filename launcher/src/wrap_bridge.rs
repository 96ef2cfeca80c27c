//! wrap's fallback for programs that cannot take the shim: run them behind
//! bridges instead.
//!
//! A free port goes to the app as `PORT` and gets the instance's primary
//! bridge. Apps that ignore `PORT` are found anyway: their process tree's
//! listening TCP ports are polled from `/proc` (Linux), each gets a bridge
//! `{app}-{instance}-{port}`, and while nothing listens on `PORT` the
//! primary bridge forwards to the first port the app did open.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinSet;

use agentfs_contract::rundir;
use agentfs_contract::sidecar::Kind;

use crate::app::{procnet, App};
use crate::bridge::serve::{BoundBridge, Endpoint, TargetHandle};
use crate::instance::Instance;

/// How often the app's listening ports are looked up: fast while it starts,
/// then slower, since servers rarely open ports late.
const DISCOVERY_FAST: Duration = Duration::from_millis(200);
const DISCOVERY_SLOW: Duration = Duration::from_secs(2);
const FAST_FOR: Duration = Duration::from_secs(30);

/// Runs `cmd` behind bridges as `instance`, after one stderr line saying why
/// (`reason`, from [`agentfs_injectable`]). Returns the exit code to exit with.
pub fn run(
    instance: &Instance,
    cmd: &[OsString],
    router_port: Option<u16>,
    reason: &str,
) -> Result<i32> {
    let port = free_port()?;
    eprintln!("agentfs: {reason}; running it behind a bridge instead, with PORT={port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(bridged(instance, cmd, port, router_port));
    instance.remove_stale_files();
    code
}

async fn bridged(
    instance: &Instance,
    cmd: &[OsString],
    port: u16,
    router_port: Option<u16>,
) -> Result<i32> {
    let argv: Vec<String> = cmd
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Not listening until the app is seen to: nothing is announced or
    // routed for a PORT the app may ignore.
    let endpoint = Endpoint {
        app: instance.app.clone(),
        instance: instance.id.clone(),
        address: "127.0.0.1".into(),
        port,
        primary: true,
        listening: false,
        argv,
    };
    let primary = BoundBridge::bind(
        &instance.run_dir,
        &endpoint,
        SocketAddr::from(([127, 0, 0, 1], port)),
    )?;
    let (stop, stopped) = watch::channel(false);
    let mut bridges = JoinSet::new();
    let discovery = Discovery::new(endpoint, primary.target_handle(), instance.run_dir.clone());
    bridges.spawn(primary.serve(until_stopped(stopped.clone())));
    let command = crate::bridge::command(cmd, port)?;
    let code = match App::spawn(instance, command, router_port, false)? {
        Ok(app) => {
            // The tree to search is the app's, not ours: wrap's own children
            // include the router it may have started in the background.
            let discovering = app
                .pid()
                .map(|pid| tokio::spawn(discovery.run(pid, stopped)));
            let code = app.wait().await;
            let _ = stop.send(true);
            let listened = match discovering {
                Some(discovering) => discovering.await.unwrap_or(true),
                None => true,
            };
            if !listened && code.as_ref().is_ok_and(|c| *c != 0) {
                explain_early_exit(instance);
            }
            code
        }
        Err(code) => Ok(code),
    };
    let _ = stop.send(true);
    while let Some(done) = bridges.join_next().await {
        done.context("a bridge task failed")??;
    }
    code
}

/// An app that exited with an error without ever listening, while another
/// copy of it runs bridged: most likely it listens on a fixed port, which
/// that copy holds.
fn explain_early_exit(instance: &Instance) {
    let Ok(scan) = rundir::scan(&instance.run_dir) else {
        return;
    };
    let other = scan.of_app(&instance.app).find(|e| {
        e.is_live() && e.sidecar.instance != instance.id && e.sidecar.kind == Kind::Bridge
    });
    if let Some(other) = other {
        eprintln!(
            "agentfs: {app}/{id} exited without listening while {app}/{other} is bridged to port \
             {port}: an app that ignores PORT and listens on a fixed port cannot run twice under \
             the bridge. Make it listen on $PORT",
            app = instance.app,
            id = instance.id,
            other = other.sidecar.instance,
            port = other.sidecar.port,
        );
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Finds the app's listening ports and keeps bridges in front of them.
struct Discovery {
    endpoint: Endpoint,
    primary: TargetHandle,
    /// Whether the primary bridge forwards to a port the app listens on.
    primary_found: bool,
    run_dir: std::path::PathBuf,
    /// Ports with a secondary bridge (or a failed attempt at one).
    bridged: BTreeSet<u16>,
    /// Listening ports in the order they were first seen.
    seen_order: Vec<SocketAddr>,
    /// Shared ports already reported.
    reported: BTreeSet<u16>,
}

impl Discovery {
    fn new(endpoint: Endpoint, primary: TargetHandle, run_dir: std::path::PathBuf) -> Discovery {
        Discovery {
            endpoint,
            primary,
            primary_found: false,
            run_dir,
            bridged: BTreeSet::new(),
            seen_order: Vec::new(),
            reported: BTreeSet::new(),
        }
    }

    /// Looks until `stopped`; returns whether the app was ever seen listening.
    async fn run(mut self, root: u32, mut stopped: watch::Receiver<bool>) -> bool {
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
            self.report_shared(listener.addr.port());
            if self.primary_found && self.primary.get().port() == listener.addr.port() {
                // Shared since it was found: stop routing there, too.
                self.primary_found = false;
                if let Err(err) = self.primary.unset() {
                    eprintln!("agentfs: {err:#}");
                }
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

    /// Says once that the app listens on a port another process shares.
    fn report_shared(&mut self, port: u16) {
        if !self.reported.insert(port) {
            return;
        }
        let (app, id) = (&self.endpoint.app, &self.endpoint.instance);
        let who = other_bridged_instance(&self.run_dir, app, id, port).map_or_else(
            || "another process".to_owned(),
            |other| format!("{app}/{other}"),
        );
        eprintln!(
            "agentfs: {app}/{id} listens on port {port}, and so does {who}: connections there could \
             reach either, so agentfs does not route {app}/{id} to it. Make the app listen on $PORT \
             instead (for Caddy, a Caddyfile whose site address is :{{$PORT}})"
        );
    }
}

/// The app's listening sockets. Where `/proc` cannot tell (macOS), the only
/// one known is `PORT`, when a connect to it succeeds.
fn listeners(root: u32, port: u16) -> Vec<procnet::TreeListener> {
    if cfg!(target_os = "linux") {
        return procnet::tree_listeners(root);
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

/// A TCP port free on loopback right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("could not find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}
