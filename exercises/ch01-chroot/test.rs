//! Tests for exercise ch01-chroot. The statement is at the top of `enter_chroot.rs`.

#[cfg_attr(not(feature = "solution"), path = "enter_chroot.rs")]
#[cfg_attr(
    feature = "solution",
    path = "../solutions/ch01-chroot/enter_chroot.rs"
)]
mod enter_chroot;
#[path = "../support.rs"]
mod support;

use std::fs;
use std::path::Path;

use enter_chroot::enter_chroot;
use support::{in_child, require_root};

/// A tiny root: a marker file at its top, and a subdirectory.
fn tiny_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    fs::write(root.path().join("nutshell-new-root"), "you are inside\n").expect("write marker");
    fs::create_dir(root.path().join("etc")).expect("mkdir etc");
    root
}

#[test]
fn slash_means_the_new_root_afterwards() {
    require_root("ch01-chroot");
    let root = tiny_root();
    let verdict = in_child(|| {
        enter_chroot(root.path()).map_err(|e| format!("enter_chroot failed: {e}"))?;
        match fs::read_to_string("/nutshell-new-root") {
            Ok(_) => Ok(()),
            Err(_) => Err(
                "after enter_chroot, /nutshell-new-root is not there: / is not the new root"
                    .to_string(),
            ),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn the_working_directory_is_the_top_of_the_new_root() {
    require_root("ch01-chroot");
    let root = tiny_root();
    // Start somewhere that is *not* inside the new root, as a real runtime would.
    let verdict = in_child(|| {
        nix::unistd::chdir("/proc").map_err(|e| format!("chdir /proc: {e}"))?;
        enter_chroot(root.path()).map_err(|e| format!("enter_chroot failed: {e}"))?;
        if Path::new("nutshell-new-root").exists() {
            return Ok(());
        }
        Err(
            "after enter_chroot the working directory is still outside the new root, so a relative \
             path like `..` walks up to the host's real root: the chroot escape of chapter 1. \
             Move into the new root after changing it."
                .to_string(),
        )
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn a_missing_directory_is_an_error_not_a_panic() {
    require_root("ch01-chroot");
    let verdict = in_child(
        || match enter_chroot(Path::new("/nonexistent/nutshell-root")) {
            Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(other) => Err(format!(
                "expected ENOENT for a missing directory, got {other}"
            )),
            Ok(()) => Err("enter_chroot succeeded on a directory that does not exist".to_string()),
        },
    );
    verdict.unwrap_or_else(|message| panic!("{message}"));
}
