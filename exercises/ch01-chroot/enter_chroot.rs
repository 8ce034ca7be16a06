//! # Exercise ch01-chroot: enter the new root
//!
//! A container starts by changing what `/` means for its process. Write `enter_chroot`:
//! after it returns `Ok(())`, the calling process must
//!
//! 1. resolve `/` to `new_root` (so `/bin/sh` means `<new_root>/bin/sh`), and
//! 2. have its working directory inside the new root, at its top.
//!
//! If a step fails, return its error (do not panic): a missing directory is `ENOENT`.
//!
//! Read book/src/ch01-chroot.md first. Check your work with `just exercise ch01-chroot`
//! (as root). The tests also show what goes wrong if you stop after step 1.

use std::path::Path;

/// Make `new_root` this process's root directory, and move into it.
pub fn enter_chroot(new_root: &Path) -> nix::Result<()> {
    // TODO: change this process's root directory to `new_root` (chroot(2)).
    // TODO: move the working directory into the new root (chdir(2)).
    let _ = new_root;
    todo!("enter_chroot: chroot, then chdir")
}
