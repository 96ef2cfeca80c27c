//! Linux: the exported symbols, found first through LD_PRELOAD; redhook looks
//! up the real ones with `dlsym(RTLD_NEXT)`. Each is one call into the shared
//! entry points of [`super`].

use libc::{
    addrinfo, c_char, c_int, c_void, hostent, msghdr, size_t, sockaddr, socklen_t, ssize_t,
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
