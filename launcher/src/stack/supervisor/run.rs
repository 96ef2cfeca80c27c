//! One run of a service's command (or its setup): `agentfs wrap --name
//! SERVICE --instance ID -- sh -c COMMAND`, the agentfs binary itself, so
//! the run gets all of wrap's behaviour (the shim, the bridge fallback, its
//! log, the router, the process tree ended with it). wrap's own lines
//! (`agentfs: …` on its stderr) go into the service's log beside the app's
//! output, which wrap writes there itself.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use agentfs_contract::env;
use agentfs_contract::rundir;
use agentfs_contract::sidecar::Kind;

use crate::app::process_group::Target;
use crate::instance::log::{self, LogWriter};
use crate::instance::names::InstanceName;
use crate::stack::spec::Service;

/// What every run of a stack's services shares.
#[derive(Debug)]
pub struct Env {
    pub exe: PathBuf,
    pub home: PathBuf,
    pub instance: String,
}

impl Env {
    fn logs_dir(&self) -> PathBuf {
        agentfs_contract::layout::logs_dir(&self.home)
    }

    fn name(&self, service: &str) -> InstanceName {
        InstanceName::new(service, &self.instance)
    }

    /// Appends `line` to the service's log (opened for each line: wrap
    /// writes the same log, and either may rotate it).
    pub fn log(&self, service: &str, line: &str) {
        if let Ok(mut writer) = LogWriter::open(&self.logs_dir(), &self.name(service)) {
            let _ = writer.write(format!("{line}\n").as_bytes());
        }
    }

    /// The last `n` lines of the service's log.
    pub fn last_lines(&self, service: &str, n: usize) -> Vec<String> {
        log::tail_lines(&log::path(&self.logs_dir(), &self.name(service)), Some(n))
    }
}

/// A running `agentfs wrap` of a service.
pub struct Run {
    pub child: Child,
    pub pid: u32,
    pub started: Instant,
}

impl Run {
    /// Starts `script` for `service` under wrap.
    pub fn spawn(env: &Arc<Env>, service: &Service, script: &str) -> std::io::Result<Run> {
        let mut command = Command::new(&env.exe);
        command
            .args(["wrap", "--name", &service.name, "--instance", &env.instance])
            .args(["--", "sh", "-c", script])
            .current_dir(&service.dir)
            .envs(service.env.iter().map(|(k, v)| (k, v)))
            .env(env::HOME, &env.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group: a signal meant for the supervisor (or a
            // terminal's Ctrl-C) never reaches it except through us.
            .process_group(0);
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        if let Some(stderr) = child.stderr.take() {
            let env = Arc::clone(env);
            let name = service.name.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    // The app's own stderr is in the log already (wrap keeps it).
                    if line.starts_with("agentfs: ") {
                        env.log(&name, &line);
                    }
                }
            });
        }
        Ok(Run {
            child,
            pid,
            started: Instant::now(),
        })
    }

    /// Waits for the run to end; its exit code as wrap gives it.
    pub async fn wait(&mut self) -> i32 {
        match self.child.wait().await {
            Ok(status) => exit_code(status),
            Err(_) => 1,
        }
    }

    /// Ends the run as `agentfs stop` would: SIGTERM to wrap (which passes
    /// it to the app's process group and waits for it), then, after
    /// `grace`, SIGKILL to whatever of the service still runs.
    pub async fn terminate(&mut self, env: &Env, service: &str, grace: Duration) -> i32 {
        let pid = Pid::from_raw(self.pid as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if let Ok(code) = tokio::time::timeout(grace, self.wait()).await {
            return code;
        }
        env.log(
            service,
            &format!("agentfs: {service} did not end within {grace:?} of SIGTERM: killed"),
        );
        kill_listeners(env, service);
        let _ = killpg(pid, Signal::SIGKILL);
        self.wait().await
    }
}

/// SIGKILL to the process groups that own the service's listeners.
fn kill_listeners(env: &Env, service: &str) {
    let run_dir = agentfs_contract::layout::run_dir(&env.home);
    let Ok(scan) = rundir::scan(&run_dir) else {
        return;
    };
    for entry in scan.of_instance(service, &env.instance) {
        let group = entry.sidecar.kind == Kind::Shim;
        if let Some(target) = Target::of(entry.sidecar.pid, group) {
            let _ = target.signal(Signal::SIGKILL);
        }
    }
}

/// An exit code as shells and wrap give it: 128+N for signal N.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// `code 1`, or `signal 9 (code 137)`.
pub fn describe_exit(code: i32) -> String {
    if code > 128 && code < 128 + 65 {
        format!("code {code} (signal {})", code - 128)
    } else {
        format!("code {code}")
    }
}
