//! One service's task in the supervisor: idle until told to start, then
//! its life: wait for what it needs (`after`) to be ready, run its setup
//! once per instance, run it under wrap, probe readiness, and after each
//! exit follow its restart policy, with backoff (1 s doubling to 30 s).
//!
//! A service that exits [`MAX_UNREADY_EXITS`] times without ever becoming
//! ready, or once with `restart = "no"` (exit 0 there is `stopped`), is
//! `failed` and left alone until `up` or `restart` starts it again; one
//! that was ready before is restarted for as long as its policy says.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::stack::spec::Service;
use crate::stack::state::State;
use crate::stack::supervisor::board::Board;
use crate::stack::supervisor::ready::{self, Probe};
use crate::stack::supervisor::run::{describe_exit, Env, Run};

/// Exits without ever being ready after which a service is failed.
pub const MAX_UNREADY_EXITS: u32 = 3;
/// The first delay before a restart; it doubles with each exit in a row.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest delay; a run that lasted longer starts the doubling afresh.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How often a running service's readiness is probed until it is ready.
const READY_POLL: Duration = Duration::from_millis(100);
/// Lines of output a failure report carries.
pub const LAST_LINES: usize = 10;
/// How long a restart gives the old run to end before SIGKILL.
pub const RESTART_GRACE: Duration = Duration::from_secs(10);

/// What the supervisor tells a service's task.
pub enum Command {
    /// Start with this definition, unless it runs.
    Start(Service),
    /// Stop it if it runs, then start it again at once with this definition.
    Restart(Service, oneshot::Sender<()>),
    /// Stop it (SIGKILL after the grace period); the reply once it ended.
    Stop(Duration, oneshot::Sender<()>),
}

/// What the task shares with the supervisor.
pub struct Shared {
    pub board: Arc<Board>,
    pub env: Arc<Env>,
    pub run_dir: std::path::PathBuf,
    pub stack_dir: crate::stack::state::StackDir,
    /// Where each service's log stood when (`logs --since`).
    pub marks: super::marks::Marks,
}

/// How a phase of a life ended.
enum Flow {
    /// Go on to the next phase (or the next run).
    Go,
    /// The life is over; idle until told otherwise.
    Over,
    /// Start a new life at once with this definition.
    Again(Service),
}

/// The task: idle until a command starts a life, again and again.
pub async fn task(shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    let mut next: Option<Service> = None;
    loop {
        let service = match next.take() {
            Some(service) => service,
            None => match commands.recv().await {
                None => return,
                Some(Command::Start(service)) => service,
                Some(Command::Restart(service, ack)) => {
                    let _ = ack.send(());
                    service
                }
                Some(Command::Stop(_, ack)) => {
                    let _ = ack.send(());
                    continue;
                }
            },
        };
        let mut life = Life {
            shared: &shared,
            service,
            ever_ready: false,
            unready_exits: 0,
            exits_in_a_row: 0,
        };
        next = life.live(&mut commands).await;
    }
}

struct Life<'a> {
    shared: &'a Shared,
    service: Service,
    ever_ready: bool,
    unready_exits: u32,
    exits_in_a_row: u32,
}

impl Life<'_> {
    fn name(&self) -> &str {
        &self.service.name
    }

    fn set(&self, state: State, detail: impl Into<String>) {
        self.shared.board.set(self.name(), state, detail);
    }

    fn log(&self, line: &str) {
        self.shared.env.log(self.name(), line);
    }

    fn fail(&self, detail: String) -> Flow {
        let lines = self.shared.env.last_lines(self.name(), LAST_LINES);
        self.log(&format!("agentfs: {} failed: {detail}", self.name()));
        self.shared.board.update(self.name(), |s| {
            s.state = State::Failed;
            s.detail = detail;
            s.pid = None;
            s.last_lines = lines;
        });
        Flow::Over
    }

    /// Returns a definition to start a new life with at once, if asked to.
    async fn live(&mut self, commands: &mut mpsc::Receiver<Command>) -> Option<Service> {
        for phase in [Phase::Needs, Phase::Setup] {
            let flow = match phase {
                Phase::Needs => self.wait_for_needs(commands).await,
                Phase::Setup => self.setup(commands).await,
            };
            match flow {
                Flow::Go => {}
                Flow::Over => return None,
                Flow::Again(service) => return Some(service),
            }
        }
        loop {
            let flow = match self.run_once(commands).await {
                Ok(code) => self.after_exit(code, commands).await,
                Err(flow) => flow,
            };
            match flow {
                Flow::Go => {}
                Flow::Over => return None,
                Flow::Again(service) => return Some(service),
            }
        }
    }

    /// A command while the service is not running.
    fn between_runs(&self, command: Option<Command>) -> Option<Flow> {
        match command {
            None => Some(Flow::Over),
            Some(Command::Start(_)) => None,
            Some(Command::Restart(service, ack)) => {
                let _ = ack.send(());
                Some(Flow::Again(service))
            }
            Some(Command::Stop(_, ack)) => {
                self.set(State::Stopped, "stopped");
                let _ = ack.send(());
                Some(Flow::Over)
            }
        }
    }

    async fn wait_for_needs(&self, commands: &mut mpsc::Receiver<Command>) -> Flow {
        let mut changes = self.shared.board.subscribe();
        loop {
            let status = self.shared.board.snapshot();
            let states: Vec<(&str, Option<State>)> = self
                .service
                .after
                .iter()
                .map(|need| (need.as_str(), status.service(need).map(|s| s.state)))
                .collect();
            if let Some((need, state)) = states
                .iter()
                .find(|(_, s)| matches!(s, None | Some(State::Failed | State::Stopped)))
            {
                let what = state.map_or("unknown", State::as_str);
                return self.fail(format!("not started: {need} is {what}"));
            }
            let waiting: Vec<&str> = states
                .iter()
                .filter(|(_, s)| *s != Some(State::Ready))
                .map(|(need, _)| *need)
                .collect();
            if waiting.is_empty() {
                return Flow::Go;
            }
            self.set(
                State::Starting,
                format!("waiting for {} to be ready", waiting.join(", ")),
            );
            tokio::select! {
                _ = changes.changed() => {}
                command = commands.recv() => if let Some(flow) = self.between_runs(command) {
                    return flow;
                },
            }
        }
    }

    async fn setup(&self, commands: &mut mpsc::Receiver<Command>) -> Flow {
        if !self.service.dir.is_dir() {
            return self.fail(format!(
                "its directory {} does not exist",
                self.service.dir.display()
            ));
        }
        let Some(setup) = self.service.setup.clone() else {
            return Flow::Go;
        };
        if self.shared.stack_dir.setup_done(self.name(), &setup) {
            return Flow::Go;
        }
        self.set(State::Starting, "running its setup");
        self.log(&format!("agentfs: {}: setup: {setup}", self.name()));
        let mut run = match Run::spawn(&self.shared.env, &self.service, &setup) {
            Ok(run) => run,
            Err(err) => return self.fail(format!("its setup could not start: {err}")),
        };
        let code = tokio::select! {
            code = run.wait() => code,
            Some(Command::Stop(grace, ack)) = commands.recv() => {
                run.terminate(&self.shared.env, self.name(), grace).await;
                self.set(State::Stopped, "stopped during its setup");
                let _ = ack.send(());
                return Flow::Over;
            }
        };
        if code != 0 {
            return self.fail(format!("its setup exited with {}", describe_exit(code)));
        }
        if let Err(err) = self.shared.stack_dir.mark_setup_done(self.name(), &setup) {
            self.log(&format!("agentfs: cannot remember that setup ran: {err}"));
        }
        Flow::Go
    }

    /// Runs the service once; its exit code, or what a command made of it.
    async fn run_once(&mut self, commands: &mut mpsc::Receiver<Command>) -> Result<i32, Flow> {
        let mut run = match Run::spawn(&self.shared.env, &self.service, &self.service.run) {
            Ok(run) => run,
            Err(err) => return Err(self.fail(format!("could not start: {err}"))),
        };
        let waiting_for = self.service.ready.describe();
        self.shared.board.update(self.name(), |s| {
            s.state = State::Starting;
            s.detail = format!("not ready: waiting for {waiting_for}");
            s.pid = Some(run.pid);
        });
        let mut ready = false;
        let mut poll = tokio::time::interval(READY_POLL);
        loop {
            tokio::select! {
                code = run.wait() => {
                    if run.started.elapsed() >= MAX_DELAY {
                        self.exits_in_a_row = 0;
                    }
                    return Ok(code);
                }
                _ = poll.tick(), if !ready => ready = self.probe().await,
                command = commands.recv() => {
                    let (grace, ack, flow) = match command {
                        Some(Command::Start(_)) => continue,
                        Some(Command::Restart(service, ack)) => {
                            (RESTART_GRACE, Some(ack), Flow::Again(service))
                        }
                        Some(Command::Stop(grace, ack)) => (grace, Some(ack), Flow::Over),
                        None => (RESTART_GRACE, None, Flow::Over),
                    };
                    let code = run.terminate(&self.shared.env, self.name(), grace).await;
                    self.log(&format!("agentfs: {} stopped: exited with {}", self.name(), describe_exit(code)));
                    self.shared.board.update(self.name(), |s| {
                        s.state = State::Stopped;
                        s.detail = "stopped".to_owned();
                        s.pid = None;
                        s.last_exit = Some(code);
                    });
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    return Err(flow);
                }
            }
        }
    }

    /// Probes readiness once; whether the service is ready.
    async fn probe(&mut self) -> bool {
        let instance = &self.shared.env.instance;
        match ready::probe(&self.shared.run_dir, instance, &self.service).await {
            Probe::Ready => {
                self.ever_ready = true;
                self.set(State::Ready, "ready");
                self.log(&format!("agentfs: {} is ready", self.name()));
                true
            }
            Probe::NotYet(why) => {
                self.shared.board.update(self.name(), |s| {
                    s.detail = format!("not ready: {why}");
                });
                false
            }
        }
    }

    /// After the service exited by itself: restart it, or not.
    async fn after_exit(&mut self, code: i32, commands: &mut mpsc::Receiver<Command>) -> Flow {
        let exit = describe_exit(code);
        self.shared.board.update(self.name(), |s| {
            s.pid = None;
            s.last_exit = Some(code);
        });
        if !self.service.restart.restarts_after(code) {
            if code == 0 {
                self.log(&format!("agentfs: {} exited with {exit}", self.name()));
                self.set(State::Stopped, format!("exited with {exit}"));
                return Flow::Over;
            }
            return self.fail(format!("exited with {exit}"));
        }
        if !self.ever_ready {
            self.unready_exits += 1;
            if self.unready_exits >= MAX_UNREADY_EXITS {
                return self.fail(format!(
                    "exited {} times without becoming ready (last: {exit})",
                    self.unready_exits
                ));
            }
        }
        let delay = backoff(self.exits_in_a_row);
        self.exits_in_a_row += 1;
        let detail = format!("exited with {exit}; restarting in {}s", delay.as_secs());
        self.log(&format!("agentfs: {} {detail}", self.name()));
        self.shared.board.update(self.name(), |s| {
            s.state = State::Restarting;
            s.detail = detail;
            s.restarts += 1;
        });
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Flow::Go,
                command = commands.recv() => if let Some(flow) = self.between_runs(command) {
                    return flow;
                },
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Needs,
    Setup,
}

/// The delay before restart number `n` (from 0) in a row.
fn backoff(n: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(1000), MAX_DELAY);
    }
}
