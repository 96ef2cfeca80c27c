//! What the app writes to stdout and stderr: passed on unchanged to wrap's
//! own stdout and stderr, and kept in the instance's log ([`crate::instance::log`]).
//!
//! A stream that is a terminal in wrap is a pseudo-terminal in the app, so
//! the app still sees a terminal and keeps its colours; its output
//! processing is off (bytes pass as written, `\n` is not made `\r\n`), and
//! it has wrap's window size, kept up to date on SIGWINCH. Any other stream
//! is a pipe. stdin stays wrap's own. One thread per stream copies; when
//! wrap's own stream fails (a closed pipe), copying stops, so the app gets
//! the error it would have got without wrap in between.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, OutputFlags, SetArg};

use agentfs_contract::layout;

use crate::instance::log::{self, LogWriter};
use crate::instance::names::{self, InstanceName};

/// How long wrap waits, once the app is gone, for the last of its output:
/// what it wrote is already buffered, so this bounds only a process that
/// left the group still holding the stream.
const DRAIN: Duration = Duration::from_secs(2);

/// Bytes copied per read.
const CHUNK: usize = 64 * 1024;

/// The app's two output streams, set up before it starts.
pub struct Capture {
    streams: Vec<Stream>,
    log: Arc<Mutex<Log>>,
}

/// One of the app's output streams: what wrap reads and where it goes.
struct Stream {
    from: Arc<File>,
    to: File,
    /// A pseudo-terminal, whose window size follows `to`'s.
    pty: bool,
}

/// The log, and whether writing to it still works.
struct Log {
    writer: LogWriter,
    failed: bool,
}

impl Capture {
    /// Gives `command` a pseudo-terminal or a pipe for stdout and stderr.
    /// `None` (after one line saying why) when the log cannot be kept: the
    /// app then writes to wrap's own streams, as it would without logs.
    pub fn attach(
        command: &mut tokio::process::Command,
        home: &Path,
        name: &InstanceName,
    ) -> Option<Capture> {
        let logs_dir = layout::logs_dir(home);
        let writer = match LogWriter::open(&logs_dir, name) {
            Ok(writer) => writer,
            Err(err) => {
                eprintln!("agentfs: {name}'s output is not kept (`agentfs logs` has none): {err}");
                return None;
            }
        };
        prune_old_logs(home, &logs_dir, name);
        let (stdout, stderr) = match (stream(io::stdout().as_fd()), stream(io::stderr().as_fd())) {
            (Ok(stdout), Ok(stderr)) => (stdout, stderr),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("agentfs: {name}'s output is not kept: {err}");
                return None;
            }
        };
        command.stdout(Stdio::from(stdout.1));
        command.stderr(Stdio::from(stderr.1));
        Some(Capture {
            streams: vec![stdout.0, stderr.0],
            log: Arc::new(Mutex::new(Log {
                writer,
                failed: false,
            })),
        })
    }

    /// Starts copying; call once the app started (its ends of the streams
    /// are then closed in wrap when the command is dropped).
    pub fn start(self) -> Copying {
        let resizing = self.streams.iter().any(|s| s.pty).then(|| {
            let pairs: Vec<(File, Arc<File>)> = self
                .streams
                .iter()
                .filter(|s| s.pty)
                .filter_map(|s| Some((s.to.try_clone().ok()?, Arc::clone(&s.from))))
                .collect();
            tokio::spawn(follow_window_size(pairs))
        });
        let done = self
            .streams
            .into_iter()
            .map(|stream| {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                let log = Arc::clone(&self.log);
                std::thread::spawn(move || {
                    copy(&stream.from, stream.to, &log);
                    let _ = sender.send(());
                });
                receiver
            })
            .collect();
        Copying { done, resizing }
    }
}

/// The copying threads of a running app.
pub struct Copying {
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
    resizing: Option<tokio::task::JoinHandle<()>>,
}

impl Copying {
    /// Waits (at most [`DRAIN`]) for the app's last output to be copied.
    pub async fn finish(self) {
        if let Some(resizing) = self.resizing {
            resizing.abort();
        }
        let _ = tokio::time::timeout(DRAIN, async {
            for done in self.done {
                let _ = done.await;
            }
        })
        .await;
    }
}

/// Removes old logs of instances that no longer run (never `current`'s).
fn prune_old_logs(home: &Path, logs_dir: &Path, current: &InstanceName) {
    let mut keep = names::scan(home)
        .map(|scan| names::running(&scan))
        .unwrap_or_default();
    keep.insert(current.clone());
    log::prune(logs_dir, &keep, std::time::SystemTime::now());
}

/// wrap's side of one stream and the app's end: a pseudo-terminal when
/// `own` (wrap's stream) is a terminal, else a pipe.
fn stream(own: std::os::fd::BorrowedFd<'_>) -> io::Result<(Stream, OwnedFd)> {
    let to = File::from(own.try_clone_to_owned()?);
    if to.is_terminal() {
        if let Ok((master, slave)) = pseudo_terminal(&to) {
            let from = Arc::new(File::from(master));
            return Ok((
                Stream {
                    from,
                    to,
                    pty: true,
                },
                slave,
            ));
        }
    }
    let (read, write) = nix::unistd::pipe()?;
    close_on_exec(&read)?;
    close_on_exec(&write)?;
    let from = Arc::new(File::from(read));
    Ok((
        Stream {
            from,
            to,
            pty: false,
        },
        write,
    ))
}

/// A pseudo-terminal (master, slave) the size of `like`, passing output
/// bytes through unprocessed.
fn pseudo_terminal(like: &File) -> io::Result<(OwnedFd, OwnedFd)> {
    let size = rustix::termios::tcgetwinsize(like)
        .ok()
        .map(|s| nix::pty::Winsize {
            ws_row: s.ws_row,
            ws_col: s.ws_col,
            ws_xpixel: s.ws_xpixel,
            ws_ypixel: s.ws_ypixel,
        });
    let pty = nix::pty::openpty(size.as_ref(), None)?;
    close_on_exec(&pty.master)?;
    close_on_exec(&pty.slave)?;
    let mut modes = termios::tcgetattr(&pty.slave)?;
    modes.output_flags.remove(OutputFlags::OPOST);
    termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &modes)?;
    Ok((pty.master, pty.slave))
}

fn close_on_exec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Copies `from` to `to` and the log until the app's end closes (a pipe
/// reads 0, a pseudo-terminal EIO) or `to` fails.
fn copy(from: &File, mut to: File, log: &Mutex<Log>) {
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match (&*from).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if write_all(&mut to, &buf[..n]).is_err() {
            return;
        }
        if let Ok(mut log) = log.lock() {
            log.append(&buf[..n]);
        }
    }
}

impl Log {
    fn append(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(err) = self.writer.write(bytes) {
            self.failed = true;
            eprintln!(
                "agentfs: stopped keeping the log {}: {err}",
                self.writer.path().display()
            );
        }
    }
}

/// `write_all`, also to a descriptor someone else made non-blocking: then
/// it waits until the descriptor can take more.
fn write_all(to: &mut File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match to.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(to.as_fd(), PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::NONE)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// On every SIGWINCH, gives each pseudo-terminal its terminal's new size.
async fn follow_window_size(pairs: Vec<(File, Arc<File>)>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut resized) = signal(SignalKind::window_change()) else {
        return;
    };
    while resized.recv().await.is_some() {
        for (terminal, pty) in &pairs {
            if let Ok(size) = rustix::termios::tcgetwinsize(terminal) {
                let _ = rustix::termios::tcsetwinsize(&**pty, size);
            }
        }
    }
}
