//! Doctor's shim self-test. The `agentfs` binary itself, started as
//! `agentfs doctor-probe` with the shim preloaded as wrap preloads it, binds
//! 127.0.0.1:PORT. It passes when, end to end: the bind became a Unix
//! socket in the run directory with its sidecar (as the contract's reader
//! sees it); the probe's own `getsockname`, `accept` and `getpeername`
//! still tell of TCP on loopback; and the router, when one runs, reaches
//! the probe by its instance's name. On macOS this is what shows that the
//! shim's interpose table works on that Mac.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use agentfs_contract::rundir::{self, Entry};
use agentfs_contract::{env, layout, naming, urls};

use super::http;
use super::report::Check;
use crate::inject::library::{self, EmbeddedShim};
use crate::instance::Instance;

/// The app name the probe runs as.
const APP: &str = "agentfs-doctor";
/// How long the probe may take to start and listen.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long its sidecar may take to appear once it listens.
const SIDECAR_DEADLINE: Duration = Duration::from_secs(3);
/// How long the router may take to route the probe's name.
const ROUTE_DEADLINE: Duration = Duration::from_secs(5);
/// How long one answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// Gap between two looks at a condition being waited on.
const POLL_GAP: Duration = Duration::from_millis(20);

/// The self-test's checks.
pub fn checks(
    home: &Path,
    shim: &EmbeddedShim,
    router_port: Option<u16>,
    run_dir_usable: bool,
) -> Vec<Check> {
    if !run_dir_usable {
        return vec![Check::skipped(
            "shim.bind",
            "shim: not tried, as the run directory cannot be used (above)",
        )];
    }
    match Probe::start(shim) {
        Ok(mut probe) => probe.examine(home, router_port),
        Err(err) => vec![Check::fail(
            "shim.bind",
            format!("shim: the probe could not be started: {err:#}"),
            start_fix(&err),
        )],
    }
}

/// A running `agentfs doctor-probe`, stopped and cleaned up on drop.
struct Probe {
    child: Child,
    instance: Instance,
    port: u16,
    shim_path: std::path::PathBuf,
    first_line: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Probe {
    fn start(shim: &EmbeddedShim) -> Result<Probe> {
        let instance = Instance::prepare(Some(APP), Some(&format!("p{}", std::process::id())))?;
        let shim_path = shim.install(&instance.home)?;
        // A port free on real TCP: should the shim not take the bind, the
        // probe still listens, and the port tells.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["doctor-probe", "--port", &port.to_string()]);
        for var in env::INSTANCE_VARS.iter().chain([&env::PRELOAD]) {
            command.env_remove(var);
        }
        let mut child = command
            .envs(instance.env_vars())
            .env(env::SHIM, &shim_path)
            .env(env::PRELOAD, library::preload_value(&shim_path, None))
            .env(env::LOG, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not start `agentfs doctor-probe`")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        Ok(Probe {
            child,
            instance,
            port,
            shim_path,
            first_line: first_line(stdout),
            stderr: all_text(stderr),
        })
    }

    fn examine(&mut self, home: &Path, router_port: Option<u16>) -> Vec<Check> {
        let said = self.first_line.recv_timeout(START_DEADLINE);
        let said: Value = said
            .ok()
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or(Value::Null);
        if let Some(error) = said["error"].as_str().map(str::to_owned) {
            return vec![self.failed_to_listen(&error)];
        }
        if said["listening"] != true {
            return vec![self.failed_to_listen("it said nothing within 10 s")];
        }
        let Some(entry) = self.wait_live_entry() else {
            return vec![self.not_converted()];
        };
        let socket = entry.sidecar.socket.clone();
        let bind = Check::ok(
            "shim.bind",
            format!(
                "shim: the probe's bind of 127.0.0.1:{} became a Unix socket, {}, with its sidecar",
                self.port,
                socket.display()
            ),
        )
        .with_details(json!({ "socket": socket, "sidecar": entry.sidecar_path }));
        vec![bind, self.illusion(&socket), self.routed(home, router_port)]
    }

    /// The probe's entry once the reader sees it live.
    fn wait_live_entry(&self) -> Option<Entry> {
        let deadline = Instant::now() + SIDECAR_DEADLINE;
        loop {
            let found = rundir::scan(&self.instance.run_dir).ok().and_then(|scan| {
                scan.of_instance(APP, &self.instance.id)
                    .find(|e| e.is_live())
                    .cloned()
            });
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(POLL_GAP);
        }
    }

    fn failed_to_listen(&mut self, why: &str) -> Check {
        let said = self.diagnostics();
        Check::fail(
            "shim.bind",
            format!(
                "shim: the probe could not listen on 127.0.0.1:{}: {why}{said}",
                self.port
            ),
            "follow the shim's reason above; `AGENTFS_LOG=1 agentfs wrap -- CMD` shows it for any app",
        )
    }

    /// The probe listens, yet no live sidecar of it appeared.
    fn not_converted(&mut self) -> Check {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if TcpStream::connect_timeout(&addr, ANSWER_TIMEOUT).is_err() {
            let said = self.diagnostics();
            return Check::fail(
                "shim.bind",
                format!(
                    "shim: the probe listens, but no live sidecar of it appeared in {}{said}",
                    self.instance.run_dir.display()
                ),
                "agentfs ps   (shows what the run directory holds for agentfs-doctor)",
            );
        }
        let loader = self.diagnostics();
        Check::fail(
            "shim.bind",
            format!(
                "shim: the probe's bind of 127.0.0.1:{} stayed a real TCP socket: the shim was \
                 not loaded into it{loader}",
                self.port
            ),
            not_loaded_fix(&self.shim_path, &loader),
        )
    }

    /// What the probe's own socket calls told it.
    fn illusion(&self, socket: &Path) -> Check {
        let expected = format!("127.0.0.1:{}", self.port);
        let answer = match http::get_unix(socket, "probe.localhost", "/", ANSWER_TIMEOUT) {
            Ok(answer) => answer,
            Err(err) => {
                return Check::fail(
                    "shim.illusion",
                    format!("shim: the probe's socket did not answer: {err}"),
                    report_bug(),
                )
            }
        };
        let told = answer.json().unwrap_or(Value::Null);
        let field = |name: &str| told[name].as_str().unwrap_or("nothing").to_owned();
        let (sockname, accepted, peer) =
            (field("getsockname"), field("accept"), field("getpeername"));
        let loopback = |text: &str| {
            text.parse::<SocketAddr>()
                .is_ok_and(|a| a.is_ipv4() && a.ip().is_loopback())
        };
        if sockname == expected && loopback(&accepted) && loopback(&peer) {
            return Check::ok(
                "shim.illusion",
                format!(
                    "shim: the probe believes it serves TCP: getsockname said {sockname}, \
                     accept said {accepted}, getpeername said {peer}"
                ),
            )
            .with_details(told);
        }
        Check::fail(
            "shim.illusion",
            format!(
                "shim: the TCP illusion broke: getsockname said {sockname} (not {expected}), \
                 accept said {accepted}, getpeername said {peer}"
            ),
            report_bug(),
        )
        .with_details(told)
    }

    /// Whether the router reaches the probe by its instance's name.
    fn routed(&self, home: &Path, router_port: Option<u16>) -> Check {
        let Some(port) = router_port else {
            return Check::skipped(
                "shim.router",
                "shim: the router's way to the probe not tried, as no router runs",
            );
        };
        let host = naming::instance_hostname(APP, &self.instance.id);
        let url = urls::url(&host, port);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + ROUTE_DEADLINE;
        let last = loop {
            let outcome = match http::get_tcp(addr, &host, "/", ANSWER_TIMEOUT) {
                Ok(a)
                    if a.status == 200
                        && a.json().is_some_and(|j| j["getsockname"].is_string()) =>
                {
                    return Check::ok(
                        "shim.router",
                        format!("shim: the router reached the probe at {url}"),
                    );
                }
                Ok(a) => format!("it answered {}", a.status),
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                break outcome;
            }
            std::thread::sleep(POLL_GAP);
        };
        Check::fail(
            "shim.router",
            format!("shim: the router did not reach the probe at {url}: {last}"),
            format!(
                "see {}; then agentfs router stop && agentfs router",
                layout::router_log(home).display()
            ),
        )
    }

    /// What the probe (the loader, the shim) wrote on stderr, as `: …`.
    fn diagnostics(&mut self) -> String {
        let _ = self.child.stdin.take();
        let text = self
            .stderr
            .recv_timeout(ANSWER_TIMEOUT)
            .unwrap_or_default()
            .trim()
            .replace('\n', " | ");
        if text.is_empty() {
            String::new()
        } else {
            format!(" (it said: {text})")
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Its stdin closing ends it (normally, so the shim cleans up).
        let _ = self.child.stdin.take();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(POLL_GAP);
        }
        self.instance.remove_stale_files();
    }
}

/// The fix when the loader did not load the shim into the probe.
fn not_loaded_fix(shim: &Path, said: &str) -> String {
    if cfg!(target_os = "macos") {
        return format!(
            "dyld ignored DYLD_INSERT_LIBRARIES for {}: run an agentfs that is not signed with \
             the hardened runtime and not under /usr or /System (`cargo install --path .` puts \
             one in ~/.cargo/bin)",
            std::env::current_exe().unwrap_or_default().display()
        );
    }
    if said.contains("failed to map segment") || said.contains("operation not permitted") {
        return format!(
            "{} is on a file system mounted noexec: export AGENTFS_HOME=<a directory on a \
             file system that allows executables>",
            shim.display()
        );
    }
    format!(
        "the loader refused {}: check that it is readable and built for this machine (`file {}`)",
        shim.display(),
        shim.display()
    )
}

/// The fix when the probe could not even be started.
fn start_fix(err: &anyhow::Error) -> String {
    if err.downcast_ref::<naming::PathTooLong>().is_none() {
        return "follow what the message says, then run `agentfs doctor` again".into();
    }
    let default = std::env::var_os("HOME").map(|h| Path::new(&h).join(".agentfs"));
    let fits = |home: &Path| {
        naming::socket_path(&layout::run_dir(home), APP, "p4194304", Some(65535)).is_ok()
    };
    let short = default
        .filter(|home| fits(home))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("agentfs-{}", layout::current_uid())));
    format!("export AGENTFS_HOME={}", super::run_dir::quoted(&short))
}

fn report_bug() -> String {
    "this is a bug of agentfs's shim on this system: report it with the output of `agentfs doctor --json`"
        .into()
}

/// The first line of `stream`, once there is one.
fn first_line(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if BufReader::new(stream).read_line(&mut line).is_ok() {
            let _ = send.send(line);
        }
    });
    receive
}

/// All of `stream`, once it ends.
fn all_text(mut stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let _ = send.send(text);
    });
    receive
}
