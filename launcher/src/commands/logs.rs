//! `agentfs logs [-f] [-n N] NAME`: what an instance's app wrote to stdout
//! and stderr, as wrap kept it (see `instance::log`).
//!
//! NAME may also be an instance that no longer runs but left a log, or a
//! service of the stack found from here (`agentfs up`); without NAME, inside
//! a stack, every service's log is shown, each line prefixed by its
//! service (see `stack::follow`). `--json` prints the lines as JSON. `-f`
//! keeps printing as the app writes, across rotations and across restarts
//! of the instance (a new wrap of it appends to the same log), until
//! interrupted, as `tail -F` does.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::Watcher;

use agentfs_contract::layout;

use crate::instance::log;
use crate::instance::names;
use crate::stack::follow::{self as stack_follow, Part};
use crate::stack::target as stack_target;

/// How often a followed log is looked at when no file event came: a safety
/// net for file systems whose events come late or not at all.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  agentfs logs blue.shop          # all that is kept (up to 8 MiB per instance)
  agentfs logs -n 50 -f shop      # the last 50 lines, then follow
  agentfs logs                    # in a stack's work tree: every service, prefixed
  agentfs logs --json -n 20 api   # for programs: {\"services\": [{\"name\", \"lines\"}]}

wrap keeps each instance's stdout and stderr in $AGENTFS_HOME/logs/, readable
only by you, while still showing it as usual.")]
pub struct LogsArgs {
    /// Keep printing what the app writes, also across restarts of the instance,
    /// until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// Only what was written since TIME (RFC 3339, or a duration ago: 30s, 5m), to within
    /// half a second; for services of a stack that is up, whose supervisor notes when
    /// each log grows.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["lines", "follow"])]
    pub since: Option<String>,
    /// Print `{"instance", "services": [{"name", "log", "lines"}]}` instead.
    #[arg(long, conflicts_with = "follow")]
    pub json: bool,
    /// The instance: INSTANCE.APP, an instance id that only one app has, an app name that
    /// has only one instance, or a service of the stack here. Default: every service of
    /// the stack here.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(args: LogsArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let logs_dir = layout::logs_dir(&home);
    let mut known = names::running(&names::scan(&home)?);
    known.extend(log::logged(&logs_dir));
    let part = match &args.since {
        Some(time) => Part::Since(since_ms(time)?),
        None => Part::Last(args.lines),
    };
    let Some(raw) = args.name.as_deref() else {
        return stack_follow::show_stack(&home, part, args.follow, args.json);
    };
    let name = names::resolve(&stack_target::qualify(raw), &known)?;
    let path = log::path(&logs_dir, &name);
    if args.json || args.since.is_some() {
        return show_part(&home, &name, part, args.json);
    }
    let tail = log::read_tail(&path, args.lines)
        .with_context(|| format!("could not read {}", path.display()))?;
    let mut out = io::stdout().lock();
    if out
        .write_all(&tail.bytes)
        .and_then(|()| out.flush())
        .is_err()
    {
        // Whoever reads our output stopped reading (`| head`): done.
        return Ok(0);
    }
    if !args.follow {
        if tail.current.is_none() && tail.bytes.is_empty() {
            eprintln!("agentfs: {name} has written nothing yet");
        }
        return Ok(0);
    }
    layout::ensure_private_dir(&logs_dir)?;
    follow(&logs_dir, &path, tail.current, &mut out)?;
    Ok(0)
}

/// One log's `part`, as JSON or as it was written.
fn show_part(home: &Path, name: &names::InstanceName, part: Part, json: bool) -> Result<i32> {
    let app = std::slice::from_ref(&name.app);
    if json {
        let value = stack_follow::json(home, &name.instance, app, part)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for line in stack_follow::lines_of(home, &name.instance, &name.app, part)? {
            println!("{line}");
        }
    }
    Ok(0)
}

/// `--since TIME`: an RFC 3339 time, or a duration ago (`30s`, `5m`), in
/// milliseconds since the epoch.
fn since_ms(time: &str) -> Result<u64> {
    let at = match humantime::parse_rfc3339_weak(time) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(time).map_err(|_| {
                anyhow::anyhow!(
                    "--since {time:?} is neither a time (2026-01-31T12:00:00Z) nor a duration \
                     ago (30s, 5m)"
                )
            })?;
            std::time::SystemTime::now() - ago
        }
    };
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

/// Prints what is appended to the log at `path` from where `open` stands,
/// then whatever replaces it (rotation, a new wrap after the log was
/// removed), until printing fails.
fn follow(
    logs_dir: &Path,
    path: &Path,
    mut open: Option<File>,
    out: &mut impl Write,
) -> Result<()> {
    let (wake, woken) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_| {
        let _ = wake.send(());
    })?;
    // Without events, the poll below still follows the log, only later.
    let _ = watcher.watch(logs_dir, notify::RecursiveMode::NonRecursive);
    loop {
        if let Some(file) = open.as_mut() {
            if print_new(file, out).is_err() {
                return Ok(());
            }
        }
        match look_again(path, open.as_ref())? {
            Look::Same => {
                let _ = woken.recv_timeout(FOLLOW_POLL);
                while woken.try_recv().is_ok() {}
            }
            Look::Truncated => {
                if let Some(file) = open.as_mut() {
                    file.rewind()?;
                }
            }
            Look::Replaced(new) => {
                // The end of the old file first: written before it was renamed.
                if let Some(old) = open.as_mut() {
                    if print_new(old, out).is_err() {
                        return Ok(());
                    }
                }
                open = Some(new);
            }
        }
    }
}

/// What became of a followed log since last time.
enum Look {
    /// Nothing to do but wait (also when there is no log yet).
    Same,
    /// Cut short in place: read it again from its start.
    Truncated,
    /// Another file is at its path now.
    Replaced(File),
}

fn look_again(path: &Path, open: Option<&File>) -> io::Result<Look> {
    let Ok(now) = std::fs::metadata(path) else {
        return Ok(Look::Same);
    };
    let Some(file) = open else {
        return Ok(File::open(path).map_or(Look::Same, Look::Replaced));
    };
    let was = file.metadata()?;
    if (now.dev(), now.ino()) != (was.dev(), was.ino()) {
        return Ok(File::open(path).map_or(Look::Same, Look::Replaced));
    }
    let read_to = (&*file).stream_position()?;
    Ok(if now.len() < read_to {
        Look::Truncated
    } else {
        Look::Same
    })
}

/// Copies what `file` has past its position; an error means `out` failed.
fn print_new(file: &mut File, out: &mut impl Write) -> io::Result<()> {
    io::copy(file, out)?;
    out.flush()
}
