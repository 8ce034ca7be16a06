//! The system calls of safe extraction, on directory fds: openat2(2) with
//! `RESOLVE_IN_ROOT`, and the `*at` calls that never follow a symlink.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(super) fn fd_result(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
    }
}

pub(super) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    fd_result(fd as libc::c_long)
}

// ANCHOR: open_beneath
/// Open the directory `name` in `dir`, with the kernel resolving it inside `dir` as if
/// `dir` were `/` and following no symlink at all (ELOOP if `name` is one).
pub(super) fn open_beneath(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    openat2(
        dir,
        name,
        libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}
// ANCHOR_END: open_beneath

/// openat2(2) of `name` in `dir` with `flags` (always close-on-exec) and `resolve`:
/// libc has the struct but no wrapper.
fn openat2(dir: &OwnedFd, name: &CString, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all zero is "no flags".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `how` and `name` outlive the call; the size is the struct's.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    fd_result(fd)
}

pub(super) fn open_dir_at(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    open_beneath(dir, name)
}

/// Create a new regular file: O_EXCL, so an existing file or symlink is never reused.
pub(super) fn create_file(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    fd_result(fd as libc::c_long)
}

pub(super) fn lstat_at(dir: &OwnedFd, name: &CString) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat filled it.
    Ok(unsafe { stat.assume_init() })
}

pub(super) fn is_type(stat: &libc::stat, kind: libc::mode_t) -> bool {
    stat.st_mode & libc::S_IFMT == kind
}

pub(super) fn set_xattr(fd: &OwnedFd, key: &str, value: &[u8]) -> io::Result<()> {
    let key = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub(super) fn timespecs(mtime: i64) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    ]
}

pub(super) fn set_times(fd: &OwnedFd, mtime: i64) -> io::Result<()> {
    let times = timespecs(mtime);
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })
}

pub(super) fn set_times_at(dir: &OwnedFd, name: &CString, mtime: i64) -> io::Result<()> {
    let times = timespecs(mtime);
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Remove the directory `name` in `dir` and everything in it, by fd: no path is
/// resolved twice, so no symlink swapped in meanwhile is followed.
pub(super) fn remove_tree_at(dir: &OwnedFd, name: &CString) -> io::Result<()> {
    let sub = open_beneath(dir, name)?;
    let listing = File::from(sub.try_clone()?);
    let entries = std::fs::read_dir(format!("/proc/self/fd/{}", listing.as_raw_fd()))?;
    for entry in entries {
        let entry = entry?;
        let child = CString::new(entry.file_name().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if entry.file_type()?.is_dir() {
            remove_tree_at(&sub, &child)?;
        } else {
            check(unsafe { libc::unlinkat(sub.as_raw_fd(), child.as_ptr(), 0) })?;
        }
    }
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
}
