//! How many client connections the router holds at once, and how often it
//! says that accepting failed.
//!
//! Each client connection costs a descriptor, and one more toward an
//! instance while a request is in flight (or a WebSocket is open), so the
//! limit is half of what the descriptor limit leaves after a reserve for
//! the run directory, idle pooled connections and the rest; and never more
//! than [`MAX_CONNECTIONS`], which also bounds the memory the connections
//! hold. Connections beyond it are answered 503 and closed, instead of
//! being left to time out while the accept loop fails on every try.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The most client connections at once, whatever the descriptor limit: each
/// idle one holds about 16 KiB of buffers, so this bounds them to ~64 MiB.
/// A browser opens about six per name, so a developer's many apps stay far below.
pub const MAX_CONNECTIONS: usize = 4096;

/// Descriptors kept for everything but client connections and their
/// upstream halves (the run directory scan, the watcher, the control socket,
/// idle pooled connections, connections being refused): an eighth of the
/// limit, within these bounds.
const RESERVED_FDS: (u64, u64) = (64, 1024);

/// Raises the soft descriptor limit toward the hard one (only as far as
/// [`MAX_CONNECTIONS`] needs) and returns the connection limit it allows.
pub fn connection_limit() -> usize {
    let wanted = 2 * MAX_CONNECTIONS as u64 + RESERVED_FDS.1;
    let descriptors = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < wanted && hard > soft => {
            let raised = hard.min(wanted);
            match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
                Ok(()) => raised,
                Err(_) => soft,
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    limit_for(descriptors)
}

/// The connection limit a descriptor limit allows.
fn limit_for(descriptors: u64) -> usize {
    let reserve = (descriptors / 8).clamp(RESERVED_FDS.0, RESERVED_FDS.1);
    let half = descriptors.saturating_sub(reserve) / 2;
    usize::try_from(half)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS)
}

/// How often a repeated failure is reported.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Lets a repeated failure be logged once per `REPORT_EVERY`, with how
/// many were not logged in between: a condition that lasts (no descriptors
/// left) would otherwise log on every try.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(n)` when this failure should be logged, `n` being how many
    /// went unlogged since the last one; `None` to keep quiet.
    pub fn report(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now < last + REPORT_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_room_below_the_descriptor_limit() {
        assert_eq!(limit_for(1024), 448);
        assert_eq!(limit_for(20_000), MAX_CONNECTIONS);
        assert_eq!(limit_for(100), 18);
        assert_eq!(limit_for(10), 1);
        assert!(connection_limit() >= 1);
    }

    #[test]
    fn a_lasting_failure_is_reported_once_per_period() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.report(start), Some(0));
        let reported = (1..=100)
            .filter_map(|ms| throttle.report(start + Duration::from_millis(ms * 20)))
            .collect::<Vec<_>>();
        assert!(reported.is_empty(), "{reported:?}");
        assert_eq!(throttle.report(start + REPORT_EVERY), Some(100));
        assert_eq!(throttle.report(start + REPORT_EVERY), None);
    }
}
