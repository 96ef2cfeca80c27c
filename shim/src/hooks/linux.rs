//! Linux: the exported symbols, found first through LD_PRELOAD; redhook looks
//! up the real ones with `dlsym(RTLD_NEXT)`. Each is one call into the shared
//! entry points of [`super`].

use libc::{
    addrinfo, c_char, c_int, c_long, c_void, hostent, msghdr, size_t, sockaddr, socklen_t, ssize_t,
};
use redhook::{hook, real};

hook! {
    unsafe fn bind(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int => agentfs_bind {
        // SAFETY: the app's arguments, passed on.
        unsafe { super::bind(fd, address, len, real!(bind)) }
    }
}

hook! {
    unsafe fn listen(fd: c_int, backlog: c_int) -> c_int => agentfs_listen {
        // SAFETY: as above.
        unsafe { super::listen(fd, backlog, real!(listen)) }
    }
}

hook! {
    unsafe fn close(fd: c_int) -> c_int => agentfs_close {
        // SAFETY: as above.
        super::close(fd, || unsafe { real!(close)(fd) })
    }
}

// libuv (Node) closes with syscall(SYS_close), which a close hook never
// sees. syscall is variadic; on x86-64 and aarch64 Linux, variadic integer
// arguments travel in the same registers as fixed ones, so a definition
// with the number and six integer arguments receives every call and passes
// it on whole (glibc's own syscall reads six the same way).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
hook! {
    unsafe fn syscall(number: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long => agentfs_syscall {
        if number == libc::SYS_close {
            let fd = a1 as c_int;
            // SAFETY: the app's arguments, passed on.
            return c_long::from(super::close(fd, || unsafe {
                real!(syscall)(number, a1, a2, a3, a4, a5, a6) as c_int
            }));
        }
        // SAFETY: as above.
        unsafe { real!(syscall)(number, a1, a2, a3, a4, a5, a6) }
    }
}

hook! {
    unsafe fn getsockname(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int => agentfs_getsockname {
        // SAFETY: as above.
        unsafe { super::getsockname(fd, address, len, real!(getsockname)) }
    }
}

hook! {
    unsafe fn getpeername(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int => agentfs_getpeername {
        // SAFETY: as above.
        unsafe { super::getpeername(fd, address, len, real!(getpeername)) }
    }
}

hook! {
    unsafe fn accept(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int => agentfs_accept {
        // SAFETY: as above.
        unsafe { super::accept(fd, address, len, || real!(accept)(fd, address, len)) }
    }
}

hook! {
    unsafe fn accept4(fd: c_int, address: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int => agentfs_accept4 {
        // SAFETY: as above.
        unsafe { super::accept(fd, address, len, || real!(accept4)(fd, address, len, flags)) }
    }
}

hook! {
    unsafe fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, address: *mut sockaddr, len: *mut socklen_t) -> ssize_t => agentfs_recvfrom {
        // SAFETY: as above.
        unsafe { super::recvfrom(fd, buf, n, flags, address, len, real!(recvfrom)) }
    }
}

hook! {
    unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t => agentfs_recvmsg {
        // SAFETY: as above.
        unsafe { super::recvmsg(fd, msg, flags, real!(recvmsg)) }
    }
}

hook! {
    unsafe fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int => agentfs_setsockopt {
        // SAFETY: as above.
        unsafe { super::setsockopt(fd, level, name, value, len, real!(setsockopt)) }
    }
}

hook! {
    unsafe fn getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int => agentfs_getsockopt {
        // SAFETY: as above.
        unsafe { super::getsockopt(fd, level, name, value, len, real!(getsockopt)) }
    }
}

hook! {
    unsafe fn connect(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int => agentfs_connect {
        // SAFETY: as above.
        unsafe { super::connect(fd, address, len, real!(connect)) }
    }
}

hook! {
    unsafe fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int => agentfs_getaddrinfo {
        // SAFETY: as above.
        unsafe { super::getaddrinfo(node, service, hints, res, real!(getaddrinfo)) }
    }
}

hook! {
    unsafe fn gethostbyname(name: *const c_char) -> *mut hostent => agentfs_gethostbyname {
        // SAFETY: as above.
        unsafe { super::gethostbyname(name, real!(gethostbyname)) }
    }
}

hook! {
    unsafe fn gethostbyname2(name: *const c_char, family: c_int) -> *mut hostent => agentfs_gethostbyname2 {
        // SAFETY: as above.
        unsafe { super::gethostbyname2(name, family, real!(gethostbyname2)) }
    }
}

// epoll instances are noted as they are made, so that a connect can keep a
// registration made before it cheaply (see crate::epoll).
hook! {
    unsafe fn epoll_create(size: c_int) -> c_int => agentfs_epoll_create {
        // SAFETY: as above.
        crate::epoll::created(unsafe { real!(epoll_create)(size) })
    }
}

hook! {
    unsafe fn epoll_create1(flags: c_int) -> c_int => agentfs_epoll_create1 {
        // SAFETY: as above.
        crate::epoll::created(unsafe { real!(epoll_create1)(flags) })
    }
}

// Programs executed with a cleared environment while this process holds a
// converted listener they inherit get agentfs's variables back (see
// crate::handover). glibc's execv and execvp call its internal execve, not
// this one, so each is hooked; the variadic execl family is not.
extern "C" {
    static environ: *const *const c_char;
}

hook! {
    unsafe fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => agentfs_execve {
        // SAFETY: the app's arguments; the environment is the app's or a copy of it.
        unsafe { crate::handover::with_env(envp, |envp| real!(execve)(path, argv, envp)) }
    }
}

hook! {
    unsafe fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => agentfs_execvpe {
        // SAFETY: as above.
        unsafe { crate::handover::with_env(envp, |envp| real!(execvpe)(file, argv, envp)) }
    }
}

hook! {
    unsafe fn execv(path: *const c_char, argv: *const *const c_char) -> c_int => agentfs_execv {
        // SAFETY: as above; `environ` is the process's environment.
        unsafe {
            let current = environ;
            crate::handover::with_env(current, |envp| {
                if envp == current {
                    real!(execv)(path, argv)
                } else {
                    libc::execve(path, argv, envp)
                }
            })
        }
    }
}

hook! {
    unsafe fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int => agentfs_execvp {
        // SAFETY: as above.
        unsafe {
            let current = environ;
            crate::handover::with_env(current, |envp| {
                if envp == current {
                    real!(execvp)(file, argv)
                } else {
                    libc::execvpe(file, argv, envp)
                }
            })
        }
    }
}

hook! {
    unsafe fn posix_spawn(pid: *mut libc::pid_t, path: *const c_char, actions: *const libc::posix_spawn_file_actions_t, attrs: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => agentfs_posix_spawn {
        // SAFETY: as above.
        unsafe {
            crate::handover::with_env(envp.cast(), |envp| {
                real!(posix_spawn)(pid, path, actions, attrs, argv, envp.cast())
            })
        }
    }
}

hook! {
    unsafe fn posix_spawnp(pid: *mut libc::pid_t, file: *const c_char, actions: *const libc::posix_spawn_file_actions_t, attrs: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => agentfs_posix_spawnp {
        // SAFETY: as above.
        unsafe {
            crate::handover::with_env(envp.cast(), |envp| {
                real!(posix_spawnp)(pid, file, actions, attrs, argv, envp.cast())
            })
        }
    }
}
