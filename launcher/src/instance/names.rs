//! NAME, as `agentfs logs`, `stop` and `url` take it: `INSTANCE.APP` (also
//! `INSTANCE.APP.localhost` and wrap's own `APP/INSTANCE`), an instance id
//! that only one app has, or an app name that has only one instance.
//!
//! What exists is read through the contract's run-directory reader (app and
//! instance from sidecars, never from socket file names); `logs` adds the
//! instances that only have a log left.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use agentfs_contract::layout::{self, LayoutError};
use agentfs_contract::naming;
use agentfs_contract::rundir::{self, Entry, Scan, State};

/// The NAME argument of `logs`, `stop` and `url`.
#[derive(Debug, clap::Args)]
pub struct NameArg {
    /// The instance: INSTANCE.APP, an instance id that only one app has, or an
    /// app name that has only one instance.
    #[arg(value_name = "NAME")]
    pub name: String,
}

impl NameArg {
    /// The running instance NAME means, read from `AGENTFS_HOME`.
    pub fn running(&self) -> Result<Running> {
        let home = layout::home_from_env()?;
        let scan = scan(&home)?;
        let name = resolve(&self.name, &running(&scan))?;
        Ok(Running { home, scan, name })
    }
}

/// A running instance, as [`NameArg::running`] found it.
#[derive(Debug)]
pub struct Running {
    pub home: PathBuf,
    pub scan: Scan,
    pub name: InstanceName,
}

impl Running {
    /// Its entries whose owner still runs, its first listener first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.scan
            .of_instance(&self.name.app, &self.name.instance)
            .filter(|e| e.state != State::Stale)
    }
}

/// One instance of one app.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceName {
    pub app: String,
    pub instance: String,
}

impl InstanceName {
    pub fn new(app: &str, instance: &str) -> InstanceName {
        InstanceName {
            app: app.to_owned(),
            instance: instance.to_owned(),
        }
    }
}

/// `INSTANCE.APP`, the form NAME takes and host names start with.
impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.instance, self.app)
    }
}

/// The run directory of `home` as the contract's reader sees it; one that
/// does not exist yet holds nothing.
pub fn scan(home: &Path) -> Result<Scan> {
    match rundir::scan(&layout::run_dir(home)) {
        Ok(scan) => Ok(scan),
        Err(LayoutError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Scan::default())
        }
        Err(err) => Err(err).context("cannot list instances"),
    }
}

/// The instances that have an entry whose owner still runs.
pub fn running(scan: &Scan) -> BTreeSet<InstanceName> {
    scan.entries
        .iter()
        .filter(|e| e.state != State::Stale)
        .map(|e| InstanceName::new(&e.sidecar.app, &e.sidecar.instance))
        .collect()
}

/// The one instance among `known` that `name` means, or an error that says
/// what exists (or which instances an ambiguous name could mean).
pub fn resolve(name: &str, known: &BTreeSet<InstanceName>) -> Result<InstanceName> {
    let wanted = parse(name)?;
    let matches: Vec<&InstanceName> = known.iter().filter(|k| wanted.matches(k)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no instance {}{}", wanted.describe(), listing(known)),
        several => bail!(
            "{name:?} could mean {}: say which, as INSTANCE.APP",
            several
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every NAME that resolves to exactly one of `known`: `INSTANCE.APP` for
/// each, and the short forms that are not ambiguous. For shell completion.
pub fn unambiguous(known: &BTreeSet<InstanceName>) -> Vec<String> {
    let mut names: Vec<String> = known.iter().map(ToString::to_string).collect();
    let short: BTreeSet<&str> = known
        .iter()
        .flat_map(|k| [k.app.as_str(), k.instance.as_str()])
        .collect();
    for label in short {
        if resolve(label, known).is_ok() {
            names.push(label.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// What NAME asked for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Exact(InstanceName),
    /// One label: an instance id or an app name.
    Either(String),
}

impl Wanted {
    fn matches(&self, known: &InstanceName) -> bool {
        match self {
            Wanted::Exact(exact) => exact == known,
            Wanted::Either(label) => known.app == *label || known.instance == *label,
        }
    }

    fn describe(&self) -> String {
        match self {
            Wanted::Exact(exact) => exact.to_string(),
            Wanted::Either(label) => format!("or app named {label}"),
        }
    }
}

fn parse(name: &str) -> Result<Wanted> {
    let lower = name.trim().to_ascii_lowercase();
    let host = lower.trim_end_matches('.');
    let host = host.strip_suffix(".localhost").unwrap_or(host);
    let (instance, app) = if let Some((app, instance)) = host.split_once('/') {
        (instance, Some(app))
    } else if let Some((instance, app)) = host.split_once('.') {
        (instance, Some(app))
    } else {
        (host, None)
    };
    for label in [Some(instance), app].into_iter().flatten() {
        if !naming::is_label(label) {
            bail!(
                "{name:?} is not a NAME: give INSTANCE.APP, an instance id or an app name \
                 (lowercase letters, digits and '-')"
            );
        }
    }
    Ok(match app {
        Some(app) => Wanted::Exact(InstanceName::new(app, instance)),
        None => Wanted::Either(instance.to_owned()),
    })
}

/// `; running: a.web, b.web` (or a note that nothing runs).
fn listing(known: &BTreeSet<InstanceName>) -> String {
    if known.is_empty() {
        return " (no instance runs: start one with `agentfs wrap -- CMD`)".into();
    }
    let names: Vec<String> = known.iter().map(ToString::to_string).collect();
    format!("; there are: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[(&str, &str)]) -> BTreeSet<InstanceName> {
        names
            .iter()
            .map(|(app, id)| InstanceName::new(app, id))
            .collect()
    }

    #[test]
    fn full_names_in_every_spelling() {
        let k = known(&[("shop", "blue"), ("shop", "green"), ("api", "blue")]);
        let blue_shop = InstanceName::new("shop", "blue");
        for name in ["blue.shop", "Blue.Shop", "blue.shop.localhost", "shop/blue"] {
            assert_eq!(resolve(name, &k).unwrap(), blue_shop, "{name}");
        }
        let err = resolve("red.shop", &k).unwrap_err().to_string();
        assert!(err.contains("no instance red.shop"), "{err}");
        assert!(err.contains("blue.api, blue.shop, green.shop"), "{err}");
    }

    #[test]
    fn short_names_only_when_unambiguous() {
        let k = known(&[("shop", "blue"), ("shop", "green"), ("api", "blue")]);
        assert_eq!(
            resolve("green", &k).unwrap(),
            InstanceName::new("shop", "green")
        );
        assert_eq!(
            resolve("api", &k).unwrap(),
            InstanceName::new("api", "blue")
        );
        let err = resolve("blue", &k).unwrap_err().to_string();
        assert!(err.contains("blue.api, blue.shop"), "{err}");
        assert!(resolve("shop", &k).is_err(), "two instances");
        assert!(resolve("nope", &k)
            .unwrap_err()
            .to_string()
            .contains("no instance or app named nope"));
        assert!(resolve("a.b.c", &k).is_err());
        assert!(resolve("", &k).is_err());
        assert!(resolve("x", &BTreeSet::new())
            .unwrap_err()
            .to_string()
            .contains("no instance runs"));
    }

    #[test]
    fn completion_lists_what_resolves() {
        let k = known(&[("shop", "blue"), ("shop", "green"), ("api", "blue")]);
        assert_eq!(
            unambiguous(&k),
            ["api", "blue.api", "blue.shop", "green", "green.shop"]
        );
    }
}
