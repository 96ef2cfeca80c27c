//! Where each service's log stood when: what `agentfs logs --since TIME`
//! needs, since logs carry no timestamps of their own (wrap keeps an app's
//! bytes as written). The supervisor looks at each log every
//! [`SAMPLE_EVERY`] and notes its file and size whenever they changed, so a
//! time maps to a place in the log to within that interval.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How often the logs are looked at.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Marks kept per service: two hours of a log that changes all the time.
const KEEP: usize = 14_400;

/// A place in a log: which file (by inode) and how far into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub unix_ms: u64,
    pub ino: u64,
    pub offset: u64,
}

/// The marks of every service's log.
#[derive(Default)]
pub struct Marks {
    logs: Mutex<HashMap<String, VecDeque<Mark>>>,
}

impl Marks {
    /// Notes where `service`'s log at `path` stands now, if that changed.
    pub fn sample(&self, service: &str, path: &PathBuf) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mark = Mark {
            unix_ms: now_ms(),
            ino: meta.ino(),
            offset: meta.len(),
        };
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let marks = logs.entry(service.to_owned()).or_default();
        if marks
            .back()
            .is_some_and(|m| (m.ino, m.offset) == (mark.ino, mark.offset))
        {
            return;
        }
        if marks.len() == KEEP {
            marks.pop_front();
        }
        marks.push_back(mark);
    }

    /// Where `service`'s log stood at `unix_ms`: the last mark taken then
    /// or before; `None` when that is before the first mark (all of the
    /// log is newer than anything known).
    pub fn at(&self, service: &str, unix_ms: u64) -> Option<Mark> {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.get(service)?
            .iter()
            .rev()
            .find(|m| m.unix_ms <= unix_ms)
            .copied()
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_maps_to_the_last_mark_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("web.log");
        let marks = Marks::default();
        marks.sample("web", &path);
        assert_eq!(marks.at("web", u64::MAX), None, "no log, no mark");
        std::fs::write(&path, "one\n").unwrap();
        marks.sample("web", &path);
        let first = marks.at("web", u64::MAX).unwrap();
        assert_eq!(first.offset, 4);
        marks.sample("web", &path);
        std::fs::write(&path, "one\ntwo\n").unwrap();
        marks.sample("web", &path);
        assert_eq!(marks.at("web", u64::MAX).unwrap().offset, 8);
        assert_eq!(marks.at("web", first.unix_ms - 1), None);
        assert_eq!(
            marks.logs.lock().unwrap()["web"].len(),
            2,
            "unchanged: no mark"
        );
    }
}
