//! One instance: its names, its private directories, and the environment a
//! process of it gets.
//!
//! The app name comes from `--name`, else package.json, else the directory.
//! The instance id, which is also the stack a process belongs to (its
//! `localhost`), comes from the first of: `--instance`; the instance of the
//! wrapped process this one runs in (so a nested wrap joins its stack); the
//! git work tree's branch (so every service started from one worktree lands
//! in one stack); a short random id unused in the run directory.
//!
//! Beside it, what needs no running app:
//! - [`names`]: NAME as `logs`, `stop` and `url` take it, found in the run directory.
//! - [`worktree`]: the default instance id inside a git work tree.
//! - [`log`]: the instance's log, as wrap writes it and `logs` reads it.

pub mod log;
pub mod names;
pub mod worktree;

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use agentfs_contract::{env, layout, liveness, naming, rundir};

use names::InstanceName;

/// What a wrapped or bridged app runs as.
#[derive(Debug, Clone)]
pub struct Instance {
    pub home: PathBuf,
    pub run_dir: PathBuf,
    pub app: String,
    pub id: String,
    /// Where `id` came from.
    pub id_from: IdFrom,
    /// The primary socket's path.
    pub socket: PathBuf,
    /// Where the instance was started from (recorded in its sidecars).
    pub workdir: PathBuf,
}

/// Where an instance id came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdFrom {
    /// `--instance`.
    Flag,
    /// The wrapped process agentfs was started from (`AGENTFS_INSTANCE`).
    Outer,
    /// The git work tree (its branch, or its directory on a detached HEAD).
    Git(worktree::Origin),
    /// Made up, unused in the run directory.
    Random,
}

impl IdFrom {
    /// Why this id, in a few words for wrap's first line (`None`: asked for).
    pub fn explain(&self) -> Option<String> {
        match self {
            IdFrom::Flag => None,
            IdFrom::Outer => Some("the instance agentfs was started from".into()),
            IdFrom::Git(worktree::Origin::Branch(branch)) => Some(format!("git branch {branch}")),
            IdFrom::Git(worktree::Origin::WorkTree(dir)) => {
                Some(format!("git work tree {}", dir.display()))
            }
            IdFrom::Random => Some("no --instance, not in a git work tree".into()),
        }
    }
}

impl Instance {
    /// Resolves names and prepares the private directories.
    pub fn prepare(name: Option<&str>, id: Option<&str>) -> Result<Instance> {
        let home = layout::home_from_env()?;
        let run_dir = layout::run_dir(&home);
        layout::ensure_private_dir(&home)?;
        layout::ensure_private_dir(&run_dir)?;
        let cwd = std::env::current_dir().context("could not read the current directory")?;
        let app = app_name(name, &cwd)?;
        let outer = std::env::var(env::INSTANCE).ok();
        let (id, id_from) = instance_id(id, outer.as_deref(), &cwd, &run_dir, &app)?;
        let socket = naming::socket_path(&run_dir, &app, &id, None)?;
        Ok(Instance {
            home,
            run_dir,
            app,
            id,
            id_from,
            socket,
            workdir: cwd,
        })
    }

    /// App and instance, as `logs`, `stop` and `url` name them.
    pub fn name(&self) -> InstanceName {
        InstanceName::new(&self.app, &self.id)
    }

    /// The `AGENTFS_*` variables a process of this instance gets.
    pub fn env_vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            (env::HOME, self.home.clone().into()),
            (env::RUN_DIR, self.run_dir.clone().into()),
            (env::APP, self.app.clone().into()),
            (env::INSTANCE, self.id.clone().into()),
            (env::SOCKET, self.socket.clone().into()),
            (
                env::HOSTNAME,
                naming::instance_hostname(&self.app, &self.id).into(),
            ),
            (env::WORKDIR, self.workdir.clone().into()),
        ]
    }

    /// Removes this instance's entries whose owners are gone, and any
    /// socket left without a sidecar whose lock nobody holds.
    pub fn remove_stale_files(&self) {
        let Ok(scan) = rundir::scan(&self.run_dir) else {
            return;
        };
        for entry in scan.of_instance(&self.app, &self.id) {
            let _ = rundir::remove(entry);
        }
        for orphan in &scan.orphans {
            let _ = liveness::remove_if_stale(orphan);
        }
    }
}

/// The app name: `--name`, else package.json's `name` (without its npm
/// scope), else the directory's name, each made a DNS label.
pub fn app_name(explicit: Option<&str>, dir: &Path) -> Result<String> {
    if let Some(name) = explicit {
        return naming::sanitize_label(name).ok_or_else(|| {
            anyhow!("--name {name:?} has no letters or digits to make a host name from")
        });
    }
    if let Some(name) = package_json_name(dir) {
        if let Some(label) = naming::sanitize_label(&name) {
            return Ok(label);
        }
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(naming::sanitize_label(&dir_name).unwrap_or_else(|| "app".to_owned()))
}

fn package_json_name(dir: &Path) -> Option<String> {
    let text = fs::read(dir.join("package.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let name = value.get("name")?.as_str()?;
    Some(name.rsplit('/').next().unwrap_or(name).to_owned())
}

/// Length of generated instance ids: 36^6 is plenty for one app's instances.
const GENERATED_ID_LEN: usize = 6;

/// The instance id and where it came from (see the module doc): `explicit`
/// (`--instance`), else `outer` (the enclosing instance's id, when it is a
/// label), else the git work tree `dir` is in, else a random id no file in
/// the run directory uses for this app.
fn instance_id(
    explicit: Option<&str>,
    outer: Option<&str>,
    dir: &Path,
    run_dir: &Path,
    app: &str,
) -> Result<(String, IdFrom)> {
    if let Some(id) = explicit {
        let id = naming::sanitize_label(id).ok_or_else(|| {
            anyhow!("--instance {id:?} has no letters or digits to make a host name from")
        })?;
        return Ok((id, IdFrom::Flag));
    }
    if let Some(outer) = outer.filter(|id| naming::is_label(id)) {
        return Ok((outer.to_owned(), IdFrom::Outer));
    }
    if let Some((id, origin)) = worktree::default_instance(dir) {
        return Ok((id, IdFrom::Git(origin)));
    }
    for _ in 0..100 {
        let id = random_id();
        if !in_use(run_dir, app, &id) {
            return Ok((id, IdFrom::Random));
        }
    }
    bail!(
        "could not find an unused instance id in {}",
        run_dir.display()
    )
}

/// The instance a client or a stack of the current directory belongs to:
/// `explicit` (`--instance`), else the instance this runs in
/// (`AGENTFS_INSTANCE`), else the git work tree's. `None` when none of them
/// says: a made-up id would name an instance nothing runs in.
pub fn existing_id(explicit: Option<&str>) -> Result<Option<(String, IdFrom)>> {
    if let Some(id) = explicit {
        let id = naming::sanitize_label(id).ok_or_else(|| {
            anyhow!("--instance {id:?} has no letters or digits to make a host name from")
        })?;
        return Ok(Some((id, IdFrom::Flag)));
    }
    let outer = std::env::var(env::INSTANCE).ok();
    if let Some(outer) = outer.filter(|id| naming::is_label(id)) {
        return Ok(Some((outer, IdFrom::Outer)));
    }
    let cwd = std::env::current_dir().context("could not read the current directory")?;
    Ok(worktree::default_instance(&cwd).map(|(id, origin)| (id, IdFrom::Git(origin))))
}

fn random_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    let mut bits = hasher.finish();
    // A letter first, so the id never reads as a port number in a host name.
    let mut id = String::with_capacity(GENERATED_ID_LEN);
    id.push(char::from(ALPHABET[(bits % 26) as usize]));
    bits /= 26;
    for _ in 1..GENERATED_ID_LEN {
        id.push(char::from(ALPHABET[(bits % 36) as usize]));
        bits /= 36;
    }
    id
}

/// Whether `app`/`id` has a sidecar (in any state) or its primary socket's
/// files exist: either way they are someone's until removed.
fn in_use(run_dir: &Path, app: &str, id: &str) -> bool {
    let named = rundir::scan(run_dir).is_ok_and(|scan| scan.of_instance(app, id).next().is_some());
    named
        || naming::socket_path(run_dir, app, id, None).is_ok_and(|socket| {
            [naming::lock_path(&socket), socket]
                .iter()
                .any(|p| fs::symlink_metadata(p).is_ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_name_prefers_flag_then_package_json_then_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("My_Project");
        fs::create_dir(&dir).unwrap();
        assert_eq!(app_name(Some("Shop Front"), &dir).unwrap(), "shop-front");
        assert_eq!(app_name(None, &dir).unwrap(), "my-project");
        fs::write(dir.join("package.json"), r#"{"name":"@acme/Web-App"}"#).unwrap();
        assert_eq!(app_name(None, &dir).unwrap(), "web-app");
        fs::write(dir.join("package.json"), "not json").unwrap();
        assert!(app_name(None, &dir).unwrap().ends_with("my-project"));
        assert!(app_name(Some("!!!"), &dir).is_err());
    }

    #[test]
    fn generated_ids_are_labels_and_avoid_used_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for _ in 0..50 {
            let (id, from) = instance_id(None, None, dir, dir, "web").unwrap();
            assert_eq!(from, IdFrom::Random);
            assert_eq!(id.len(), GENERATED_ID_LEN);
            assert!(naming::is_label(&id) && id.as_bytes()[0].is_ascii_lowercase());
        }
        fs::write(naming::socket_path(dir, "web", "abc", None).unwrap(), b"").unwrap();
        assert!(in_use(dir, "web", "abc"));
        assert!(!in_use(dir, "web", "ab"));
        let id = |explicit, outer| instance_id(explicit, outer, dir, dir, "web").unwrap();
        assert_eq!(
            id(Some("Feature/Login"), Some("outer")),
            ("feature-login".into(), IdFrom::Flag)
        );
        assert_eq!(id(None, Some("outer")), ("outer".into(), IdFrom::Outer));
        assert_eq!(id(None, Some("Not A Label")).1, IdFrom::Random);
    }
}
