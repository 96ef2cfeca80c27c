//! The shim wrap preloads is one only we could have written: a copy another
//! user planted is never reused, and a home others can write to, or that is
//! someone else's, is refused with the way to fix it.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::other_user::OtherUser;
use common::{wait_for, TestHome};

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A library whose constructor leaves a marker file: what the other user
/// would like to see preloaded into our apps.
struct PlantedLibrary {
    dir: PathBuf,
    library: PathBuf,
    marker: PathBuf,
}

impl PlantedLibrary {
    fn build() -> PlantedLibrary {
        let dir = std::env::temp_dir().join(format!("afs-planted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        let marker = dir.join("ran-in-the-victims-app");
        let source = dir.join("planted.c");
        fs::write(
            &source,
            format!(
                "#include <fcntl.h>\n#include <unistd.h>\n\
                 __attribute__((constructor)) static void planted(void) {{\n\
                 int fd = open(\"{}\", O_WRONLY | O_CREAT, 0644);\n\
                 if (fd >= 0) close(fd);\n}}\n",
                marker.display()
            ),
        )
        .unwrap();
        let library = dir.join("planted.so");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .status()
            .expect("cc runs");
        assert!(status.success(), "cc could not build the planted library");
        set_mode(&library, 0o755);
        PlantedLibrary {
            dir,
            library,
            marker,
        }
    }
}

impl Drop for PlantedLibrary {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Replaces `dir` (lib/<hash>) by one of `other`'s holding an identical copy
/// of the shim, as someone would who got into a home that was open to all.
fn plant_identical_copy(shim: &Path, other: &OtherUser) {
    let dir = shim.parent().unwrap();
    let bytes = fs::read(shim).unwrap();
    fs::remove_dir_all(dir).unwrap();
    fs::create_dir(dir).unwrap();
    fs::write(shim, bytes).unwrap();
    for (path, mode) in [(dir, 0o755), (shim, 0o755)] {
        std::os::unix::fs::chown(path, Some(other.uid), Some(other.gid)).unwrap();
        set_mode(path, mode);
    }
}

/// The other user's shell, left inside their lib/<hash>: once told, it
/// swaps the shim there for `library` and says whether it could.
fn shell_inside(dir: &Path, other: &OtherUser, library: &Path) -> std::process::Child {
    const SWAP: &str = "echo ready; read go; \
        if cp \"$1\" swap.tmp 2>/dev/null && mv -f swap.tmp libagentfs_shim.so 2>/dev/null; \
        then echo swapped; else echo refused; fi";
    Command::new("sh")
        .args(["-c", SWAP, "sh"])
        .arg(library)
        .current_dir(dir)
        .uid(other.uid)
        .gid(other.gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_ours_and_closed(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(meta.uid(), me, "{} is not ours", path.display());
    assert_eq!(
        meta.mode() & 0o022,
        0,
        "{} is open to others",
        path.display()
    );
}

#[test]
fn a_shim_planted_by_another_user_is_never_preloaded() {
    let Some(other) =
        OtherUser::create_or_skip("a_shim_planted_by_another_user_is_never_preloaded")
    else {
        return;
    };
    let planted = PlantedLibrary::build();
    let home = TestHome::new();
    let shim = home.installed_shim();
    let lib = shim.parent().unwrap().parent().unwrap().to_owned();
    plant_identical_copy(&shim, &other);

    // The other user gets a shell into lib/<hash> while home and lib let
    // them through; then the home is private again, the shell stays.
    set_mode(&home.dir, 0o711);
    set_mode(&lib, 0o711);
    let mut attacker = shell_inside(shim.parent().unwrap(), &other, &planted.library);
    let mut attacker_out = BufReader::new(attacker.stdout.take().unwrap());
    let mut line = String::new();
    attacker_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    set_mode(&home.dir, 0o700);
    set_mode(&lib, 0o700);

    // An app that prints what it preloads, then, once the other user had
    // their go at the shim, execs a program, which preloads it afresh.
    let mut wrap = home
        .agentfs(&[
            "wrap",
            "--no-router",
            "--",
            "sh",
            "-c",
            "echo \"$LD_PRELOAD\"; read go; exec /bin/true",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut preloaded = String::new();
    BufReader::new(wrap.stdout.take().unwrap())
        .read_line(&mut preloaded)
        .unwrap();
    let preloaded = PathBuf::from(preloaded.trim());

    writeln!(attacker.stdin.take().unwrap(), "go").unwrap();
    let mut swap = String::new();
    attacker_out.read_line(&mut swap).unwrap();
    attacker.wait().unwrap();
    writeln!(wrap.stdin.take().unwrap(), "go").unwrap();
    let status = wait_for("wrap to exit", || wrap.try_wait().unwrap());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut wrap.stderr.take().unwrap(), &mut stderr).unwrap();

    assert!(
        !planted.marker.exists(),
        "the other user's library ran in our app (their swap: {}; wrap said: {stderr})",
        swap.trim()
    );
    assert!(status.success(), "wrap failed: {stderr}");
    assert_eq!(preloaded, shim, "the shim is preloaded from lib/<hash>");
    for path in [&preloaded, shim.parent().unwrap(), &lib, &home.dir] {
        assert_ours_and_closed(path);
    }
    assert!(
        stderr.contains(&format!("is owned by uid {}", other.uid)),
        "wrap says what it replaced: {stderr}"
    );
}

#[test]
fn a_home_others_can_write_to_is_refused_with_the_fix() {
    let home = TestHome::new();
    set_mode(&home.dir, 0o777);
    let output = home.run(&["wrap", "--no-router", "--", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a loose home was used: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 700 {}", home.dir.display())),
        "{stderr}"
    );
    assert_eq!(
        fs::metadata(&home.dir).unwrap().mode() & 0o777,
        0o777,
        "refused, not silently tightened"
    );
    assert!(!home.dir.join("lib").exists());
}

#[test]
fn a_home_owned_by_another_user_is_refused_with_the_fix() {
    let Some(other) =
        OtherUser::create_or_skip("a_home_owned_by_another_user_is_refused_with_the_fix")
    else {
        return;
    };
    let home = TestHome::new();
    std::os::unix::fs::chown(&home.dir, Some(other.uid), Some(other.gid)).unwrap();
    let output = home.run(&["wrap", "--no-router", "--", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a foreign home was used: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("owned by uid {}", other.uid)) && stderr.contains("AGENTFS_HOME"),
        "{stderr}"
    );
}
