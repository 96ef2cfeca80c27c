//! Link settings for the shim that depend on the target.
//!
//! On macOS the dylib's install name would otherwise be the absolute path it
//! was linked at (a build machine's directory, inside the shipped library);
//! `@rpath/` names it the way Rust's own dylibs are named. dyld loads an
//! inserted library by the path in DYLD_INSERT_LIBRARIES, so nothing resolves
//! this name; it only keeps build paths out of what ships.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libagentfs_shim.dylib");
    }
}
