//! From a command to the binary the kernel really runs: `PATH` lookup, then
//! `#!` interpreters, including `#!/usr/bin/env X` and `env -S "X args"`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How many `#!` hops are followed; Linux itself stops after a handful.
pub const MAX_DEPTH: usize = 4;

/// The kernel reads at most this much of a `#!` line (Linux's BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

/// A command resolved to what runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The binary the kernel finally executes.
    pub binary: PathBuf,
    /// The command, then each interpreter in turn, ending with `binary`.
    /// `/usr/bin/env` itself is left out: it execs the program it names.
    pub chain: Vec<PathBuf>,
}

/// Why a command could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// A name that is not in `PATH`, or an interpreter that does not exist.
    NotFound(PathBuf),
    /// More nested interpreters than [`MAX_DEPTH`].
    TooDeep(Vec<PathBuf>),
}

/// Resolves `program` (a path, or a bare name looked up in `path_var`).
pub fn resolve(program: &Path, path_var: Option<&OsStr>) -> Result<Resolved, Unresolved> {
    let mut current = lookup(program.as_os_str(), path_var)
        .ok_or_else(|| Unresolved::NotFound(program.to_owned()))?;
    let mut chain = vec![current.clone()];
    loop {
        let Some(line) = read_shebang(&current) else {
            return Ok(Resolved {
                binary: current,
                chain,
            });
        };
        if chain.len() > MAX_DEPTH {
            return Err(Unresolved::TooDeep(chain));
        }
        let next = interpreter(&line, path_var).ok_or_else(|| {
            Unresolved::NotFound(PathBuf::from(OsStr::from_bytes(
                line.split(|b| b.is_ascii_whitespace())
                    .next()
                    .unwrap_or_default(),
            )))
        })?;
        chain.push(next.clone());
        current = next;
    }
}

/// `a -> b -> c`, for messages.
pub fn describe_chain(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// A name with a `/` is a path; a bare name is searched in `PATH` like execvp does.
pub fn lookup(name: &OsStr, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.as_bytes().contains(&b'/') {
        let path = PathBuf::from(name);
        return path.exists().then_some(path);
    }
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The bytes after `#!` on the first line, trimmed, if the file is a script.
fn read_shebang(path: &Path) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(SHEBANG_MAX);
    File::open(path)
        .ok()?
        .take(SHEBANG_MAX as u64)
        .read_to_end(&mut head)
        .ok()?;
    parse_shebang(&head)
}

/// The interpreter line of a script's first bytes, without `#!` and without
/// surrounding blanks; `None` if they do not start with `#!`.
pub fn parse_shebang(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let trimmed = line.trim_ascii();
    (!trimmed.is_empty()).then(|| trimmed.to_vec())
}

/// The program an interpreter line runs: the interpreter itself, or for
/// `env`, the program `env` would look up in `PATH`.
pub fn interpreter(line: &[u8], path_var: Option<&OsStr>) -> Option<PathBuf> {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let interp = PathBuf::from(OsStr::from_bytes(words.next()?));
    if interp.file_name() != Some(OsStr::new("env")) {
        return interp.exists().then_some(interp);
    }
    let name = env_program(words)?;
    lookup(OsStr::from_bytes(name), path_var)
}

/// The command `env` runs: the first word that is neither an option (with
/// `-u NAME` / `-P DIR` taking a value; `-S` splitting is already done by
/// splitting on blanks) nor a `NAME=value` assignment.
fn env_program<'a>(mut words: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    while let Some(word) = words.next() {
        match word {
            b"-u" | b"--unset" | b"-P" | b"-C" | b"--chdir" => {
                words.next();
            }
            b"--" => return words.next(),
            w if w.starts_with(b"-") => {}
            w if w.contains(&b'=') => {}
            w => return Some(w),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_exec(path: &Path, body: &str) {
        fs::write(path, body).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn shebang_lines_are_parsed() {
        assert_eq!(
            parse_shebang(b"#! /bin/sh -e\r\necho"),
            Some(b"/bin/sh -e".to_vec())
        );
        assert_eq!(parse_shebang(b"#!"), None);
        assert_eq!(parse_shebang(b"\x7fELF"), None);
        assert_eq!(parse_shebang(b""), None);
    }

    #[test]
    fn env_options_and_assignments_are_skipped() {
        let words = |s: &'static str| s.split(' ').map(str::as_bytes);
        assert_eq!(env_program(words("python3")), Some(&b"python3"[..]));
        assert_eq!(env_program(words("-S node --harmony")), Some(&b"node"[..]));
        assert_eq!(
            env_program(words("-i -u HOME A=b deno run")),
            Some(&b"deno"[..])
        );
        assert_eq!(env_program(words("-- -weird")), Some(&b"-weird"[..]));
        assert_eq!(env_program(words("-i")), None);
    }

    #[test]
    fn env_chain_resolves_through_path() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf();
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        // A fake interpreter found through PATH, itself a script for /bin/sh.
        write_exec(&bin.join("python3"), "#!/bin/sh\nexec true\n");
        let script = dir.join("app.py");
        write_exec(&script, "#!/usr/bin/env python3\nprint('hi')\n");
        let resolved = resolve(&script, Some(bin.as_os_str())).unwrap();
        assert_eq!(resolved.binary, PathBuf::from("/bin/sh"));
        assert_eq!(
            resolved.chain,
            vec![script, bin.join("python3"), PathBuf::from("/bin/sh")]
        );
    }

    #[test]
    fn bare_names_use_path_and_missing_ones_are_reported() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf();
        write_exec(&dir.join("tool"), "#!/bin/sh\n");
        let found = resolve(Path::new("tool"), Some(dir.as_os_str())).unwrap();
        assert_eq!(found.chain[0], dir.join("tool"));
        assert_eq!(
            resolve(Path::new("no-such-tool"), Some(dir.as_os_str())),
            Err(Unresolved::NotFound("no-such-tool".into()))
        );
        write_exec(&dir.join("broken"), "#!/no/such/interp\n");
        assert!(matches!(
            resolve(&dir.join("broken"), None),
            Err(Unresolved::NotFound(_))
        ));
    }

    #[test]
    fn interpreter_loops_stop() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf();
        let a = dir.join("a");
        write_exec(&a, &format!("#!{}\n", a.display()));
        assert!(matches!(resolve(&a, None), Err(Unresolved::TooDeep(_))));
    }
}
