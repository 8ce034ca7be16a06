//! # Reference solution: ch01-chroot, enter the new root

use std::path::Path;

/// Make `new_root` this process's root directory, and move into it.
pub fn enter_chroot(new_root: &Path) -> nix::Result<()> {
    // chroot(2) changes only how "/" resolves for this process.
    nix::unistd::chroot(new_root)?;
    // FIX: without this chdir the working directory stays outside the new root, and
    // `..` from it walks up to the host's real root: the hole chapter 1's escape uses.
    nix::unistd::chdir("/")
}
