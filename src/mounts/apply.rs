//! Performing a [`MountPlan`] with system calls, in the container's first process, in
//! its new mount namespace.

use nix::errno::Errno;
use nix::fcntl::AT_FDCWD;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, makedev, mknod};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, mkdir, pivot_root, symlinkat};
use std::path::Path;

use super::MountError;
use super::plan::{MountOp, MountPlan};
use crate::process::Step;

impl MountOp {
    /// Perform this one operation. Run it only in a new mount namespace whose mounts are
    /// private (the plan's first operation makes them so).
    pub fn apply(&self) -> Result<(), Errno> {
        match self {
            // ANCHOR: make_private
            MountOp::MakePrivate => mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            ),
            // ANCHOR_END: make_private
            MountOp::BindSelf { path } => bind(path, path, MsFlags::MS_REC),
            MountOp::Mount {
                fstype,
                target,
                flags,
                data,
            } => mount(
                Some(*fstype),
                target,
                Some(*fstype),
                *flags,
                data.as_deref(),
            ),
            MountOp::MakeDir { path, mode } => {
                mkdir(path, Mode::from_bits_truncate(*mode))?;
                chmod(path, *mode)
            }
            MountOp::AttachTree { fd, target, .. } => crate::userns::attach_tree(*fd, target),
            MountOp::MakeFile { path } => {
                let fd = nix::fcntl::open(
                    path,
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                drop(fd);
                Ok(())
            }
            MountOp::Bind {
                source,
                target,
                recursive,
                read_only,
            } => {
                let rec = if *recursive {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                bind(source, target, rec)?;
                if *read_only {
                    remount_read_only(target)?;
                }
                Ok(())
            }
            MountOp::Device {
                path,
                major,
                minor,
                mode,
            } => {
                let mode_bits = Mode::from_bits_truncate(*mode);
                mknod(path, SFlag::S_IFCHR, mode_bits, makedev(*major, *minor))?;
                chmod(path, *mode)
            }
            MountOp::Symlink { link, target } => symlinkat(target, AT_FDCWD, link),
            MountOp::PivotRoot { new_root } => pivot_root_into(new_root),
            MountOp::Mask { path } => mask(path),
            MountOp::ReadOnly { path } => make_read_only(path),
        }
    }
}

/// Perform every operation of `plan` in order, stopping at the first that fails.
pub fn apply(plan: &MountPlan) -> Result<(), MountError> {
    plan.ops.iter().try_for_each(|op| {
        op.apply().map_err(|source| MountError::Apply {
            op: op.to_string(),
            source,
        })
    })
}

/// The plan as the child's preparation steps, one per operation, each named by what it
/// does: a failure then says which mount failed, with its errno.
pub fn steps(plan: &MountPlan) -> Vec<Step<'_>> {
    plan.ops
        .iter()
        .map(|op| Step::new(op.to_string(), move || op.apply()))
        .collect()
}

// ANCHOR: pivot_root_into
/// Make `new_root` — already a mount point — the root mount of this mount namespace,
/// and detach the old root so that no path leads back to it.
///
/// `pivot_root(".", ".")` is the trick runc uses: with the same directory for the new
/// root and `put_old`, the old root is mounted *on top of* the new one, at the same
/// place, and no directory for it is needed in the image. The working directory is the
/// new root underneath, so `umount2(".", MNT_DETACH)` takes the top mount — the old
/// root — off; MNT_DETACH because the host's root is busy, and lazily unmounting it from
/// this namespace is all we want. The host keeps its root: the mounts here are private.
pub fn pivot_root_into(new_root: &Path) -> Result<(), Errno> {
    chdir(new_root)?;
    pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    chdir("/")
}
// ANCHOR_END: pivot_root_into

// ANCHOR: mask
/// Hide `path` from the container: bind `/dev/null` over a file (it reads as empty), an
/// empty read-only tmpfs over a directory. A path this kernel lacks needs no mask.
fn mask(path: &Path) -> Result<(), Errno> {
    let stat = match nix::sys::stat::stat(path) {
        Err(Errno::ENOENT) => return Ok(()),
        result => result?,
    };
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            flags | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
    } else {
        bind(Path::new("/dev/null"), path, MsFlags::empty())
    }
}

/// Make `path` read-only: a bind mount of it onto itself is a mount of its own, whose
/// flags can change without touching the rest of /proc.
fn make_read_only(path: &Path) -> Result<(), Errno> {
    match nix::sys::stat::stat(path) {
        Err(Errno::ENOENT) => return Ok(()),
        result => result?,
    };
    bind(path, path, MsFlags::MS_REC)?;
    remount_read_only(path)
}

/// Remount the bind mount at `path` read-only.
fn remount_read_only(path: &Path) -> Result<(), Errno> {
    // A bind remount replaces the mount's flags with the ones given: carry over the
    // nosuid, nodev and noexec the bind inherited from /proc, or they would be lost. In a
    // user namespace a mount inherited from the host has these and its atime flags
    // *locked*: a remount that would clear one fails with EPERM.
    let kept = statvfs(path)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (have, keep) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if kept.contains(have) {
            flags |= keep;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}
// ANCHOR_END: mask

/// A bind mount of `source` at `target`, with `extra` flags (`MS_REC` for a tree).
fn bind(source: &Path, target: &Path, extra: MsFlags) -> Result<(), Errno> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | extra,
        None::<&str>,
    )
}

/// Set `path`'s mode exactly: mkdir(2) and mknod(2) filter theirs through the umask.
fn chmod(path: &Path, mode: u32) -> Result<(), Errno> {
    fchmodat(
        AT_FDCWD,
        path,
        Mode::from_bits_truncate(mode),
        FchmodatFlags::FollowSymlink,
    )
}
