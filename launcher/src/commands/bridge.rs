//! `agentfs bridge --port P [--host H] [--name NAME] [--instance ID] [-- CMD ...]`:
//! a Unix socket in the run directory forwarding to an app's real TCP port,
//! for programs that cannot take the shim.
//!
//! With CMD, the bridge runs it with `PORT=P`, passes signals on, and exits
//! with its exit code; without, it fronts an already running server until
//! interrupted. Either way its files are removed when it ends.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::app::App;
use crate::bridge::{self, socket::BoundBridge, socket::Endpoint};
use crate::instance::Instance;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs bridge --port 3000 --name web            # front a server already on :3000
  agentfs bridge --port 8080 -- ./server            # run ./server with PORT=8080

Connections to the socket are forwarded to HOST:PORT. While nothing listens
there, connections are closed at once and the router says the app is not
listening yet.")]
pub struct BridgeArgs {
    /// The TCP port the app listens on (and, with CMD, the PORT it is given).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The host the app listens on.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// App name (a DNS label). Default: package.json's name, else the directory's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Instance id (a DNS label). Default: a short random id unused in the run directory.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// The command to run with PORT set, after `--`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

pub fn run(args: BridgeArgs) -> Result<i32> {
    let instance = Instance::prepare(args.name.as_deref(), args.instance.as_deref())?;
    let target = resolve_target(&args.host, args.port)?;
    let argv = if args.command.is_empty() {
        std::env::args().collect()
    } else {
        lossy(&args.command)
    };
    let endpoint = Endpoint {
        app: instance.app.clone(),
        instance: instance.id.clone(),
        address: args.host.clone(),
        port: args.port,
        primary: true,
        // The user says the app listens there; the router says when not yet.
        listening: true,
        argv,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bridge = BoundBridge::bind(&instance.run_dir, &endpoint, target)?;
        eprintln!(
            "agentfs: {}/{}: bridging {} → {target}",
            instance.app,
            instance.id,
            bridge.socket().display()
        );
        if args.command.is_empty() {
            bridge.serve(interrupted()?).await?;
            return Ok(0);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(bridge.serve(async {
            let _ = stopped.await;
        }));
        let router_port = Some(crate::router_process::url_port(&instance.home));
        let command = bridge::command(&args.command, args.port)?;
        let code = match App::spawn(&instance, command, router_port, false)? {
            Ok(app) => app.wait().await,
            Err(code) => Ok(code),
        };
        let _ = stop.send(());
        serving.await.context("the bridge task failed")??;
        code
    })
}

/// Completes on SIGINT or SIGTERM.
fn interrupted() -> Result<impl std::future::Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// `HOST:PORT` as an address to connect to; a name resolves to its first address.
fn resolve_target(host: &str, port: u16) -> Result<SocketAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("could not resolve --host {host}"))?
        .next()
        .ok_or_else(|| anyhow!("--host {host} has no address"))
}

fn lossy(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve() {
        assert_eq!(
            resolve_target("127.0.0.1", 80).unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            resolve_target("[::1]", 81).unwrap(),
            "[::1]:81".parse().unwrap()
        );
        assert!(resolve_target("localhost", 82).unwrap().ip().is_loopback());
        assert!(resolve_target("no such host!", 1).is_err());
    }
}
