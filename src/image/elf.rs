//! Which files a dynamically linked program needs, read from the ELF files themselves.
//!
//! A dynamic executable names its loader in the `PT_INTERP` program header
//! (`/lib64/ld-linux-x86-64.so.2`) and its libraries in `DT_NEEDED` entries (`libc.so.6`).
//! The loader finds each library in the program's `DT_RUNPATH`/`DT_RPATH`, then in the
//! directories of `/etc/ld.so.conf`, then in the system directories. We do the same walk,
//! transitively, without running `ldd` (which executes the program).
//!
//! See also [ld.so(8)](https://man7.org/linux/man-pages/man8/ld.so.8.html),
//! [elf(5)](https://man7.org/linux/man-pages/man5/elf.5.html).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

use super::ImageError;

/// The directories the loader searches after `ld.so.conf`, on every common distribution.
const SYSTEM_LIB_DIRS: &[&str] = &["/lib", "/usr/lib", "/lib64", "/usr/lib64"];

/// What an ELF file asks of the loader.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ElfDeps {
    /// The `PT_INTERP` path; `None` for a static binary.
    pub interpreter: Option<PathBuf>,
    /// The `DT_NEEDED` library names.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` directories, `$ORIGIN` already replaced.
    pub search: Vec<PathBuf>,
}

/// Read the dependencies of the ELF file `bytes`, found at host path `origin_file`.
/// Returns `None` when the file is not ELF (a shell script, say).
pub fn read_deps(bytes: &[u8], origin_file: &Path) -> Result<Option<ElfDeps>, ImageError> {
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let elf = Elf::parse(bytes).map_err(|e| ImageError::Elf {
        path: origin_file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let origin = origin_file
        .parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned();
    let search = elf
        .runpaths
        .iter()
        .chain(elf.rpaths.iter())
        .flat_map(|list| list.split(':'))
        .filter(|dir| !dir.is_empty())
        .map(|dir| {
            PathBuf::from(
                dir.replace("$ORIGIN", &origin)
                    .replace("${ORIGIN}", &origin),
            )
        })
        .collect();
    Ok(Some(ElfDeps {
        interpreter: elf.interpreter.map(PathBuf::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        search,
    }))
}

/// The library directories of the host at `host_root`, in the loader's order: those of
/// `/etc/ld.so.conf` (following `include` lines), then the system directories.
pub fn library_dirs(host_root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_so_conf(host_root, Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    dirs.extend(SYSTEM_LIB_DIRS.iter().map(PathBuf::from));
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Append the directories listed in one ld.so.conf file; `depth` stops include loops.
fn read_ld_so_conf(host_root: &Path, file: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = fs::read_to_string(on_host(host_root, file)) else {
        return;
    };
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            if depth < 8 {
                for included in glob_one_star(host_root, Path::new(pattern)) {
                    read_ld_so_conf(host_root, &included, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// Expand a pattern with at most one `*` in its last component (`/etc/ld.so.conf.d/*.conf`),
/// sorted as the loader's ldconfig does.
fn glob_one_star(host_root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (
        pattern.parent(),
        pattern.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let Ok(entries) = fs::read_dir(on_host(host_root, dir)) else {
        return Vec::new();
    };
    let mut matches: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= prefix.len() + suffix.len()
        })
        .map(|n| dir.join(n))
        .collect();
    matches.sort();
    matches
}

/// `path` (absolute, as the host's programs see it) under `host_root`.
pub fn on_host(host_root: &Path, path: &Path) -> PathBuf {
    host_root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Every file the loader will open to run `programs` (host-absolute paths): their
/// interpreters and, transitively, their libraries.
pub fn runtime_closure(
    host_root: &Path,
    programs: &[PathBuf],
) -> Result<BTreeSet<PathBuf>, ImageError> {
    let dirs = library_dirs(host_root);
    let mut needed_files = BTreeSet::new();
    let mut queue: Vec<PathBuf> = programs.to_vec();
    while let Some(file) = queue.pop() {
        let bytes = fs::read(on_host(host_root, &file)).map_err(|source| ImageError::Read {
            path: file.clone(),
            source,
        })?;
        let Some(deps) = read_deps(&bytes, &file)? else {
            continue;
        };
        if let Some(interp) = deps.interpreter
            && needed_files.insert(interp.clone())
        {
            queue.push(interp);
        }
        for name in &deps.needed {
            let found = deps
                .search
                .iter()
                .chain(&dirs)
                .map(|dir| dir.join(name))
                .find(|candidate| on_host(host_root, candidate).is_file())
                .ok_or_else(|| ImageError::MissingLibrary {
                    library: name.clone(),
                    needed_by: file.clone(),
                })?;
            if needed_files.insert(found.clone()) {
                queue.push(found);
            }
        }
    }
    Ok(needed_files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_script_has_no_elf_deps() {
        assert_eq!(
            read_deps(b"#!/bin/sh\necho hi\n", Path::new("/bin/hi")).expect("read"),
            None
        );
    }

    #[test]
    fn a_truncated_elf_is_an_error_naming_the_file() {
        let err = read_deps(b"\x7fELF\x02\x01", Path::new("/bin/broken")).expect_err("truncated");
        assert!(err.to_string().contains("/bin/broken"), "{err}");
    }

    #[test]
    fn ld_so_conf_includes_are_followed_in_order() {
        let root = tempfile::tempdir().expect("temp dir");
        let etc = root.path().join("etc/ld.so.conf.d");
        fs::create_dir_all(&etc).expect("mkdir");
        fs::write(
            root.path().join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n/opt/last\n",
        )
        .expect("write");
        fs::write(etc.join("b.conf"), "# comment\n/usr/lib/b\n").expect("write");
        fs::write(etc.join("a.conf"), "/usr/lib/a\n").expect("write");
        fs::write(etc.join("ignored.txt"), "/nope\n").expect("write");
        let dirs = library_dirs(root.path());
        let expected: Vec<PathBuf> = [
            "/usr/lib/a",
            "/usr/lib/b",
            "/opt/last",
            "/lib",
            "/usr/lib",
            "/lib64",
            "/usr/lib64",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(dirs, expected);
    }

    #[test]
    fn the_closure_of_the_hosts_shell_holds_its_interpreter_and_libc() {
        let sh = fs::read("/bin/sh").expect("read /bin/sh");
        let deps = read_deps(&sh, Path::new("/bin/sh"))
            .expect("parse /bin/sh")
            .expect("/bin/sh is ELF");
        let closure = runtime_closure(Path::new("/"), &[PathBuf::from("/bin/sh")])
            .expect("closure of /bin/sh");
        match deps.interpreter {
            // A static shell (busybox as sh) needs nothing at all.
            None => assert!(closure.is_empty(), "{closure:?}"),
            Some(interp) => {
                assert!(closure.contains(&interp), "{closure:?}");
                assert!(
                    closure.iter().any(|p| p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libc."))),
                    "{closure:?}"
                );
            }
        }
    }
}
