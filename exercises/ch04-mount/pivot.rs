//! # Exercise ch04-mount: pivot into the new root
//!
//! chroot(2) only changes what `/` means, and chapter 1 walked straight out of it. A
//! container changes its root *mount* instead. Write `enter_pivot_root`: called in a
//! new mount namespace whose mounts are private, after it returns `Ok(())`
//!
//! 1. `/` is `new_root` (so `/bin/sh` means `<new_root>/bin/sh`),
//! 2. the working directory is `/`, and
//! 3. the old root is no longer mounted anywhere in this namespace: no path leads back.
//!
//! The sequence runc uses has five steps: bind `new_root` onto itself (pivot_root(2)
//! needs the new root to be a mount point), chdir into it, `pivot_root(".", ".")`,
//! detach the old root that now sits on top with `umount2(".", MNT_DETACH)`, and
//! chdir to `/`. If a step fails, return its error (do not panic).
//!
//! Read book/src/ch04-mount.md first. Check your work with `just exercise ch04-mount`
//! (as root).

use std::path::Path;

/// Make `new_root` the root mount of this mount namespace, and detach the old root.
pub fn enter_pivot_root(new_root: &Path) -> nix::Result<()> {
    // TODO: bind-mount `new_root` onto itself (nix::mount::mount with MsFlags::MS_BIND
    //       | MsFlags::MS_REC), so that it is a mount point.
    // TODO: chdir into it (nix::unistd::chdir).
    // TODO: pivot_root(".", ".") (nix::unistd::pivot_root).
    // TODO: detach the old root: umount2(".", MntFlags::MNT_DETACH) (nix::mount::umount2).
    // TODO: chdir("/").
    let _ = new_root;
    todo!("enter_pivot_root: bind, chdir, pivot_root, umount2, chdir")
}
