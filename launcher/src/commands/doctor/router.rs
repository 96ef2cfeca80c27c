//! Doctor's checks of the router: whether one runs for this `AGENTFS_HOME`
//! (and if not, whether one could start on its port), its version against
//! this CLI's, and whether it answers over TCP on 127.0.0.1 and on ::1, as
//! browsers and `curl` reach it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use agentfs_contract::{layout, liveness};
use agentfs_router::client;

use super::http;
use super::report::Check;
use crate::router_process;

/// How long the router may take to answer one request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// The checks, and the port of the router that answers (if one does).
pub fn checks(home: &Path) -> (Vec<Check>, Option<u16>) {
    let socket = layout::router_socket(home);
    let Ok(health) = client::get_blocking(&socket, "/health", ANSWER_TIMEOUT) else {
        return (vec![not_running(home)], None);
    };
    let (Some(port), Some(pid)) = (
        health["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
        health["pid"].as_u64(),
    ) else {
        let message = format!("router: its /health answer lacks a port or pid: {health}");
        return (vec![Check::fail("router", message, restart())], None);
    };
    let checks = vec![
        Check::ok(
            "router",
            format!(
                "router: runs (pid {pid}) on port {port}, {} route(s)",
                health["routes"]
            ),
        )
        .with_details(json!({ "pid": pid, "port": port })),
        version(&health),
        reachable("router.ipv4", IpAddr::V4(Ipv4Addr::LOCALHOST), port, pid),
        reachable("router.ipv6", IpAddr::V6(Ipv6Addr::LOCALHOST), port, pid),
    ];
    (checks, Some(port))
}

fn restart() -> String {
    "agentfs router stop && agentfs router".into()
}

/// No router answers: fine (wrap starts one) unless one could not start.
fn not_running(home: &Path) -> Check {
    let lock = layout::router_lock(home);
    if liveness::is_held(&lock) {
        return Check::fail(
            "router",
            format!(
                "router: a process holds {} but nothing answers on {}",
                lock.display(),
                layout::router_socket(home).display()
            ),
            format!(
                "see {}; end the process holding the lock (`fuser {}` names it), then `agentfs router`",
                layout::router_log(home).display(),
                lock.display()
            ),
        );
    }
    let port = router_process::configured_port();
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Check::fail(
            "router",
            format!(
                "router: none runs, and another program holds 127.0.0.1:{port}, so none can start"
            ),
            format!(
                "export AGENTFS_ROUTER_PORT={}   (a port that is free now)",
                free_port().unwrap_or(port.wrapping_add(1))
            ),
        ),
        _ => Check::warn(
            "router",
            format!(
                "router: none runs for {} (wrap starts one by itself; port {port} is free)",
                home.display()
            ),
            "agentfs router",
        ),
    }
}

fn free_port() -> Option<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    Some(listener.local_addr().ok()?.port())
}

/// The router's version against this CLI's.
fn version(health: &Value) -> Check {
    let mine = env!("CARGO_PKG_VERSION");
    match health["version"].as_str() {
        Some(theirs) if theirs == mine => Check::ok(
            "router.version",
            format!("router: version {theirs}, the same as this agentfs"),
        ),
        Some(theirs) => Check::fail(
            "router.version",
            format!("router: version {theirs}, but this agentfs is {mine}"),
            restart(),
        ),
        None => Check::warn(
            "router.version",
            format!(
                "router: does not say its version (its /health has no `version`), so it \
                 cannot be compared with this agentfs ({mine})"
            ),
            format!(
                "if agentfs was upgraded since the router started: {}",
                restart()
            ),
        ),
    }
}

/// Whether the router (the one with `pid`) answers over TCP on `ip`.
fn reachable(id: &str, ip: IpAddr, port: u16, pid: u64) -> Check {
    let addr = SocketAddr::new(ip, port);
    if ip.is_ipv6() && TcpListener::bind((ip, 0)).is_err() {
        return Check::warn(
            id,
            format!("router: this machine has no {ip}; clients fall back to 127.0.0.1"),
            "nothing to do, unless a client insists on IPv6",
        );
    }
    let url = format!("http://{addr}/health");
    match http::get_tcp(addr, "agentfs.localhost", "/health", ANSWER_TIMEOUT) {
        Ok(answer) => match answer.json() {
            Some(body) if body["data"]["pid"].as_u64() == Some(pid) => {
                Check::ok(id, format!("router: answers on {url}"))
            }
            _ => Check::fail(
                id,
                format!(
                    "router: something else answers on {url} ({} {})",
                    answer.status,
                    answer.body.chars().take(60).collect::<String>()
                ),
                format!(
                    "stop the program on port {port} or move agentfs: export AGENTFS_ROUTER_PORT={}",
                    free_port().unwrap_or(port.wrapping_add(1))
                ),
            ),
        },
        Err(err) => Check::fail(
            id,
            format!("router: nothing answers on {url} ({err})"),
            restart(),
        ),
    }
}
