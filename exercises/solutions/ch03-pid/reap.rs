//! # Reference solution: ch03-pid, reap every zombie

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Collect every child that has ended, without blocking. Returns the status of `main`
/// if it was one of them.
pub fn reap_zombies(main: Pid) -> nix::Result<Option<WaitStatus>> {
    let mut main_status = None;
    loop {
        // FIX: pid -1 is "any child", orphans included; waiting for `main` alone would
        // leave every orphan a zombie. WNOHANG keeps the init from blocking on children
        // that are still running.
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            // FIX: stop when none has ended yet, or there are none at all.
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(main_status),
            Ok(status) if status.pid() == Some(main) => main_status = Some(status),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}
