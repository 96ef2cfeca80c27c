//! Running the platform's trust tools (`certutil`, `update-ca-certificates`,
//! `sudo -n`, `security`): no standard input, output captured, and a time
//! limit, so nothing ever waits for a person who is not there.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a tool may take before it is ended. macOS's `security` may wait
/// for a person to confirm in a dialog; nothing else should come near this.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running tool is looked at.
const POLL: Duration = Duration::from_millis(20);

/// How a tool ended.
#[derive(Debug)]
pub enum Ran {
    /// It exited 0: its standard output.
    Ok(String),
    /// It exited otherwise: what it printed (stderr, else stdout).
    Failed(String),
    /// It was not found.
    Missing,
    /// It did not finish within the time limit and was ended.
    TimedOut,
}

impl Ran {
    pub fn ok(&self) -> bool {
        matches!(self, Ran::Ok(_))
    }
}

/// Runs `program args…` with no standard input, for at most `timeout`.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Ran {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ran::Missing,
        Err(e) => return Ran::Failed(e.to_string()),
    };
    // Read both pipes on their own threads, so a tool that writes a lot
    // never blocks on a full pipe while it is waited for.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    match status {
        None => Ran::TimedOut,
        Some(status) if status.success() => Ran::Ok(out),
        Some(_) if err.trim().is_empty() => Ran::Failed(out.trim().to_owned()),
        Some(_) => Ran::Failed(err.trim().to_owned()),
    }
}

/// A command line as a person would type it (arguments with spaces quoted).
pub fn shown(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_that_does_not_finish_is_ended() {
        let started = Instant::now();
        let ran = run("sleep", &["30"], Duration::from_millis(200));
        assert!(matches!(ran, Ran::TimedOut), "{ran:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_and_failures_are_kept() {
        assert!(
            matches!(run("sh", &["-c", "echo hi"], TOOL_TIMEOUT), Ran::Ok(out) if out == "hi\n")
        );
        assert!(matches!(
            run("sh", &["-c", "echo no >&2; exit 3"], TOOL_TIMEOUT),
            Ran::Failed(err) if err == "no"
        ));
        assert!(matches!(
            run("agentfs-no-such-tool", &[], TOOL_TIMEOUT),
            Ran::Missing
        ));
    }

    #[test]
    fn command_lines_are_quoted_as_typed() {
        assert_eq!(
            shown("certutil", &["-n", "agentfs local CA 1a", "-t", "C,,"]),
            "certutil -n 'agentfs local CA 1a' -t C,,"
        );
    }
}
