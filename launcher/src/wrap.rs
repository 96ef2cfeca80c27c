//! `agentfs wrap [--name NAME] [--instance ID] -- CMD [ARGS...]`: runs CMD with
//! the shim preloaded, so its TCP listeners become Unix sockets of one instance.
//!
//! wrap sets the `AGENTFS_*` variables and the preload variable, runs CMD,
//! forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it, prints a line per listener as
//! it appears, exits with CMD's exit code, and removes the instance's files
//! once the child's process tree is gone (files still locked by a live
//! process, such as a daemon that outlived CMD, are left alone).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use agentfs_contract::{env, layout, liveness, naming, sidecar};
use agentfs_injectable::{self as injectable, Verdict};

use crate::shim_lib::{self, EmbeddedShim};
use crate::{announce, instance, router_cmd, stand_ins, supervise, wrap_bridge};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs wrap -- node server.js
  agentfs wrap --name shop --instance feature-x -- npm run dev

The app keeps asking for its usual port; each instance gets its own socket in
$AGENTFS_HOME/run (default ~/.agentfs/run), so copies never conflict.")]
pub struct WrapArgs {
    /// App name (a DNS label). Default: package.json's name, else the directory's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Instance id (a DNS label). Default: a short random id unused in the run directory.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Don't start the router (by default wrap starts one when none runs).
    #[arg(long)]
    pub no_router: bool,
    /// Put interpreter stand-ins (node, python3, ...) first in PATH, which restore the
    /// preload variable wherever something strips it (default on macOS, where
    /// SIP-protected sh and env strip DYLD_INSERT_LIBRARIES).
    #[arg(long, overrides_with = "no_stand_ins")]
    pub stand_ins: bool,
    /// Don't put interpreter stand-ins in PATH (the default on Linux).
    #[arg(long)]
    pub no_stand_ins: bool,
    /// Run the app behind a bridge (a socket forwarding to its TCP port) instead of
    /// preloading the shim. wrap does this by itself for programs that cannot take it.
    #[arg(long)]
    pub bridge: bool,
    /// The command to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// What a wrapped app runs as.
#[derive(Debug, Clone)]
pub struct Instance {
    pub home: PathBuf,
    pub run_dir: PathBuf,
    pub app: String,
    pub id: String,
    /// The primary socket's path.
    pub socket: PathBuf,
}

impl Instance {
    /// Resolves names and prepares the private directories.
    pub fn prepare(name: Option<&str>, id: Option<&str>) -> Result<Instance> {
        let home = layout::home_from_env()?;
        let run_dir = layout::run_dir(&home);
        layout::ensure_private_dir(&home)?;
        layout::ensure_private_dir(&run_dir)?;
        let cwd = std::env::current_dir().context("could not read the current directory")?;
        let app = instance::app_name(name, &cwd)?;
        let id = instance::instance_id(id, &run_dir, &app)?;
        let socket = naming::socket_path(&run_dir, &app, &id, None)?;
        Ok(Instance {
            home,
            run_dir,
            app,
            id,
            socket,
        })
    }

    /// The `AGENTFS_*` variables a wrapped process gets.
    pub fn env_vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            (env::HOME, self.home.clone().into()),
            (env::RUN_DIR, self.run_dir.clone().into()),
            (env::APP, self.app.clone().into()),
            (env::INSTANCE, self.id.clone().into()),
            (env::SOCKET, self.socket.clone().into()),
            (
                env::HOSTNAME,
                naming::instance_hostname(&self.app, &self.id).into(),
            ),
        ]
    }

    /// Removes this instance's files whose owners are gone.
    pub fn remove_stale_files(&self) {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return;
        };
        let stem = naming::socket_stem(&self.app, &self.id, None);
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let named_ours =
                name.starts_with(&format!("{stem}.")) || name.starts_with(&format!("{stem}-"));
            let socket = if name.ends_with(".json") && !name.starts_with('.') {
                match sidecar::read_file_checked(&path) {
                    Ok(car) if car.app == self.app && car.instance == self.id => {
                        Some(path.with_extension("sock"))
                    }
                    _ => None,
                }
            } else {
                None
            };
            if let Some(socket) = socket.or_else(|| named_ours.then(|| path.with_extension("sock")))
            {
                let _ = liveness::remove_if_stale(&socket);
            }
        }
    }
}

pub fn run(args: WrapArgs, shim: &EmbeddedShim) -> Result<i32> {
    let instance = Instance::prepare(args.name.as_deref(), args.instance.as_deref())?;
    let router_port = if args.no_router {
        None
    } else {
        start_router(&instance.home)
    };
    let program = &args.command[0];
    let verdict = if args.bridge {
        Verdict::NotInjectable {
            reason: "--bridge was given".to_owned(),
        }
    } else {
        injectable::check(Path::new(program), shim.bytes)
    };
    if let Verdict::NotInjectable { reason } = verdict {
        return wrap_bridge::run_bridged(
            &args.command,
            &instance.app,
            &instance.id,
            &instance.home,
            &reason,
        );
    }
    let shim_path = shim.install(&instance.home)?;
    let mut command = tokio::process::Command::new(program);
    command.args(&args.command[1..]);
    command.envs(instance.env_vars());
    command.env(env::SHIM, &shim_path);
    if args.stand_ins || (cfg!(target_os = "macos") && !args.no_stand_ins) {
        let dir = stand_ins::install(&shim_path.with_file_name("stand-ins"))?;
        command.env(
            "PATH",
            stand_ins::path_with(&dir, std::env::var_os("PATH").as_deref())?,
        );
        command.env(env::STAND_INS, &dir);
    }
    command.env(
        env::PRELOAD,
        shim_lib::preload_value(&shim_path, std::env::var_os(env::PRELOAD)),
    );
    // In a terminal the child shares our process group, so it can read the
    // keyboard and gets Ctrl-C from the terminal itself; otherwise it gets a
    // group of its own that we signal and wait for as a whole.
    let interactive = std::io::stdin().is_terminal();
    if !interactive {
        command.process_group(0);
    }
    eprintln!(
        "agentfs: {}/{}: running {}",
        instance.app,
        instance.id,
        args.command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        let announcer = announce::Announcer::start(&instance, router_port)?;
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Ok(spawn_failure(program, &e)),
        };
        supervise::until_exit(child, interactive, announcer).await
    });
    instance.remove_stale_files();
    code
}

/// Starts the router unless one runs, and returns its port. A router that
/// cannot start is not fatal: the app still runs and answers on its socket.
fn start_router(home: &Path) -> Option<u16> {
    match router_cmd::ensure_running(home) {
        Ok(info) => Some(info.port),
        Err(e) => {
            eprintln!("agentfs: the router could not start ({e:#}); the app runs without URLs");
            None
        }
    }
}

/// Exit codes as shells give them: 127 not found, 126 not executable.
fn spawn_failure(program: &std::ffi::OsStr, error: &std::io::Error) -> i32 {
    let program = program.to_string_lossy();
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            eprintln!("agentfs: {program}: command not found");
            127
        }
        std::io::ErrorKind::PermissionDenied => {
            eprintln!("agentfs: {program}: permission denied");
            126
        }
        _ => {
            eprintln!("agentfs: could not run {program}: {error}");
            126
        }
    }
}
