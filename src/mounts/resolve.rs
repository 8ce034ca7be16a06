//! Opening a path inside a root that an image controls: openat2(2) with
//! `RESOLVE_IN_ROOT`, so that `..` and absolute links stop at the root, and missing
//! mount points made there, never beside it. See the security notes of [`super::Applier`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;

/// How strictly a path under the root is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Follow {
    /// No symlink anywhere on the path: where a filesystem is mounted, or a node made.
    NoSymlinks,
    /// The image's symlinks are followed, but never out of the root: a bind's target.
    InRoot,
}

/// What to make when a mount point is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Make {
    /// Nothing: a missing path is an error (`ENOENT`).
    Nothing,
    /// A directory, and its missing parents.
    Dir,
    /// An empty file (for a bind mount of a file), and its missing parent directories.
    File,
}

/// open(2) a host path nutshell trusts, as `O_PATH`.
pub(super) fn open_plain(path: &Path) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

// ANCHOR: open_beneath
/// openat2(2) `path` below `root` as if `root` were `/`.
pub(super) fn open_beneath(
    root: BorrowedFd,
    path: &Path,
    follow: Follow,
) -> Result<OwnedFd, Errno> {
    let mut resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if follow == Follow::NoSymlinks {
        resolve |= libc::RESOLVE_NO_SYMLINKS;
        flags |= libc::O_NOFOLLOW;
    }
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers, for which zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = resolve;
    // SAFETY: openat2 with a NUL-terminated path and an open_how of the size passed.
    let fd = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c_path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
// ANCHOR_END: open_beneath

/// Make the missing parts of `path` below `root`, each directory made inside the root,
/// the last one a file when `make` says so.
pub(super) fn make_beneath(
    root: BorrowedFd,
    path: &Path,
    follow: Follow,
    make: Make,
) -> Result<(), Errno> {
    let parts: Vec<Component> = path.components().collect();
    let mut done = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(name) = part else {
            return Err(Errno::EINVAL);
        };
        let next = done.join(name);
        match open_beneath(root, &next, follow) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let parent = open_beneath(root, &done, follow)?;
                // O_PATH fds cannot be used for *at calls that create: reopen as a dir.
                let parent = reopen_dir(parent.as_fd())?;
                let name = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
                let last = i + 1 == parts.len();
                let made = if last && make == Make::File {
                    let flags = libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW;
                    // SAFETY: openat with a NUL-terminated name relative to an open dir.
                    unsafe { libc::openat(parent.as_raw_fd(), name.as_ptr(), flags, 0o644) }
                } else {
                    // SAFETY: mkdirat with a NUL-terminated name relative to an open dir.
                    unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) }
                };
                match Errno::result(made) {
                    Ok(fd) if last && make == Make::File => {
                        // SAFETY: a new fd from openat, closed here.
                        unsafe { libc::close(fd) };
                    }
                    Ok(_) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(errno),
                }
            }
            Err(errno) => return Err(errno),
        }
        done = next;
    }
    Ok(())
}

/// An `O_PATH` fd of a directory, reopened as `O_RDONLY|O_DIRECTORY` for `*at` calls.
pub(super) fn reopen_dir(dir: BorrowedFd) -> Result<OwnedFd, Errno> {
    // SAFETY: openat on an fd we hold, with a static empty-relative "." path.
    let fd = Errno::result(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N`: the magic link to exactly what the fd holds, as a path for mount(2).
pub(super) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
