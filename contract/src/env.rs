//! Names of the environment variables that carry agentfs settings between processes.
//!
//! The launcher sets them; the shim reads them in its constructor; children
//! inherit them, which is how `sh -c` and npm scripts stay covered.

/// Root of all agentfs state; defaults to `~/.agentfs`.
pub const HOME: &str = "AGENTFS_HOME";
/// The run directory the shim puts sockets and sidecars in (`$AGENTFS_HOME/run`).
pub const RUN_DIR: &str = "AGENTFS_RUN_DIR";
/// The app's name, a DNS label.
pub const APP: &str = "AGENTFS_APP";
/// The instance id, a DNS label unique among the app's instances.
pub const INSTANCE: &str = "AGENTFS_INSTANCE";
/// The primary socket's path, for apps that want to know it.
pub const SOCKET: &str = "AGENTFS_SOCKET";
/// `{instance}.{app}.localhost`, for apps that want to print their URL.
pub const HOSTNAME: &str = "AGENTFS_HOSTNAME";
/// The directory the instance was started from (wrap's), which sidecars
/// record as `cwd` whatever directory the listening process moved to.
pub const WORKDIR: &str = "AGENTFS_WORKDIR";
/// When set (to anything but `0` or empty), the shim writes diagnostics to stderr.
pub const LOG: &str = "AGENTFS_LOG";
/// The router's HTTP port.
pub const ROUTER_PORT: &str = "AGENTFS_ROUTER_PORT";
/// Path of the shim library itself, so it can put itself back into the
/// environment of children when something between strips the preload variable.
pub const SHIM: &str = "AGENTFS_SHIM";

/// The variable the dynamic loader reads to preload the shim on this platform.
pub const PRELOAD: &str = if cfg!(target_os = "macos") {
    "DYLD_INSERT_LIBRARIES"
} else {
    "LD_PRELOAD"
};

/// Whether a value of [`LOG`] asks for diagnostics.
pub fn log_enabled(value: Option<&str>) -> bool {
    matches!(value, Some(v) if !v.is_empty() && v != "0")
}

/// The router's HTTP port when neither `--port` nor [`ROUTER_PORT`] says otherwise:
/// unprivileged, and clear of the ports dev servers and macOS's AirPlay (5000, 7000) take.
pub const DEFAULT_ROUTER_PORT: u16 = 7380;

/// The directory of interpreter stand-ins wrap puts first in `PATH`; set only
/// while they are in use (see the launcher's `stand_ins` module).
pub const STAND_INS: &str = "AGENTFS_STAND_INS";

/// The variables that describe one wrapped instance. A process agentfs
/// starts for itself (the background router) drops them and [`PRELOAD`], so
/// it never runs as part of the instance it was started from.
pub const INSTANCE_VARS: [&str; 9] = [
    APP, INSTANCE, RUN_DIR, SOCKET, HOSTNAME, WORKDIR, SHIM, STAND_INS, LOG,
];
