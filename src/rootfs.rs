//! The container's root filesystem: checking it, entering it with chroot(2), and the
//! classic escape that shows why chroot alone is not a container.
//!
//! chroot(2) changes one thing: the directory a process resolves `/` against. It does not
//! move the working directory, and it changes nothing else — the process still sees the
//! host's processes, mounts, network, hostname and users. Chapter 1 introduces this
//! module; chapter 4 adds pivot_root in a mount namespace, which closes the escape.
//!
//! See also [chroot(2)](https://man7.org/linux/man-pages/man2/chroot.2.html),
//! [chdir(2)](https://man7.org/linux/man-pages/man2/chdir.2.html).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, mkdir};

/// Errors about a root filesystem given by the user.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The path does not exist or cannot be read.
    #[error("rootfs {path} cannot be used: {source}")]
    Unusable {
        /// The path the user gave.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// The path exists but is not a directory.
    #[error("rootfs {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The directory has no `/bin/sh`, so it is not a root filesystem to run commands in.
    #[error(
        "rootfs {0} has no /bin/sh: give a root filesystem with a shell, or leave out --rootfs for the default image"
    )]
    NoShell(PathBuf),
}

/// Check that `path` is a directory we can use as a root, and return it absolute with
/// symlinks resolved, so that every later message and step names the real directory.
pub fn resolve_rootfs(path: &Path) -> Result<PathBuf, RootfsError> {
    let unusable = |source| RootfsError::Unusable {
        path: path.to_path_buf(),
        source,
    };
    let resolved = fs::canonicalize(path).map_err(unusable)?;
    if !fs::metadata(&resolved).map_err(unusable)?.is_dir() {
        return Err(RootfsError::NotADirectory(path.to_path_buf()));
    }
    Ok(resolved)
}

/// Check that `rootfs` has a `/bin/sh` (a file or a symlink: it is not followed, since an
/// absolute link means a path inside the rootfs, not on the host), before anything is
/// created for a container that could not run.
pub fn require_shell(rootfs: &Path) -> Result<(), RootfsError> {
    match fs::symlink_metadata(rootfs.join("bin/sh")) {
        Ok(md) if !md.is_dir() => Ok(()),
        _ => Err(RootfsError::NoShell(rootfs.to_path_buf())),
    }
}

// ANCHOR: enter_chroot
/// Make `new_root` this process's root directory, and move into it.
///
/// The chdir matters: chroot(2) leaves the working directory where it was, outside the
/// new root, and a relative path such as `..` walks from there — that is the escape
/// [`chroot_escape`] demonstrates.
pub fn enter_chroot(new_root: &Path) -> Result<(), Errno> {
    chroot(new_root)?;
    chdir("/")
}
// ANCHOR_END: enter_chroot

/// Stop mount events propagating between this mount namespace and the one it was copied
/// from, in both directions, for every mount (`MS_REC`). Run first in a new mount
/// namespace: where `/` is shared (systemd makes it so), a mount made inside would
/// otherwise appear on the host.
pub fn make_mounts_private() -> Result<(), Errno> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}

/// A directory's identity, which survives any renaming of paths: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirId {
    /// st_dev
    pub dev: u64,
    /// st_ino
    pub ino: u64,
}

impl DirId {
    /// The identity of the directory at `path`, as this process resolves it.
    pub fn of(path: &Path) -> std::io::Result<DirId> {
        let md = fs::metadata(path)?;
        Ok(DirId {
            dev: md.dev(),
            ino: md.ino(),
        })
    }
}

/// What each step of the escape did, for the chapter binary to print.
#[derive(Debug)]
pub struct EscapeReport {
    /// How many `chdir("..")` calls it took to reach a directory that is its own parent.
    pub steps_up: usize,
    /// Whether the final root is the host's real root.
    pub escaped: bool,
    /// The names in the root the process ended up with, sorted.
    pub root_entries: Vec<String>,
}

// ANCHOR: chroot_escape
/// From inside a chroot, as root, get out: the classic escape.
///
/// 1. `mkdir(scratch)` — any directory inside the current root.
/// 2. `chroot(scratch)` — the root moves down into it, but the working directory stays
///    where it was: *above* the new root, outside it.
/// 3. `chdir("..")` until `.` is its own parent — path walks stop at a process's root,
///    but this process's root is below us, so nothing stops the walk until the real `/`.
/// 4. `chroot(".")` — make the real root our root.
///
/// `host_root` is the identity of the host's `/`, taken before the chroot, to tell
/// honestly whether the walk got there. The caller removes `scratch` afterwards.
pub fn chroot_escape(scratch: &Path, host_root: DirId) -> std::io::Result<EscapeReport> {
    mkdir(scratch, Mode::from_bits_truncate(0o700))?;
    chroot(scratch)?;
    let mut steps_up = 0;
    while DirId::of(Path::new("."))? != DirId::of(Path::new(".."))? {
        chdir("..")?;
        steps_up += 1;
    }
    chroot(".")?;
    chdir("/")?;
    Ok(EscapeReport {
        steps_up,
        escaped: DirId::of(Path::new("/"))? == host_root,
        root_entries: list_dir(Path::new("/"))?,
    })
}
// ANCHOR_END: chroot_escape

/// The name of the scratch directory [`chroot_escape`] makes at the top of the root:
/// unique to this run, and recognisable if one is ever left behind.
pub fn escape_scratch_name() -> String {
    format!(".nutshell-escape-{}", std::process::id())
}

/// Remove the escape's scratch directory, from the host side, if the child left it: the
/// child may have died anywhere in the escape.
pub fn remove_escape_scratch(rootfs: &Path, scratch: &str) -> std::io::Result<()> {
    let leftover = rootfs.join(scratch);
    if leftover.exists() {
        fs::remove_dir(&leftover)?;
    }
    Ok(())
}

/// The names in `dir`, sorted.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rootfs_rejects_a_missing_directory() {
        let err = resolve_rootfs(Path::new("/nonexistent/nutshell-rootfs")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "rootfs /nonexistent/nutshell-rootfs cannot be used: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn resolve_rootfs_rejects_a_file() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let err = resolve_rootfs(file.path()).expect_err("a file");
        assert!(matches!(err, RootfsError::NotADirectory(_)), "{err}");
    }

    #[test]
    fn resolve_rootfs_makes_the_path_absolute() {
        let dir = tempfile::tempdir().expect("temp dir");
        let resolved = resolve_rootfs(&dir.path().join(".")).expect("a directory");
        assert!(resolved.is_absolute());
        assert_eq!(resolved, fs::canonicalize(dir.path()).expect("canonical"));
    }

    #[test]
    fn require_shell_refuses_a_root_without_bin_sh() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = require_shell(dir.path()).expect_err("no /bin/sh");
        assert!(matches!(err, RootfsError::NoShell(_)), "{err}");
        fs::create_dir(dir.path().join("bin")).expect("mkdir bin");
        std::os::unix::fs::symlink("/bin/busybox", dir.path().join("bin/sh")).expect("symlink");
        assert!(require_shell(dir.path()).is_ok());
    }

    #[test]
    fn list_dir_is_sorted() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b", "a", "c"] {
            fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        assert_eq!(list_dir(dir.path()).expect("list"), ["a", "b", "c"]);
    }
}
