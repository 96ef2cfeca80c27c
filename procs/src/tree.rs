//! A process and every process descended from it.

use std::collections::HashMap;
use std::path::Path;

/// `root` and every process descended from it, `root` first, parents
/// before their children.
pub fn descendants(root: u32) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        descendants_in(Path::new("/proc"), root)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = descendants_in;
        walk(root, children)
    }
}

/// [`descendants`] read from a procfs mounted at `proc_root` (Linux's
/// layout: `PID/stat` per process).
pub fn descendants_in(proc_root: &Path, root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return vec![root];
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| parent_of(&stat))
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    walk(root, |pid| children.get(&pid).cloned().unwrap_or_default())
}

/// Breadth first from `root`, never visiting a process twice.
fn walk(root: u32, mut children_of: impl FnMut(u32) -> Vec<u32>) -> Vec<u32> {
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&pid) = tree.get(next) {
        next += 1;
        for child in children_of(pid) {
            if child != 0 && !tree.contains(&child) {
                tree.push(child);
            }
        }
    }
    tree
}

/// The `ppid` field of a `/proc/PID/stat` line: after the command name,
/// which is in parentheses and may itself contain `)` and spaces.
pub fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `pid`, from the kernel.
#[cfg(target_os = "macos")]
fn children(pid: u32) -> Vec<u32> {
    const MAX_CHILDREN: usize = 4096;
    let mut pids = vec![0 as libc::pid_t; MAX_CHILDREN];
    let room = (MAX_CHILDREN * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Vec::new();
    };
    // SAFETY: the buffer holds MAX_CHILDREN pids, as `room` says.
    let count = unsafe { libc::proc_listchildpids(pid, pids.as_mut_ptr().cast(), room) };
    let count = usize::try_from(count).unwrap_or(0).min(MAX_CHILDREN);
    pids[..count]
        .iter()
        .filter_map(|&p| u32::try_from(p).ok())
        .filter(|&p| p != 0)
        .collect()
}

/// No process tables elsewhere.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn children(_pid: u32) -> Vec<u32> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_awkward_name() {
        assert_eq!(parent_of("42 (a) b (c) S 7 42 42"), Some(7));
        assert_eq!(parent_of("42 (a) b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("42 (x) R"), None);
        assert_eq!(parent_of("42 (no close"), None);
        assert_eq!(parent_of(""), None);
    }

    #[test]
    fn a_walk_visits_each_process_once_parents_first() {
        let tree = |pid| match pid {
            1 => vec![2, 3],
            2 => vec![4, 1],
            3 => vec![4],
            _ => vec![],
        };
        assert_eq!(walk(1, tree), [1, 2, 3, 4]);
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn a_real_child_and_grandchild_are_descendants() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        let tree = descendants(std::process::id());
        assert_eq!(tree[0], std::process::id());
        assert!(
            tree.contains(&child.id()) && tree.contains(&grandchild),
            "{tree:?}"
        );
        // SAFETY: plain kill of a process we started.
        unsafe { libc::kill(grandchild as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
}
