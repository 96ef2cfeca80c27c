//! `agentfs hosts sync | clean | check [--file PATH]`: the live names as
//! `127.0.0.1` and `::1` lines in a managed block of `/etc/hosts` (or
//! `--file`), for clients that do not resolve `*.localhost` themselves.
//! Only the block is ever touched; without permission, the command says so
//! and prints the one command that would do it.

use std::path::PathBuf;

use anyhow::Result;

use agentfs_contract::layout;

use crate::hosts::{self, file::Written, Change, SyncError};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The block starts with a `# BEGIN agentfs` line and ends with `# END agentfs`; every
other line of the file stays byte for byte. The file is replaced atomically (a
temporary file renamed over it, with its mode and owner); one that is a mount point
(a container's /etc/hosts) is rewritten in place. `agentfs router --sync-hosts`
keeps the block current while the router runs.

Exit status: 0 when done (check: the block lists the live names), 1 otherwise.")]
pub struct HostsArgs {
    #[command(subcommand)]
    pub action: HostsAction,
    /// The hosts file to manage.
    #[arg(long, global = true, value_name = "PATH", default_value = hosts::DEFAULT_FILE)]
    pub file: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum HostsAction {
    /// Write the live names into the block (created at the end of the file if missing).
    Sync,
    /// Take the block out.
    Clean,
    /// Exit 0 when the block lists exactly the live names, 1 otherwise.
    Check,
}

pub fn run(args: HostsArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let path = &args.file;
    let outcome = match args.action {
        HostsAction::Check => {
            let names = hosts::live_names(&home)?;
            return Ok(match hosts::check(path, &names)? {
                None => {
                    println!(
                        "agentfs: {} lists the {} live names",
                        path.display(),
                        names.len()
                    );
                    0
                }
                Some(wrong) => {
                    println!("agentfs: {wrong}: `agentfs hosts sync` writes them");
                    1
                }
            });
        }
        HostsAction::Sync => {
            let names = hosts::live_names(&home)?;
            hosts::sync(path, Some(&names)).map(|c| (c, names.len()))
        }
        HostsAction::Clean => hosts::sync(path, None).map(|c| (c, 0)),
    };
    match outcome {
        Ok((change, count)) => {
            let what = match args.action {
                HostsAction::Clean => "without agentfs's block".to_owned(),
                _ => format!("with {count} names in agentfs's block"),
            };
            let how = match change {
                Change::Unchanged => "already",
                Change::Written(Written::Replaced) => "now",
                Change::Written(Written::InPlace) => {
                    "now (rewritten in place: it is a mount point)"
                }
            };
            println!("agentfs: {} is {how} {what}", path.display());
            Ok(0)
        }
        Err(err @ SyncError::NoPermission { .. }) => {
            eprintln!("agentfs: {err}");
            Ok(1)
        }
        Err(SyncError::Other(err)) => Err(err),
    }
}
