//! Linux: the exported symbols, found first through LD_PRELOAD; redhook looks
//! up the real ones with `dlsym(RTLD_NEXT)`. Each is one call into the shared
//! entry points of [`super`].

use libc::{c_int, c_void, sockaddr, socklen_t};
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
        let room = if len.is_null() { 0 } else { unsafe { *len } };
        // SAFETY: as above.
        unsafe { super::after_accept(real!(accept)(fd, address, len), address, len, room) }
    }
}

hook! {
    unsafe fn accept4(fd: c_int, address: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int => agentfs_accept4 {
        let room = if len.is_null() { 0 } else { unsafe { *len } };
        // SAFETY: as above.
        unsafe { super::after_accept(real!(accept4)(fd, address, len, flags), address, len, room) }
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
