//! What a Mach-O file says, read from its bytes: the slices a thin or
//! universal file lists, and for one slice its header, the load commands the
//! rules look at (`LC_SEGMENT_64`, `LC_CODE_SIGNATURE`) and the code
//! signature's flags and entitlements. Every count the file gives is bounded
//! by the bytes that hold it, so hostile files cost no more than their size.

use crate::bytes::u32_at;
use crate::entitlements::Entitlements;
use crate::ReadAt;

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

/// Universal files list a handful of slices; Java class files share the fat
/// magic and read as a count of 45 or more (their major version).
const MAX_FAT_ARCHES: u32 = 30;
/// Load commands and signature blobs beyond these sizes are implausible.
const MAX_LOAD_COMMANDS: u32 = 16 << 20;
const MAX_BLOBS: u32 = 256;
const MAX_ENTITLEMENTS: u32 = 1 << 20;

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

    /// How Apple names it (`arm64`), or its cpu type and subtype.
    pub fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::Arm64 => "arm64".into(),
            Arch::Arm64e => "arm64e".into(),
            Arch::Other { cputype, subtype } => format!("cpu {cputype:#x}/{subtype:#x}"),
        }
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

/// A slice as the universal header (or a thin file's own header) lists it:
/// the architecture the kernel chooses it by, and where its image lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceEntry {
    pub arch: Arch,
    offset: u64,
    size: u64,
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

/// Every slice of a thin or universal file, read; an error if any cannot be.
pub fn parse(src: &(impl ReadAt + ?Sized)) -> Result<Vec<Slice>, MachError> {
    slice_table(src)?
        .iter()
        .map(|entry| read_slice(src, entry))
        .collect()
}

/// The slices a thin or universal file lists, without reading their images.
pub fn slice_table(src: &(impl ReadAt + ?Sized)) -> Result<Vec<SliceEntry>, MachError> {
    let head = src.read_at(0, 8).ok_or(MachError::NotMachO)?;
    let be_magic = u32_at(&head, 0, false).ok_or(MachError::NotMachO)?;
    let le_magic = u32_at(&head, 0, true).ok_or(MachError::NotMachO)?;
    match (be_magic, le_magic) {
        (FAT_MAGIC | FAT_MAGIC_64, _) => fat_table(src, be_magic == FAT_MAGIC_64),
        (_, MH_MAGIC_64 | MH_MAGIC) => {
            let h = src
                .read_at(0, 12)
                .ok_or(MachError::Malformed("truncated header"))?;
            let field = |at| u32_at(&h, at, true).unwrap_or(0);
            Ok(vec![SliceEntry {
                arch: Arch::from_cpu(field(4), field(8)),
                offset: 0,
                size: src.size(),
            }])
        }
        _ => Err(MachError::NotMachO),
    }
}

/// Reads the image of one slice `src` lists.
pub fn read_slice(src: &(impl ReadAt + ?Sized), entry: &SliceEntry) -> Result<Slice, MachError> {
    let window = Window::new(src, entry.offset, entry.size).ok_or(MachError::Malformed(
        "a slice lies past the end of the file",
    ))?;
    let slice = parse_slice(&window)?;
    if slice.arch != entry.arch {
        return Err(MachError::Malformed(
            "a slice's header disagrees with its arch",
        ));
    }
    Ok(slice)
}

fn fat_table(src: &(impl ReadAt + ?Sized), wide: bool) -> Result<Vec<SliceEntry>, MachError> {
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
    let mut entries = Vec::new();
    for arch in table.chunks_exact(entry) {
        let field = |at| u32_at(arch, at, false).map(u64::from);
        let wide_field = |at| crate::bytes::u64_at(arch, at, false);
        let (offset, size) = if wide {
            (wide_field(8), wide_field(16))
        } else {
            (field(8), field(12))
        };
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(MachError::Malformed("truncated universal header"));
        };
        if offset.checked_add(size).is_none_or(|end| end > src.size()) {
            return Err(MachError::Malformed(
                "a slice lies past the end of the file",
            ));
        }
        entries.push(SliceEntry {
            arch: Arch::from_cpu(
                u32_at(arch, 0, false).unwrap_or(0),
                u32_at(arch, 4, false).unwrap_or(0),
            ),
            offset,
            size,
        });
    }
    Ok(entries)
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
            LC_SEGMENT_64 => slice.restrict_section |= is_restrict_segment(body)?,
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
/// The section count is checked against the command's size first, as the
/// kernel does: a count of 0xffffffff must not mean four billion reads.
fn is_restrict_segment(seg: &[u8]) -> Result<bool, MachError> {
    const HEADER: usize = 72;
    const SECTION: usize = 80;
    let nsects = u32_at(seg, 64, true).unwrap_or(0) as usize;
    let sections = seg.get(HEADER..).unwrap_or_default();
    if nsects > sections.len() / SECTION {
        return Err(MachError::Malformed(
            "a segment claims more sections than its load command holds",
        ));
    }
    if seg.get(8..24).map(fixed_name) != Some(b"__RESTRICT") {
        return Ok(false);
    }
    Ok(sections
        .chunks_exact(SECTION)
        .take(nsects)
        .any(|section| fixed_name(&section[..16]) == b"__restrict"))
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
