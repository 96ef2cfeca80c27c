//! Mach-O rules on files built by [`super::fixture`], plus hostile bytes.

use super::fixture::{thin, universal, universal_of, FatSlice, SliceSpec};
use super::*;
use crate::{check_binary, Platform, Verdict};

const ENTITLED: [(&str, bool); 2] = [(ALLOW_DYLD, true), (DISABLE_LV, true)];

fn judge(bytes: &[u8], host: Arch) -> Option<String> {
    verdict(bytes, host, ShimArches::UNIVERSAL)
}

fn ok_on_both(bytes: &[u8]) {
    assert_eq!(judge(bytes, Arch::Arm64), None);
    assert_eq!(judge(bytes, Arch::X86_64), None);
}

#[test]
fn thin_unsigned_and_ad_hoc_are_injectable() {
    let bytes = thin(&SliceSpec::arm64());
    assert_eq!(parse(&bytes[..]).unwrap().len(), 1);
    assert_eq!(judge(&bytes, Arch::Arm64), None);
    // Under Rosetta: an x86_64-only binary takes the shim's x86_64 slice.
    assert_eq!(judge(&thin(&SliceSpec::x86_64()), Arch::Arm64), None);
    let adhoc = thin(&SliceSpec::arm64().signed(0x2, Some(vec![])));
    assert_eq!(judge(&adhoc, Arch::Arm64), None);
}

#[test]
fn hardened_without_entitlement_is_not() {
    let bytes = thin(&SliceSpec::arm64().signed(CS_RUNTIME, None));
    let why = judge(&bytes, Arch::Arm64).unwrap();
    assert!(why.contains("hardened runtime without"), "{why}");
}

#[test]
fn hardened_with_allow_dyld_true_is_injectable() {
    let node_like = thin(&SliceSpec::arm64().signed(CS_RUNTIME, Some(ENTITLED.to_vec())));
    let slices = parse(&node_like[..]).unwrap();
    let sig = slices[0].signature.as_ref().unwrap();
    assert_eq!(sig.flags, CS_RUNTIME);
    assert_eq!(sig.entitlements.bool(ALLOW_DYLD), Some(true));
    assert_eq!(judge(&node_like, Arch::Arm64), None);
}

#[test]
fn hardened_needs_library_validation_disabled_for_the_ad_hoc_shim() {
    let only_dyld = thin(&SliceSpec::arm64().signed(CS_RUNTIME, Some(vec![(ALLOW_DYLD, true)])));
    let why = judge(&only_dyld, Arch::Arm64).unwrap();
    assert!(why.contains("library validation"), "{why}");
    let lv_only = thin(&SliceSpec::arm64().signed(CS_REQUIRE_LV, None));
    assert!(judge(&lv_only, Arch::Arm64)
        .unwrap()
        .contains("library validation"));
    let lv_disabled =
        thin(&SliceSpec::arm64().signed(CS_REQUIRE_LV, Some(vec![(DISABLE_LV, true)])));
    assert_eq!(judge(&lv_disabled, Arch::Arm64), None);
}

#[test]
fn allow_dyld_set_to_false_is_not() {
    // The JDK's `java`: the key is there, its value is false.
    let java_like = thin(&SliceSpec::x86_64().signed(
        CS_RUNTIME,
        Some(vec![(ALLOW_DYLD, false), (DISABLE_LV, true)]),
    ));
    let why = judge(&java_like, Arch::X86_64).unwrap();
    assert!(why.contains("set to false"), "{why}");
}

#[test]
fn restrict_section_and_cs_restrict_are_not() {
    let restricted = SliceSpec {
        restrict: true,
        ..SliceSpec::arm64()
    };
    assert!(judge(&thin(&restricted), Arch::Arm64)
        .unwrap()
        .contains("__RESTRICT"));
    let cs_restrict = thin(&SliceSpec::arm64().signed(CS_RESTRICT, Some(ENTITLED.to_vec())));
    assert!(judge(&cs_restrict, Arch::Arm64)
        .unwrap()
        .contains("CS_RESTRICT"));
}

#[test]
fn launchers_dyld_prunes_are_told_from_those_it_does_not() {
    // uv, turbo: hardened without the entitlement. dyld deletes the
    // variable from their environment, so what they start loses it too.
    let uv_like = thin(&SliceSpec::arm64().signed(CS_RUNTIME, None));
    assert!(prunes_environment(&uv_like[..], Arch::Arm64));
    let java_like = thin(&SliceSpec::arm64().signed(CS_RUNTIME, Some(vec![(ALLOW_DYLD, false)])));
    assert!(prunes_environment(&java_like[..], Arch::Arm64));
    let restricted = SliceSpec {
        restrict: true,
        ..SliceSpec::arm64()
    };
    assert!(prunes_environment(&thin(&restricted)[..], Arch::Arm64));
    // Refused for other reasons, they keep the variable in their environment.
    let lv_only = thin(&SliceSpec::arm64().signed(CS_REQUIRE_LV, None));
    assert!(!prunes_environment(&lv_only[..], Arch::Arm64));
    assert!(!prunes_environment(
        &thin(&SliceSpec::arm64e())[..],
        Arch::Arm64
    ));
    let node_like = thin(&SliceSpec::arm64().signed(CS_RUNTIME, Some(ENTITLED.to_vec())));
    assert!(!prunes_environment(&node_like[..], Arch::Arm64));
    assert!(!prunes_environment(&b"#!/bin/sh\n"[..], Arch::Arm64));
}

#[test]
fn arm64e_only_is_not() {
    let bytes = thin(&SliceSpec::arm64e());
    assert_eq!(parse(&bytes[..]).unwrap()[0].arch, Arch::Arm64e);
    let why = judge(&bytes, Arch::Arm64).unwrap();
    assert!(why.contains("arm64e"), "{why}");
    let fat = universal(&[SliceSpec::arm64e(), SliceSpec::arm64()]);
    assert_eq!(judge(&fat, Arch::Arm64), None, "the plain arm64 slice runs");
}

#[test]
fn universal_x86_64_and_arm64_is_injectable() {
    let fat = universal(&[SliceSpec::x86_64(), SliceSpec::arm64()]);
    let slices = parse(&fat[..]).unwrap();
    let arches: Vec<Arch> = slices.iter().map(|s| s.arch).collect();
    assert_eq!(arches, [Arch::X86_64, Arch::Arm64]);
    ok_on_both(&fat);
}

#[test]
fn universal_is_judged_by_the_slice_that_runs() {
    // The arm64 slice is hardened without entitlements, the x86_64 one is not.
    let fat = universal(&[
        SliceSpec::x86_64(),
        SliceSpec::arm64().signed(CS_RUNTIME, None),
    ]);
    assert!(judge(&fat, Arch::Arm64).is_some());
    assert_eq!(judge(&fat, Arch::X86_64), None);
    let arm_only = universal(&[SliceSpec::arm64()]);
    assert!(judge(&arm_only, Arch::X86_64).unwrap().contains("no slice"));
}

#[test]
fn a_slice_that_never_runs_here_is_not_judged() {
    // A universal file from the PowerPC days: a big-endian slice beside the
    // ones dyld runs today. Only the slice that would run is read.
    let with_ppc = universal_of(&[
        FatSlice::powerpc(),
        FatSlice::of(&SliceSpec::x86_64()),
        FatSlice::of(&SliceSpec::arm64()),
    ]);
    ok_on_both(&with_ppc);
    let hardened = universal_of(&[
        FatSlice::powerpc(),
        FatSlice::of(&SliceSpec::x86_64().signed(CS_RUNTIME, None)),
    ]);
    let why = judge(&hardened, Arch::X86_64).unwrap();
    assert!(why.contains("hardened runtime"), "{why}");
    let ppc_only = universal_of(&[FatSlice::powerpc()]);
    let why = judge(&ppc_only, Arch::Arm64).unwrap();
    assert!(
        why.contains("no slice") && why.contains("cpu 0x12"),
        "{why}"
    );
    // A broken slice is still malformed when it is the one that runs.
    let mut broken = FatSlice::of(&SliceSpec::arm64());
    broken.image[0] ^= 0xff;
    let fat = universal_of(&[FatSlice::of(&SliceSpec::x86_64()), broken]);
    assert_eq!(judge(&fat, Arch::X86_64), None);
    assert!(judge(&fat, Arch::Arm64).unwrap().contains("malformed"));
}

/// Makes the segment named `segment` claim `count` sections.
fn claim_sections(image: &mut [u8], segment: &[u8], count: u32) {
    let name_at = image
        .windows(segment.len())
        .position(|w| w == segment)
        .expect("the segment is in the image");
    let nsects_at = name_at - 8 + 64;
    image[nsects_at..nsects_at + 4].copy_from_slice(&count.to_le_bytes());
}

#[test]
fn a_section_count_beyond_its_command_is_malformed() {
    // A __RESTRICT segment whose one section is not __restrict, claiming
    // 0xffffffff: read naively, four billion section reads past the command.
    let mut restricted = thin(&SliceSpec {
        restrict: true,
        ..SliceSpec::arm64()
    });
    let section_at = restricted
        .windows(10)
        .position(|w| w == b"__restrict")
        .unwrap();
    restricted[section_at..section_at + 10].copy_from_slice(b"__text\0\0\0\0");
    claim_sections(&mut restricted, b"__RESTRICT", u32::MAX);
    let why = judge(&restricted, Arch::Arm64).expect("a verdict");
    assert!(
        why.contains("malformed") && why.contains("sections"),
        "{why}"
    );
    let mut plain = thin(&SliceSpec::arm64());
    claim_sections(&mut plain, b"__PAGEZERO", 1);
    let why = judge(&plain, Arch::Arm64).expect("a verdict");
    assert!(
        why.contains("malformed") && why.contains("sections"),
        "{why}"
    );
}

#[test]
fn java_class_files_are_not_mach_o() {
    // 0xcafebabe, then minor 0, major 65 (Java 21).
    let class = [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 65, 0, 0, 0, 0];
    assert_eq!(parse(&class[..]), Err(MachError::NotMachO));
    assert_eq!(judge(&class, Arch::Arm64), None);
}

#[test]
fn garbage_short_and_truncated_never_panic() {
    assert_eq!(parse(&b""[..]), Err(MachError::NotMachO));
    assert_eq!(parse(&b"\xcf\xfa"[..]), Err(MachError::NotMachO));
    let full = universal(&[
        SliceSpec::x86_64().signed(CS_RUNTIME, Some(ENTITLED.to_vec())),
        SliceSpec::arm64().signed(CS_RUNTIME, Some(ENTITLED.to_vec())),
    ]);
    for len in (0..full.len()).step_by(7) {
        let _ = judge(&full[..len], Arch::Arm64);
    }
    let signed = thin(&SliceSpec::arm64().signed(CS_RUNTIME, Some(ENTITLED.to_vec())));
    for len in 8..signed.len() {
        let verdict = judge(&signed[..len], Arch::Arm64);
        assert!(verdict.is_some(), "truncated to {len} must not pass");
    }
    // Flip every byte of the signed image in turn, then random bytes.
    for i in 0..signed.len() {
        let mut bent = signed.clone();
        bent[i] ^= 0xff;
        let _ = judge(&bent, Arch::Arm64);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2000 {
        let mut junk = MH_MAGIC_64.to_le_bytes().to_vec();
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let _ = judge(&junk, Arch::Arm64);
        junk[..4].copy_from_slice(&FAT_MAGIC.to_be_bytes());
        junk[4..8].copy_from_slice(&2u32.to_be_bytes());
        let _ = judge(&junk, Arch::Arm64);
    }
}

#[test]
fn sip_paths_and_flags() {
    assert!(path_rule(Path::new("/usr/bin/env"), 0).is_some());
    assert!(path_rule(Path::new("/bin/sh"), 0).is_some());
    assert!(path_rule(Path::new("/System/Library/x"), 0).is_some());
    assert_eq!(path_rule(Path::new("/usr/local/bin/node"), 0), None);
    assert_eq!(path_rule(Path::new("/opt/homebrew/bin/node"), 0), None);
    assert_eq!(path_rule(Path::new("/usrx/bin"), 0), None);
    assert!(path_rule(Path::new("/opt/x"), SF_RESTRICTED)
        .unwrap()
        .contains("SIP"));
}

#[test]
fn macos_rules_on_fixture_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hardened = dir.join("hardened");
    std::fs::write(
        &hardened,
        thin(&SliceSpec::arm64().signed(CS_RUNTIME, None)),
    )
    .unwrap();
    let universal_ok = dir.join("universal");
    std::fs::write(
        &universal_ok,
        universal(&[SliceSpec::x86_64(), SliceSpec::arm64()]),
    )
    .unwrap();
    let Verdict::NotInjectable { reason, .. } =
        check_binary(&hardened, Platform::MacOs(ShimArches::UNIVERSAL))
    else {
        panic!("hardened without entitlement must not be injectable");
    };
    assert!(reason.starts_with(&hardened.display().to_string()));
    assert_eq!(
        check_binary(&universal_ok, Platform::MacOs(ShimArches::UNIVERSAL)),
        Verdict::Injectable
    );
    // Linux rules do not apply Mach-O rules to a Mach-O file.
    assert_eq!(
        check_binary(&hardened, Platform::Linux),
        Verdict::Injectable
    );
}

#[test]
fn a_single_architecture_shim_only_enters_processes_of_its_architecture() {
    let arm64_only = ShimArches {
        x86_64: false,
        arm64: true,
    };
    let x86_64_binary = thin(&SliceSpec::x86_64());
    let why =
        verdict(&x86_64_binary[..], Arch::Arm64, arm64_only).expect("Rosetta process, arm64 shim");
    assert!(
        why.contains("runs as x86_64") && why.contains("arm64 only"),
        "{why}"
    );
    assert_eq!(
        verdict(&x86_64_binary[..], Arch::Arm64, ShimArches::UNIVERSAL),
        None
    );
    let both = universal(&[SliceSpec::x86_64(), SliceSpec::arm64()]);
    assert_eq!(
        verdict(&both[..], Arch::Arm64, arm64_only),
        None,
        "the arm64 slice runs natively"
    );
    assert_eq!(ShimArches::of(&both), ShimArches::UNIVERSAL);
    assert_eq!(ShimArches::of(&thin(&SliceSpec::arm64())), arm64_only);
}
