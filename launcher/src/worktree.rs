//! The default instance id inside a git work tree: its checked-out branch
//! (or, on a detached HEAD, the work tree's directory name), made a DNS label.
//!
//! So every service started from one work tree without `--instance` lands in
//! one instance, one stack, and each worktree of a repository gets its own
//! (git checks a branch out in one work tree at a time). The checkout is
//! read by the contract's [`git`] reader, which needs no `git` program.

use std::path::{Path, PathBuf};

use agentfs_contract::git::{self, Checkout};
use agentfs_contract::naming;

/// Where an instance id came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The checked-out branch, as git names it.
    Branch(String),
    /// The work tree's directory (a detached HEAD).
    WorkTree(PathBuf),
}

/// The default instance id for `dir` when it is inside a git work tree.
pub fn default_instance(dir: &Path) -> Option<(String, Origin)> {
    let head = git::head(dir)?;
    let origin = match head.checkout {
        Checkout::Branch(branch) => Origin::Branch(branch),
        Checkout::Detached(_) => Origin::WorkTree(head.work_tree),
    };
    let raw = match &origin {
        Origin::Branch(branch) => branch.clone(),
        Origin::WorkTree(dir) => dir.file_name()?.to_string_lossy().into_owned(),
    };
    Some((naming::sanitize_label(&raw)?, origin))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn branches_worktrees_and_detached_heads() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("shop");
        let sub = repo.join("packages/web");
        fs::create_dir_all(repo.join(".git/worktrees/login")).unwrap();
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            repo.join(".git/HEAD"),
            "ref: refs/heads/feature/Login_Page\n",
        )
        .unwrap();
        assert_eq!(
            default_instance(&sub),
            Some((
                "feature-login-page".into(),
                Origin::Branch("feature/Login_Page".into())
            ))
        );
        // A linked worktree elsewhere, on a detached HEAD.
        let linked = tmp.path().join("shop-login");
        fs::create_dir_all(&linked).unwrap();
        let git_dir = repo.join(".git/worktrees/login");
        fs::write(
            linked.join(".git"),
            format!("gitdir: {}\n", git_dir.display()),
        )
        .unwrap();
        fs::write(
            git_dir.join("HEAD"),
            "0123456789abcdef0123456789abcdef01234567\n",
        )
        .unwrap();
        assert_eq!(
            default_instance(&linked),
            Some(("shop-login".into(), Origin::WorkTree(linked.clone())))
        );
        assert_eq!(default_instance(tmp.path()), None);
    }
}
