//! Small file operations on a cgroupfs: reading counters, writing values only under
//! `nutshell/`, `mkdir` and `rmdir` with the kernel's cgroup-specific errnos.
//!
//! Private to [`super`]; [`super::cgroup`] builds on them.

use std::fs;
use std::io;
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::cgroup::{CgroupError, PARENT};

/// Copies `cpuset.cpus` and `cpuset.mems` from `from` to `to` where `to`'s are empty.
pub(super) fn copy_cpuset(from: &Path, to: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = fs::read_to_string(to.join(file)).unwrap_or_default();
        if current.trim().is_empty() {
            let path = from.join(file);
            let value =
                fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })?;
            write_file(&to.join(file), value.trim())?;
        }
    }
    Ok(())
}

pub(super) fn mkdir(path: &Path, exist_ok: bool) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && exist_ok => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(CgroupError::AlreadyExists {
            path: path.to_owned(),
        }),
        Err(source) => Err(CgroupError::Create {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `value` to a file of a cgroup the project made.
pub(super) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    // The promise of this module, checked where it could be broken.
    assert!(
        path.components().any(|c| c.as_os_str() == PARENT),
        "refusing to write outside a nutshell cgroup: {}",
        path.display()
    );
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// `rmdir`, retrying `EBUSY` up to `attempts` times; a missing dir counts as removed.
pub(super) fn remove_dir(path: &Path, attempts: usize) -> Result<(), CgroupError> {
    for attempt in 1..=attempts {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && attempt < attempts => {
                thread::sleep(Duration::from_millis(10));
            }
            // A real cgroupfs never answers ENOTEMPTY (interface files go with the dir,
            // child cgroups give EBUSY), so this is a plain-directory tree such as the
            // tests' fake cgroupfs: drop its files if it has no subdirectories.
            Err(err) if err.raw_os_error() == Some(libc::ENOTEMPTY) && only_files(path) => {
                for entry in fs::read_dir(path).into_iter().flatten().flatten() {
                    let _ = fs::remove_file(entry.path());
                }
                return fs::remove_dir(path).map_err(|source| CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                });
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    Ok(())
}

pub(super) fn only_files(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| e.file_type().is_ok_and(|t| t.is_file()))
    })
}

pub(super) fn read_number(path: &Path) -> Result<u64, CgroupError> {
    let text = fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        problem: format!("expected a number, found {:?}", text.trim()),
    })
}

/// Reads a flat-keyed file (`key value` per line: cpu.stat, memory.events, pids.events).
pub(super) fn read_keyed(path: &Path) -> Result<Vec<(String, u64)>, CgroupError> {
    let text = fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next().and_then(|v| v.parse().ok())) {
                (Some(key), Some(value)) => Ok((key.to_owned(), value)),
                _ => Err(CgroupError::Parse {
                    path: path.to_owned(),
                    problem: format!("expected `key number`, found {line:?}"),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse_and_bad_lines_name_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cpu.stat");
        fs::write(&path, "usage_usec 12\nnr_periods 3\n\n").expect("write");
        let pairs = read_keyed(&path).expect("parses");
        assert_eq!(
            pairs,
            [("usage_usec".to_owned(), 12), ("nr_periods".to_owned(), 3)]
        );
        fs::write(&path, "usage_usec lots\n").expect("write");
        let err = read_keyed(&path).expect_err("not a number");
        assert!(
            err.to_string()
                .starts_with(&format!("parse {}: ", path.display())),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "refusing to write outside a nutshell cgroup")]
    fn writes_outside_nutshell_are_refused() {
        let _ = write_file(Path::new("/sys/fs/cgroup/cpu/cpu.shares"), "2");
    }
}
