//! The sidecar of a converted socket: written by the process that binds it,
//! marked listening by whichever process listens first, and read back by
//! any process that holds the socket without having bound it.
//!
//! Servers such as uvicorn and hypercorn bind in one process and listen in
//! a worker they start with a fresh `exec`, handing it the socket; systemd
//! passes listeners the same way. Such a worker knows nothing of the socket
//! but its path, so what the app asked for travels in the sidecar beside it:
//! written at bind with `listening: false`, and rewritten once (atomically)
//! with `listening: true` by the first successful listen in any process.
//! Readers that route skip sidecars that do not listen yet.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use agentfs_contract::{naming, sidecar};

use crate::config::{self, Config};
use crate::pass::Pass;
use crate::registry::{Listener, TABLE};
use crate::sys;

fn socket_of(path: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(path))
}

/// The sidecar of the socket at `path`, which this process bound for `requested`.
fn build(config: &Config, path: &[u8], requested: SocketAddr, listening: bool) -> sidecar::Sidecar {
    let primary = naming::socket_path(&config.run_dir, &config.app, &config.instance, None)
        .is_ok_and(|p| p.as_os_str().as_bytes() == path);
    sidecar::Sidecar {
        version: sidecar::VERSION,
        kind: sidecar::Kind::Shim,
        app: config.app.clone(),
        instance: config.instance.clone(),
        pid: sys::getpid(),
        address: requested.ip().to_string(),
        port: requested.port(),
        primary,
        hostname: naming::instance_hostname(&config.app, &config.instance),
        argv: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        // Where the instance was started, not where this process moved to
        // (a database changes into its data directory before it binds).
        cwd: config.workdir.clone().unwrap_or_else(|| {
            std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        started_at: sidecar::now_rfc3339(),
        target: None,
        not_routed: None,
        socket: socket_of(path),
        listening,
    }
}

fn write(car: &sidecar::Sidecar) -> bool {
    match car.write_atomic(&naming::sidecar_path(&car.socket)) {
        Ok(()) => true,
        Err(e) => {
            config::log(format_args!(
                "could not write the sidecar of {}: {e}",
                car.socket.display()
            ));
            false
        }
    }
}

/// After this process bound the socket at `path` for `requested`: its
/// sidecar, not listening yet. Called without the registry lock held.
pub fn bound(config: &Config, path: &[u8], requested: SocketAddr) {
    let car = build(config, path, requested, false);
    if write(&car) {
        config::log(format_args!(
            "{} bound (asked for {requested})",
            car.socket.display()
        ));
    }
}

/// After a successful listen on `fd` in this process: marks its sidecar
/// listening, unless this process or the sidecar already knows it listens.
pub fn listened(config: &Config, fd: RawFd) -> Result<(), Pass> {
    let path = sys::unix_socket_path(fd).ok_or(Pass::NotOurs)?;
    if !config.owns_path(&path) {
        return Err(Pass::NotOurs);
    }
    if TABLE
        .lock()
        .by_path(&path)
        .is_some_and(|l| l.seen_listening)
    {
        return Err(Pass::AlreadyListening);
    }
    let mut car = match read(&path) {
        Some(car) => car,
        // Only the process that bound it can write it from scratch.
        None => own_sidecar(config, &path).ok_or(Pass::Unknown)?,
    };
    if car.listening {
        remember_listening(&path, &car);
        return Err(Pass::AlreadyListening);
    }
    car.listening = true;
    if write(&car) {
        config::log(format_args!(
            "{} listening (asked for {}:{})",
            car.socket.display(),
            car.address,
            car.port
        ));
        remember_listening(&path, &car);
    }
    Ok(())
}

/// The sidecar beside the socket at `path`, if it is a valid one naming that socket.
fn read(path: &[u8]) -> Option<sidecar::Sidecar> {
    let socket = socket_of(path);
    sidecar::read_file_checked(&naming::sidecar_path(&socket))
        .ok()
        .filter(|car| car.socket == socket)
}

/// A sidecar for a socket this process bound, from what it remembers.
fn own_sidecar(config: &Config, path: &[u8]) -> Option<sidecar::Sidecar> {
    let requested = TABLE
        .lock()
        .by_path(path)
        .filter(|l| l.is_own())
        .map(|l| l.requested)?;
    Some(build(config, path, requested, false))
}

fn remember_listening(path: &[u8], car: &sidecar::Sidecar) {
    let learned = learned_listener(path, car);
    let mut table = TABLE.lock();
    match table.by_path_mut(path) {
        Some(listener) => listener.seen_listening = true,
        None => {
            if let Some(learned) = learned {
                table.add(learned);
            }
        }
    }
}

/// What a process that did not bind the socket at `path` learns of it from
/// its sidecar: the address the app asked for.
pub fn learn(path: &[u8]) -> Option<Listener> {
    learned_listener(path, &read(path)?)
}

fn learned_listener(path: &[u8], car: &sidecar::Sidecar) -> Option<Listener> {
    let ip = car.address.parse().ok()?;
    Some(Listener::learned(
        path.to_vec(),
        SocketAddr::new(ip, car.port),
        car.listening,
    ))
}

/// The port recorded in the sidecar of `socket`, if it has a valid one.
pub fn port_of(socket: &Path) -> Option<u16> {
    read(socket.as_os_str().as_bytes()).map(|car| car.port)
}
