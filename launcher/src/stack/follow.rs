//! Several services' logs shown as one stream, each line prefixed by its
//! service's name (in its own colour on a terminal), as overmind and
//! compose show a stack. Used by the foreground `up` and by `agentfs logs`
//! without a NAME inside a stack.
//!
//! Each log is read from where it stood (or from its start), and followed
//! across rotation and restarts the way `agentfs logs -f` follows one: a
//! new file at the log's path is read once the old one is finished.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};

use agentfs_contract::layout;

use crate::instance::log;
use crate::instance::names::InstanceName;
use crate::stack::client;
use crate::stack::state::StackDir;
use crate::stack::target;

/// How often `agentfs logs -f` looks for new output of a stack's services.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Which part of a log to show.
#[derive(Clone, Copy, Debug)]
pub enum Part {
    /// The last N lines, or all that is kept.
    Last(Option<usize>),
    /// What was written since this time (milliseconds since the epoch), as
    /// the stack's supervisor noted the log's growth.
    Since(u64),
}

/// `agentfs logs` without NAME: every service of the stack found here,
/// prefixed (the `part` of each log), then followed with `follow`; with
/// `json`, the lines as [`json`] gives them.
pub fn show_stack(home: &Path, part: Part, follow: bool, json_out: bool) -> Result<i32> {
    let target = target::locate(None, true)?;
    let services = target.file()?.names();
    if json_out {
        let value = json(home, &target.instance, &services, part)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let logs_dir = layout::logs_dir(home);
    let colour =
        io::IsTerminal::is_terminal(&io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let mut out = io::stdout().lock();
    let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
    for (i, service) in services.iter().enumerate() {
        let prefix = prefix(service, width, colour.then_some(COLOURS[i % COLOURS.len()]));
        for line in lines_of(home, &target.instance, service, part)? {
            if writeln!(out, "{prefix}{line}").is_err() {
                return Ok(0);
            }
        }
    }
    if !follow {
        return Ok(0);
    }
    let mut follower = Follower::new(&logs_dir, &target.instance, &services, true, colour);
    while follower.pump(&mut out).is_ok() {
        std::thread::sleep(FOLLOW_POLL);
    }
    Ok(0)
}

/// `{"instance", "services": [{"name", "log", "lines"}]}`: the `part` of
/// each service's log.
pub fn json(home: &Path, instance: &str, services: &[String], part: Part) -> Result<Value> {
    let logs_dir = layout::logs_dir(home);
    let mut listed = Vec::new();
    for service in services {
        let path = log::path(&logs_dir, &InstanceName::new(service, instance));
        listed.push(json!({
            "name": service,
            "log": path,
            "lines": lines_of(home, instance, service, part)?,
        }));
    }
    Ok(json!({ "instance": instance, "services": listed }))
}

/// The `part` of `service`'s log in `instance`, as lines.
pub fn lines_of(home: &Path, instance: &str, service: &str, part: Part) -> Result<Vec<String>> {
    let path = log::path(
        &layout::logs_dir(home),
        &InstanceName::new(service, instance),
    );
    Ok(match part {
        Part::Last(lines) => log::tail_lines(&path, lines),
        Part::Since(unix_ms) => {
            let dir = StackDir::new(home, instance);
            let mark = client::log_mark(&dir, service, unix_ms)?;
            let bytes = log::read_since(&path, mark.map(|m| (m.ino, m.offset)))?;
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_owned)
                .collect()
        }
    })
}

/// Colours for the prefixes, in turn: green, yellow, blue, magenta, cyan, red.
const COLOURS: [u8; 6] = [32, 33, 34, 35, 36, 31];

/// The followed logs.
pub struct Follower {
    streams: Vec<Stream>,
}

struct Stream {
    prefix: String,
    path: PathBuf,
    open: Option<File>,
    /// The end of a line not written out yet.
    partial: Vec<u8>,
}

impl Follower {
    /// Follows `services`' logs in `logs_dir`: from their current ends when
    /// `from_end`, else from their starts.
    pub fn new(
        logs_dir: &Path,
        instance: &str,
        services: &[String],
        from_end: bool,
        colour: bool,
    ) -> Follower {
        let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
        let streams = services
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let path = log::path(logs_dir, &InstanceName::new(name, instance));
                let mut open = File::open(&path).ok();
                if from_end {
                    if let Some(file) = open.as_mut() {
                        let _ = file.seek(SeekFrom::End(0));
                    }
                }
                Stream {
                    prefix: prefix(name, width, colour.then_some(COLOURS[i % COLOURS.len()])),
                    path,
                    open,
                    partial: Vec::new(),
                }
            })
            .collect();
        Follower { streams }
    }

    /// Writes out every complete line written since the last call; an
    /// error means `out` failed.
    pub fn pump(&mut self, out: &mut impl Write) -> io::Result<()> {
        for stream in &mut self.streams {
            stream.pump(out)?;
        }
        out.flush()
    }
}

fn prefix(name: &str, width: usize, colour: Option<u8>) -> String {
    match colour {
        Some(colour) => format!("\x1b[{colour}m{name:<width$} |\x1b[0m "),
        None => format!("{name:<width$} | "),
    }
}

impl Stream {
    fn pump(&mut self, out: &mut impl Write) -> io::Result<()> {
        if let Some(file) = self.open.as_mut() {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            self.emit(&bytes, out)?;
        }
        if self.replaced() {
            self.open = File::open(&self.path).ok();
            if let Some(file) = self.open.as_mut() {
                let mut bytes = Vec::new();
                let _ = file.read_to_end(&mut bytes);
                self.emit(&bytes, out)?;
            }
        }
        Ok(())
    }

    /// Whether another file (or a first one) is at the log's path now.
    fn replaced(&self) -> bool {
        let Ok(now) = std::fs::metadata(&self.path) else {
            return false;
        };
        match self.open.as_ref().and_then(|f| f.metadata().ok()) {
            Some(was) => (now.dev(), now.ino()) != (was.dev(), was.ino()),
            None => true,
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(&line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::log::LogWriter;

    #[test]
    fn lines_are_prefixed_and_followed_across_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let (web, api) = (InstanceName::new("web", "x"), InstanceName::new("api", "x"));
        LogWriter::open(&logs, &web)
            .unwrap()
            .write(b"old\n")
            .unwrap();
        let names = ["web".to_owned(), "api".to_owned()];
        let mut follower = Follower::new(&logs, "x", &names, true, false);
        let mut out = Vec::new();
        LogWriter::open(&logs, &web)
            .unwrap()
            .write(b"one\ntw")
            .unwrap();
        LogWriter::open(&logs, &api).unwrap().write(b"a\n").unwrap();
        follower.pump(&mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "web | one\napi | a\n");
        out.clear();
        let path = log::path(&logs, &web);
        LogWriter::open(&logs, &web).unwrap().write(b"o\n").unwrap();
        std::fs::rename(&path, log::older(&path)).unwrap();
        LogWriter::open(&logs, &web)
            .unwrap()
            .write(b"three\n")
            .unwrap();
        follower.pump(&mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "web | two\nweb | three\n");
        assert_eq!(prefix("db", 4, Some(32)), "\x1b[32mdb   |\x1b[0m ");
    }
}
