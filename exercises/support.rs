//! Test support shared by the exercises: run a check in a forked child.
//!
//! The exercises change process-wide state (the root directory, namespaces), which must
//! not leak into the test harness or into other tests running beside them. So each check
//! runs in a child made by fork(2), which has one thread and its own root; the child
//! reports its verdict through a pipe and leaves with _exit.

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe};

/// Fail the calling test at once, with a clear message, unless it runs as root.
pub fn require_root(exercise: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this exercise's tests need root (they call chroot and friends): run `sudo just exercise {exercise}`"
    );
}

/// Run `check` in a forked child and return its verdict: `Err` holds the failure message,
/// including a panic in the learner's code (such as the starter's `todo!()`).
pub fn in_child(check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (read_end, write_end) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child runs only `check`, writes to the pipe, and leaves with _exit.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            let verdict = match catch_unwind(AssertUnwindSafe(check)) {
                Ok(Ok(())) => String::new(),
                Ok(Err(message)) => message,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_string());
                    format!("your code panicked: {what}")
                }
            };
            let _ = std::fs::File::from(write_end).write_all(verdict.as_bytes());
            // SAFETY: ends only this forked child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut verdict = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut verdict);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) if verdict.is_empty() => Ok(()),
                Ok(WaitStatus::Exited(_, 0)) => Err(verdict),
                other => Err(format!(
                    "the child running the check ended badly: {other:?}"
                )),
            }
        }
    }
}

/// In a forked child: a mount namespace of its own, with every mount private, so that
/// nothing the check mounts reaches the host. For the exercises that mount.
#[allow(dead_code)] // the exercises that mount nothing include this file too
pub fn private_mount_namespace() -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make / private: {e}"))
}
