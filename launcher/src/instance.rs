//! Choosing an instance's names: the app (from `--name`, package.json or the
//! directory) and the instance id (from `--instance` or a short random id
//! unused in the run directory).

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use agentfs_contract::{naming, sidecar};

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

/// The instance id: `--instance`, else a random id no file in the run
/// directory uses for this app.
pub fn instance_id(explicit: Option<&str>, run_dir: &Path, app: &str) -> Result<String> {
    if let Some(id) = explicit {
        return naming::sanitize_label(id).ok_or_else(|| {
            anyhow!("--instance {id:?} has no letters or digits to make a host name from")
        });
    }
    for _ in 0..100 {
        let id = random_id();
        if !in_use(run_dir, app, &id) {
            return Ok(id);
        }
    }
    bail!(
        "could not find an unused instance id in {}",
        run_dir.display()
    )
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

/// Whether any socket, sidecar or lock of `app`/`id` exists.
fn in_use(run_dir: &Path, app: &str, id: &str) -> bool {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return false;
    };
    let stem = naming::socket_stem(app, id, None);
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name.starts_with(&format!("{stem}.")) || name.starts_with(&format!("{stem}-")) || {
            name.ends_with(".json")
                && sidecar::read_file_checked(&entry.path())
                    .is_ok_and(|car| car.app == app && car.instance == id)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("agentfs-instance-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn app_name_prefers_flag_then_package_json_then_dir() {
        let dir = scratch("My_Project");
        assert_eq!(app_name(Some("Shop Front"), &dir).unwrap(), "shop-front");
        assert_eq!(
            app_name(None, &dir).unwrap(),
            format!("agentfs-instance-{}-my-project", std::process::id())
        );
        fs::write(dir.join("package.json"), r#"{"name":"@acme/Web-App"}"#).unwrap();
        assert_eq!(app_name(None, &dir).unwrap(), "web-app");
        fs::write(dir.join("package.json"), "not json").unwrap();
        assert!(app_name(None, &dir).unwrap().ends_with("my-project"));
        assert!(app_name(Some("!!!"), &dir).is_err());
    }

    #[test]
    fn generated_ids_are_labels_and_avoid_used_ones() {
        let dir = scratch("ids");
        for _ in 0..50 {
            let id = instance_id(None, &dir, "web").unwrap();
            assert_eq!(id.len(), GENERATED_ID_LEN);
            assert!(naming::is_label(&id) && id.as_bytes()[0].is_ascii_lowercase());
        }
        fs::write(dir.join("web-abc.sock"), b"").unwrap();
        assert!(in_use(&dir, "web", "abc"));
        assert!(!in_use(&dir, "web", "ab"));
        assert_eq!(
            instance_id(Some("Feature/Login"), &dir, "web").unwrap(),
            "feature-login"
        );
    }
}
