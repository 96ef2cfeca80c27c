//! `*.localhost` names for programs that read `/etc/hosts` themselves (Go's
//! own resolver does, and static binaries cannot take the shim's answers):
//! the namespace gets its own mount namespace, made private so nothing
//! propagates back, and a copy of the host's hosts file with the live
//! instances' names added is bound over `/etc/hosts` there. The copy is
//! unlinked at once (the mount keeps it), so nothing is left behind, and
//! kept current by writing through the mount as instances come and go. The
//! host's own file is never touched.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};

use agentfs_contract::naming;
use agentfs_contract::sidecar::Sidecar;
use agentfs_contract::urls;

const HOSTS: &str = "/etc/hosts";

/// The namespace's hosts file.
pub struct Hosts {
    base: String,
    names: BTreeSet<String>,
}

impl Hosts {
    /// Binds a copy of the hosts file with `app`/`instance`'s own names over
    /// `/etc/hosts`, using `scratch` (a private directory) for the copy.
    /// Needs the capabilities of the mount namespace's user namespace.
    pub fn install(scratch: &Path, app: &str, instance: &str) -> Result<Hosts> {
        let base = fs::read_to_string(HOSTS).unwrap_or_default();
        let names = BTreeSet::from([
            "agentfs.localhost".to_owned(),
            naming::app_hostname(app),
            naming::instance_hostname(app, instance),
        ]);
        let hosts = Hosts { base, names };
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("could not make the namespace's mounts private")?;
        let copy = scratch.join("hosts");
        fs::write(&copy, hosts.render())?;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o644))?;
        let bound = mount(
            Some(&copy),
            HOSTS,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
        let _ = fs::remove_file(&copy);
        bound.with_context(|| format!("could not bind a private {HOSTS}"))?;
        Ok(hosts)
    }

    /// Adds the names of the listeners in `sidecars`; rewrites the file when
    /// that changed anything. Names are only added while the namespace
    /// lives: one that stops being served resolves to loopback still, where
    /// the router answers for it.
    pub fn update(&mut self, sidecars: &[Arc<Sidecar>]) {
        let before = self.names.len();
        for car in sidecars.iter().filter(|car| car.listening) {
            self.names.extend(urls::hostnames(car));
        }
        if self.names.len() == before {
            return;
        }
        // In place, in one write: the mount holds this very file.
        let written = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(HOSTS)
            .and_then(|mut file| file.write_all(self.render().as_bytes()));
        if let Err(err) = written {
            eprintln!("agentfs: could not update the namespace's {HOSTS}: {err}");
        }
    }

    fn render(&self) -> String {
        render(&self.base, &self.names)
    }
}

fn render(base: &str, names: &BTreeSet<String>) -> String {
    let mut text = base.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# agentfs: the instances' *.localhost names, in this namespace only\n");
    for name in names {
        text.push_str(&format!("127.0.0.1\t{name}\n::1\t{name}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_hosts_file_for_both_families() {
        let names = BTreeSet::from(["api.localhost".to_owned()]);
        let text = render("127.0.0.1 localhost", &names);
        assert!(text.starts_with("127.0.0.1 localhost\n"));
        assert!(text.contains("127.0.0.1\tapi.localhost\n"));
        assert!(text.contains("::1\tapi.localhost\n"));
    }
}
