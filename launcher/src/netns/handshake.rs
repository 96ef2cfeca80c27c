//! The private directory `netns-run` and init share: pasta's pid file and
//! log, `go` (whether the namespace's network is ready, or why not), and
//! `netns-run`'s door to the host's loopback ([`super::door`]). Made 0700 in
//! the temp dir by `netns-run`, which removes it when it ends.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The file that lets init go on.
const GO: &str = "go";
/// How long init waits for `go` (pasta takes tens of milliseconds).
const GO_WITHIN: Duration = Duration::from_secs(20);

/// The directory, removed when this drops.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn create() -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("agentfs-netns-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// Tells init the network is ready, or why it is not.
    pub fn tell(&self, outcome: Result<(), String>) -> Result<()> {
        let text = match outcome {
            Ok(()) => "ok\n".to_owned(),
            Err(why) => format!("{why}\n"),
        };
        agentfs_contract::sidecar::write_atomic(&self.0.join(GO), text.as_bytes())?;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// init's side: waits for `go` in `scratch`; an error says why the
/// namespace has no network.
pub fn wait_for_go(scratch: &Path) -> Result<()> {
    let deadline = Instant::now() + GO_WITHIN;
    let go = scratch.join(GO);
    let said = loop {
        if let Ok(text) = std::fs::read_to_string(&go) {
            break text;
        }
        if Instant::now() > deadline {
            bail!("the namespace's network was not set up within {GO_WITHIN:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    match said.trim() {
        "ok" => Ok(()),
        why => bail!("{why}"),
    }
}
