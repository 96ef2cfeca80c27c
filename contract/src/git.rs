//! What a git work tree has checked out, read from the files git keeps
//! (`.git/HEAD`, or the `HEAD` of the git directory a linked worktree's
//! `.git` file names with `gitdir:`), so no `git` program is needed.
//!
//! The launcher names an instance after it; the router shows it beside
//! each instance's working directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A `HEAD` or `.git` file is a line; anything longer is not git's.
const MAX_GIT_FILE: u64 = 4096;

/// How many hex digits of a commit name it in short (as `git log --oneline`).
const SHORT_COMMIT: usize = 7;

/// The checked-out state of the work tree a directory is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The work tree's root directory.
    pub work_tree: PathBuf,
    pub checkout: Checkout,
}

/// What `HEAD` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkout {
    /// A branch, as git names it (`feature/login`).
    Branch(String),
    /// A commit (a detached HEAD), as `HEAD` holds it.
    Detached(String),
}

impl Checkout {
    /// The branch, or a detached HEAD's short commit hash.
    pub fn short(&self) -> &str {
        match self {
            Checkout::Branch(branch) => branch,
            Checkout::Detached(commit) => commit.get(..SHORT_COMMIT).unwrap_or(commit),
        }
    }
}

/// The checkout of the git work tree `dir` is in (it or one of its
/// parents), or `None` when it is in none (or its `HEAD` is unreadable).
pub fn head(dir: &Path) -> Option<Head> {
    let (git_dir, work_tree) = find_git_dir(dir)?;
    let text = read_small(&git_dir.join("HEAD"))?;
    let text = text.trim();
    let checkout = match text.strip_prefix("ref: ") {
        Some(reference) => {
            let branch = reference.trim().strip_prefix("refs/heads/")?;
            Checkout::Branch(branch.to_owned())
        }
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Checkout::Detached(text.to_owned())
        }
        None => return None,
    };
    Some(Head {
        work_tree,
        checkout,
    })
}

/// The git directory of the work tree `dir` is in, and the work tree's root.
fn find_git_dir(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    dir.ancestors().find_map(|root| {
        let dot_git = root.join(".git");
        let meta = fs::metadata(&dot_git).ok()?;
        if meta.is_dir() {
            return Some((dot_git, root.to_owned()));
        }
        // A linked worktree (or a submodule): `gitdir: PATH`.
        let pointer = read_small(&dot_git)?;
        let target = pointer.trim().strip_prefix("gitdir:")?.trim();
        Some((root.join(target), root.to_owned()))
    })
}

fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_GIT_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_linked_worktrees_and_detached_heads() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("shop");
        let sub = repo.join("packages/web");
        fs::create_dir_all(repo.join(".git/worktrees/login")).unwrap();
        fs::create_dir_all(&sub).unwrap();
        fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/Login\n").unwrap();
        let found = head(&sub).unwrap();
        assert_eq!(found.work_tree, repo);
        assert_eq!(found.checkout, Checkout::Branch("feature/Login".into()));
        assert_eq!(found.checkout.short(), "feature/Login");

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
        let found = head(&linked).unwrap();
        assert_eq!(found.work_tree, linked);
        assert_eq!(found.checkout.short(), "0123456");
        assert_eq!(head(tmp.path()), None);
    }

    #[test]
    fn what_is_not_git_is_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join(".git/HEAD"), "<script>\n").unwrap();
        assert_eq!(head(dir), None);
        fs::write(dir.join(".git/HEAD"), "ref: refs/tags/v1\n").unwrap();
        assert_eq!(head(dir), None);
        fs::remove_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join(".git"), "not a pointer\n").unwrap();
        assert_eq!(head(dir), None);
    }
}
