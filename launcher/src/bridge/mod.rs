//! wrap's fallback for programs that cannot take the shim: run them behind
//! bridges instead.
//!
//! A free port goes to the app as `PORT` and gets the instance's primary
//! bridge. Apps that ignore `PORT` are found anyway: their process tree's
//! listening TCP ports are polled from `/proc` (Linux), each gets a bridge
//! `{app}-{instance}-{port}`, and while nothing listens on `PORT` the
//! primary bridge forwards to the first port the app did open.
//!
//! Its parts:
//! - [`socket`]: one bridge socket under the contract (lock, sidecar,
//!   cleanup) and its forwarding; `agentfs bridge` serves one by itself.
//! - [`discovery`]: the app's listening ports found, and bridges kept in
//!   front of them.

mod discovery;
pub mod socket;

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};

use anyhow::{anyhow, Context, Result};
use tokio::sync::watch;
use tokio::task::JoinSet;

use agentfs_contract::rundir;
use agentfs_contract::sidecar::Kind;

use crate::app::App;
use crate::instance::Instance;
use discovery::Discovery;
use socket::{until_stopped, BoundBridge, Endpoint};

/// Runs `cmd` behind bridges as `instance`, after one stderr line saying why
/// (`reason`, from [`agentfs_injectable`]). Returns the exit code to exit with.
pub fn run(
    instance: &Instance,
    cmd: &[OsString],
    router_port: Option<u16>,
    reason: &str,
) -> Result<i32> {
    let port = free_port()?;
    eprintln!(
        "agentfs: {reason}; running it behind a bridge instead, with PORT={port}; its own \
         connects to localhost ports go to the host's ports, not to instance {}'s",
        instance.id
    );
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
    let mut command = command(cmd, port)?;
    crate::inject::preload::trust_the_ca(&mut command, &instance.home);
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

/// `cmd` with `PORT` set: how a bridged app is told where to listen.
pub(crate) fn command(cmd: &[OsString], port: u16) -> Result<tokio::process::Command> {
    let (program, rest) = cmd
        .split_first()
        .ok_or_else(|| anyhow!("no command to run"))?;
    let mut command = tokio::process::Command::new(program);
    command.args(rest).env("PORT", port.to_string());
    Ok(command)
}

/// A TCP port free on loopback right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("could not find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}
