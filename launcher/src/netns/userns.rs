//! Entering a new user namespace as oneself: the caller's uid and gid mapped
//! to themselves (so files it makes are its own, and the program sees its
//! own ids), with every capability inside it until the next `exec`; then
//! the other namespaces asked for, which need those capabilities.
//!
//! When the kernel refuses, [`Refused`] says why in words a person can act
//! on, from the error and the sysctls that cause it.

use std::fs;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{getgid, getuid};

/// Why a user namespace could not be had, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    pub fix: String,
}

/// Unshares a user namespace with the caller's ids mapped to themselves,
/// then `then` (network, mount, PID namespaces) inside it. The process must
/// be single-threaded (the kernel refuses a new user namespace otherwise).
pub fn enter(then: CloneFlags) -> Result<(), Refused> {
    let (uid, gid) = (getuid(), getgid());
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|errno| explain(errno, "unshare"))?;
    let write = |file: &str, text: String| {
        fs::write(format!("/proc/self/{file}"), text).map_err(|err| {
            explain(
                Errno::from_raw(err.raw_os_error().unwrap_or(0)),
                &format!("writing /proc/self/{file}"),
            )
        })
    };
    // Without a capability in the parent namespace, setgroups must be denied
    // before a gid map may be written.
    write("setgroups", "deny".to_owned())?;
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))?;
    if !then.is_empty() {
        unshare(then).map_err(|errno| explain(errno, "unshare"))?;
    }
    Ok(())
}

/// What a refusal means on this machine, read from the sysctls that cause it.
pub fn explain(errno: Errno, during: &str) -> Refused {
    let sysctl = |name: &str| {
        fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
            .ok()
            .map(|v| v.trim().to_owned())
    };
    if errno == Errno::ENOSPC {
        let max = sysctl("user.max_user_namespaces").unwrap_or_else(|| "?".into());
        return Refused {
            reason: format!("user namespaces are switched off or used up here (user.max_user_namespaces is {max})"),
            fix: "sysctl -w user.max_user_namespaces=15000".into(),
        };
    }
    if matches!(errno, Errno::EPERM | Errno::EACCES) {
        if sysctl("kernel.unprivileged_userns_clone").as_deref() == Some("0") {
            return Refused {
                reason: "unprivileged user namespaces are switched off (kernel.unprivileged_userns_clone=0)".into(),
                fix: "sysctl -w kernel.unprivileged_userns_clone=1".into(),
            };
        }
        if sysctl("kernel.apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
            return Refused {
                reason: "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)".into(),
                fix: "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for agentfs that allows userns".into(),
            };
        }
        return Refused {
            reason: format!("this system refuses a new user namespace ({during}: {errno}; a container without that permission?)"),
            fix: "allow user namespaces where agentfs runs (a container needs its seccomp profile to allow unshare and clone with CLONE_NEWUSER)".into(),
        };
    }
    Refused {
        reason: format!("a new user namespace failed ({during}: {errno})"),
        fix: "run agentfs doctor for details".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_names_a_fix() {
        for errno in [Errno::ENOSPC, Errno::EPERM, Errno::EINVAL] {
            let refused = explain(errno, "unshare");
            assert!(!refused.reason.is_empty() && !refused.fix.is_empty());
        }
        assert!(explain(Errno::ENOSPC, "unshare")
            .fix
            .contains("max_user_namespaces"));
    }
}
