//! The Linux rules, read from an ELF file's headers.
//!
//! `LD_PRELOAD` is honoured by the dynamic loader named in `PT_INTERP`, so a
//! binary without one (static, static-pie: Go, musl, `cc -static`) never
//! loads the shim. A dynamically linked Go program loads it but makes its own
//! system calls, so the shim never sees its `listen()`. The shim is a glibc
//! library for one machine: other loaders, classes or machines cannot load it.

use super::bytes::{u16_at, u32_at, u64_at};
use super::ReadAt;

const PT_INTERP: u32 = 3;
/// Program headers beyond this are not read (real binaries have about a dozen).
const MAX_PHNUM: usize = 512;
/// Section names beyond this size are not read when looking for Go's sections.
const MAX_SHSTRTAB: u64 = 1 << 20;
const MAX_SHNUM: usize = 1 << 14;
/// Longest `PT_INTERP` path read.
const MAX_INTERP: u64 = 4096;
/// Sections only the Go linker writes.
const GO_SECTIONS: [&[u8]; 2] = [b".go.buildinfo", b".note.go.buildid"];

/// An ELF `e_machine` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine(pub u16);

impl Machine {
    pub const X86_64: Machine = Machine(62);
    pub const AARCH64: Machine = Machine(183);

    /// The machine this program (and so the shim) was built for, if known.
    pub fn host() -> Option<Machine> {
        if cfg!(target_arch = "x86_64") {
            Some(Machine::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Machine::AARCH64)
        } else {
            None
        }
    }

    fn name(self) -> String {
        match self {
            Machine::X86_64 => "x86_64".into(),
            Machine::AARCH64 => "aarch64".into(),
            Machine(other) => format!("ELF machine {other}"),
        }
    }
}

/// What the rules need from an ELF file.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfFacts {
    pub is_64: bool,
    pub machine: Machine,
    /// The dynamic loader's path from `PT_INTERP`; `None` for a static binary.
    pub interp: Option<String>,
    /// Whether the Go linker made it.
    pub go: bool,
}

/// Why bytes are not an ELF file we can judge.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Malformed(&'static str),
}

/// The reason the shim cannot go into this binary (to follow its path in a
/// sentence), or `None` when it can, or when it is not an ELF file at all.
pub fn verdict(src: &(impl ReadAt + ?Sized), host: Option<Machine>) -> Option<String> {
    match parse(src) {
        Ok(facts) => decide(&facts, host),
        Err(ElfError::NotElf) => None,
        Err(ElfError::Malformed(what)) => Some(format!(
            "is a malformed ELF file ({what}); the loader cannot run it"
        )),
    }
}

/// The rules, on parsed facts.
pub fn decide(facts: &ElfFacts, host: Option<Machine>) -> Option<String> {
    if let Some(host) = host {
        if !facts.is_64 {
            return Some(format!(
                "is a 32-bit ELF: the shim is a 64-bit {} library",
                host.name()
            ));
        }
        if facts.machine != host {
            return Some(format!(
                "is built for {}: the shim is built for {}",
                facts.machine.name(),
                host.name()
            ));
        }
    }
    let Some(interp) = &facts.interp else {
        return Some("is a statically linked ELF: the shim cannot be preloaded".into());
    };
    if facts.go {
        return Some(
            "is a Go program: Go makes its own system calls, so the shim never sees it listen"
                .into(),
        );
    }
    if interp.contains("musl") {
        return Some(format!(
            "uses the musl loader {interp}: the shim is a glibc library"
        ));
    }
    None
}

/// Reads the header, the program headers and the section names.
pub fn parse(src: &(impl ReadAt + ?Sized)) -> Result<ElfFacts, ElfError> {
    let ident = src.read_at(0, 16).ok_or(ElfError::NotElf)?;
    if ident[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let is_64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return Err(ElfError::Malformed("unknown ELF class")),
    };
    let le = match ident[5] {
        1 => true,
        2 => false,
        _ => return Err(ElfError::Malformed("unknown byte order")),
    };
    let header_len = if is_64 { 64 } else { 52 };
    let h = src
        .read_at(0, header_len)
        .ok_or(ElfError::Malformed("truncated header"))?;
    let header = Header::read(&h, is_64, le).ok_or(ElfError::Malformed("truncated header"))?;
    let interp = find_interp(src, &header)?;
    let go = has_go_section(src, &header);
    Ok(ElfFacts {
        is_64,
        machine: Machine(header.machine),
        interp,
        go,
    })
}

/// The fields of the ELF header the rules use, for either class.
struct Header {
    is_64: bool,
    le: bool,
    machine: u16,
    phoff: u64,
    phentsize: usize,
    phnum: usize,
    shoff: u64,
    shentsize: usize,
    shnum: usize,
    shstrndx: usize,
}

impl Header {
    fn read(h: &[u8], is_64: bool, le: bool) -> Option<Header> {
        let machine = u16_at(h, 18, le)?;
        let (phoff, shoff, rest) = if is_64 {
            (u64_at(h, 32, le)?, u64_at(h, 40, le)?, 54)
        } else {
            (
                u64::from(u32_at(h, 28, le)?),
                u64::from(u32_at(h, 32, le)?),
                42,
            )
        };
        let field = |i: usize| u16_at(h, rest + 2 * i, le).map(usize::from);
        Some(Header {
            is_64,
            le,
            machine,
            phoff,
            phentsize: field(0)?,
            phnum: field(1)?,
            shoff,
            shentsize: field(2)?,
            shnum: field(3)?,
            shstrndx: field(4)?,
        })
    }

    fn min_phentsize(&self) -> usize {
        if self.is_64 {
            56
        } else {
            32
        }
    }

    fn min_shentsize(&self) -> usize {
        if self.is_64 {
            64
        } else {
            40
        }
    }

    /// `(offset, size)` of a program header or section header's file range.
    fn range(&self, entry: &[u8], section: bool) -> Option<(u64, u64)> {
        let le = self.le;
        match (self.is_64, section) {
            (true, false) => Some((u64_at(entry, 8, le)?, u64_at(entry, 32, le)?)),
            (false, false) => Some((
                u64::from(u32_at(entry, 4, le)?),
                u64::from(u32_at(entry, 16, le)?),
            )),
            (true, true) => Some((u64_at(entry, 24, le)?, u64_at(entry, 32, le)?)),
            (false, true) => Some((
                u64::from(u32_at(entry, 16, le)?),
                u64::from(u32_at(entry, 20, le)?),
            )),
        }
    }
}

fn find_interp(src: &(impl ReadAt + ?Sized), h: &Header) -> Result<Option<String>, ElfError> {
    if h.phnum == 0 {
        return Ok(None);
    }
    if h.phnum > MAX_PHNUM || h.phentsize < h.min_phentsize() {
        return Err(ElfError::Malformed("implausible program header table"));
    }
    let table = src
        .read_at(h.phoff, h.phentsize * h.phnum)
        .ok_or(ElfError::Malformed("truncated program headers"))?;
    for entry in table.chunks_exact(h.phentsize) {
        if u32_at(entry, 0, h.le) != Some(PT_INTERP) {
            continue;
        }
        let (offset, size) = h
            .range(entry, false)
            .ok_or(ElfError::Malformed("truncated program header"))?;
        if size == 0 || size > MAX_INTERP {
            return Err(ElfError::Malformed("implausible PT_INTERP"));
        }
        let raw = src
            .read_at(offset, size as usize)
            .ok_or(ElfError::Malformed("PT_INTERP past the end of the file"))?;
        let path = raw.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(path).into_owned()));
    }
    Ok(None)
}

/// Whether a section is named like Go's; a missing or odd section table
/// just means "not Go" (stripped binaries may lack one).
fn has_go_section(src: &(impl ReadAt + ?Sized), h: &Header) -> bool {
    (|| {
        if h.shnum == 0
            || h.shnum > MAX_SHNUM
            || h.shentsize < h.min_shentsize()
            || h.shstrndx >= h.shnum
        {
            return None;
        }
        let table = src.read_at(h.shoff, h.shentsize * h.shnum)?;
        let strtab_entry = table.chunks_exact(h.shentsize).nth(h.shstrndx)?;
        let (str_off, str_size) = h.range(strtab_entry, true)?;
        if str_size > MAX_SHSTRTAB {
            return None;
        }
        let names = src.read_at(str_off, str_size as usize)?;
        let found = table.chunks_exact(h.shentsize).any(|entry| {
            let name = u32_at(entry, 0, h.le)
                .and_then(|at| names.get(at as usize..))
                .and_then(|tail| tail.split(|&b| b == 0).next());
            matches!(name, Some(name) if GO_SECTIONS.contains(&name))
        });
        Some(found)
    })()
    .unwrap_or(false)
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
