//! The Go fixture (`fixtures/go/server.go`), built once per test binary with
//! Debian's Go into cargo's temp dir for tests: statically (`CGO_ENABLED=0`), a program the
//! shim cannot enter that resolves names with Go's own resolver.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::fixtures::fixtures_dir;

/// The static build of `fixtures/go/server.go`.
pub fn static_server() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go");
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("server-static");
            let status = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(fixtures_dir().join("go/server.go"))
                .env("CGO_ENABLED", "0")
                .env("GO111MODULE", "off")
                // Shared between runs: a cold build takes tens of seconds.
                .env("GOCACHE", dir.join("cache"))
                .status()
                .expect("go (Debian's golang-go) is needed to build fixtures/go");
            assert!(status.success(), "go build of fixtures/go/server.go failed");
            out
        })
        .clone()
}
