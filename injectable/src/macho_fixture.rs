//! Builds Mach-O test files byte by byte: a 64-bit header, load commands
//! (`__PAGEZERO`, optionally `__RESTRICT,__restrict`, `LC_CODE_SIGNATURE`),
//! and an embedded signature SuperBlob with a CodeDirectory and an XML
//! entitlements blob; thin, or wrapped in a universal header.

use super::*;

/// One slice to build.
#[derive(Clone, Debug)]
pub struct SliceSpec {
    pub cputype: u32,
    pub subtype: u32,
    pub restrict: bool,
    pub signature: Option<SigSpec>,
}

#[derive(Clone, Debug)]
pub struct SigSpec {
    pub flags: u32,
    /// `(key, value)` booleans for the entitlements plist; `None`: no blob.
    pub entitlements: Option<Vec<(&'static str, bool)>>,
}

impl SliceSpec {
    pub fn arm64() -> SliceSpec {
        SliceSpec {
            cputype: CPU_TYPE_ARM64,
            subtype: 0,
            restrict: false,
            signature: None,
        }
    }

    pub fn x86_64() -> SliceSpec {
        SliceSpec {
            cputype: CPU_TYPE_X86_64,
            subtype: 3,
            ..SliceSpec::arm64()
        }
    }

    pub fn arm64e() -> SliceSpec {
        // As Apple ships it: arm64e with the pointer-auth ABI capability bit.
        SliceSpec {
            subtype: 0x8000_0000 | CPU_SUBTYPE_ARM64E,
            ..SliceSpec::arm64()
        }
    }

    pub fn signed(mut self, flags: u32, entitlements: Option<Vec<(&'static str, bool)>>) -> Self {
        self.signature = Some(SigSpec {
            flags,
            entitlements,
        });
        self
    }
}

fn le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn name16(out: &mut Vec<u8>, name: &str) {
    let mut raw = [0u8; 16];
    raw[..name.len()].copy_from_slice(name.as_bytes());
    out.extend_from_slice(&raw);
}

/// An `LC_SEGMENT_64` with `sections` (all in this segment), no file data.
fn segment(name: &str, sections: &[&str]) -> Vec<u8> {
    let mut cmd = Vec::new();
    le(&mut cmd, LC_SEGMENT_64);
    le(&mut cmd, 72 + 80 * sections.len() as u32);
    name16(&mut cmd, name);
    cmd.extend_from_slice(&[0; 32]); // vmaddr, vmsize, fileoff, filesize
    cmd.extend_from_slice(&[0; 8]); // maxprot, initprot
    le(&mut cmd, sections.len() as u32);
    le(&mut cmd, 0); // flags
    for sect in sections {
        name16(&mut cmd, sect);
        name16(&mut cmd, name);
        cmd.extend_from_slice(&[0; 48]);
    }
    cmd
}

pub fn plist(entries: &[(&str, bool)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n",
    );
    for (key, value) in entries {
        xml.push_str(&format!("\t<key>{key}</key>\n\t<{value}/>\n"));
    }
    xml.push_str("</dict>\n</plist>\n");
    xml
}

/// The SuperBlob: a CodeDirectory (slot 0) and, if any, entitlements (slot 5).
pub fn superblob(sig: &SigSpec) -> Vec<u8> {
    let mut cd = Vec::new();
    be(&mut cd, CSMAGIC_CODEDIRECTORY);
    be(&mut cd, 0); // length, patched below
    be(&mut cd, 0x20400); // version
    be(&mut cd, sig.flags);
    cd.extend_from_slice(&[0; 28]); // hash/ident offsets, slots, limits...
    cd.extend_from_slice(b"fixture\0");
    let cd_len = cd.len() as u32;
    cd[4..8].copy_from_slice(&cd_len.to_be_bytes());

    let mut blobs = vec![(CSSLOT_CODEDIRECTORY, cd)];
    if let Some(entries) = &sig.entitlements {
        let xml = plist(entries);
        let mut blob = Vec::new();
        be(&mut blob, CSMAGIC_EMBEDDED_ENTITLEMENTS);
        be(&mut blob, 8 + xml.len() as u32);
        blob.extend_from_slice(xml.as_bytes());
        blobs.push((CSSLOT_ENTITLEMENTS, blob));
    }
    let mut offset = 12 + 8 * blobs.len() as u32;
    let mut out = Vec::new();
    be(&mut out, CSMAGIC_EMBEDDED_SIGNATURE);
    be(&mut out, 0);
    be(&mut out, blobs.len() as u32);
    for (slot, blob) in &blobs {
        be(&mut out, *slot);
        be(&mut out, offset);
        offset += blob.len() as u32;
    }
    for (_, blob) in &blobs {
        out.extend_from_slice(blob);
    }
    let total = out.len() as u32;
    out[4..8].copy_from_slice(&total.to_be_bytes());
    out
}

/// A thin 64-bit executable.
pub fn thin(spec: &SliceSpec) -> Vec<u8> {
    let mut cmds = vec![segment("__PAGEZERO", &[])];
    if spec.restrict {
        cmds.push(segment("__RESTRICT", &["__restrict"]));
    }
    let sig = spec.signature.as_ref().map(superblob);
    let sizeofcmds: usize =
        cmds.iter().map(Vec::len).sum::<usize>() + sig.as_ref().map_or(0, |_| 16);
    let sig_at = (32 + sizeofcmds).next_multiple_of(16);
    if let Some(sig) = &sig {
        let mut cmd = Vec::new();
        le(&mut cmd, LC_CODE_SIGNATURE);
        le(&mut cmd, 16);
        le(&mut cmd, sig_at as u32);
        le(&mut cmd, sig.len() as u32);
        cmds.push(cmd);
    }
    let mut out = Vec::new();
    le(&mut out, MH_MAGIC_64);
    le(&mut out, spec.cputype);
    le(&mut out, spec.subtype);
    le(&mut out, 2); // MH_EXECUTE
    le(&mut out, cmds.len() as u32);
    le(&mut out, sizeofcmds as u32);
    le(&mut out, 0x0020_0085); // flags
    le(&mut out, 0); // reserved
    for cmd in &cmds {
        out.extend_from_slice(cmd);
    }
    if let Some(sig) = sig {
        out.resize(sig_at, 0);
        out.extend_from_slice(&sig);
    }
    out
}

/// One slice of a universal file: the cpu its table entry declares, and its image.
#[derive(Clone, Debug)]
pub struct FatSlice {
    pub cputype: u32,
    pub subtype: u32,
    pub image: Vec<u8>,
}

impl FatSlice {
    pub fn of(spec: &SliceSpec) -> FatSlice {
        FatSlice {
            cputype: spec.cputype,
            subtype: spec.subtype,
            image: thin(spec),
        }
    }

    /// A big-endian 32-bit PowerPC executable with no load commands, as
    /// universal files built before Intel Macs carried.
    pub fn powerpc() -> FatSlice {
        const CPU_TYPE_POWERPC: u32 = 18;
        let mut image = Vec::new();
        for field in [MH_MAGIC, CPU_TYPE_POWERPC, 0, 2, 0, 0, 0] {
            be(&mut image, field);
        }
        FatSlice {
            cputype: CPU_TYPE_POWERPC,
            subtype: 0,
            image,
        }
    }
}

/// A universal file holding each spec's thin image, 4 KiB aligned.
pub fn universal(specs: &[SliceSpec]) -> Vec<u8> {
    let slices: Vec<FatSlice> = specs.iter().map(FatSlice::of).collect();
    universal_of(&slices)
}

/// A universal file holding each image, 4 KiB aligned.
pub fn universal_of(slices: &[FatSlice]) -> Vec<u8> {
    const ALIGN: usize = 1 << 12;
    let mut out = Vec::new();
    be(&mut out, FAT_MAGIC);
    be(&mut out, slices.len() as u32);
    let mut offset = ALIGN;
    for slice in slices {
        be(&mut out, slice.cputype);
        be(&mut out, slice.subtype);
        be(&mut out, offset as u32);
        be(&mut out, slice.image.len() as u32);
        be(&mut out, 12);
        offset = (offset + slice.image.len()).next_multiple_of(ALIGN);
    }
    for slice in slices {
        let at = out.len().next_multiple_of(ALIGN);
        out.resize(at, 0);
        out.extend_from_slice(&slice.image);
    }
    out
}
