//! `agentfs wrap [--name NAME] [--instance ID] -- CMD [ARGS...]`: runs CMD with
//! the shim preloaded, so its TCP listeners become Unix sockets of one instance.
//!
//! wrap sets the `AGENTFS_*` variables and the preload variable, runs CMD
//! under the reaper (`app::reaper`), forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT
//! to its whole process tree, prints a line per listener as it appears,
//! lives as long as anything it started lives, exits with CMD's exit code,
//! and removes the instance's files once the tree is gone.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use agentfs_contract::rundir;
use agentfs_injectable::{self as injectable, Verdict};

use super::args::{Cmd, StandIns};
use crate::app::App;
use crate::inject::library::EmbeddedShim;
use crate::inject::preload;
use crate::instance::{IdFrom, Instance};
use crate::{bridge, netns, router_process};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs wrap -- node server.js
  agentfs wrap --name shop --instance feature-x -- npm run dev

The app keeps asking for its usual port; each instance gets its own socket in
$AGENTFS_HOME/run (default ~/.agentfs/run), so copies never conflict.

Every instance is a private localhost: a process of instance feat-x that
connects to localhost:PORT reaches the listener feat-x has on PORT, in any of
its apps (its own app first); when feat-x has none there, the connect goes to
the real port. So a whole stack runs once per instance:

  agentfs wrap --name redis --instance feat-x -- redis-server --port 6379
  agentfs wrap --name api   --instance feat-x -- python3 api.py 8080
  agentfs wrap --name web   --instance feat-x -- node web.js 3000
  (the same three with --instance feat-y: same ports, their own services)

Inside a git work tree the instance defaults to the branch, so the three
commands need no --instance there. A client of an instance (a test runner, a
browser driver, curl) runs with `agentfs exec --instance feat-x -- CMD`:
wired the same way, but nothing it listens on is announced or routed.
Inside wrapped processes localhost and *.localhost resolve to loopback.
Programs the shim cannot enter (static binaries, Go) run on Linux in a private
network namespace: their listeners are routed, their localhost is their
instance's (and the host's other ports), two copies may hard-code one port.
Where that is not available, and with --no-netns, they run behind a bridge.

Everything wrap starts ends with it, whatever session or process group it
moved to (setsid, a daemon's double fork such as `pg_ctl start`): wrap lives
as long as anything it started lives, passes Ctrl-C and SIGTERM to all of
it, and if wrap is killed (even with SIGKILL) its tree is ended for it.
(On macOS a daemon that double-forks leaves the tree.)")]
pub struct WrapArgs {
    /// App name (a DNS label). Default: package.json's name, else the directory's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Instance id (a DNS label): the app's copy, and the stack it joins (the apps of one
    /// instance see each other's ports on localhost). Default: the instance of the wrapped
    /// process this runs in, else the git branch (or work tree, on a detached HEAD), else a
    /// short random id.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Don't start the router (by default wrap starts one when none runs).
    #[arg(long)]
    pub no_router: bool,
    #[command(flatten)]
    pub stand_ins: StandIns,
    /// Run the app behind a bridge (a socket forwarding to its TCP port) instead of
    /// preloading the shim. wrap does this by itself for programs that cannot take it.
    #[arg(long)]
    pub bridge: bool,
    /// For programs the shim cannot enter, use the bridge rather than a private network
    /// namespace (Linux; the lane is the default where it works).
    #[arg(long)]
    pub no_netns: bool,
    #[command(flatten)]
    pub cmd: Cmd,
}

pub fn run(args: WrapArgs, shim: &EmbeddedShim) -> Result<i32> {
    let instance = Instance::prepare(args.name.as_deref(), args.instance.as_deref())?;
    let router_port = if args.no_router {
        None
    } else {
        start_router(&instance.home)
    };
    say_what_runs(&instance, &args.cmd.command);
    let program = &args.cmd.command[0];
    let verdict = if args.bridge {
        Verdict::NotInjectable {
            reason: "--bridge was given".to_owned(),
            strips_children: false,
        }
    } else {
        injectable::check(Path::new(program), shim.bytes)
    };
    if let Verdict::NotInjectable {
        reason,
        strips_children,
    } = verdict
    {
        if strips_children {
            eprintln!("agentfs: {}", launcher_hint(&args.cmd.command));
        }
        // macOS has no network namespaces: the bridge, as before.
        if args.bridge || args.no_netns || !cfg!(target_os = "linux") {
            return bridge::run(&instance, &args.cmd.command, router_port, &reason);
        }
        return match netns::probe::available() {
            Ok(_) => netns::run(&instance, &args.cmd.command, router_port, &reason),
            Err(no) => {
                let reason = format!(
                    "{reason}, and it gets no private network namespace: {} (fix: {})",
                    no.reason, no.fix
                );
                bridge::run(&instance, &args.cmd.command, router_port, &reason)
            }
        };
    }
    let mut command = tokio::process::Command::new(program);
    command.args(&args.cmd.command[1..]);
    let stand_ins = args.stand_ins.wanted();
    preload::set_up(&mut command, shim, &instance.home, stand_ins, router_port)?;
    App::run(&instance, command, router_port, true)
}

/// One line: what runs as which instance, and why that instance when it
/// was not asked for; a note when the same app already runs in it.
fn say_what_runs(instance: &Instance, command: &[OsString]) {
    let command: Vec<_> = command.iter().map(|a| a.to_string_lossy()).collect();
    let why = instance
        .id_from
        .explain()
        .map_or_else(String::new, |why| format!(" (instance from {why})"));
    eprintln!(
        "agentfs: {}/{}: running {}{why}",
        instance.app,
        instance.id,
        command.join(" ")
    );
    if instance.id_from == IdFrom::Flag {
        return;
    }
    let scan = rundir::scan(&instance.run_dir).unwrap_or_default();
    let running = scan
        .of_instance(&instance.app, &instance.id)
        .find(|e| e.is_live());
    if let Some(running) = running {
        eprintln!(
            "agentfs: note: {}/{} already runs (pid {}, port {}); a second copy asking for the \
             same port fails as it would on one machine: give it --instance NAME to run beside it",
            instance.app, instance.id, running.sidecar.pid, running.sidecar.port
        );
    }
}

/// What to say when the program is a launcher the loader strips of the
/// preload variable (macOS: `uv`, `turbo`): what it starts loses the shim
/// too, and agentfs inside the launcher keeps it. A subcommand word after
/// the program (`uv run …`) is kept before `agentfs wrap --`.
fn launcher_hint(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = Path::new(&words[0])
        .file_name()
        .map_or_else(|| words[0].clone(), |n| n.to_string_lossy().into_owned());
    let is_subcommand = |w: &String| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic());
    let (head, rest) = match words.get(1) {
        Some(sub) if is_subcommand(sub) && words.len() > 2 => {
            (format!("{program} {sub}"), words[2..].join(" "))
        }
        _ if words.len() > 1 => (format!("{program} …"), words[1..].join(" ")),
        _ => (program.clone(), "CMD".to_owned()),
    };
    format!(
        "{program} makes the loader remove the preload variable from everything it starts, \
         so the program it runs is bridged too; to keep the shim for that program, put agentfs \
         inside it: `{head} agentfs wrap -- {rest}`"
    )
}

/// Starts the router unless one runs, and returns its port. A router that
/// cannot start is not fatal: the app still runs and answers on its socket.
fn start_router(home: &Path) -> Option<u16> {
    match router_process::ensure_running(home, &router_process::Launch::default()) {
        Ok(info) => Some(info.port),
        Err(e) => {
            eprintln!("agentfs: the router could not start ({e:#}); the app runs without URLs");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(words: &[&str]) -> String {
        launcher_hint(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_hint_puts_agentfs_inside_the_launcher() {
        let uv = hint(&["/opt/bin/uv", "run", "uvicorn", "app:app", "--port", "8000"]);
        assert!(uv.starts_with("uv makes the loader remove"), "{uv}");
        assert!(
            uv.ends_with("`uv run agentfs wrap -- uvicorn app:app --port 8000`"),
            "{uv}"
        );
        let turbo = hint(&["turbo", "dev"]);
        assert!(turbo.ends_with("`turbo … agentfs wrap -- dev`"), "{turbo}");
        let flags = hint(&["npx", "--yes", "vite"]);
        assert!(
            flags.ends_with("`npx … agentfs wrap -- --yes vite`"),
            "{flags}"
        );
        assert!(hint(&["uv"]).ends_with("`uv agentfs wrap -- CMD`"));
        assert!(!hint(&["uv", "run", "x"]).contains('\n'));
    }
}
