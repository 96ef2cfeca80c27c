//! Keeping epoll registrations across the conversion (Linux).
//!
//! A server that registers its socket with epoll before bind (RStudio's does)
//! would lose the registration when `dup3` puts the new socket at its fd: the
//! interest list holds the old file. The kernel lists every epoll instance's
//! targets in `/proc/self/fdinfo`, so we read them before and re-add them after.
//!
//! A client may register before connect too, and connects are frequent:
//! reading every descriptor's link in `/proc/self/fd` on each would cost
//! more than the connect. So the epoll instances the app creates through
//! libc are noted as they are made ([`created`]), and for each the kernel is
//! asked with one `kcmp` whether it watches the socket; only one that does
//! has its fdinfo read. Without `kcmp` (a kernel without it, a seccomp
//! filter) each known instance's fdinfo is read; with more instances than
//! [`KNOWN`] holds, the whole scan is made.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// How many epoll descriptors are remembered; event loops make one each.
const KNOWN: usize = 16;
static EPOLL_FDS: [AtomicI32; KNOWN] = [const { AtomicI32::new(-1) }; KNOWN];
static TOO_MANY: AtomicBool = AtomicBool::new(false);

/// After epoll_create or epoll_create1 returned `fd`: remembers it, without
/// a lock (this may run in any thread, before the constructor too).
pub fn created(fd: RawFd) -> RawFd {
    if fd < 0 {
        return fd;
    }
    for slot in &EPOLL_FDS {
        match slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return fd,
            Err(known) if known == fd => return fd,
            Err(_) => {}
        }
    }
    TOO_MANY.store(true, Ordering::Relaxed);
    fd
}

/// Every epoll registration of `fd`, looking only at the epoll instances
/// the app made through libc (see the module doc).
pub fn registrations_of_known(fd: RawFd) -> Vec<Registration> {
    if TOO_MANY.load(Ordering::Relaxed) {
        return registrations_of(fd);
    }
    let mut found = Vec::new();
    for slot in &EPOLL_FDS {
        let epoll_fd = slot.load(Ordering::Acquire);
        if epoll_fd < 0 {
            break;
        }
        if watches(epoll_fd, fd) != Some(false) {
            found.extend(registrations_in(epoll_fd, fd));
        }
    }
    found
}

/// Whether epoll instance `epoll_fd` watches the file at `fd` under that
/// number, as `kcmp(KCMP_EPOLL_TFD)` says; `None` when it cannot say.
fn watches(epoll_fd: RawFd, fd: RawFd) -> Option<bool> {
    const KCMP_EPOLL_TFD: libc::c_long = 7;
    #[repr(C)]
    struct Slot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    let slot = Slot {
        efd: epoll_fd as u32,
        tfd: fd as u32,
        toff: 0,
    };
    // The arguments are passed as the kernel reads them: full-width longs.
    // SAFETY: kcmp only reads the slot, which lives across the call.
    let ret = unsafe {
        let pid = libc::c_long::from(libc::getpid());
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_EPOLL_TFD,
            libc::c_long::from(fd),
            &raw const slot,
        )
    };
    match ret {
        0 => Some(true),
        // Not watched (ENOENT), or no longer an epoll instance (EINVAL, EBADF).
        _ => match crate::sys::last_errno() {
            libc::ENOENT | libc::EINVAL | libc::EBADF => Some(false),
            _ => None,
        },
    }
}

/// The registrations of `fd` in epoll instance `epoll_fd`, from its fdinfo.
fn registrations_in(epoll_fd: RawFd, fd: RawFd) -> Vec<Registration> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{epoll_fd}"))
        .map(|info| parse_fdinfo(epoll_fd, &info, fd))
        .unwrap_or_default()
}

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
        if is_epoll {
            found.extend(registrations_in(epoll_fd, fd));
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
    fn known_instances_are_asked_whether_they_watch_a_socket() {
        // SAFETY: plain descriptor creation; every one is closed below.
        let (epoll_fd, watched, other) = unsafe {
            (
                created(libc::epoll_create1(libc::EPOLL_CLOEXEC)),
                libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0),
                libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0),
            )
        };
        let mut event = libc::epoll_event {
            events: libc::EPOLLOUT as u32,
            u64: 42,
        };
        // SAFETY: valid descriptors and event.
        assert_eq!(
            unsafe { libc::epoll_ctl(epoll_fd, libc::EPOLL_CTL_ADD, watched, &mut event) },
            0
        );
        assert_eq!(created(epoll_fd), epoll_fd, "remembered once");
        let found = registrations_of_known(watched);
        assert_eq!(found.len(), 1, "{found:?}");
        // The kernel lists EPOLLERR and EPOLLHUP too, which it always reports.
        assert_eq!((found[0].epoll_fd, found[0].data), (epoll_fd, 42));
        assert_ne!(found[0].events & libc::EPOLLOUT as u32, 0);
        assert_eq!(found, registrations_of(watched), "as the whole scan says");
        assert!(registrations_of_known(other).is_empty());
        for fd in [epoll_fd, watched, other] {
            crate::sys::close(fd);
        }
    }

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
