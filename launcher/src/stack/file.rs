//! The stack file: `agentfs.toml`, else a `Procfile`, found by walking up
//! from a directory to its git work tree's root (outside a work tree, only
//! the directory itself is looked in); the nearest wins.
//!
//! Every mistake is an error naming the file and line: unknown keys, a
//! missing `run`, a service name that is not a DNS label, a bad `ready` or
//! `restart`, an `after` naming no service or making a cycle, and an
//! `agentfs.toml` and a `Procfile` side by side that disagree (a service of
//! one missing from the other, or run differently).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use toml::Spanned;

use agentfs_contract::{git, naming};

use crate::stack::order;
use crate::stack::procfile;
use crate::stack::spec::{Ready, Restart, ServiceSpec};

pub const TOML_NAME: &str = "agentfs.toml";
pub const PROCFILE_NAME: &str = "Procfile";

/// A stack file larger than this is not one.
const MAX_FILE: u64 = 1024 * 1024;

/// A stack file, read and checked.
#[derive(Clone, Debug)]
pub struct StackFile {
    pub path: PathBuf,
    /// The directory it is in: services' `dir` are relative to it.
    pub dir: PathBuf,
    /// In file order.
    pub services: Vec<ServiceSpec>,
}

impl StackFile {
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }
}

/// The stack file for `from`, or `None` when there is none.
pub fn find(from: &Path) -> Result<Option<StackFile>> {
    let top = git::head(from).map(|head| head.work_tree);
    let mut dir = Some(from);
    while let Some(here) = dir {
        let toml_path = here.join(TOML_NAME);
        let procfile_path = here.join(PROCFILE_NAME);
        if toml_path.is_file() {
            let stack = load_toml(&toml_path)?;
            if procfile_path.is_file() {
                agree(&stack, &load_procfile(&procfile_path)?)?;
            }
            return Ok(Some(stack));
        }
        if procfile_path.is_file() {
            return load_procfile(&procfile_path).map(Some);
        }
        if top.as_deref().is_none_or(|top| top == here) {
            break;
        }
        dir = here.parent();
    }
    Ok(None)
}

/// [`find`], as an error saying what to do when there is no stack file.
pub fn require(from: &Path) -> Result<StackFile> {
    find(from)?.ok_or_else(|| {
        anyhow!(
            "no {TOML_NAME} or {PROCFILE_NAME} in {} or above it in its git work tree: write \
             one (see `agentfs agent-help`), or cd into the work tree that has one",
            from.display()
        )
    })
}

fn read(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_FILE {
        bail!("{} is larger than {MAX_FILE} bytes", path.display());
    }
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_owned()
}

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    run: String,
    setup: Option<String>,
    dir: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    after: Vec<String>,
    ready: Option<Spanned<String>>,
    restart: Option<Spanned<String>>,
}

/// Reads and checks an `agentfs.toml`.
pub fn load_toml(path: &Path) -> Result<StackFile> {
    let text = read(path)?;
    parse_toml(path, &text)
}

fn parse_toml(path: &Path, text: &str) -> Result<StackFile> {
    let shown = path.display();
    let raw: RawFile = toml::from_str(text).map_err(|e| anyhow!("{shown}: {e}"))?;
    let mut services = Vec::new();
    for (name, service) in raw.services {
        let line = line_at(text, name.span().start);
        let at =
            |span: std::ops::Range<usize>| format!("{shown} line {}", line_at(text, span.start));
        let name = name.into_inner();
        if !naming::is_label(&name) {
            bail!(
                "{shown} line {line}: service name {name:?} is not a DNS label (lowercase \
                 letters, digits and '-', at most 63): it becomes the app's host name"
            );
        }
        let service = service.into_inner();
        let ready = match &service.ready {
            Some(ready) => Ready::parse(ready.get_ref())
                .map_err(|e| anyhow!("{}: service {name}: {e}", at(ready.span())))?,
            None => Ready::Listener,
        };
        let restart = match &service.restart {
            Some(restart) => Restart::parse(restart.get_ref())
                .map_err(|e| anyhow!("{}: service {name}: {e}", at(restart.span())))?,
            None => Restart::OnFailure,
        };
        services.push(ServiceSpec {
            name,
            run: service.run,
            setup: service.setup,
            dir: service.dir,
            env: service.env.into_iter().collect(),
            after: service.after,
            ready,
            restart,
            line,
        });
    }
    services.sort_by_key(|s| s.line);
    finish(path, services)
}

/// Reads and checks a `Procfile`.
pub fn load_procfile(path: &Path) -> Result<StackFile> {
    let text = read(path)?;
    let services = procfile::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    finish(path, services)
}

fn finish(path: &Path, services: Vec<ServiceSpec>) -> Result<StackFile> {
    if services.is_empty() {
        bail!("{} defines no service", path.display());
    }
    order::check(&services, |s| format!("{} line {}", path.display(), s.line))?;
    Ok(StackFile {
        path: path.to_owned(),
        dir: dir_of(path),
        services,
    })
}

/// An `agentfs.toml` and a `Procfile` side by side must name the same
/// services and run them the same way: else which one runs is a guess.
fn agree(stack: &StackFile, procfile: &StackFile) -> Result<()> {
    let differ = |what: String| {
        anyhow!(
            "{} and {} disagree: {what}; keep one, or make them agree",
            stack.path.display(),
            procfile.path.display()
        )
    };
    for service in &procfile.services {
        match stack.service(&service.name) {
            None => {
                return Err(differ(format!(
                    "Procfile line {} has service {}, which {TOML_NAME} does not",
                    service.line, service.name
                )))
            }
            Some(ours) if ours.run.trim() != service.run.trim() => {
                return Err(differ(format!(
                    "service {} runs `{}` in Procfile line {} and `{}` in {TOML_NAME} line {}",
                    service.name, service.run, service.line, ours.run, ours.line
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = stack
        .services
        .iter()
        .find(|s| procfile.service(&s.name).is_none())
    {
        return Err(differ(format!(
            "{TOML_NAME} line {} has service {}, which the Procfile does not",
            extra.line, extra.name
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
