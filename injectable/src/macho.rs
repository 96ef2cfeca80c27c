//! The macOS rules, applied to the slice of a Mach-O file that would run
//! (read by `macho/read.rs`) and to the file's path.
//!
//! dyld ignores `DYLD_INSERT_LIBRARIES` for SIP-protected files, a
//! `__RESTRICT,__restrict` section, `CS_RESTRICT`, and the hardened runtime
//! unless the entitlement allowing DYLD variables is `true`; library
//! validation (hardened runtime or `CS_REQUIRE_LV`) refuses the ad-hoc
//! signed shim unless disabled by entitlement. And dyld kills a process whose
//! inserted library lacks its architecture: the shim has x86_64 and arm64.

mod read;

pub use read::*;

use crate::ReadAt;
use std::path::Path;

/// `SF_RESTRICTED`: the file flag SIP puts on what it protects.
pub const SF_RESTRICTED: u32 = 0x0008_0000;

pub const ALLOW_DYLD: &str = "com.apple.security.cs.allow-dyld-environment-variables";
pub const DISABLE_LV: &str = "com.apple.security.cs.disable-library-validation";

/// Directories SIP protects (with `/usr/local` carved out of `/usr`).
const SIP_DIRS: [&str; 4] = ["/System/", "/bin/", "/sbin/", "/usr/"];

/// The architectures a shim library carries: dyld kills a process whose
/// inserted library has no slice for the architecture it runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShimArches {
    pub x86_64: bool,
    pub arm64: bool,
}

impl ShimArches {
    /// The universal shim agentfs ships.
    pub const UNIVERSAL: ShimArches = ShimArches {
        x86_64: true,
        arm64: true,
    };

    /// The slices of the shim library `bytes`; the universal pair when they
    /// are not Mach-O (a Linux build, where this rule does not apply).
    pub fn of(bytes: &[u8]) -> ShimArches {
        match slice_table(bytes) {
            Ok(table) => ShimArches {
                x86_64: table.iter().any(|s| s.arch == Arch::X86_64),
                arm64: table.iter().any(|s| s.arch == Arch::Arm64),
            },
            Err(_) => ShimArches::UNIVERSAL,
        }
    }

    fn has(self, arch: Arch) -> bool {
        match arch {
            Arch::X86_64 => self.x86_64,
            Arch::Arm64 => self.arm64,
            _ => false,
        }
    }

    fn names(self) -> String {
        let names: Vec<&str> = [(self.x86_64, "x86_64"), (self.arm64, "arm64")]
            .into_iter()
            .filter_map(|(has, name)| has.then_some(name))
            .collect();
        names.join(" and ")
    }
}

/// The reason from the file's location and flags, if SIP protects it.
pub fn path_rule(real_path: &Path, file_flags: u32) -> Option<String> {
    if file_flags & SF_RESTRICTED != 0 {
        return Some(
            "is protected by SIP (restricted file flag): macOS strips DYLD_INSERT_LIBRARIES".into(),
        );
    }
    let text = real_path.to_string_lossy();
    let dir = SIP_DIRS
        .iter()
        .find(|dir| text.starts_with(**dir) && !text.starts_with("/usr/local/"))?;
    Some(format!(
        "is under {dir}, which SIP protects: macOS strips DYLD_INSERT_LIBRARIES"
    ))
}

/// The reason a shim with `shim` slices cannot go into this Mach-O file as
/// run on `host`, or `None` when it can or when the file is not Mach-O at all.
/// Only the slice that would run is read: a universal file may carry slices
/// for machines long gone (big-endian PowerPC) that dyld never looks at.
pub fn verdict(src: &(impl ReadAt + ?Sized), host: Arch, shim: ShimArches) -> Option<String> {
    let malformed = |what| {
        Some(format!(
            "is a malformed Mach-O file ({what}); dyld cannot run it"
        ))
    };
    let table = match slice_table(src) {
        Ok(table) => table,
        Err(MachError::NotMachO) => return None,
        Err(MachError::Malformed(what)) => return malformed(what),
    };
    let entry = match pick_slice(&table, host) {
        Ok(entry) => entry,
        Err(why) => return Some(why),
    };
    match read_slice(src, entry) {
        Ok(slice) => decide(&slice, shim),
        Err(MachError::NotMachO) => malformed("a slice without a Mach-O header"),
        Err(MachError::Malformed(what)) => malformed(what),
    }
}

/// Whether dyld, besides ignoring the preload variable for this program,
/// deletes it from the program's environment, so that nothing it starts
/// gets the shim either: a restricted or hardened program without the
/// `allow-dyld-environment-variables` entitlement (dyld's environment
/// pruning). A launcher such as `uv` or `turbo` built so sends its whole
/// app to the bridge.
pub fn prunes_environment(src: &(impl ReadAt + ?Sized), host: Arch) -> bool {
    let Ok(table) = slice_table(src) else {
        return false;
    };
    let Ok(entry) = pick_slice(&table, host) else {
        return false;
    };
    let Ok(slice) = read_slice(src, entry) else {
        return false;
    };
    if slice.restrict_section {
        return true;
    }
    slice.signature.as_ref().is_some_and(|sig| {
        sig.flags & CS_RESTRICT != 0
            || (sig.flags & CS_RUNTIME != 0 && sig.entitlements.bool(ALLOW_DYLD) != Some(true))
    })
}

/// The rules, on the slice that runs.
pub fn decide(slice: &Slice, shim: ShimArches) -> Option<String> {
    if !shim.has(slice.arch) {
        return Some(format!(
            "runs as {}, but this agentfs carries a shim for {} only: dyld would kill the process",
            slice.arch.name(),
            shim.names()
        ));
    }
    if !slice.is_64 {
        return Some("is a 32-bit Mach-O: macOS no longer runs it".into());
    }
    if slice.restrict_section {
        return Some("has a __RESTRICT,__restrict section: dyld ignores DYLD_* for it".into());
    }
    let sig = slice.signature.as_ref()?;
    signature_rule(sig)
}

fn signature_rule(sig: &Signature) -> Option<String> {
    if sig.flags & CS_RESTRICT != 0 {
        return Some("is signed with CS_RESTRICT: dyld ignores DYLD_* for it".into());
    }
    if sig.flags & CS_RUNTIME != 0 {
        match sig.entitlements.bool(ALLOW_DYLD) {
            Some(true) => {}
            Some(false) => {
                return Some(format!(
                    "uses the hardened runtime with {ALLOW_DYLD} set to false: \
                     dyld ignores DYLD_INSERT_LIBRARIES"
                ))
            }
            None => {
                return Some(format!(
                    "uses the hardened runtime without the {ALLOW_DYLD} entitlement: \
                     dyld ignores DYLD_INSERT_LIBRARIES"
                ))
            }
        }
    }
    let validates = sig.flags & (CS_RUNTIME | CS_REQUIRE_LV) != 0;
    if validates && sig.entitlements.bool(DISABLE_LV) != Some(true) {
        return Some(format!(
            "enforces library validation without {DISABLE_LV}: \
             it would refuse the ad-hoc signed shim"
        ));
    }
    None
}

/// The slice that runs on `host`. On Apple silicon a plain arm64 slice runs
/// natively; failing that, x86_64 runs under Rosetta, where the shim's
/// x86_64 slice loads. An arm64e-only file needs an arm64e library, which
/// the shim is not: dyld would kill the process.
fn pick_slice(table: &[SliceEntry], host: Arch) -> Result<&SliceEntry, String> {
    let order: &[Arch] = match host {
        Arch::X86_64 => &[Arch::X86_64],
        _ => &[Arch::Arm64, Arch::X86_64],
    };
    if let Some(entry) = order
        .iter()
        .find_map(|want| table.iter().find(|s| s.arch == *want))
    {
        return Ok(entry);
    }
    let have: Vec<String> = table.iter().map(|s| s.arch.name()).collect();
    if table.iter().any(|s| s.arch == Arch::Arm64e) && host != Arch::X86_64 {
        return Err(format!(
            "has only an arm64e slice ({}): the shim is arm64 and dyld would kill the process",
            have.join(", ")
        ));
    }
    Err(format!(
        "has no slice the shim can load on {} (it has {}; the shim has x86_64 and arm64)",
        host.name(),
        have.join(", ")
    ))
}

#[cfg(test)]
#[path = "macho_fixture.rs"]
pub(crate) mod fixture;

#[cfg(test)]
#[path = "macho_tests.rs"]
mod tests;
