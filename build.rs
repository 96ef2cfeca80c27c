//! Builds the shim for the target being built and hands it to `src/main.rs`
//! to embed, so one `agentfs` binary carries everything it needs.
//!
//! The shim is built by a nested `cargo build -p agentfs-shim` into its own
//! target directory under OUT_DIR (a separate directory, so it never waits on
//! the outer build's lock). `AGENTFS_SHIM_PREBUILT=path` embeds a library
//! built elsewhere instead (the macOS check embeds its universal dylib).
//! A cross build with neither gets an empty shim and a clear error at run time.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target = env::var("TARGET").unwrap();
    let host = env::var("HOST").unwrap();
    let file_name = if target.contains("apple") {
        "libagentfs_shim.dylib"
    } else {
        "libagentfs_shim.so"
    };
    println!("cargo:rustc-env=AGENTFS_SHIM_FILE_NAME={file_name}");
    println!("cargo:rerun-if-env-changed=AGENTFS_SHIM_PREBUILT");
    for dir in ["shim", "contract", "procs"] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(dir).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("Cargo.lock").display()
    );

    let embedded = out_dir.join("agentfs-shim");
    let source = match env::var_os("AGENTFS_SHIM_PREBUILT") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None if target != host => {
            println!(
                "cargo:warning=cross build for {target} without AGENTFS_SHIM_PREBUILT: \
                 this agentfs carries no shim and `wrap` will say so"
            );
            std::fs::write(&embedded, b"").unwrap();
            return;
        }
        None => build_shim(&manifest_dir, &out_dir, &target, file_name),
    };
    std::fs::copy(&source, &embedded)
        .unwrap_or_else(|e| panic!("could not copy the shim from {}: {e}", source.display()));
}

fn build_shim(manifest_dir: &Path, out_dir: &Path, target: &str, file_name: &str) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = if env::var("PROFILE").as_deref() == Ok("release") {
        "release"
    } else {
        "debug"
    };
    let target_dir = out_dir.join("shim-target");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .args(["-p", "agentfs-shim", "--lib", "--target", target])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if profile == "release" {
        cmd.arg("--release");
    }
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // The outer build's settings are for the outer build: flags meant for a
    // binary (or for clippy) must not leak into the shim's own build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the shim");
    assert!(
        status.success(),
        "building the shim failed; run `cargo build -p agentfs-shim` to see why"
    );
    target_dir.join(target).join(profile).join(file_name)
}
