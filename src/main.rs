//! `agentfs`: run many copies of an unmodified web app side by side, each reachable by name.
//!
//! This file only parses arguments; each subcommand lives in its own module
//! under the `agentfs-launcher` crate's `commands` with a `run()`.
#![forbid(unsafe_code)]

use clap::{CommandFactory, Parser, Subcommand};

use agentfs_launcher::commands::{
    agent_help, bridge, completions, doctor, down, exec, hosts, logs, mcp, netns, ps, reaper,
    restart, route, router, stop, trust, up, url, wait, wrap,
};
use agentfs_launcher::inject::{library::EmbeddedShim, stand_ins, unshim};

/// The shim library built by build.rs for this target, carried inside the binary.
static SHIM: EmbeddedShim = EmbeddedShim {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/agentfs-shim")),
    file_name: env!("AGENTFS_SHIM_FILE_NAME"),
};

#[derive(Parser)]
#[command(name = "agentfs", version, about, long_about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const ABOUT: &str = "\
Run many copies of the same unmodified web app at once (one per git worktree, branch or \
experiment) without port conflicts, and reach each by name.

`agentfs wrap -- CMD` preloads a shim that turns the app's TCP listeners into Unix sockets \
under $AGENTFS_HOME/run (default ~/.agentfs/run); the router then serves each instance at \
http://APP.localhost:PORT and http://INSTANCE.APP.localhost:PORT.

In a git work tree with an agentfs.toml (or a Procfile), `agentfs up -d --wait` runs its whole \
stack as one instance, and `agentfs down` stops it. Coding agents: `agentfs agent-help`.";

#[derive(Subcommand)]
enum Command {
    /// Run CMD with the shim, so its TCP listeners become per-instance Unix sockets.
    Wrap(wrap::WrapArgs),
    /// Run CMD as a client of an instance: its connects to localhost reach the instance's
    /// listeners, and nothing it listens on is announced or routed.
    Exec(exec::ExecArgs),
    /// Forward a run-dir socket to an app's TCP port, for programs that cannot take the shim.
    Bridge(bridge::BridgeArgs),
    /// List every instance: app, instance, kind, pid, port, URL, status, uptime.
    Ps(ps::PsArgs),
    /// Route HOST to a Unix socket no agentfs process made, or --remove it.
    Route(route::RouteArgs),
    /// Route APP.localhost to the running instances (background unless --foreground).
    Router(router::RouterArgs),
    /// Print what an instance's app wrote to stdout and stderr (-f to follow it).
    Logs(logs::LogsArgs),
    /// Stop an instance as Ctrl-C on its wrap would: SIGTERM, then SIGKILL.
    Stop(stop::StopArgs),
    /// Print an instance's URL.
    Url(url::UrlArgs),
    /// Bring the work tree's stack up (agentfs.toml or Procfile): -d to keep it in the background.
    Up(up::UpArgs),
    /// Wait until the stack's services are ready (exit 1: one failed, 2: timeout).
    Wait(wait::WaitArgs),
    /// Stop the work tree's stack: its services in reverse order, then its supervisor.
    Down(down::DownArgs),
    /// Stop one service of the running stack and start it again.
    Restart(restart::RestartArgs),
    /// A Model Context Protocol server over stdio, for coding agents.
    Mcp(mcp::McpArgs),
    /// Print a short guide for coding agents (Markdown, for AGENTS.md or a skill).
    #[command(name = "agent-help")]
    AgentHelp(agent_help::AgentHelpArgs),
    /// The supervisor `agentfs up` starts for a stack.
    #[command(name = "stack-supervisor", hide = true)]
    StackSupervisor(up::SupervisorArgs),
    /// Keep the live names in a managed block of /etc/hosts (sync, clean, check).
    Hosts(hosts::HostsArgs),
    /// Trust agentfs's local CA in this user's browsers and clients (--check: say where it is).
    Trust(trust::TrustArgs),
    /// Take agentfs's local CA out of every place `agentfs trust` put it.
    Untrust(trust::UntrustArgs),
    /// Check whether each part of agentfs works on this machine, and say how to fix what does not.
    Doctor(doctor::DoctorArgs),
    /// The small server `agentfs doctor` starts under the shim.
    #[command(name = "doctor-probe", hide = true)]
    DoctorProbe(doctor::probe::ProbeArgs),
    /// Print a completion script for bash, zsh or fish (instance names included).
    Completions(completions::CompletionsArgs),
    /// The NAMEs the completion scripts offer (used by them).
    #[command(hide = true)]
    CompleteNames(completions::CompleteNamesArgs),
    /// The app's first process, which keeps its process tree whole and ends it with
    /// wrap (started by wrap itself).
    #[command(hide = true)]
    Reaper(reaper::ReaperArgs),
    /// The namespace lane's app, started by wrap.
    #[command(name = "netns-run", hide = true)]
    NetnsRun(netns::RunArgs),
    /// The namespace lane's init.
    #[command(name = "netns-init", hide = true)]
    NetnsInit(netns::InitArgs),
    /// Whether the namespace lane works here.
    #[command(name = "netns-probe", hide = true)]
    NetnsProbe,
    // New subcommands: one variant here and one arm in `main` below.
}

fn main() {
    // Started as an interpreter stand-in (`node`, `python3`, ...) by wrap.
    if let Some(interpreter) = stand_ins::invoked_as() {
        std::process::exit(stand_ins::run(&interpreter));
    }
    // Started from inside a wrapped process: never run as part of it.
    unshim::ensure();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wrap(args) => wrap::run(args, &SHIM),
        Command::Exec(args) => exec::run(args, &SHIM),
        Command::Bridge(args) => bridge::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Route(args) => route::run(args),
        Command::Router(args) => router::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Url(args) => url::run(args),
        Command::Up(args) => up::run(args),
        Command::Wait(args) => wait::run(args),
        Command::Down(args) => down::run(args),
        Command::Restart(args) => restart::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::AgentHelp(args) => agent_help::run(args),
        Command::StackSupervisor(args) => up::supervise(args),
        Command::Hosts(args) => hosts::run(args),
        Command::Trust(args) => trust::run(args),
        Command::Untrust(args) => trust::run_untrust(args),
        Command::Doctor(args) => doctor::run(args, &SHIM),
        Command::DoctorProbe(args) => doctor::probe::run(args),
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::CompleteNames(args) => completions::names(args),
        Command::Reaper(args) => Ok(reaper::run(args)),
        Command::NetnsRun(args) => netns::run(args),
        Command::NetnsInit(args) => netns::init(args),
        Command::NetnsProbe => Ok(netns::probe()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("agentfs: {err:#}");
            std::process::exit(1);
        }
    }
}
