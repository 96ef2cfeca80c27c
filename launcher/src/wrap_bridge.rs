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

use crate::bridge::procnet;
use crate::bridge::serve::{BoundBridge, Endpoint, TargetHandle};
use crate::child::App;
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
    let endpoint = Endpoint {
        app: instance.app.clone(),
        instance: instance.id.clone(),
        address: "127.0.0.1".into(),
        port,
        primary: true,
        argv,
    };
    let primary = BoundBridge::bind(
        &instance.run_dir,
        &endpoint,
        SocketAddr::from(([127, 0, 0, 1], port)),
    )?;
    let (stop, stopped) = watch::channel(false);
    let mut bridges = JoinSet::new();
    let discovery = Discovery {
        endpoint,
        primary: primary.target_handle(),
        run_dir: instance.run_dir.clone(),
        bridged: BTreeSet::new(),
        seen_order: Vec::new(),
    };
    bridges.spawn(primary.serve(until_stopped(stopped.clone())));
    let code = match App::spawn(instance, crate::bridge::command(cmd, port)?, router_port)? {
        Ok(app) => {
            // The tree to search is the app's, not ours: wrap's own children
            // include the router it may have started in the background.
            let discovering = app
                .pid()
                .map(|pid| tokio::spawn(discovery.run(pid, stopped)));
            let code = app.wait().await;
            if let Some(discovering) = discovering {
                let _ = stop.send(true);
                let _ = discovering.await;
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

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Finds the app's listening ports and keeps bridges in front of them.
struct Discovery {
    endpoint: Endpoint,
    primary: TargetHandle,
    run_dir: std::path::PathBuf,
    /// Ports with a secondary bridge (or a failed attempt at one).
    bridged: BTreeSet<u16>,
    /// Listening ports in the order they were first seen.
    seen_order: Vec<SocketAddr>,
}

impl Discovery {
    async fn run(mut self, root: u32, mut stopped: watch::Receiver<bool>) {
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
    }

    /// One look at the process tree: new bridges to serve, and the primary
    /// pointed at `PORT` if the app listens there, else at its first port.
    fn poll(&mut self, root: u32) -> Vec<BoundBridge> {
        let listening = procnet::listening_tcp_ports(root);
        for addr in &listening {
            if !self.seen_order.iter().any(|s| s.port() == addr.port()) {
                self.seen_order.push(*addr);
            }
        }
        let port = self.endpoint.port;
        let wanted = if listening.iter().any(|a| a.port() == port) {
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        } else {
            self.seen_order
                .iter()
                .find(|seen| listening.iter().any(|l| l.port() == seen.port()))
                .map(|seen| procnet::connect_addr(*seen))
        };
        if let Some(wanted) = wanted.filter(|w| *w != self.primary.get()) {
            if wanted.port() != port {
                eprintln!(
                    "agentfs: {}/{} ignores PORT={port}; its port {} gets the instance's URL",
                    self.endpoint.app,
                    self.endpoint.instance,
                    wanted.port()
                );
            }
            if let Err(err) = self.primary.set(wanted) {
                eprintln!("agentfs: {err:#}");
            }
        }
        listening
            .iter()
            .filter(|addr| addr.port() != port)
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
}

/// A TCP port free on loopback right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("could not find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}
