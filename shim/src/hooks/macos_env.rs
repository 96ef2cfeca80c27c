//! Putting the preload variable back into a child's environment.
//!
//! On macOS a restricted program (anything under SIP, such as `/bin/sh` or
//! `/usr/bin/env`) deletes every `DYLD_*` variable from its own environment,
//! so what it starts runs without the shim. The launcher also sets
//! `AGENTFS_SHIM` (the shim's path), which nothing strips. When a process
//! that has the shim starts a child with an environment that has
//! `AGENTFS_SHIM` but no preload variable, the child gets a copy with
//! `DYLD_INSERT_LIBRARIES=$AGENTFS_SHIM` added. Any other environment is
//! passed on as it is, including one whose preload variable names other
//! libraries: that is the app's choice.
//!
//! This runs in execve, possibly in a child between fork and exec, so it
//! allocates nothing for environments of up to [`STACK_ENTRIES`] entries:
//! the copy is an array of pointers on the stack (the strings are the
//! caller's, plus one line built in a stack buffer). Larger ones use the heap,
//! which libSystem's fork handlers make usable in a forked child.
//!
//! The logic is plain Rust over C pointers, so it is unit tested on Linux too.

use std::ffi::CStr;

use libc::c_char;

/// Entries (pointers) the stack copy holds; larger environments use a `Vec`.
const STACK_ENTRIES: usize = 512;
/// Room for `NAME=` and the shim's path: macOS's PATH_MAX is 1024, and a
/// path dyld could not open is not worth passing on.
const LINE_MAX: usize = 1024 + 64;

/// The value of `name` in a NULL-terminated `envp`, if set.
///
/// # Safety
/// `envp` must be a NULL-terminated array of NUL-terminated strings.
unsafe fn lookup<'a>(envp: *const *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    let mut entry = envp;
    loop {
        // SAFETY: entry stays within the NULL-terminated array.
        let line = unsafe { *entry };
        if line.is_null() {
            return None;
        }
        // SAFETY: each entry is a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(line) }.to_bytes();
        if let Some(value) = bytes
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(b"="))
        {
            return Some(value);
        }
        // SAFETY: the current entry was not the terminator.
        entry = unsafe { entry.add(1) };
    }
}

/// Number of entries before the terminating NULL.
///
/// # Safety
/// As for [`lookup`].
unsafe fn count(envp: *const *const c_char) -> usize {
    let mut n = 0;
    // SAFETY: stops at the terminator.
    while !unsafe { *envp.add(n) }.is_null() {
        n += 1;
    }
    n
}

/// The line to add (`preload=shim`, NUL-terminated, in `buf`), or `None`
/// when `envp` needs nothing: it is NULL, already has `preload`, has no
/// usable `shim_var` (empty, relative, too long).
///
/// # Safety
/// `envp` must be NULL or as for [`lookup`].
unsafe fn missing_line<'b>(
    envp: *const *const c_char,
    preload: &[u8],
    shim_var: &[u8],
    buf: &'b mut [u8; LINE_MAX],
) -> Option<&'b CStr> {
    if envp.is_null() {
        return None;
    }
    // SAFETY: forwarded from the caller.
    if unsafe { lookup(envp, preload) }.is_some() {
        return None;
    }
    // SAFETY: as above.
    let shim = unsafe { lookup(envp, shim_var) }?;
    let len = preload.len() + 1 + shim.len();
    if !shim.starts_with(b"/") || len >= LINE_MAX {
        return None;
    }
    buf[..preload.len()].copy_from_slice(preload);
    buf[preload.len()] = b'=';
    buf[preload.len() + 1..len].copy_from_slice(shim);
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).ok()
}

/// Calls `f` with the environment the child should get: `envp` itself, or a
/// copy with `preload=<value of shim_var>` appended (see the module doc).
///
/// # Safety
/// `envp` must be NULL or a NULL-terminated array of NUL-terminated strings
/// that stays valid during the call.
pub unsafe fn with_child_env<R>(
    envp: *const *const c_char,
    preload: &[u8],
    shim_var: &[u8],
    f: impl FnOnce(*const *const c_char) -> R,
) -> R {
    let mut buf = [0u8; LINE_MAX];
    // SAFETY: forwarded from the caller.
    let Some(line) = (unsafe { missing_line(envp, preload, shim_var, &mut buf) }) else {
        return f(envp);
    };
    // SAFETY: missing_line returned Some, so envp is a valid non-NULL array.
    let n = unsafe { count(envp) };
    let fill = |copy: &mut [*const c_char]| {
        // SAFETY: envp holds n entries; copy holds n + 2.
        unsafe { std::ptr::copy_nonoverlapping(envp, copy.as_mut_ptr(), n) };
        copy[n] = line.as_ptr();
        copy[n + 1] = std::ptr::null();
    };
    if n + 2 <= STACK_ENTRIES {
        let mut copy = [std::ptr::null::<c_char>(); STACK_ENTRIES];
        fill(&mut copy[..n + 2]);
        f(copy.as_ptr())
    } else {
        let mut copy = vec![std::ptr::null::<c_char>(); n + 2];
        fill(&mut copy);
        f(copy.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    const PRELOAD: &[u8] = b"DYLD_INSERT_LIBRARIES";
    const SHIM: &[u8] = b"AGENTFS_SHIM";

    /// What the child would get for an environment made of `lines`.
    fn child_env(lines: &[&str]) -> Vec<String> {
        let owned: Vec<CString> = lines.iter().map(|l| CString::new(*l).unwrap()).collect();
        let mut envp: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: envp is NULL-terminated and owned outlives the call.
        unsafe {
            with_child_env(envp.as_ptr(), PRELOAD, SHIM, |child| {
                let n = count(child);
                (0..n)
                    .map(|i| CStr::from_ptr(*child.add(i)).to_string_lossy().into_owned())
                    .collect()
            })
        }
    }

    #[test]
    fn a_stripped_environment_gets_the_shim_back() {
        let got = child_env(&["PATH=/usr/bin", "AGENTFS_SHIM=/h/.agentfs/shim.dylib"]);
        assert_eq!(
            got,
            [
                "PATH=/usr/bin",
                "AGENTFS_SHIM=/h/.agentfs/shim.dylib",
                "DYLD_INSERT_LIBRARIES=/h/.agentfs/shim.dylib"
            ]
        );
    }

    #[test]
    fn environments_that_need_nothing_pass_unchanged() {
        for lines in [
            &[
                "AGENTFS_SHIM=/s.dylib",
                "DYLD_INSERT_LIBRARIES=/other.dylib",
            ][..],
            &["DYLD_INSERT_LIBRARIES="],
            &["PATH=/bin"],
            &["AGENTFS_SHIM=relative.dylib"],
            &["AGENTFS_SHIM="],
            &["AGENTFS_SHIMX=/s.dylib"],
            &[],
        ] {
            assert_eq!(child_env(lines), lines, "{lines:?}");
        }
    }

    #[test]
    fn large_environments_are_copied_too() {
        let mut lines: Vec<String> = (0..STACK_ENTRIES + 10).map(|i| format!("V{i}=x")).collect();
        lines.push("AGENTFS_SHIM=/s.dylib".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = child_env(&refs);
        assert_eq!(got.len(), refs.len() + 1);
        assert_eq!(got.last().unwrap(), "DYLD_INSERT_LIBRARIES=/s.dylib");
    }

    #[test]
    fn a_null_environment_is_passed_on() {
        // SAFETY: NULL is allowed.
        let same = unsafe { with_child_env(std::ptr::null(), PRELOAD, SHIM, |e| e.is_null()) };
        assert!(same);
    }

    #[test]
    fn overlong_shim_paths_are_not_passed_on() {
        let long = format!("AGENTFS_SHIM=/{}", "a".repeat(LINE_MAX));
        assert_eq!(child_env(&[&long]), [long.as_str()]);
    }
}
