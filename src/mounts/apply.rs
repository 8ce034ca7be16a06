//! Performing the mount plan's operations ([`MountOp`]) with system calls, in the
//! container's first process, in its new mount namespace.
//!
//! # Security
//!
//! The root is an image, and an image can hold anything: `/dev` as a symlink to `/`,
//! `/proc` as a symlink to `/etc`. A mount whose target path is followed through such a
//! link lands on the host, where device nodes and a tmpfs then hide or replace host
//! files. So no target under the root is ever used as a path. It is opened first, inside
//! the root, with openat2(2) and `RESOLVE_IN_ROOT` — `..` and absolute symlinks stop at
//! the root, as if it were `/` — and the mount then goes onto the open directory through
//! its `/proc/self/fd/N` name, which the kernel resolves to exactly the directory the fd
//! holds. A filesystem (proc, sysfs, a tmpfs, ...) is mounted only on a real directory:
//! a symlink anywhere on its path is refused with `ELOOP` (runc refuses proc and sysfs on
//! anything but an ordinary directory for the same reason). A bind mount's destination
//! may be reached through the image's own links, resolved inside the root.
//!
//! See also [openat2(2)](https://man7.org/linux/man-pages/man2/openat2.2.html),
//! [mount_setattr(2)](https://man7.org/linux/man-pages/man2/mount_setattr.2.html),
//! CVE-2021-30465 (runc, a symlink swapped under a mount target).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{chdir, pivot_root};

use super::plan::MountOp;
use super::resolve::{Follow, Make, fd_path, make_beneath, open_beneath, open_plain};
use crate::spec::{Atime, MountOptions, Propagation};

/// Performs a plan's operations one at a time, keeping track of where the root is.
pub struct Applier<'a> {
    /// The new root, as a host path, until the process is inside it.
    rootfs: PathBuf,
    /// Whether the process has entered the root (pivot_root or chroot): from then on,
    /// every path is the container's own, under `/`.
    entered: bool,
    /// The idmapped trees [`MountOp::AttachTree`] names by position.
    trees: &'a [OwnedFd],
}

impl<'a> Applier<'a> {
    /// An applier for a root at `rootfs`, with the container's idmapped trees.
    pub fn new(rootfs: &Path, trees: &'a [OwnedFd]) -> Applier<'a> {
        Applier {
            rootfs: rootfs.to_path_buf(),
            entered: false,
            trees,
        }
    }

    /// Perform one operation. Run only in a mount namespace of the container's own,
    /// whose propagation the plan's first operation sets.
    pub fn apply(&mut self, op: &MountOp) -> Result<(), Errno> {
        match op {
            // ANCHOR: make_private
            MountOp::Propagation { kind } => {
                let flag = match kind {
                    Propagation::Private => MsFlags::MS_PRIVATE,
                    Propagation::Slave => MsFlags::MS_SLAVE,
                    Propagation::Shared => MsFlags::MS_SHARED,
                };
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | flag,
                    None::<&str>,
                )
            }
            // ANCHOR_END: make_private
            MountOp::BindSelf { path } => bind(path, path, MsFlags::MS_REC),
            MountOp::AttachTree { tree, target, .. } => {
                let tree = self.trees.get(*tree).ok_or(Errno::EBADF)?;
                let target = self.open(target, Follow::NoSymlinks, Make::Dir)?;
                attach_tree(tree.as_fd(), target.as_fd())
            }
            MountOp::Mount {
                fstype,
                target,
                options,
            } => {
                let at = self.open(target, Follow::NoSymlinks, Make::Dir)?;
                let (flags, data) = flags_and_data(options);
                mount(
                    Some(fstype.as_str()),
                    &fd_path(&at),
                    Some(fstype.as_str()),
                    flags,
                    data.as_deref(),
                )
            }
            MountOp::Bind {
                source,
                target,
                recursive,
                readonly,
            } => {
                let make = if std::fs::metadata(source).is_ok_and(|m| m.is_dir()) {
                    Make::Dir
                } else {
                    Make::File
                };
                let at = self.open(target, Follow::InRoot, make)?;
                let rec = if *recursive {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                bind(source, &fd_path(&at), rec)?;
                if *readonly {
                    // Open again: the fd from before the bind names what it covers.
                    let bound = self.open(target, Follow::InRoot, Make::Nothing)?;
                    set_read_only(bound.as_fd(), *recursive)?;
                }
                Ok(())
            }
            MountOp::Device {
                path,
                major,
                minor,
                mode,
            } => {
                let (dir, name) = self.open_parent(path)?;
                // SAFETY: mknodat with a NUL-terminated name relative to an open dir.
                Errno::result(unsafe {
                    libc::mknodat(
                        dir.as_raw_fd(),
                        name.as_ptr(),
                        SFlag::S_IFCHR.bits() | *mode,
                        nix::sys::stat::makedev(*major, *minor),
                    )
                })?;
                // mknod filters the mode through the umask: set it exactly.
                nix::sys::stat::fchmodat(
                    dir.as_fd(),
                    name.as_c_str(),
                    Mode::from_bits_truncate(*mode),
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )
                .or_else(|errno| match errno {
                    // Older kernels cannot chmod without following; a node is no link.
                    Errno::EOPNOTSUPP => nix::sys::stat::fchmodat(
                        dir.as_fd(),
                        name.as_c_str(),
                        Mode::from_bits_truncate(*mode),
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    ),
                    errno => Err(errno),
                })
            }
            MountOp::Symlink { link, target } => {
                let (dir, name) = self.open_parent(link)?;
                nix::unistd::symlinkat(target.as_path(), dir.as_fd(), name.as_c_str())
            }
            MountOp::PivotRoot { new_root } => {
                pivot_root_into(new_root)?;
                self.entered = true;
                Ok(())
            }
            MountOp::Chroot { new_root } => {
                crate::rootfs::enter_chroot(new_root)?;
                self.entered = true;
                Ok(())
            }
            MountOp::Mask { path } => self.mask(path),
            MountOp::ReadOnly { path } => {
                let at = match self.open(path, Follow::NoSymlinks, Make::Nothing) {
                    Err(Errno::ENOENT) => return Ok(()),
                    result => result?,
                };
                bind(&fd_path(&at), &fd_path(&at), MsFlags::MS_REC)?;
                let bound = self.open(path, Follow::NoSymlinks, Make::Nothing)?;
                set_read_only(bound.as_fd(), true)
            }
            MountOp::SetAttributes {
                target,
                options,
                recursive,
            } => {
                let at = self.open(target, Follow::InRoot, Make::Nothing)?;
                set_attributes(at.as_fd(), options, *recursive)
            }
            MountOp::RemountReadOnly { path, recursive } => {
                let at = self.open(path, Follow::NoSymlinks, Make::Nothing)?;
                set_read_only(at.as_fd(), *recursive)
            }
        }
    }

    // ANCHOR: mask
    /// Hide `path` from the container: bind `/dev/null` over a file (it reads as empty), an
    /// empty read-only tmpfs over a directory. A path this kernel lacks needs no mask.
    fn mask(&self, path: &Path) -> Result<(), Errno> {
        let at = match self.open(path, Follow::NoSymlinks, Make::Nothing) {
            Err(Errno::ENOENT) => return Ok(()),
            result => result?,
        };
        let stat = nix::sys::stat::fstat(at.as_fd())?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(
                Some("tmpfs"),
                &fd_path(&at),
                Some("tmpfs"),
                flags | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
        } else {
            bind(Path::new("/dev/null"), &fd_path(&at), MsFlags::empty())
        }
    }
    // ANCHOR_END: mask

    // ANCHOR: open_in_root
    /// Open `path` as an `O_PATH` fd, resolved inside the root if it lies under it (or
    /// once the process is inside it), following symlinks as `follow` allows; a missing
    /// mount point is made, inside the root, as `make` says.
    fn open(&self, path: &Path, follow: Follow, make: Make) -> Result<OwnedFd, Errno> {
        let (root, inside) = match self.split(path) {
            Some(split) => split,
            // A host path nutshell made itself (an overlay's layers, say): no image in it.
            None => return open_plain(path),
        };
        let root = open_plain(&root)?;
        match open_beneath(root.as_fd(), &inside, follow) {
            Err(Errno::ENOENT) if make != Make::Nothing => {
                make_beneath(root.as_fd(), &inside, follow, make)?;
                open_beneath(root.as_fd(), &inside, follow)
            }
            result => result,
        }
    }
    // ANCHOR_END: open_in_root

    /// The directory holding `path` (resolved with no symlinks: it is in a fresh /dev),
    /// and the last component, for the `*at` calls that make a node or a link.
    fn open_parent(&self, path: &Path) -> Result<(OwnedFd, CString), Errno> {
        let parent = path.parent().ok_or(Errno::EINVAL)?;
        let name = path.file_name().ok_or(Errno::EINVAL)?;
        let dir = self.open(parent, Follow::NoSymlinks, Make::Nothing)?;
        let name = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        Ok((dir, name))
    }

    /// `path` as (the root to resolve in, the path below it), or `None` for a host path
    /// outside the root.
    fn split(&self, path: &Path) -> Option<(PathBuf, PathBuf)> {
        if self.entered {
            return Some((
                PathBuf::from("/"),
                path.strip_prefix("/").unwrap_or(path).into(),
            ));
        }
        let below = path.strip_prefix(&self.rootfs).ok()?;
        Some((self.rootfs.clone(), below.to_path_buf()))
    }
}

/// The mount(2) flags and data string for `options`.
fn flags_and_data(options: &MountOptions) -> (MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    for (set, flag) in [
        (options.readonly, MsFlags::MS_RDONLY),
        (options.nosuid, MsFlags::MS_NOSUID),
        (options.nodev, MsFlags::MS_NODEV),
        (options.noexec, MsFlags::MS_NOEXEC),
        (options.atime == Atime::Strict, MsFlags::MS_STRICTATIME),
        (options.atime == Atime::Never, MsFlags::MS_NOATIME),
        (options.nodiratime, MsFlags::MS_NODIRATIME),
    ] {
        if set {
            flags |= flag;
        }
    }
    let data = (!options.data.is_empty()).then(|| options.data.join(","));
    (flags, data)
}

// ANCHOR: set_read_only
/// Make the mount `at` holds read-only, with every mount below it when `recursive`.
///
/// mount_setattr(2) sets the one flag and leaves the others as they are. The older way, a
/// bind remount with `MS_RDONLY`, replaces the mount's flags with the ones given and
/// applies to one mount only: under a recursive bind of the host's `/sys`, the cgroup
/// mounts at `/sys/fs/cgroup` would stay writable.
fn set_read_only(at: BorrowedFd, recursive: bool) -> Result<(), Errno> {
    // SAFETY: mount_attr is plain integers, for which zero is a valid value.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    attr.attr_set = libc::MOUNT_ATTR_RDONLY;
    mount_setattr(at, &attr, recursive)
}
// ANCHOR_END: set_read_only

/// Set `options`' flags on the mount `at` holds, and with `recursive` below it. The
/// atime rule is one field of three values: changing it clears the others
/// (MOUNT_ATTR__ATIME), as mount_setattr(2) requires.
fn set_attributes(at: BorrowedFd, options: &MountOptions, recursive: bool) -> Result<(), Errno> {
    // SAFETY: mount_attr is plain integers, for which zero is a valid value.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    for (set, bit) in [
        (options.readonly, libc::MOUNT_ATTR_RDONLY),
        (options.nosuid, libc::MOUNT_ATTR_NOSUID),
        (options.nodev, libc::MOUNT_ATTR_NODEV),
        (options.noexec, libc::MOUNT_ATTR_NOEXEC),
        (options.nodiratime, libc::MOUNT_ATTR_NODIRATIME),
    ] {
        if set {
            attr.attr_set |= bit;
        }
    }
    match options.atime {
        Atime::Relative => {}
        Atime::Strict => {
            attr.attr_clr |= libc::MOUNT_ATTR__ATIME;
            attr.attr_set |= libc::MOUNT_ATTR_STRICTATIME;
        }
        Atime::Never => {
            attr.attr_clr |= libc::MOUNT_ATTR__ATIME;
            attr.attr_set |= libc::MOUNT_ATTR_NOATIME;
        }
    }
    mount_setattr(at, &attr, recursive)
}

/// mount_setattr(2) on the mount `at` holds.
fn mount_setattr(at: BorrowedFd, attr: &libc::mount_attr, recursive: bool) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr on our fd with an empty path and a struct of the size passed.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            at.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

// ANCHOR: attach_tree
/// Attach the detached tree `tree` on the directory `target` holds (move_mount(2)).
fn attach_tree(tree: BorrowedFd, target: BorrowedFd) -> Result<(), Errno> {
    // SAFETY: move_mount between two fds we hold, both with empty paths.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}
// ANCHOR_END: attach_tree

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
