//! Helpers for the stack tests (`agentfs up`, `wait`, `down`): a real git
//! repository with work trees under a [`TestHome`], stack files written in
//! it, `agentfs` run from a directory, the stack's `state.json` read, HTTP
//! through the router, and a guard that takes a stack down at the end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{wait_for, TestHome, DEADLINE};

/// A git repository (one commit on `main`) in the test's home.
pub struct Repo {
    pub dir: PathBuf,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

impl Repo {
    /// A repository holding `files` (name, content) in its first commit.
    pub fn new(home: &TestHome, files: &[(&str, &str)]) -> Repo {
        let dir = home.dir.join("src").join("repo");
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "stack"]);
        Repo { dir }
    }

    /// A linked work tree on a new branch `branch`.
    pub fn worktree(&self, branch: &str) -> PathBuf {
        let dir = self.dir.parent().unwrap().join(branch);
        git(
            &self.dir,
            &["worktree", "add", "-q", "-b", branch, dir.to_str().unwrap()],
        );
        dir
    }
}

impl TestHome {
    /// `agentfs ARGS` run from `dir`.
    pub fn agentfs_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = self.agentfs(args);
        command.current_dir(dir);
        command
    }

    /// Runs `agentfs ARGS` from `dir` to completion.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.agentfs_in(dir, args).output().unwrap()
    }

    /// The stack of `instance` as its supervisor last wrote it.
    pub fn stack_state(&self, instance: &str) -> Option<serde_json::Value> {
        let path = self.dir.join("stacks").join(instance).join("state.json");
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Waits until `service` of `instance`'s stack satisfies `check`.
    pub fn wait_service(
        &self,
        instance: &str,
        service: &str,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for(&format!("{service} of {instance} to be {what}"), || {
            let state = self.stack_state(instance)?;
            let found = state["services"]
                .as_array()?
                .iter()
                .find(|s| s["name"] == service)?
                .clone();
            check(&found).then_some(found)
        })
    }
}

/// Takes the stack of `dir` down when dropped, so no test leaves one up.
pub struct Down<'a> {
    pub home: &'a TestHome,
    pub dir: PathBuf,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.home.run_in(&self.dir, &["down", "--timeout", "2"]);
    }
}

/// Asserts success, showing the command's output if not.
pub fn assert_ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `GET path` through the router on `port` with `Host: host`: status and body.
pub fn router_get(port: u16, host: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The processes whose environment says they belong to `instance` of the
/// agentfs home `home` (`AGENTFS_HOME` and `AGENTFS_INSTANCE`): every
/// process of a service's app.
pub fn processes_of(home: &Path, instance: &str) -> Vec<u32> {
    let home_var = format!("AGENTFS_HOME={}", home.display());
    let instance_var = format!("AGENTFS_INSTANCE={instance}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
            let has = |var: &str| vars.contains(&var.as_bytes());
            (has(&home_var) && has(&instance_var)).then_some(pid)
        })
        .collect()
}

/// Whether `pid` runs (a zombie has ended: it only waits to be reaped).
pub fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
    })
}
