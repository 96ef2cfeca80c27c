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

    /// How the checkout is found (branches, linked worktrees, detached
    /// heads) is the contract's git reader's, tested there; here, what
    /// becomes of it.
    #[test]
    fn a_branch_becomes_a_label_and_a_detached_head_the_directory_name() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("Shop_Login");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::write(
            repo.join(".git/HEAD"),
            "ref: refs/heads/feature/Login_Page\n",
        )
        .unwrap();
        assert_eq!(
            default_instance(&repo),
            Some((
                "feature-login-page".into(),
                Origin::Branch("feature/Login_Page".into())
            ))
        );
        fs::write(
            repo.join(".git/HEAD"),
            "0123456789abcdef0123456789abcdef01234567\n",
        )
        .unwrap();
        assert_eq!(
            default_instance(&repo),
            Some(("shop-login".into(), Origin::WorkTree(repo.clone())))
        );
        assert_eq!(default_instance(tmp.path()), None);
    }
}
