//! Keeping epoll registrations across the conversion (Linux).
//!
//! A server that registers its socket with epoll before bind (RStudio's does)
//! would lose the registration when `dup3` puts the new socket at its fd: the
//! interest list holds the old file. The kernel lists every epoll instance's
//! targets in `/proc/self/fdinfo`, so we read them before and re-add them after.

use std::os::fd::RawFd;

/// One epoll instance's interest in an fd.
#[derive(Debug, PartialEq, Eq)]
pub struct Registration {
    epoll_fd: RawFd,
    events: u32,
    data: u64,
}

/// Every epoll registration of `fd` in this process.
pub fn registrations_of(fd: RawFd) -> Vec<Registration> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(epoll_fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_epoll = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]");
        if !is_epoll {
            continue;
        }
        if let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{epoll_fd}")) {
            found.extend(parse_fdinfo(epoll_fd, &info, fd));
        }
    }
    found
}

/// Parses `tfd: N events: HEX data: HEX ...` lines for target `fd`.
fn parse_fdinfo(epoll_fd: RawFd, info: &str, fd: RawFd) -> Vec<Registration> {
    info.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let mut field =
                |name: &str| (words.next() == Some(name)).then(|| words.next()).flatten();
            let target: RawFd = field("tfd:")?.parse().ok()?;
            let events = u32::from_str_radix(field("events:")?, 16).ok()?;
            let data = u64::from_str_radix(field("data:")?, 16).ok()?;
            (target == fd).then_some(Registration {
                epoll_fd,
                events,
                data,
            })
        })
        .collect()
}

/// Re-adds the registrations for the socket now at `fd`.
pub fn restore(fd: RawFd, registrations: &[Registration]) {
    for r in registrations {
        let mut event = libc::epoll_event {
            events: r.events,
            u64: r.data,
        };
        // SAFETY: event is valid for the call; a stale epoll fd just fails.
        unsafe { libc::epoll_ctl(r.epoll_fd, libc::EPOLL_CTL_ADD, fd, &mut event) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_fdinfo_lines() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\n\
                    tfd:        5 events:       19 data:                7  pos:0 ino:2a41 sdev:8\n\
                    tfd:       12 events: 80000001 data:     ffffffffffff  pos:0 ino:2a42 sdev:8\n";
        assert_eq!(
            parse_fdinfo(3, info, 5),
            vec![Registration {
                epoll_fd: 3,
                events: 0x19,
                data: 7
            }]
        );
        assert_eq!(parse_fdinfo(3, info, 12)[0].events, 0x8000_0001);
        assert!(parse_fdinfo(3, info, 6).is_empty());
    }
}
