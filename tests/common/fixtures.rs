//! The sample servers in `fixtures/`, by name, as command lines.

use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy)]
pub enum Fixture {
    /// `fixtures/python/probe_server.py`
    PythonProbe,
    /// `fixtures/python/passthrough.py`
    PythonPassthrough,
    /// `fixtures/python/aiohttp_app.py`: aiohttp binding 0.0.0.0 and [::].
    PythonAiohttp,
    /// `fixtures/python/recv_server.py`: reads with recvfrom and recvmsg.
    PythonRecv,
    /// `fixtures/python/spawn_listener.py`: binds, then listens in an exec'd child.
    PythonSpawnListener,
    /// `fixtures/node/server.js`
    Node,
    /// `fixtures/node/cluster.js`
    NodeCluster,
    /// `fixtures/c/server.c`, compiled once per test binary.
    C,
    /// `fixtures/c/threads.c`: binds from 8 threads while forking.
    CThreads,
}

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

impl Fixture {
    /// The command line running this fixture with `args`.
    pub fn command(self, args: &[&str]) -> Vec<String> {
        let dir = fixtures_dir();
        let run = |program: &str, script: &str| vec![program.to_owned(), path(dir.join(script))];
        let mut cmd: Vec<String> = match self {
            Fixture::PythonProbe => run("python3", "python/probe_server.py"),
            Fixture::PythonPassthrough => run("python3", "python/passthrough.py"),
            Fixture::PythonAiohttp => run("python3", "python/aiohttp_app.py"),
            Fixture::PythonRecv => run("python3", "python/recv_server.py"),
            Fixture::PythonSpawnListener => run("python3", "python/spawn_listener.py"),
            Fixture::Node => run("node", "node/server.js"),
            Fixture::NodeCluster => run("node", "node/cluster.js"),
            Fixture::C => vec![path(c_server())],
            Fixture::CThreads => vec![path(c_program("threads"))],
        };
        cmd.extend(args.iter().map(|a| a.to_string()));
        cmd
    }
}

fn path(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// Compiles `fixtures/c/server.c` with the system C compiler, once.
fn c_server() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| compile_c_server(&scratch_dir(), false))
        .clone()
}

/// Compiles `fixtures/c/NAME.c` (with pthreads), once per test binary.
fn c_program(name: &str) -> PathBuf {
    let out = scratch_dir().join(name);
    let status = std::process::Command::new("cc")
        .args(["-O1", "-Wall", "-pthread", "-o"])
        .arg(&out)
        .arg(fixtures_dir().join(format!("c/{name}.c")))
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "compiling fixtures/c/{name}.c failed");
    out
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentfs-c-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `fixtures/c/server.c` into `dir` (statically with `static_link`,
/// a program the shim cannot enter) and returns the binary.
pub fn compile_c_server(dir: &std::path::Path, static_link: bool) -> PathBuf {
    let out = dir.join(if static_link {
        "server-static"
    } else {
        "server"
    });
    let mut cc = std::process::Command::new("cc");
    if static_link {
        cc.arg("-static");
    }
    let status = cc
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(fixtures_dir().join("c/server.c"))
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "compiling fixtures/c/server.c failed");
    out
}
