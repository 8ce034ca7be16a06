//! # Exercise ch03-pid: reap every zombie
//!
//! A container's PID 1 inherits every orphan in its PID namespace. When one of its
//! children ends, the kernel keeps the child as a zombie (STAT Z in `ps`) until the
//! parent collects its status with wait(2). An init that forgets fills the process table
//! with zombies.
//!
//! Write `reap_zombies`, the function the init runs every time a SIGCHLD arrives. It must
//!
//! 1. collect *every* child that has ended, not only `main`: orphans count too, and one
//!    SIGCHLD can stand for many children, so keep collecting until none is left;
//! 2. never block: children that are still running stay running, and the function
//!    returns at once (the init has signals to forward);
//! 3. return the wait status of `main` if `main` was among the children collected,
//!    `None` otherwise;
//! 4. treat "I have no children at all" (ECHILD) as "nothing left", not as an error.
//!
//! Read book/src/ch03-pid.md first. Check your work with `just exercise ch03-pid` (no
//! root needed: the tests make their orphans under a child subreaper, which gets them
//! just as PID 1 does).

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Collect every child that has ended, without blocking. Returns the status of `main`
/// if it was one of them.
pub fn reap_zombies(main: Pid) -> nix::Result<Option<WaitStatus>> {
    // TODO: loop on waitpid(2) for *any* child (pid -1), with the flag that makes it
    //       return at once instead of waiting (nix::sys::wait::WaitPidFlag).
    // TODO: stop when it says no child has ended yet (WaitStatus::StillAlive), or that
    //       there are no children (Err(Errno::ECHILD)); remember `main`'s status.
    let _ = main;
    todo!("reap_zombies: waitpid(-1, WNOHANG) until there is nothing left")
}
