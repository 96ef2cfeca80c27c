//! The stack's supervisor: the hidden `agentfs stack-supervisor`, which
//! `up` starts in a session of its own (never under the shim) and which
//! keeps the stack's services running after the terminal goes.
//!
//! It holds the stack's lock for its lifetime, answers on the control
//! socket ([`crate::stack::control`]), keeps `state.json` current
//! ([`board`]), and runs one task per service ([`service`]), each of whose
//! runs is an `agentfs wrap` ([`run`]) probed for readiness ([`ready`]).
//! SIGTERM, SIGINT and SIGHUP are taken as `down`: services are stopped in
//! reverse dependency order, then the supervisor exits and its state goes.

mod board;
pub mod marks;
mod ready;
mod run;
mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use agentfs_contract::{layout, liveness};

use crate::instance::log;
use crate::instance::names::InstanceName;
use crate::stack::control::{self, Request};
use crate::stack::file::{self, StackFile};
use crate::stack::order;
use crate::stack::state::{self, StackDir, StackStatus};
use board::Board;
use marks::Marks;
use run::Env;
use service::{Command, Shared};

pub use board::NOT_STARTED;
pub use service::RESTART_GRACE;

/// How long `down` by signal gives each service before SIGKILL.
const SIGNAL_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What `up` starts the supervisor with.
#[derive(Debug, clap::Args)]
pub struct SupervisorArgs {
    #[arg(long)]
    pub instance: String,
    /// The stack file.
    #[arg(long)]
    pub file: PathBuf,
    #[arg(long)]
    pub router_port: u16,
}

/// Runs the supervisor until `down` (or a signal); 0 when another
/// supervisor already runs the stack.
pub fn run(args: SupervisorArgs) -> Result<i32> {
    // A session of its own: no terminal's hangup reaches it.
    let _ = nix::unistd::setsid();
    let home = layout::home_from_env()?;
    let dir = StackDir::new(&home, &args.instance);
    dir.ensure()?;
    let Some(_lock) = liveness::try_acquire(&dir.lock())? else {
        return Ok(0);
    };
    let stack = load(&args.file)?;
    dir.say(&format!(
        "supervising {} as instance {} (pid {})",
        stack.path.display(),
        args.instance,
        std::process::id()
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let env = Env {
        exe: std::env::current_exe().context("cannot find the agentfs executable")?,
        home: home.clone(),
        instance: args.instance.clone(),
    };
    let result = runtime.block_on(async {
        let listener = bind(&dir)?;
        let mut supervisor = Supervisor::new(stack, env, dir.clone(), args.router_port);
        supervisor.serve(listener).await
    });
    let _ = state::clear(&dir);
    dir.say(&match &result {
        Ok(()) => "down".to_owned(),
        Err(err) => format!("ended: {err:#}"),
    });
    result.map(|()| 0)
}

/// The stack file at `path`, as `agentfs.toml` or `Procfile`.
pub fn load(path: &std::path::Path) -> Result<StackFile> {
    if path.file_name().is_some_and(|n| n == file::PROCFILE_NAME) {
        file::load_procfile(path)
    } else {
        file::load_toml(path)
    }
}

fn bind(dir: &StackDir) -> Result<UnixListener> {
    let path = dir.control();
    // We hold the lock: a socket left here is a dead supervisor's.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

struct Supervisor {
    stack: StackFile,
    shared: Arc<Shared>,
    tasks: BTreeMap<String, mpsc::Sender<Command>>,
}

impl Supervisor {
    fn new(stack: StackFile, env: Env, dir: StackDir, router_port: u16) -> Supervisor {
        let status = StackStatus {
            instance: env.instance.clone(),
            file: stack.path.clone(),
            supervisor: std::process::id(),
            router_port,
            services: stack
                .services
                .iter()
                .map(|s| Board::fresh(&s.name, &env.instance, router_port))
                .collect(),
        };
        let shared = Arc::new(Shared {
            board: Arc::new(Board::new(status, dir.clone())),
            run_dir: layout::run_dir(&env.home),
            env: Arc::new(env),
            stack_dir: dir,
            marks: Marks::default(),
        });
        tokio::spawn(sample_logs(Arc::clone(&shared)));
        let mut supervisor = Supervisor {
            stack,
            shared,
            tasks: BTreeMap::new(),
        };
        for name in supervisor.stack.names() {
            supervisor.spawn_task(&name);
        }
        supervisor
    }

    fn spawn_task(&mut self, name: &str) {
        let (send, receive) = mpsc::channel(8);
        tokio::spawn(service::task(Arc::clone(&self.shared), receive));
        self.tasks.insert(name.to_owned(), send);
    }

    async fn serve(&mut self, listener: UnixListener) -> Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            let mut conn = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((conn, _)) => conn,
                    Err(_) => continue,
                },
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => break,
            };
            let request = read_request(&mut conn).await;
            let down = matches!(request, Ok(Request::Down { .. }));
            let result = match request {
                Ok(request) => self.handle(request).await,
                Err(err) => Err(err),
            };
            let _ = conn.write_all(&control::reply(result)).await;
            if down {
                return Ok(());
            }
        }
        self.down(SIGNAL_GRACE).await;
        Ok(())
    }

    async fn handle(&mut self, request: Request) -> Result<Value> {
        match request {
            Request::Start { services } => self.start(&services).await,
            Request::Restart { service } => self.restart(&service).await,
            Request::Down { timeout_secs } => {
                Ok(self.down(Duration::from_secs(timeout_secs)).await)
            }
            Request::LogMark { service, unix_ms } => {
                Ok(json!({ "mark": self.shared.marks.at(&service, unix_ms) }))
            }
        }
    }

    /// Reads the stack file again, keeping the one it has if the new one is bad.
    fn reload(&mut self) -> Result<()> {
        let stack = load(&self.stack.path)?;
        for spec in &stack.services {
            if !self.tasks.contains_key(&spec.name) {
                let board = &self.shared.board;
                let status = board.snapshot();
                board.add(Board::fresh(
                    &spec.name,
                    &status.instance,
                    status.router_port,
                ));
                self.spawn_task(&spec.name);
            }
        }
        self.stack = stack;
        Ok(())
    }

    fn service(&self, name: &str) -> Result<crate::stack::spec::Service> {
        let spec = self.stack.service(name).ok_or_else(|| {
            anyhow!(
                "there is no service {name:?} in {} (there are: {})",
                self.stack.path.display(),
                self.stack.names().join(", ")
            )
        })?;
        Ok(spec.for_instance(&self.shared.env.instance, &self.stack.dir))
    }

    async fn start(&mut self, wanted: &[String]) -> Result<Value> {
        self.reload()?;
        let order = order::start_order(&self.stack.services, wanted)?;
        let (mut started, mut already) = (Vec::new(), Vec::new());
        for name in order {
            let board = &self.shared.board;
            if board.state_of(&name).is_some_and(|s| s.is_active()) {
                already.push(name);
                continue;
            }
            // Marked before the task hears of it, so a service started after
            // this one never sees it as not started.
            board.set(&name, state::State::Starting, "starting");
            let service = self.service(&name)?;
            self.send(&name, Command::Start(service)).await?;
            started.push(name);
        }
        Ok(json!({ "started": started, "already": already }))
    }

    async fn restart(&mut self, name: &str) -> Result<Value> {
        self.reload()?;
        let service = self.service(name)?;
        self.shared
            .board
            .set(name, state::State::Starting, "restarting at your request");
        let (ack, done) = oneshot::channel();
        self.send(name, Command::Restart(service, ack)).await?;
        done.await
            .map_err(|_| anyhow!("{name}'s task ended before it restarted"))?;
        Ok(json!({ "restarted": name }))
    }

    /// Stops every service, in reverse dependency order; what was stopped.
    async fn down(&mut self, grace: Duration) -> Value {
        let order = order::start_order(&self.stack.services, &[]).unwrap_or_default();
        let mut names: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !order.contains(n))
            .cloned()
            .collect();
        names.extend(order.into_iter().rev());
        let mut stopped = Vec::new();
        for name in names {
            let was_active = self
                .shared
                .board
                .state_of(&name)
                .is_some_and(|s| s.is_active());
            let (ack, done) = oneshot::channel();
            if self.send(&name, Command::Stop(grace, ack)).await.is_ok() {
                let _ = done.await;
            }
            if was_active {
                stopped.push(name);
            }
        }
        json!({ "stopped": stopped })
    }

    async fn send(&self, name: &str, command: Command) -> Result<()> {
        let task = self
            .tasks
            .get(name)
            .ok_or_else(|| anyhow!("there is no service {name} in this stack"))?;
        task.send(command)
            .await
            .map_err(|_| anyhow!("{name}'s task has ended"))
    }
}

async fn read_request(conn: &mut UnixStream) -> Result<Request> {
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(
        &mut *conn,
        control::MAX_LINE as u64,
    ));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| anyhow!("no request within {REQUEST_TIMEOUT:?}"))??;
    serde_json::from_str(&line).map_err(|e| anyhow!("not a request ({e}): {line:?}"))
}

/// Notes where each service's log stands, for `logs --since`.
async fn sample_logs(shared: Arc<Shared>) {
    let logs_dir = layout::logs_dir(&shared.env.home);
    let mut every = tokio::time::interval(marks::SAMPLE_EVERY);
    loop {
        every.tick().await;
        for service in shared.board.snapshot().services {
            let name = InstanceName::new(&service.name, &shared.env.instance);
            shared
                .marks
                .sample(&service.name, &log::path(&logs_dir, &name));
        }
    }
}
