//! Idmapped mounts: a view of a directory tree whose files' owners are shifted through a
//! user namespace's map, so that the image root owns on the host belongs to the
//! container's root inside.
//!
//! With root's default map (`0 2000000000 65536`) the image's files belong to host uid 0,
//! which the container cannot name: to its root they are nobody's, and not even an
//! overlay lets it change them. An idmapped mount (Linux 5.12+, as a lower layer of
//! overlayfs 5.19+) shows each file's owner through a map instead: on it, a file of host
//! uid 0 belongs to host uid 2000000000, the container's root. Nothing on disk changes, and
//! any number of containers share the one image. Only the host's root can make one
//! (CAP_SYS_ADMIN over the filesystem), so a rootless container goes without; it needs
//! none, as its user owns the image.
//!
//! See also [mount_setattr(2)](https://man7.org/linux/man-pages/man2/mount_setattr.2.html),
//! [open_tree(2)](https://man7.org/linux/man-pages/man2/open_tree.2.html),
//! [move_mount(2)](https://man7.org/linux/man-pages/man2/move_mount.2.html).

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use super::UsernsError;
use super::as_root::spawn_mapped;
use super::plan::MappingPlan;
use crate::process::{self, Gate, ParentStep};

// ANCHOR: idmapped_tree
/// A detached, idmapped copy of the mounts at and under `path`, as a file descriptor:
/// files appear owned through `plan`'s maps. [`attach_tree`] puts it in place, in the
/// container's own mount namespace.
///
/// A map is borrowed from a user namespace, so a short-lived process makes one with
/// the same maps; its namespace lives on in the mount, and the process is gone before
/// this returns.
pub fn idmapped_tree(path: &Path, plan: &MappingPlan) -> Result<OwnedFd, UsernsError> {
    let userns = borrowed_user_namespace(plan)?;
    let failed = |step: &'static str| {
        move |source| UsernsError::IdmappedMount {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| failed("open_tree")(Errno::EINVAL))?;
    // SAFETY: open_tree(2) with a NUL-terminated path; the result is a new fd or -1.
    let tree = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint,
        )
    })
    .map_err(failed("open_tree"))?;
    // SAFETY: the fd was just returned to us and is owned by nothing else.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr(2) on our fd with an empty path and a valid struct of the
    // size we pass.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map_err(failed("mount_setattr MOUNT_ATTR_IDMAP"))?;
    Ok(tree)
}
// ANCHOR_END: idmapped_tree

/// A user namespace with `plan`'s maps, from a child that waits only long enough to be
/// given them.
fn borrowed_user_namespace(plan: &MappingPlan) -> Result<OwnedFd, UsernsError> {
    let namespace = RefCell::new(None);
    let (waiter, opener) = Gate::new()?.split();
    let open_namespace = ParentStep::new("open the user namespace", |pid| {
        let file = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        *namespace.borrow_mut() = Some(OwnedFd::from(file));
        Ok::<(), std::io::Error>(())
    });
    let child = spawn_mapped(plan, vec![open_namespace], Vec::new(), move || {
        waiter.wait();
        0
    })?;
    // The namespace outlives the child: the open fd, and then the mount, hold it.
    // (Opened, not dropped: the child has a copy of this end, so only a byte ends its wait.)
    let _ = opener.open();
    child.wait()?;
    namespace.into_inner().ok_or_else(|| {
        UsernsError::Process(process::ProcessError::ChildStep {
            step: "open the user namespace".into(),
            errno: Errno::ENOENT,
        })
    })
}

// ANCHOR: attach_tree
/// Attach the detached tree `tree` at `target`, in this process's mount namespace: a
/// step for the container, after its mounts are private.
pub fn attach_tree(tree: RawFd, target: &Path) -> Result<(), Errno> {
    let target = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: move_mount(2) from our fd (empty path) to a NUL-terminated path.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}
// ANCHOR_END: attach_tree
