//! Tests for exercise ch04-mount. The statement is at the top of `pivot.rs`.
//!
//! Each test runs in a process of its own (support::in_child) that first makes its own
//! mount namespace and makes every mount in it private, as the chapter's container does:
//! nothing it mounts or unmounts reaches the test harness or the host, and all of it goes
//! with that process. The mount namespace is the calling thread's (unshare(2) moves only
//! that thread), so the tests read the mount table from /proc/thread-self, not the main
//! thread's /proc/self.

#[cfg_attr(not(feature = "solution"), path = "pivot.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch04-mount/pivot.rs")]
mod pivot;
#[path = "../support.rs"]
mod support;

use std::fs;
use std::path::Path;

use nix::mount::{MsFlags, mount};
use pivot::enter_pivot_root;
use support::{in_child, private_mount_namespace, require_root};

/// A tiny root: a marker file at its top, and a /proc to mount on.
fn tiny_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    fs::write(root.path().join("nutshell-new-root"), "you are inside\n").expect("write marker");
    fs::create_dir(root.path().join("proc")).expect("mkdir proc");
    root
}

/// Each mount of a mountinfo file: which filesystem (device, and the directory of it
/// that is mounted) and where. Mount ids would not do: the kernel reuses them.
fn mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let what = format!("{} {}", fields.get(2)?, fields.get(3)?);
            Some((what, fields.get(4)?.to_string()))
        })
        .collect()
}

#[test]
fn slash_is_the_new_root_and_the_old_root_is_gone() {
    require_root("ch04-mount");
    let root = tiny_root();
    let verdict = in_child(|| {
        private_mount_namespace()?;
        let before =
            fs::read_to_string("/proc/thread-self/mountinfo").map_err(|e| e.to_string())?;
        let old_root = mounts(&before)
            .into_iter()
            .find(|(_, point)| point == "/")
            .map(|(what, _)| what)
            .ok_or("no / in mountinfo")?;

        enter_pivot_root(root.path()).map_err(|e| match e {
            // EINVAL in general; EBUSY when the new root is on the current root's mount.
            nix::errno::Errno::EINVAL | nix::errno::Errno::EBUSY => format!(
                "enter_pivot_root failed: {e}. pivot_root(2) needs the new root to be a mount \
                 point of its own: bind-mount it onto itself first"
            ),
            _ => format!("enter_pivot_root failed: {e}"),
        })?;
        if !Path::new("/nutshell-new-root").exists() {
            return Err("after enter_pivot_root, / is not the new root. After \
                pivot_root(\".\", \".\") the old root is mounted on top of the new one: \
                detach it with umount2(\".\", MNT_DETACH) before chdir(\"/\")"
                .to_string());
        }
        if !Path::new("nutshell-new-root").exists() {
            return Err(
                "the working directory is not the top of the new root: chdir(\"/\") \
                at the end"
                    .to_string(),
            );
        }
        // A /proc of our own inside the new root, to read the mount table from.
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("mount /proc in the new root: {e}"))?;
        let after = fs::read_to_string("/proc/thread-self/mountinfo").map_err(|e| e.to_string())?;
        let after = mounts(&after);
        if after.iter().any(|(what, _)| *what == old_root) {
            return Err(format!(
                "the old root (device and root {old_root}) is still mounted in this namespace: \
                 detach it with umount2(\".\", MNT_DETACH) ({} mounts are visible)",
                after.len()
            ));
        }
        let points: Vec<&str> = after.iter().map(|(_, point)| point.as_str()).collect();
        if points != ["/", "/proc"] {
            return Err(format!(
                "expected only / and /proc mounted, found {points:?}"
            ));
        }
        Ok(())
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn a_missing_directory_is_an_error_not_a_panic() {
    require_root("ch04-mount");
    let verdict = in_child(|| {
        private_mount_namespace()?;
        match enter_pivot_root(Path::new("/nonexistent/nutshell-root")) {
            Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(other) => Err(format!(
                "expected ENOENT for a missing directory, got {other}"
            )),
            Ok(()) => Err("enter_pivot_root succeeded on a directory that does not exist".into()),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}
