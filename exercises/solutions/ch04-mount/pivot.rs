//! # Reference solution: ch04-mount, pivot into the new root

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

/// Make `new_root` the root mount of this mount namespace, and detach the old root.
pub fn enter_pivot_root(new_root: &Path) -> nix::Result<()> {
    // FIX: pivot_root(2) fails with EINVAL unless the new root is a mount point; a bind
    // mount of the directory onto itself makes it one.
    mount(
        Some(new_root),
        new_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    chdir(new_root)?;
    // With the same directory twice, the old root is mounted on top of the new one:
    // no directory for it is needed inside the image.
    pivot_root(".", ".")?;
    // FIX: without this the old root — the host's — stays mounted over "/", and is what
    // "/" means after the chdir below.
    umount2(".", MntFlags::MNT_DETACH)?;
    chdir("/")
}
