//! `agentfs completions bash|zsh|fish`: a shell completion script, from
//! clap's generator, that also completes instance names for `logs`, `stop`
//! and `url`.
//!
//! clap_complete's scripts are static, and its dynamic completion needs an
//! unstable feature; so the names come from a hidden subcommand,
//! `agentfs complete-names SUBCOMMAND`, which the script runs when the word
//! being completed is such a NAME: in bash through a function wrapped
//! around the generated one, in zsh as the NAME argument's completion
//! action, and in fish through one more `complete` rule.

use std::io::Write;

use anyhow::{bail, Result};
use clap_complete::shells;

use agentfs_contract::layout;

use crate::instance::{log, names};

/// The command the scripts complete (and run for names).
const BIN: &str = "agentfs";

/// The subcommands whose NAME argument completes to instance names.
const NAMED: [&str; 3] = ["logs", "stop", "url"];

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install:
  bash: echo 'source <(agentfs completions bash)' >> ~/.bashrc
  zsh:  agentfs completions zsh > \"${fpath[1]}/_agentfs\"   (then start a new shell)
  fish: agentfs completions fish > ~/.config/fish/completions/agentfs.fish")]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct CompleteNamesArgs {
    /// The subcommand whose NAME is being completed.
    pub subcommand: String,
}

/// Prints the script; `command` is the whole `agentfs` command line definition.
pub fn run(args: CompletionsArgs, command: clap::Command) -> Result<i32> {
    let script = script(args.shell, command)?;
    std::io::stdout().write_all(script.as_bytes())?;
    Ok(0)
}

/// `agentfs complete-names SUBCOMMAND`: one NAME per line, each resolving
/// to one instance (for `logs`, also those that only left a log).
pub fn names(args: CompleteNamesArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let mut known = names::running(&names::scan(&home)?);
    if args.subcommand == "logs" {
        known.extend(log::logged(&layout::logs_dir(&home)));
    }
    for name in names::unambiguous(&known) {
        println!("{name}");
    }
    Ok(0)
}

/// The completion script for `shell`.
pub fn script(shell: Shell, command: clap::Command) -> Result<String> {
    let mut command = visible_only(&command);
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    match shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut command, &name, &mut out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut command, &name, &mut out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut command, &name, &mut out),
    }
    let generated = String::from_utf8(out)?;
    match shell {
        Shell::Bash => Ok(generated + BASH_NAMES),
        Shell::Zsh => zsh_with_names(&generated),
        Shell::Fish => Ok(generated + FISH_NAMES),
    }
}

/// `command` without its hidden subcommands, which clap's generators would
/// offer like any other.
fn visible_only(command: &clap::Command) -> clap::Command {
    clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .args(command.get_arguments().cloned())
        .subcommands(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        )
}

/// Completes NAME in bash, and hands every other word to the generated `_agentfs`.
const BASH_NAMES: &str = r#"
_agentfs_with_names() {
    local i sub=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -*) ;;
            *) sub="${COMP_WORDS[i]}"; break ;;
        esac
    done
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$sub" in
        logs|stop|url)
            case "$cur,$prev" in
                -*|*,-n|*,--lines|*,-t|*,--timeout|*,--since) ;;
                *)
                    COMPREPLY=($(compgen -W "$(agentfs complete-names "$sub" 2>/dev/null)" -- "$cur"))
                    return 0 ;;
            esac ;;
    esac
    _agentfs "$@"
}
complete -F _agentfs_with_names -o bashdefault -o default agentfs
"#;

/// One more rule per named subcommand: its NAME from `complete-names`.
const FISH_NAMES: &str = r#"
for sub in logs stop url
    complete -c agentfs -n "__fish_seen_subcommand_from $sub" -f -a "(agentfs complete-names $sub 2>/dev/null)"
end
"#;

/// The generated zsh script with each NAME completed by `_agentfs_names SUBCOMMAND`.
fn zsh_with_names(generated: &str) -> Result<String> {
    // clap writes NAME's spec as `':name -- <help>:_default'` (its action
    // for a value without a hint; `'::name` when NAME is optional, as for
    // `logs`) inside its subcommand's `(logs)` case.
    let mut script = String::with_capacity(generated.len() + 512);
    let mut subcommand = None;
    let mut replaced = 0;
    for line in generated.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(label) = trimmed.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
            subcommand = NAMED.iter().find(|named| **named == label);
        }
        match subcommand {
            Some(sub)
                if (trimmed.starts_with("':name -- ") || trimmed.starts_with("'::name -- "))
                    && trimmed.contains(":_default'") =>
            {
                script.push_str(&line.replacen(
                    ":_default'",
                    &format!(":_agentfs_names {sub}'"),
                    1,
                ));
                replaced += 1;
            }
            _ => script.push_str(line),
        }
    }
    if replaced != NAMED.len() {
        bail!(
            "the generated zsh script has {replaced} NAME arguments, not {}",
            NAMED.len()
        );
    }
    let header_end = script.find('\n').map_or(0, |at| at + 1);
    script.insert_str(header_end, ZSH_NAMES);
    Ok(script)
}

/// Defined where the generated script starts, so both ways of loading it
/// (autoloaded from `fpath`, or sourced) define it. `_arguments` calls it
/// with compadd's options first and the subcommand last.
const ZSH_NAMES: &str = r#"
_agentfs_names() {
    local -a names
    names=(${(f)"$(agentfs complete-names ${@[-1]} 2>/dev/null)"})
    compadd "${@[1,-2]}" -a names
}
"#;
