//! `agentfs agent-help` prints `docs/agent-help.md` (short enough to give an
//! agent whole), and every command its `sh` blocks show works as shown: each
//! line is run, in order, in a git work tree on branch feat-x whose stack
//! has the `web` and `api` services the text names. `npx` is a stand-in
//! that checks it runs inside the instance and reaches its web on
//! localhost:3000.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::stack::{assert_ok, Down, Repo};
use common::TestHome;

const TEXT: &str = include_str!("../docs/agent-help.md");

/// The command lines of the text's `sh` blocks, without their comments.
fn shown_commands() -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in TEXT.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            command if in_sh && !command.is_empty() => {
                let command = command.split("  #").next().unwrap().trim();
                commands.push(command.to_owned());
            }
            _ => {}
        }
    }
    commands
}

#[test]
fn agent_help_prints_the_text_and_every_command_it_shows_works() {
    let home = TestHome::new();
    let printed = assert_ok(&home.run(&["agent-help"]), "agent-help");
    assert_eq!(printed, TEXT);
    assert!(
        TEXT.lines().count() < 120,
        "short enough to give an agent whole"
    );

    let _router = home.start_router();
    let toml = "\
[services.api]
run = \"exec python3 -m http.server 8000 --bind 127.0.0.1\"

[services.web]
run = \"exec python3 -m http.server 3000 --bind 127.0.0.1\"
after = [\"api\"]
";
    let repo = Repo::new(&home, &[("agentfs.toml", toml)]);
    let worktree = repo.worktree("feat-x");
    let _down = Down {
        home: &home,
        dir: worktree.clone(),
    };
    // `agentfs` and a stand-in `npx` first in PATH.
    let bin = home.dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(common::agentfs_bin(), bin.join("agentfs")).unwrap();
    let ran = home.dir.join("npx-ran");
    std::fs::write(
        bin.join("npx"),
        format!(
            "#!/bin/sh\n[ \"$AGENTFS_INSTANCE\" = feat-x ] || exit 9\n\
             curl -fsS http://localhost:3000/ >/dev/null || exit 8\n\
             echo \"$*\" > {}\n",
            ran.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("npx"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let commands = shown_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    for command in &commands {
        let mut sh = std::process::Command::new("sh");
        // Whatever instance the test itself may run in is not the text's.
        for var in agentfs_contract::env::INSTANCE_VARS
            .iter()
            .chain(&[agentfs_contract::env::PRELOAD, "AGENTFS_ROUTER_PORT"])
        {
            sh.env_remove(var);
        }
        let out = sh
            .args(["-c", command])
            .current_dir(&worktree)
            .env("PATH", &path)
            .env("AGENTFS_HOME", &home.dir)
            .output()
            .unwrap();
        assert_ok(&out, command);
    }
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "playwright test\n");
    assert!(
        home.stack_state("feat-x").is_none(),
        "the text ends with down"
    );
}
