//! Which stack a command means: the stack file found from the current
//! directory, and its instance: `--instance`, else the instance of the
//! wrapped process agentfs runs in, else the git work tree's branch (as
//! `wrap` decides), else the stack file's directory name (so `up`, `wait`
//! and `down` run from one place always agree).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use agentfs_contract::{env, layout, naming};

use crate::instance::worktree;
use crate::stack::file::{self, StackFile};
use crate::stack::state::StackDir;

/// A stack as a command names it.
#[derive(Debug)]
pub struct Target {
    pub home: PathBuf,
    pub instance: String,
    /// Absent for commands that need only the instance (`down`, `wait`)
    /// when the stack file is gone.
    pub file: Option<StackFile>,
    pub dir: StackDir,
}

impl Target {
    /// The stack file, required.
    pub fn file(&self) -> Result<&StackFile> {
        self.file.as_ref().ok_or_else(|| {
            anyhow!(
                "no agentfs.toml or Procfile here or above in this git work tree: cd into the \
                 work tree of the stack"
            )
        })
    }
}

/// The stack of the current directory with instance `flag` (if given).
/// `need_file`: fail when there is no stack file.
pub fn locate(flag: Option<&str>, need_file: bool) -> Result<Target> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    locate_from(&cwd, flag, need_file)
}

pub fn locate_from(cwd: &Path, flag: Option<&str>, need_file: bool) -> Result<Target> {
    let home = layout::home_from_env()?;
    let file = if need_file {
        Some(file::require(cwd)?)
    } else {
        file::find(cwd)?
    };
    let outer = std::env::var(env::INSTANCE).ok();
    let instance = instance_id(flag, outer.as_deref(), cwd, file.as_ref())?;
    let dir = StackDir::new(&home, &instance);
    Ok(Target {
        home,
        instance,
        file,
        dir,
    })
}

/// NAME as `logs`, `url` and `stop` take it, where a bare service name of
/// the stack found here means that service in the stack's instance
/// (`INSTANCE.SERVICE`); any other NAME is left as it is.
pub fn qualify(name: &str) -> String {
    if !naming::is_label(name) {
        return name.to_owned();
    }
    match locate(None, false) {
        Ok(target)
            if target
                .file
                .as_ref()
                .is_some_and(|f| f.service(name).is_some()) =>
        {
            format!("{}.{name}", target.instance)
        }
        _ => name.to_owned(),
    }
}

fn instance_id(
    flag: Option<&str>,
    outer: Option<&str>,
    cwd: &Path,
    file: Option<&StackFile>,
) -> Result<String> {
    if let Some(id) = flag {
        return naming::sanitize_label(id).ok_or_else(|| {
            anyhow!("--instance {id:?} has no letters or digits to make a host name from")
        });
    }
    if let Some(outer) = outer.filter(|id| naming::is_label(id)) {
        return Ok(outer.to_owned());
    }
    let from = file.map_or(cwd, |f| f.dir.as_path());
    if let Some((id, _)) = worktree::default_instance(from) {
        return Ok(id);
    }
    let dir_name = file
        .and_then(|f| f.dir.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    match dir_name.as_deref().and_then(naming::sanitize_label) {
        Some(id) => Ok(id),
        None => bail!("cannot tell which instance this stack is: give --instance ID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_outer_then_branch_then_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("My Shop");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feat/X\n").unwrap();
        std::fs::write(repo.join("Procfile"), "web: x\n").unwrap();
        let stack = file::find(&repo).unwrap().unwrap();
        let id = |flag, outer| instance_id(flag, outer, &repo, Some(&stack)).unwrap();
        assert_eq!(id(Some("Blue"), Some("outer")), "blue");
        assert_eq!(id(None, Some("outer")), "outer");
        assert_eq!(id(None, None), "feat-x");
        std::fs::remove_dir_all(repo.join(".git")).unwrap();
        assert_eq!(id(None, None), "my-shop");
        assert!(instance_id(None, None, tmp.path(), None).is_err());
    }
}
