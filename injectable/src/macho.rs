//! The macOS rules, read from a thin or universal Mach-O file and its path.
//!
//! dyld ignores `DYLD_INSERT_LIBRARIES` for SIP-protected files, a
//! `__RESTRICT,__restrict` section, `CS_RESTRICT`, and the hardened runtime
//! unless the entitlement allowing DYLD variables is `true`; library
//! validation (hardened runtime or `CS_REQUIRE_LV`) refuses the ad-hoc
//! signed shim unless disabled by entitlement. And dyld kills a process whose
//! inserted library lacks its architecture: the shim has x86_64 and arm64.

use super::bytes::u32_at;
use super::entitlements::Entitlements;
use super::ReadAt;
use std::path::Path;

pub const FAT_MAGIC: u32 = 0xcafe_babe;
pub const FAT_MAGIC_64: u32 = 0xcafe_babf;
pub const MH_MAGIC_64: u32 = 0xfeed_facf;
pub const MH_MAGIC: u32 = 0xfeed_face;
pub const LC_SEGMENT_64: u32 = 0x19;
pub const LC_CODE_SIGNATURE: u32 = 0x1d;
pub const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
pub const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
pub const CSMAGIC_EMBEDDED_ENTITLEMENTS: u32 = 0xfade_7171;
pub const CSSLOT_CODEDIRECTORY: u32 = 0;
pub const CSSLOT_ENTITLEMENTS: u32 = 5;
pub const CS_RESTRICT: u32 = 0x800;
pub const CS_REQUIRE_LV: u32 = 0x2000;
pub const CS_RUNTIME: u32 = 0x10000;
pub const CPU_TYPE_X86_64: u32 = 0x0100_0007;
pub const CPU_TYPE_ARM64: u32 = 0x0100_000c;
pub const CPU_SUBTYPE_ARM64E: u32 = 2;
/// `SF_RESTRICTED`: the file flag SIP puts on what it protects.
pub const SF_RESTRICTED: u32 = 0x0008_0000;

pub const ALLOW_DYLD: &str = "com.apple.security.cs.allow-dyld-environment-variables";
pub const DISABLE_LV: &str = "com.apple.security.cs.disable-library-validation";

/// Universal files list a handful of slices; Java class files share the fat
/// magic and read as a count of 45 or more (their major version).
const MAX_FAT_ARCHES: u32 = 30;
/// Load commands and signature blobs beyond these sizes are implausible.
const MAX_LOAD_COMMANDS: u32 = 16 << 20;
const MAX_BLOBS: u32 = 256;
const MAX_ENTITLEMENTS: u32 = 1 << 20;
/// Directories SIP protects (with `/usr/local` carved out of `/usr`).
const SIP_DIRS: [&str; 4] = ["/System/", "/bin/", "/sbin/", "/usr/"];

/// A slice's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
    Arm64e,
    Other { cputype: u32, subtype: u32 },
}

impl Arch {
    pub fn from_cpu(cputype: u32, subtype: u32) -> Arch {
        match cputype {
            CPU_TYPE_X86_64 => Arch::X86_64,
            // The top byte of the subtype holds capability bits (pointer auth ABI).
            CPU_TYPE_ARM64 if subtype & 0x00ff_ffff == CPU_SUBTYPE_ARM64E => Arch::Arm64e,
            CPU_TYPE_ARM64 => Arch::Arm64,
            _ => Arch::Other { cputype, subtype },
        }
    }

    /// The architecture of the Mac this runs on (arm64 unless built for x86_64).
    pub fn host() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else {
            Arch::Arm64
        }
    }

    fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::Arm64 => "arm64".into(),
            Arch::Arm64e => "arm64e".into(),
            Arch::Other { cputype, subtype } => format!("cpu {cputype:#x}/{subtype:#x}"),
        }
    }
}

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
        match parse(bytes) {
            Ok(slices) => ShimArches {
                x86_64: slices.iter().any(|s| s.arch == Arch::X86_64),
                arm64: slices.iter().any(|s| s.arch == Arch::Arm64),
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

/// One architecture's image and what the rules need from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    pub arch: Arch,
    pub is_64: bool,
    /// A `__RESTRICT` segment with a `__restrict` section.
    pub restrict_section: bool,
    pub signature: Option<Signature>,
}

/// The parts of an embedded code signature the rules use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The CodeDirectory's flags.
    pub flags: u32,
    pub entitlements: Entitlements,
}

/// Why bytes are not a Mach-O file we can judge.
#[derive(Debug, PartialEq, Eq)]
pub enum MachError {
    NotMachO,
    Malformed(&'static str),
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
pub fn verdict(src: &(impl ReadAt + ?Sized), host: Arch, shim: ShimArches) -> Option<String> {
    match parse(src) {
        Ok(slices) => decide(&slices, host, shim),
        Err(MachError::NotMachO) => None,
        Err(MachError::Malformed(what)) => Some(format!(
            "is a malformed Mach-O file ({what}); dyld cannot run it"
        )),
    }
}

/// The rules, on the parsed slices.
pub fn decide(slices: &[Slice], host: Arch, shim: ShimArches) -> Option<String> {
    let slice = match pick_slice(slices, host) {
        Ok(slice) => slice,
        Err(why) => return Some(why),
    };
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
fn pick_slice(slices: &[Slice], host: Arch) -> Result<&Slice, String> {
    let order: &[Arch] = match host {
        Arch::X86_64 => &[Arch::X86_64],
        _ => &[Arch::Arm64, Arch::X86_64],
    };
    if let Some(slice) = order
        .iter()
        .find_map(|want| slices.iter().find(|s| s.arch == *want))
    {
        return Ok(slice);
    }
    let have: Vec<String> = slices.iter().map(|s| s.arch.name()).collect();
    if slices.iter().any(|s| s.arch == Arch::Arm64e) && host != Arch::X86_64 {
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

/// Every slice of a thin or universal file.
pub fn parse(src: &(impl ReadAt + ?Sized)) -> Result<Vec<Slice>, MachError> {
    let head = src.read_at(0, 8).ok_or(MachError::NotMachO)?;
    let be_magic = u32_at(&head, 0, false).ok_or(MachError::NotMachO)?;
    let le_magic = u32_at(&head, 0, true).ok_or(MachError::NotMachO)?;
    match (be_magic, le_magic) {
        (FAT_MAGIC | FAT_MAGIC_64, _) => parse_fat(src, be_magic == FAT_MAGIC_64),
        (_, MH_MAGIC_64 | MH_MAGIC) => {
            parse_slice(&Window::new(src, 0, src.size()).ok_or(MachError::NotMachO)?)
                .map(|s| vec![s])
        }
        _ => Err(MachError::NotMachO),
    }
}

fn parse_fat(src: &(impl ReadAt + ?Sized), wide: bool) -> Result<Vec<Slice>, MachError> {
    let count = src
        .read_at(4, 4)
        .and_then(|b| u32_at(&b, 0, false))
        .ok_or(MachError::NotMachO)?;
    if count == 0 || count > MAX_FAT_ARCHES {
        return Err(MachError::NotMachO);
    }
    let entry = if wide { 32 } else { 20 };
    let table = src
        .read_at(8, entry * count as usize)
        .ok_or(MachError::Malformed("truncated universal header"))?;
    let mut slices = Vec::new();
    for arch in table.chunks_exact(entry) {
        let field = |at| u32_at(arch, at, false).map(u64::from);
        let wide_field = |at| super::bytes::u64_at(arch, at, false);
        let (offset, size) = if wide {
            (wide_field(8), wide_field(16))
        } else {
            (field(8), field(12))
        };
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(MachError::Malformed("truncated universal header"));
        };
        let window = Window::new(src, offset, size).ok_or(MachError::Malformed(
            "a slice lies past the end of the file",
        ))?;
        let slice = parse_slice(&window)?;
        let declared = Arch::from_cpu(
            u32_at(arch, 0, false).unwrap_or(0),
            u32_at(arch, 4, false).unwrap_or(0),
        );
        if declared != slice.arch {
            return Err(MachError::Malformed(
                "a slice's header disagrees with its arch",
            ));
        }
        slices.push(slice);
    }
    Ok(slices)
}

/// A byte range of a file (one slice), itself readable at offsets from 0.
struct Window<'a, S: ReadAt + ?Sized> {
    src: &'a S,
    base: u64,
    len: u64,
}

impl<'a, S: ReadAt + ?Sized> Window<'a, S> {
    fn new(src: &'a S, base: u64, len: u64) -> Option<Self> {
        (base.checked_add(len)? <= src.size()).then_some(Window { src, base, len })
    }
}

impl<S: ReadAt + ?Sized> ReadAt for Window<'_, S> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        if offset.checked_add(len as u64)? > self.len {
            return None;
        }
        self.src.read_at(self.base.checked_add(offset)?, len)
    }
}

/// One thin image: header, load commands, and the code signature they point at.
fn parse_slice(src: &(impl ReadAt + ?Sized)) -> Result<Slice, MachError> {
    let h = src
        .read_at(0, 28)
        .ok_or(MachError::Malformed("truncated header"))?;
    let field = |at| u32_at(&h, at, true).unwrap_or(0);
    let is_64 = match field(0) {
        MH_MAGIC_64 => true,
        MH_MAGIC => false,
        _ => return Err(MachError::Malformed("a slice without a Mach-O header")),
    };
    let arch = Arch::from_cpu(field(4), field(8));
    let (ncmds, sizeofcmds) = (field(16), field(20));
    let mut slice = Slice {
        arch,
        is_64,
        restrict_section: false,
        signature: None,
    };
    if !is_64 {
        return Ok(slice);
    }
    if sizeofcmds > MAX_LOAD_COMMANDS {
        return Err(MachError::Malformed("implausible load command size"));
    }
    let cmds = src
        .read_at(32, sizeofcmds as usize)
        .ok_or(MachError::Malformed("truncated load commands"))?;
    let mut at = 0usize;
    for _ in 0..ncmds {
        let (Some(cmd), Some(size)) = (u32_at(&cmds, at, true), u32_at(&cmds, at + 4, true)) else {
            return Err(MachError::Malformed("truncated load command"));
        };
        let size = size as usize;
        let body = cmds
            .get(at..at.saturating_add(size))
            .filter(|_| size >= 8)
            .ok_or(MachError::Malformed("a load command overruns the table"))?;
        match cmd {
            LC_SEGMENT_64 => slice.restrict_section |= is_restrict_segment(body),
            LC_CODE_SIGNATURE => slice.signature = Some(read_signature(src, body)?),
            _ => {}
        }
        at += size;
    }
    Ok(slice)
}

fn fixed_name(raw: &[u8]) -> &[u8] {
    raw.split(|&b| b == 0).next().unwrap_or_default()
}

/// Whether an `LC_SEGMENT_64` is `__RESTRICT` with a `__restrict` section.
fn is_restrict_segment(seg: &[u8]) -> bool {
    const HEADER: usize = 72;
    const SECTION: usize = 80;
    if seg.get(8..24).map(fixed_name) != Some(b"__RESTRICT") {
        return false;
    }
    let nsects = u32_at(seg, 64, true).unwrap_or(0) as usize;
    (0..nsects).any(|i| {
        let start = HEADER + i * SECTION;
        seg.get(start..start + 16).map(fixed_name) == Some(b"__restrict")
    })
}

/// Reads the CodeDirectory flags and the entitlements from the SuperBlob an
/// `LC_CODE_SIGNATURE` points at (all big-endian).
fn read_signature(src: &(impl ReadAt + ?Sized), cmd: &[u8]) -> Result<Signature, MachError> {
    let bad = MachError::Malformed;
    let dataoff = u64::from(u32_at(cmd, 8, true).ok_or(bad("short LC_CODE_SIGNATURE"))?);
    let head = src
        .read_at(dataoff, 12)
        .ok_or(bad("code signature past the end"))?;
    if u32_at(&head, 0, false) != Some(CSMAGIC_EMBEDDED_SIGNATURE) {
        return Err(bad("code signature without a SuperBlob"));
    }
    let count = u32_at(&head, 8, false).unwrap_or(0);
    if count > MAX_BLOBS {
        return Err(bad("implausible code signature blob count"));
    }
    let index = src
        .read_at(dataoff + 12, 8 * count as usize)
        .ok_or(bad("truncated code signature index"))?;
    let mut flags = None;
    let mut entitlements = Entitlements::default();
    for entry in index.chunks_exact(8) {
        let slot = u32_at(entry, 0, false).unwrap_or(u32::MAX);
        let blob_at = dataoff + u64::from(u32_at(entry, 4, false).unwrap_or(0));
        match slot {
            CSSLOT_CODEDIRECTORY => {
                let cd = src
                    .read_at(blob_at, 16)
                    .ok_or(bad("truncated CodeDirectory"))?;
                if u32_at(&cd, 0, false) != Some(CSMAGIC_CODEDIRECTORY) {
                    return Err(bad("CodeDirectory slot without a CodeDirectory"));
                }
                flags = u32_at(&cd, 12, false);
            }
            CSSLOT_ENTITLEMENTS => entitlements = read_entitlements(src, blob_at)?,
            _ => {}
        }
    }
    let flags = flags.ok_or(bad("code signature without a CodeDirectory"))?;
    Ok(Signature {
        flags,
        entitlements,
    })
}

fn read_entitlements(src: &(impl ReadAt + ?Sized), at: u64) -> Result<Entitlements, MachError> {
    let bad = MachError::Malformed;
    let head = src.read_at(at, 8).ok_or(bad("truncated entitlements"))?;
    if u32_at(&head, 0, false) != Some(CSMAGIC_EMBEDDED_ENTITLEMENTS) {
        return Err(bad("entitlements slot without an entitlements blob"));
    }
    let len = u32_at(&head, 4, false).unwrap_or(0);
    if !(8..=MAX_ENTITLEMENTS).contains(&len) {
        return Err(bad("implausible entitlements size"));
    }
    let xml = src
        .read_at(at + 8, len as usize - 8)
        .ok_or(bad("truncated entitlements"))?;
    Ok(Entitlements::parse_xml(&xml))
}

#[cfg(test)]
#[path = "macho_fixture.rs"]
pub(crate) mod fixture;

#[cfg(test)]
#[path = "macho_tests.rs"]
mod tests;
