//! What the router saw of one backend lately, for the dashboard: its last
//! requests and its last failure.
//!
//! The requests are kept in a small ring of fixed-size slots, allocated once
//! at a backend's first request: recording one copies a few bytes of its
//! request line under an uncontended lock and reads the clock once, with no
//! allocation per request. Only the path is kept, never the query string,
//! which may carry tokens (the dashboard is readable by every local user).

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Requests kept per backend.
pub const RECENT: usize = 10;

/// Bytes of a path kept; a longer one is cut and marked with `…`.
const PATH_BYTES: usize = 64;

/// Bytes of a method kept (every standard method fits).
const METHOD_BYTES: usize = 12;

/// Bytes of a failure's message kept.
const MESSAGE_CHARS: usize = 300;

/// A backend's recent requests and last failure.
#[derive(Debug, Default)]
pub struct Activity {
    recent: Mutex<Option<Box<Ring>>>,
    last_error: Mutex<Option<Failure>>,
}

/// One request, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// From the router's first try until the answer's head (or the failure).
    pub took: Duration,
    /// When the answer's head came (or the request failed).
    pub at: SystemTime,
}

/// The last thing that went wrong toward a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub at: SystemTime,
}

#[derive(Debug)]
struct Ring {
    /// The slot the next request goes to.
    next: usize,
    slots: [Option<Slot>; RECENT],
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    at: Instant,
    took: Duration,
    status: u16,
    method: Short<METHOD_BYTES>,
    path: Short<PATH_BYTES>,
}

/// Up to `N` bytes of some text, inline, and whether it was longer.
#[derive(Clone, Copy, Debug)]
struct Short<const N: usize> {
    bytes: [u8; N],
    len: u8,
    cut: bool,
}

impl<const N: usize> Short<N> {
    fn new(text: &[u8]) -> Short<N> {
        let len = text.len().min(N);
        let mut bytes = [0; N];
        bytes[..len].copy_from_slice(&text[..len]);
        Short {
            bytes,
            len: len as u8,
            cut: text.len() > N,
        }
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes[..usize::from(self.len)]).into_owned();
        if self.cut {
            text.push('…');
        }
        text
    }
}

impl Activity {
    /// Records a request that was answered with `status` (or failed with
    /// it) now, `started` being when the router first tried it. `head` is
    /// the request head as sent to the instance.
    pub fn record(&self, head: &[u8], status: u16, started: Instant) {
        let now = Instant::now();
        let (method, path) = request_line(head);
        let slot = Slot {
            at: now,
            took: now.saturating_duration_since(started),
            status,
            method: Short::new(method),
            path: Short::new(path),
        };
        let mut ring = lock(&self.recent);
        let ring = ring.get_or_insert_with(|| {
            Box::new(Ring {
                next: 0,
                slots: [None; RECENT],
            })
        });
        ring.slots[ring.next] = Some(slot);
        ring.next = (ring.next + 1) % RECENT;
    }

    /// Records a failure toward the backend (a rare path: it allocates).
    pub fn failed(&self, message: &str) {
        let message = message.chars().take(MESSAGE_CHARS).collect();
        *lock(&self.last_error) = Some(Failure {
            message,
            at: SystemTime::now(),
        });
    }

    /// The last requests, newest first.
    pub fn recent(&self) -> Vec<Seen> {
        let Some((next, slots)) = lock(&self.recent).as_ref().map(|r| (r.next, r.slots)) else {
            return Vec::new();
        };
        (0..RECENT)
            .rev()
            .filter_map(|back| slots[(next + back) % RECENT])
            .map(|slot| Seen {
                method: slot.method.text(),
                path: slot.path.text(),
                status: slot.status,
                took: slot.took,
                at: wall(slot.at),
            })
            .collect()
    }

    /// The last failure, if any.
    pub fn last_error(&self) -> Option<Failure> {
        lock(&self.last_error).clone()
    }
}

/// Turns monotonic instants into wall-clock times, from one pair of
/// readings taken once: the same instant always gives the same time, so an
/// unchanged ring reads the same every time it is shown.
fn wall(at: Instant) -> SystemTime {
    static BASE: OnceLock<(SystemTime, Instant)> = OnceLock::new();
    let (wall, mono) = *BASE.get_or_init(|| (SystemTime::now(), Instant::now()));
    match at.checked_duration_since(mono) {
        Some(after) => wall + after,
        None => wall
            .checked_sub(mono.saturating_duration_since(at))
            .unwrap_or(wall),
    }
}

/// A std mutex: held to copy a slot in or out, never across an await.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The method and the path (without the query) of a request head.
fn request_line(head: &[u8]) -> (&[u8], &[u8]) {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    (method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_requests_newest_first_without_queries() {
        let activity = Activity::default();
        assert!(activity.recent().is_empty());
        let started = Instant::now();
        for i in 0..RECENT + 3 {
            let head = format!("GET /page/{i}?token=secret HTTP/1.1\r\nhost: x\r\n\r\n");
            activity.record(head.as_bytes(), 200, started);
        }
        let recent = activity.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].path, format!("/page/{}", RECENT + 2));
        assert_eq!(recent[RECENT - 1].path, "/page/3");
        assert!(recent.iter().all(|r| r.method == "GET" && r.status == 200));
        assert!(recent[0].at >= recent[RECENT - 1].at);
    }

    #[test]
    fn long_paths_are_cut_and_marked() {
        let activity = Activity::default();
        let long = "/a".repeat(100);
        let head = format!("PROPFIND {long} HTTP/1.1\r\n\r\n");
        activity.record(head.as_bytes(), 207, Instant::now());
        let seen = &activity.recent()[0];
        assert_eq!(seen.method, "PROPFIND");
        assert_eq!(seen.path, format!("{}…", &long[..PATH_BYTES]));
    }

    #[test]
    fn remembers_the_last_failure() {
        let activity = Activity::default();
        assert_eq!(activity.last_error(), None);
        activity.failed("first");
        activity.failed("second");
        assert_eq!(activity.last_error().unwrap().message, "second");
    }
}
