//! What `up`, `wait`, `down` and `restart` do, seen from the command's
//! side: start the supervisor when none runs, ask it over its control
//! socket, and watch `state.json` until the services are where the command
//! wants them (or have failed, or time ran out).

use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use agentfs_contract::env;

use crate::instance::names::{self, InstanceName};
use crate::router_process;
use crate::stack::control::{self, Request};
use crate::stack::state::{self, StackStatus, State};
use crate::stack::supervisor::NOT_STARTED;
use crate::stack::target::Target;

/// How long a new supervisor may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long a control request other than `down` may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Gap between two looks at `state.json`.
const POLL: Duration = Duration::from_millis(100);

/// Exit codes of `up`, `wait`, `down` and `restart`.
pub mod exit {
    pub const OK: i32 = 0;
    /// A service failed (or the stack is not up, or the command failed).
    pub const FAILED: i32 = 1;
    /// `--timeout` passed first.
    pub const TIMEOUT: i32 = 2;
}

/// Starts the stack's supervisor unless it runs, then asks it to start
/// `services` (all when empty); its answer (`started`, `already`).
pub fn start(target: &Target, services: &[String]) -> Result<Value> {
    let file = target.file()?;
    match target.dir.status() {
        Some(status) if status.file != file.path => bail!(
            "instance {} already runs the stack of {}: stop it there (`agentfs down --instance \
             {0}`), or give this one another --instance",
            target.instance,
            status.file.display()
        ),
        Some(_) => {}
        None => {
            refuse_strays(target)?;
            spawn_supervisor(target)?;
        }
    }
    let request = Request::Start {
        services: services.to_vec(),
    };
    control::call(&target.dir.control(), &request, CALL_TIMEOUT)
}

/// Services of the stack that run in its instance with no supervisor (a
/// supervisor killed by SIGKILL leaves them; so does `agentfs wrap --name
/// SERVICE` by hand) would hold the ports the stack's own runs ask for:
/// say so rather than start a stack that cannot come up.
fn refuse_strays(target: &Target) -> Result<()> {
    let scan = names::scan(&target.home)?;
    let running = names::running(&scan);
    let strays: Vec<String> = target
        .file()?
        .names()
        .into_iter()
        .filter(|service| running.contains(&InstanceName::new(service, &target.instance)))
        .collect();
    if strays.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = strays
        .iter()
        .map(|s| format!("{}.{s}", target.instance))
        .collect();
    bail!(
        "{} already run{} in instance {} outside the stack's supervisor: stop {} (`agentfs \
         down{}` stops them, or `agentfs stop NAME`), or give this stack another --instance",
        names.join(", "),
        if names.len() == 1 { "s" } else { "" },
        target.instance,
        if names.len() == 1 { "it" } else { "them" },
        if target.file.is_some() {
            String::new()
        } else {
            format!(" --instance {}", target.instance)
        }
    )
}

fn spawn_supervisor(target: &Target) -> Result<()> {
    let file = target.file()?;
    let router_port = match router_process::ensure_running(&target.home, &Default::default()) {
        Ok(router) => router.port,
        Err(err) => {
            eprintln!("agentfs: the router could not start ({err:#}); services run without URLs");
            router_process::configured_port()
        }
    };
    target.dir.ensure()?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(target.dir.log())
        .with_context(|| format!("cannot open {}", target.dir.log().display()))?;
    let exe = std::env::current_exe().context("cannot find the agentfs executable")?;
    let mut command = Command::new(exe);
    for var in env::INSTANCE_VARS.iter().chain([&env::PRELOAD]) {
        command.env_remove(var);
    }
    let mut child = command
        .args(["stack-supervisor", "--instance", &target.instance])
        .arg("--file")
        .arg(&file.path)
        .args(["--router-port", &router_port.to_string()])
        .env(env::HOME, &target.home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the stack's supervisor")?;
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if target.dir.status().is_some()
            && std::os::unix::net::UnixStream::connect(target.dir.control()).is_ok()
        {
            // Reaped whenever it ends, so it never lingers as our zombie.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        // Exiting while the stack is up: another `up` started one first.
        if let Some(status) = child.try_wait()?.filter(|_| !target.dir.is_up()) {
            bail!(
                "the stack's supervisor exited ({status}); see {}",
                target.dir.log().display()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the stack's supervisor did not answer within {START_DEADLINE:?}; see {}",
                target.dir.log().display()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// What `wait` (and `up`) wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Each service runs (or is ready).
    Started,
    /// Each service is ready.
    Ready,
}

/// How waiting ended.
#[derive(Debug)]
pub struct Waited {
    /// [`exit::OK`], [`exit::FAILED`] or [`exit::TIMEOUT`].
    pub code: i32,
    pub status: Option<StackStatus>,
    /// The services that failed (code 1) or are not there yet (code 2).
    pub problems: Vec<String>,
}

/// Waits until `services` (all when empty) are as `until` says, one has
/// failed, the stack is not up, or `timeout` passed.
pub fn wait(target: &Target, services: &[String], until: Until, timeout: Duration) -> Waited {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(status) = target.dir.status() else {
            return Waited {
                code: exit::FAILED,
                status: None,
                problems: Vec::new(),
            };
        };
        // Without names: every service some `up` asked for.
        let wanted: Vec<String> = if services.is_empty() {
            status
                .services
                .iter()
                .filter(|s| !(s.state == State::Stopped && s.detail == NOT_STARTED))
                .map(|s| s.name.clone())
                .collect()
        } else {
            services.to_vec()
        };
        let (failed, pending) = judge(&status, &wanted, until);
        if !failed.is_empty() || pending.is_empty() || Instant::now() >= deadline {
            let (code, problems) = if !failed.is_empty() {
                (exit::FAILED, failed)
            } else if pending.is_empty() {
                (exit::OK, Vec::new())
            } else {
                (exit::TIMEOUT, pending)
            };
            return Waited {
                code,
                status: Some(status),
                problems,
            };
        }
        std::thread::sleep(POLL);
    }
}

/// The services of `wanted` that failed, and those not there yet.
fn judge(status: &StackStatus, wanted: &[String], until: Until) -> (Vec<String>, Vec<String>) {
    let (mut failed, mut pending) = (Vec::new(), Vec::new());
    for name in wanted {
        let Some(service) = status.service(name) else {
            failed.push(name.clone());
            continue;
        };
        let done = match (service.state, until) {
            (State::Failed | State::Stopped, _) => {
                failed.push(name.clone());
                continue;
            }
            (State::Ready, _) => true,
            (State::Starting, Until::Started) => service.pid.is_some(),
            (State::Restarting, Until::Started) => true,
            (State::Starting | State::Restarting, Until::Ready) => false,
        };
        if !done {
            pending.push(name.clone());
        }
    }
    (failed, pending)
}

/// Asks the supervisor to restart `service`.
pub fn restart(target: &Target, service: &str) -> Result<Value> {
    if !target.dir.is_up() {
        bail!(not_up(target));
    }
    let request = Request::Restart {
        service: service.to_owned(),
    };
    let grace = super::supervisor::RESTART_GRACE;
    control::call(&target.dir.control(), &request, CALL_TIMEOUT + grace)
}

/// Stops the stack: its supervisor stops the services in reverse
/// dependency order and exits. Services a killed supervisor left behind
/// are stopped as `agentfs stop` would. The names of what was stopped.
pub fn down(target: &Target, timeout: Duration) -> Result<Vec<String>> {
    let last = target.dir.last_status();
    let mut stopped = Vec::new();
    if target.dir.is_up() {
        let services = last.as_ref().map_or(1, |s| s.services.len()) as u32;
        // Each service may take the whole grace period and then a kill.
        let patience = (timeout + Duration::from_secs(10)) * services.max(1) + CALL_TIMEOUT;
        let request = Request::Down {
            timeout_secs: timeout.as_secs(),
        };
        let reply = control::call(&target.dir.control(), &request, patience)?;
        stopped.extend(names_in(&reply["stopped"]));
        let deadline = Instant::now() + START_DEADLINE;
        while target.dir.is_up() {
            if Instant::now() >= deadline {
                bail!("the stack's supervisor did not exit after stopping its services");
            }
            std::thread::sleep(POLL);
        }
    }
    stopped.extend(stop_leftovers(target, last.as_ref(), timeout)?);
    state::clear(&target.dir)?;
    Ok(stopped)
}

/// Runs `agentfs stop` for each service of the stack that still has a
/// running instance (a supervisor killed by SIGKILL leaves them).
fn stop_leftovers(
    target: &Target,
    last: Option<&StackStatus>,
    timeout: Duration,
) -> Result<Vec<String>> {
    let mut names: Vec<String> = target.file.iter().flat_map(|f| f.names()).collect();
    names.extend(
        last.iter()
            .flat_map(|s| s.services.iter().map(|s| s.name.clone())),
    );
    names.sort();
    names.dedup();
    let running = names::running(&names::scan(&target.home)?);
    let exe = std::env::current_exe().context("cannot find the agentfs executable")?;
    let mut stopped = Vec::new();
    for name in names {
        let instance = InstanceName::new(&name, &target.instance);
        if !running.contains(&instance) {
            continue;
        }
        let status = Command::new(&exe)
            .args(["stop", "--timeout", &timeout.as_secs().to_string()])
            .arg(instance.to_string())
            .env(env::HOME, &target.home)
            .stdout(Stdio::null())
            .status()
            .context("cannot run agentfs stop")?;
        if !status.success() {
            return Err(anyhow!("could not stop {instance}"));
        }
        stopped.push(name);
    }
    Ok(stopped)
}

fn names_in(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The error for a command that needs the stack up.
pub fn not_up(target: &Target) -> String {
    format!(
        "the stack of instance {} is not up: start it with `agentfs up -d{}`",
        target.instance,
        if target.file.is_some() {
            String::new()
        } else {
            format!(" --instance {}", target.instance)
        }
    )
}

/// Whether none of `wanted` is still on its way to running.
pub fn judge_started(status: &StackStatus, wanted: &[String]) -> bool {
    judge(status, wanted, Until::Started).1.is_empty()
}

/// Where `service`'s log stood at `unix_ms`, as the stack's supervisor
/// noted it (`None`: before its first note, so all that is kept is newer).
pub fn log_mark(
    dir: &state::StackDir,
    service: &str,
    unix_ms: u64,
) -> Result<Option<super::supervisor::marks::Mark>> {
    if !dir.is_up() {
        bail!(
            "--since needs the stack of {} up: its supervisor notes when each log grows              (logs keep no times of their own); use -n N instead",
            dir.instance
        );
    }
    let request = Request::LogMark {
        service: service.to_owned(),
        unix_ms,
    };
    let data = control::call(&dir.control(), &request, CALL_TIMEOUT)?;
    Ok(serde_json::from_value(data["mark"].clone()).unwrap_or(None))
}
