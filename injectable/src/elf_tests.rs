//! ELF rules on real binaries compiled here with `cc`, plus hostile bytes.

use super::*;
use crate::{check_binary, check_in, FileSource, Platform, Verdict};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SERVER_C: &str = "int main(void) { return 0; }\n";
const GO_LIKE_C: &str = "__attribute__((used, section(\".go.buildinfo\")))\n\
    static const char info[16] = \"\\xff Go buildinf:\";\n\
    int main(void) { return info[0] == 0; }\n";

/// Compiles `source` with `cc` and `flags` into `dir/name`.
fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) is needed for these tests");
    assert!(status.success(), "cc {flags:?} failed");
    out
}

fn reason(verdict: Verdict) -> String {
    match verdict {
        Verdict::NotInjectable { reason, .. } => reason,
        Verdict::Injectable => panic!("expected NotInjectable"),
    }
}

#[test]
fn dynamic_binary_is_injectable() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin = compile(&dir, "dyn", SERVER_C, &[]);
    let facts = parse(&FileSource::open(&bin).unwrap()).unwrap();
    assert!(facts.interp.unwrap().contains("ld-linux"));
    assert!(!facts.go);
    assert_eq!(check_binary(&bin, Platform::Linux), Verdict::Injectable);
}

#[test]
fn static_binary_is_not() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin = compile(&dir, "static", SERVER_C, &["-static"]);
    let facts = parse(&FileSource::open(&bin).unwrap()).unwrap();
    assert_eq!(facts.interp, None);
    let why = reason(check_binary(&bin, Platform::Linux));
    assert!(why.starts_with(&bin.display().to_string()), "{why}");
    assert!(why.contains("statically linked ELF"), "{why}");
}

#[test]
fn static_pie_is_static_too() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin = compile(&dir, "spie", SERVER_C, &["-static-pie", "-fPIE"]);
    assert!(reason(check_binary(&bin, Platform::Linux)).contains("statically linked"));
}

#[test]
fn go_sections_mark_a_go_program() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin = compile(&dir, "golike", GO_LIKE_C, &[]);
    let facts = parse(&FileSource::open(&bin).unwrap()).unwrap();
    assert!(facts.go);
    assert!(reason(check_binary(&bin, Platform::Linux)).contains("Go program"));
}

#[test]
fn setuid_and_setgid_copies_are_not() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin = compile(&dir, "plain", SERVER_C, &[]);
    for (mode, word) in [(0o4755, "setuid"), (0o2755, "setgid")] {
        fs::set_permissions(&bin, fs::Permissions::from_mode(mode)).unwrap();
        assert!(reason(check_binary(&bin, Platform::Linux)).contains(word));
    }
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(check_binary(&bin, Platform::Linux), Verdict::Injectable);
}

#[test]
fn env_shebang_chain_reaches_the_static_interpreter() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let bin_dir = dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    compile(&bin_dir, "staticpy", SERVER_C, &["-static"]);
    let script = dir.join("app");
    fs::write(&script, "#!/usr/bin/env -S staticpy -u\nprint(1)\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let why = reason(check_in(
        &script,
        Some(bin_dir.as_os_str()),
        Platform::Linux,
    ));
    assert!(why.contains("statically linked"), "{why}");
    assert!(why.contains(" -> "), "the chain is named: {why}");
}

#[test]
fn env_python3_script_follows_path() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let script = dir.join("serve.py");
    fs::write(&script, "#!/usr/bin/env python3\nprint(1)\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH");
    let resolved = crate::script::resolve(&script, path.as_deref()).unwrap();
    assert!(resolved.chain.len() >= 2, "{resolved:?}");
    let python = resolved.chain[1].file_name().unwrap().to_owned();
    assert_eq!(python, "python3");
    // Whatever python3 is here (a binary or a version manager's shim
    // script), the end of the chain is a real ELF file.
    assert!(parse(&FileSource::open(&resolved.binary).unwrap()).is_ok());
}

#[test]
fn hostile_bytes_never_panic() {
    let dir_tmp = tempfile::tempdir().unwrap();
    let dir = dir_tmp.path().to_path_buf();
    let real = fs::read(compile(&dir, "real", SERVER_C, &[])).unwrap();
    assert_eq!(parse(&b""[..]), Err(ElfError::NotElf));
    assert_eq!(parse(&b"#!/bin/sh\n"[..]), Err(ElfError::NotElf));
    assert!(matches!(
        parse(&b"\x7fELF\x02\x01"[..]),
        Err(ElfError::NotElf | ElfError::Malformed(_))
    ));
    for len in [16, 20, 63, 64, 100, 500] {
        let verdict = verdict(&real[..len], Machine::host());
        assert!(verdict.is_some(), "truncated to {len}: {verdict:?}");
    }
    // Every header byte set to 0xff in turn, and a pseudo-random corpus.
    for i in 0..64 {
        let mut bent = real.clone();
        bent[i] = 0xff;
        let _ = verdict(&bent[..], Machine::host());
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let mut junk = b"\x7fELF\x02\x01\x01".to_vec();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let _ = verdict(&junk[..], Machine::host());
    }
}

#[test]
fn other_machines_and_classes_are_not() {
    let facts = ElfFacts {
        is_64: true,
        machine: Machine::AARCH64,
        interp: Some("/lib/ld-linux-aarch64.so.1".into()),
        go: false,
    };
    assert!(decide(&facts, Some(Machine::X86_64))
        .unwrap()
        .contains("aarch64"));
    let facts = ElfFacts {
        is_64: false,
        machine: Machine(3),
        ..facts
    };
    assert!(decide(&facts, Some(Machine::X86_64))
        .unwrap()
        .contains("32-bit"));
    let musl = ElfFacts {
        is_64: true,
        machine: Machine::X86_64,
        interp: Some("/lib/ld-musl-x86_64.so.1".into()),
        go: false,
    };
    assert!(decide(&musl, Some(Machine::X86_64))
        .unwrap()
        .contains("musl"));
}
