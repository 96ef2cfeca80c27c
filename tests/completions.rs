//! `agentfs completions bash|zsh|fish`: the scripts, loaded into the real
//! shells, complete subcommands and the names of live instances for
//! `logs`, `stop` and `url`, and never offer the hidden subcommands. zsh and
//! fish are skipped, saying so, where they are not installed (CI installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixtures::Fixture;
use common::{agentfs_bin, wait_for, TestHome, Wrapped};

/// `PATH` with the `agentfs` under test first, as the scripts run `agentfs`.
fn path_with_agentfs() -> String {
    let dir = Path::new(agentfs_bin()).parent().unwrap().to_owned();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Two live instances of `web` and one of `api`.
fn three_instances(home: &TestHome) -> Vec<Wrapped> {
    let apps = [("web", "a"), ("web", "b"), ("api", "a")]
        .iter()
        .map(|(app, id)| home.wrap(app, id, &Fixture::Node.command(&["3000"])))
        .collect();
    for (app, id) in [("web", "a"), ("web", "b"), ("api", "a")] {
        home.wait_sidecar(app, id, Some(3000));
    }
    apps
}

fn script(home: &TestHome, shell: &str) -> PathBuf {
    let out = home.run(&["completions", shell]);
    assert!(out.status.success(), "{out:?}");
    let path = home.dir.join(format!("completion.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Runs `shell ARGS` with this home and `agentfs` in `PATH`, to the end
/// (killed past the deadline); returns its output lines.
fn run_shell(home: &TestHome, shell: &str, args: &[&str]) -> Vec<String> {
    let mut child = Command::new(shell)
        .args(args)
        .env("AGENTFS_HOME", &home.dir)
        .env("PATH", path_with_agentfs())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&format!("{shell} to finish"), || child.try_wait().unwrap());
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    let mut lines: Vec<String> = String::from_utf8_lossy(&stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn installed(shell: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {shell}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {shell} is not installed (apt-get install {shell})");
    }
    found
}

/// The names a NAME completes to with web/a, web/b and api/a live.
const NAMES: [&str; 5] = ["a.api", "a.web", "api", "b", "b.web"];

#[test]
fn bash_completes_subcommands_and_instance_names() {
    let home = TestHome::new();
    let _apps = three_instances(&home);
    let script = script(&home, "bash");
    let complete = |words: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _agentfs_with_names agentfs \"${{COMP_WORDS[COMP_CWORD]}}\" \
             \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        run_shell(&home, "bash", &["-c", &program])
    };
    assert_eq!(complete("agentfs logs ''"), NAMES);
    assert_eq!(complete("agentfs stop -t 3 a"), ["a.api", "a.web", "api"]);
    assert_eq!(complete("agentfs url b"), ["b", "b.web"]);
    assert_eq!(complete("agentfs st"), ["stop"]);
    let all = complete("agentfs ''");
    assert!(all.contains(&"logs".to_owned()), "{all:?}");
    for hidden in ["complete-names", "doctor-probe"] {
        assert!(!all.contains(&hidden.to_owned()), "{all:?}");
    }
}

#[test]
fn zsh_completes_instance_names() {
    if !installed("zsh") {
        return;
    }
    let home = TestHome::new();
    let _apps = three_instances(&home);
    let script = script(&home, "zsh");
    let harness = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/shell/zsh_complete.zsh"
    );
    let complete = |line: &str| run_shell(&home, "zsh", &[harness, script.to_str().unwrap(), line]);
    assert_eq!(complete("agentfs stop "), NAMES);
    assert_eq!(complete("agentfs logs -n 3 b"), ["b", "b.web"]);
    assert_eq!(complete("agentfs ur"), ["url"]);
}

#[test]
fn fish_completes_instance_names() {
    if !installed("fish") {
        return;
    }
    let home = TestHome::new();
    let _apps = three_instances(&home);
    let script = script(&home, "fish");
    let complete = |line: &str| {
        let program = format!("source {}; complete -C '{line}'", script.display());
        run_shell(&home, "fish", &["--no-config", "-c", &program])
    };
    assert_eq!(complete("agentfs url "), NAMES);
    assert_eq!(complete("agentfs stop a."), ["a.api", "a.web"]);
    let all = complete("agentfs ");
    assert!(all.contains(&"logs".to_owned()), "{all:?}");
    assert!(!all.contains(&"complete-names".to_owned()), "{all:?}");
}
