//! The caller's instance scope: which sockets a connect to `localhost:P`
//! from this process may be wired to.
//!
//! The scope of a process is every listener whose sidecar names the
//! process's instance, of any app. The contract's [`ScopeCache`] keeps them
//! by port; this process has one, made at its first lookup, behind a spin
//! lock held across `fork`. A lookup on an unchanged run directory costs one
//! `stat` and allocates nothing; only a match allocates, to copy its socket
//! paths out, so that no lock is held while connecting. The registry's
//! table lock is never taken here: reading the directory may take a while.
//!
//! The choice: the caller's own app's listener on that port; else the one
//! other app listening there; with several other apps, none (the connect
//! passes through, and `AGENTFS_LOG` says which apps). Sidecars are trusted
//! for app, instance and port, never file names, and a socket outside the
//! run directory (a manual route's) is never wired, since a wired descriptor
//! is recognised by its peer being a socket in the run directory.

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use agentfs_contract::scope::ScopeCache;
use agentfs_contract::sidecar::Sidecar;

use crate::config::{self, Config};
use crate::pass::Pass;
use crate::spin::SpinLock;

static SCOPE: SpinLock<Option<ScopeCache>> = SpinLock::new(None);

/// The socket paths a connect to `port` should try, best first: each one
/// refused (its owner is gone) gives way to the next.
pub fn sockets_for(config: &Config, port: u16) -> Result<Vec<Vec<u8>>, Pass> {
    let mut scope = SCOPE.lock();
    let cache = scope.get_or_insert_with(|| ScopeCache::new(config.run_dir.clone()));
    let found = cache.listeners(&config.instance, port);
    let chosen = choose(found, &config.app, |socket| config.owns_path(socket));
    if chosen == Err(Pass::SeveralApps) && config::logging() {
        let apps: Vec<&str> = found.iter().map(|car| car.app.as_str()).collect();
        config::log(format_args!(
            "connect to port {port}: apps {apps:?} of instance {} listen there and none is {}; \
             it goes to the kernel",
            config.instance, config.app
        ));
    }
    chosen
}

/// The sockets of `found` (one instance's listeners on one port, sorted by
/// app) that a connect from app `own_app` should try.
fn choose(
    found: &[Arc<Sidecar>],
    own_app: &str,
    in_run_dir: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, Pass> {
    let usable = || {
        found
            .iter()
            .filter(|car| in_run_dir(car.socket.as_os_str().as_bytes()))
    };
    let first = usable().next().ok_or(Pass::NoListener)?;
    let app = if usable().any(|car| car.app == own_app) {
        own_app
    } else if usable().all(|car| car.app == first.app) {
        first.app.as_str()
    } else {
        return Err(Pass::SeveralApps);
    };
    Ok(usable()
        .filter(|car| car.app == app)
        .map(|car| car.socket.as_os_str().as_bytes().to_vec())
        .collect())
}

extern "C" fn before_fork() {
    SCOPE.raw_lock();
}

extern "C" fn after_fork() {
    SCOPE.raw_unlock();
}

/// Holds the scope lock across fork, as the registry does its table.
pub fn install_fork_handlers() {
    // SAFETY: the handlers are plain functions that only touch an atomic.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfs_contract::sidecar::{Kind, VERSION};
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use std::path::PathBuf;

    fn car(app: &str, socket: &str) -> Arc<Sidecar> {
        Arc::new(Sidecar {
            version: VERSION,
            kind: Kind::Shim,
            app: app.into(),
            instance: "x".into(),
            pid: 1,
            socket: PathBuf::from(socket),
            address: "127.0.0.1".into(),
            port: 8080,
            primary: true,
            listening: true,
            hostname: format!("x.{app}.localhost"),
            argv: Vec::new(),
            cwd: "/".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            target: None,
            not_routed: None,
        })
    }

    fn pick(found: &[Arc<Sidecar>], own: &str) -> Result<Vec<String>, Pass> {
        choose(found, own, |path| path.starts_with(b"/r/")).map(|paths| {
            paths
                .into_iter()
                .map(|p| OsString::from_vec(p).into_string().unwrap())
                .collect()
        })
    }

    #[test]
    fn the_own_app_wins_then_the_only_other_app() {
        let api = car("api", "/r/api_x.sock");
        let web = car("web", "/r/web_x_8080.sock");
        let both = [api.clone(), web];
        assert_eq!(pick(&both, "web").unwrap(), ["/r/web_x_8080.sock"]);
        assert_eq!(pick(&both, "api").unwrap(), ["/r/api_x.sock"]);
        assert_eq!(pick(&both, "curl"), Err(Pass::SeveralApps));
        assert_eq!(pick(&[api], "curl").unwrap(), ["/r/api_x.sock"]);
        assert_eq!(pick(&[], "curl"), Err(Pass::NoListener));
    }

    #[test]
    fn every_socket_of_the_chosen_app_is_tried_and_foreign_ones_never() {
        let stale = car("api", "/r/api_x.sock");
        let live = car("api", "/r/api_x_8080.sock");
        let manual = car("db", "/elsewhere/db.sock");
        assert_eq!(
            pick(&[stale, live, manual.clone()], "curl").unwrap(),
            ["/r/api_x.sock", "/r/api_x_8080.sock"]
        );
        assert_eq!(pick(&[manual], "curl"), Err(Pass::NoListener));
    }
}
