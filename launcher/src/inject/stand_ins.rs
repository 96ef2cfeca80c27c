//! Interpreter stand-ins: keeping the shim past programs that strip the
//! preload variable.
//!
//! On macOS, SIP-protected programs (`/bin/sh`, `/usr/bin/env`) delete every
//! `DYLD_*` variable from their environment, so `npm run dev` (npm's
//! `#!/usr/bin/env node`, then `sh -c vite`, then vite's `#!/usr/bin/env node`)
//! would run node without the shim, and nothing loaded could put it back.
//! `PATH` survives them. So wrap puts a directory of stand-ins first in
//! `PATH`: `node`, `python3`, ... are links to the agentfs binary, which,
//! started under such a name, puts the preload variable back (from
//! `AGENTFS_SHIM`) and execs the real interpreter found further along `PATH`.
//! It costs one extra exec per interpreter start.
//!
//! On by default on macOS; on Linux, where only setuid programs and explicit
//! `env -u` drop `LD_PRELOAD`, with `wrap --stand-ins`.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use agentfs_contract::env;

use crate::inject::library;

/// Interpreters that start apps through `#!/usr/bin/env NAME` or by name from
/// a shell: the ones stood in for.
pub const INTERPRETERS: &[&str] = &[
    "node", "nodejs", "deno", "bun", "python", "python3", "ruby", "perl", "php",
];

/// Makes `dir` hold one link per interpreter to this agentfs binary, and returns it.
pub(crate) fn install(dir: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("could not find the agentfs binary")?;
    agentfs_contract::layout::ensure_private_dir(dir)?;
    for name in INTERPRETERS {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|target| target == exe) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &link))
            .with_context(|| format!("could not create the stand-in {}", link.display()))?;
    }
    Ok(dir.to_owned())
}

/// `PATH` with the stand-ins first.
pub(crate) fn path_with(dir: &Path, path: Option<&OsStr>) -> Result<OsString> {
    let rest = path
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    let joined = std::iter::once(dir.to_owned()).chain(rest.into_iter().filter(|p| p != dir));
    std::env::join_paths(joined).context("PATH has an entry that cannot be joined")
}

/// The interpreter this process stands in for, if it was started as one.
pub fn invoked_as() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?;
    (INTERPRETERS.contains(&name) && std::env::var_os(env::STAND_INS).is_some())
        .then(|| name.to_owned())
}

/// Execs the real `name` with the preload variable restored. Returns only
/// on failure, with the exit code a shell would give.
pub fn run(name: &str) -> i32 {
    let stand_ins = std::env::var_os(env::STAND_INS)
        .map(PathBuf::from)
        .unwrap_or_default();
    let Some(real) = find_beyond(name, std::env::var_os("PATH").as_deref(), &stand_ins) else {
        eprintln!("agentfs: {name}: command not found");
        return 127;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(&real);
    command
        .arg0(args.next().unwrap_or_else(|| name.into()))
        .args(args);
    if let Some(shim) = std::env::var_os(env::SHIM) {
        command.env(
            env::PRELOAD,
            library::preload_value(Path::new(&shim), std::env::var_os(env::PRELOAD)),
        );
    }
    let error = command.exec();
    eprintln!("agentfs: could not run {}: {error}", real.display());
    126
}

/// The first executable `name` in `path` outside the stand-in directory.
fn find_beyond(name: &str, path: Option<&OsStr>, stand_ins: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty() && dir != stand_ins)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_interpreter_is_found_past_the_stand_ins() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let (stand_ins, real_dir) = (base.join("stand-ins"), base.join("bin"));
        for dir in [&stand_ins, &real_dir] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("node"), "").unwrap();
        }
        std::fs::set_permissions(
            real_dir.join("node"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let path = path_with(&stand_ins, Some(real_dir.as_os_str())).unwrap();
        assert_eq!(std::env::split_paths(&path).next().unwrap(), stand_ins);
        assert_eq!(
            find_beyond("node", Some(&path), &stand_ins),
            Some(real_dir.join("node"))
        );
        assert_eq!(find_beyond("ruby-nope", Some(&path), &stand_ins), None);
    }

    use std::os::unix::fs::PermissionsExt;
}
