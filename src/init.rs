//! A container's PID 1: a small init that starts the command, forwards signals to it and
//! reaps every zombie.
//!
//! The first process in a new PID namespace is its PID 1, and the kernel gives that
//! process two duties nothing else has. Every process orphaned in the namespace is
//! reparented to it, so it must `wait` for them or they stay zombies for as long as the
//! container runs. And signals it has no handler for are dropped: from inside the
//! namespace always, from the host too except SIGKILL and SIGSTOP. An ordinary program
//! run as PID 1 does neither job; this init (the same design as tini and dumb-init) does
//! both, and leaves the command with the exit status it would have in a shell.
//!
//! It never installs a handler. It blocks the signals it cares about with sigprocmask(2)
//! and takes them one at a time with sigwait(3): a blocked signal is never "ignored", so
//! even PID 1 receives it, and there is no handler running at an arbitrary point of the
//! program. The command is started with the mask restored, so it sees ordinary signals.
//!
//! Introduced in chapter 3 (ch03-pid); chapter 4's container runs it too.
//!
//! See also [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html),
//! [wait(2)](https://man7.org/linux/man-pages/man2/wait.2.html),
//! [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html),
//! [sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html),
//! [sigwait(3)](https://man7.org/linux/man-pages/man3/sigwait.3.html).

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::process::Exit;

/// The signals a user sends to a container that the init passes on to the command.
pub const FORWARDED_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The name the init gives itself, so that `ps` inside the container shows what PID 1 is.
pub const INIT_NAME: &str = "nutshell-init";

/// Errors from waiting on a container while forwarding signals to it.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// sigprocmask(2) failed.
    #[error("block the forwarded signals: {0}")]
    BlockSignals(#[source] Errno),
    /// sigwait(3) failed.
    #[error("wait for a signal: {0}")]
    WaitSignal(#[source] Errno),
    /// waitpid(2) failed.
    #[error("wait for process {pid}: {source}")]
    Wait {
        /// The process waited for.
        pid: Pid,
        /// The errno.
        #[source]
        source: Errno,
    },
}

/// The signals the init waits for: the forwarded ones, and SIGCHLD, which says a child
/// has ended and there is something to reap.
pub fn handled_signals() -> SigSet {
    FORWARDED_SIGNALS
        .into_iter()
        .chain([Signal::SIGCHLD])
        .collect()
}

/// Block [`handled_signals`] in this thread and return the mask as it was.
///
/// The parent on the host calls it before it clones the container: from then on a
/// signal sent to it waits to be forwarded instead of killing it, and the cloned init
/// inherits the mask, so a signal sent to the container's PID 1 as soon as its pid is
/// known waits, pending, for the init's loop instead of being dropped (PID 1 has no
/// handler). A child that execs a command instead runs [`unblock_handled_signals`].
pub fn block_handled_signals() -> Result<SigSet, Errno> {
    handled_signals().thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
}

/// Unblock [`handled_signals`] in this thread: the step before exec in a child that
/// inherited them blocked, since a blocked signal stays blocked across execve(2).
pub fn unblock_handled_signals() -> Result<(), Errno> {
    handled_signals().thread_unblock()
}

// ANCHOR: become_init
/// Become the container's init: name this process for `ps`, and block the signals the
/// init waits for, before it forks the program, so that not even the program's SIGCHLD
/// can come too early.
pub fn become_init() -> Result<(), Errno> {
    if let Ok(name) = std::ffi::CString::new(INIT_NAME) {
        // Only cosmetic: what `ps` shows as PID 1's command.
        let _ = nix::sys::prctl::set_name(&name);
    }
    block_handled_signals().map(drop)
}
// ANCHOR_END: become_init

// ANCHOR: supervise
/// The init's loop: wait for a signal; on SIGCHLD reap, on anything else pass it to
/// `main`. Ends when `main` has ended, with how it ended.
pub fn supervise(main: Pid) -> Result<Exit, InitError> {
    let signals = handled_signals();
    loop {
        // Reap first and on every wakeup: SIGCHLD is not queued, so one delivery can
        // stand for many children, and a child that ended before the loop began was
        // signalled while we were not yet waiting.
        let reaped = reap_zombies(main).map_err(|source| InitError::Wait { pid: main, source })?;
        if let Some(exit) = reaped.and_then(exit_of) {
            return Ok(exit);
        }
        let signal = signals.wait().map_err(InitError::WaitSignal)?;
        if signal != Signal::SIGCHLD {
            forward(main, signal);
        }
    }
}
// ANCHOR_END: supervise

/// Pass `signal` on to `pid`. It may have just ended and not been reaped yet: then there
/// is no one left to tell, and that is fine.
fn forward(pid: Pid, signal: Signal) {
    let _ = kill(pid, signal);
}

// ANCHOR: reap_zombies
/// Collect every child that has ended, orphans included, without blocking: waitpid(-1,
/// WNOHANG) until there is none left to collect. Returns the status of `main` if it was
/// one of them.
pub fn reap_zombies(main: Pid) -> Result<Option<WaitStatus>, Errno> {
    let mut main_status = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            // Children remain, but none has ended; or no children at all.
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(main_status),
            Ok(status) if status.pid() == Some(main) => main_status = Some(status),
            Ok(_) => continue, // an orphan: reaping it was the whole point
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}
// ANCHOR_END: reap_zombies

/// How a process ended, from its wait status; `None` for a status that is not an end
/// (stopped, continued).
pub fn exit_of(status: WaitStatus) -> Option<Exit> {
    match status {
        WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
        WaitStatus::Signaled(_, signal, _) => Some(Exit::Signal(signal as i32)),
        _ => None,
    }
}

// ANCHOR: wait_forwarding_signals
/// On the host: wait for the container's PID 1 while passing on to it the
/// [`FORWARDED_SIGNALS`] this process receives, so that Ctrl-C or a `kill` of the
/// chapter binary reaches the container. Block them with [`block_handled_signals`]
/// before starting the child, or one that comes in between kills this process; the mask
/// found on entry is restored before returning.
pub fn wait_forwarding_signals(pid: Pid) -> Result<Exit, InitError> {
    let previous = block_handled_signals().map_err(InitError::BlockSignals)?;
    let result = (|| {
        let signals = handled_signals();
        loop {
            // Checked before each wait: the child may have ended before we blocked
            // SIGCHLD, and that signal is gone.
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(status) => {
                    if let Some(exit) = exit_of(status) {
                        return Ok(exit);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(source) => return Err(InitError::Wait { pid, source }),
            }
            let signal = signals.wait().map_err(InitError::WaitSignal)?;
            if signal != Signal::SIGCHLD {
                forward(pid, signal);
            }
        }
    })();
    let _ = previous.thread_set_mask();
    result
}
// ANCHOR_END: wait_forwarding_signals

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{ForkResult, fork};

    #[test]
    fn a_command_killed_by_a_signal_exits_with_128_plus_its_number() {
        let pid = Pid::from_raw(42);
        let killed = WaitStatus::Signaled(pid, Signal::SIGTERM, false);
        assert_eq!(exit_of(killed).map(Exit::code), Some(143));
        let exited = WaitStatus::Exited(pid, 3);
        assert_eq!(exit_of(exited).map(Exit::code), Some(3));
        assert_eq!(exit_of(WaitStatus::StillAlive), None);
    }

    #[test]
    fn the_init_waits_for_sigchld_and_every_forwarded_signal() {
        let signals = handled_signals();
        assert!(signals.contains(Signal::SIGCHLD));
        for signal in FORWARDED_SIGNALS {
            assert!(signals.contains(signal), "{signal}");
        }
        assert!(!signals.contains(Signal::SIGKILL));
    }

    /// In a forked child that is a subreaper (orphans below it come to it, as they come
    /// to PID 1 in a namespace): a main child that leaves an orphan behind and exits 7.
    /// Returns what the forked child found, as its exit code: 0 when all is right.
    fn orphan_check() -> i32 {
        if nix::sys::prctl::set_child_subreaper(true).is_err() {
            return 10;
        }
        // SAFETY: the children below only sleep, fork and _exit.
        let main = match unsafe { fork() } {
            Ok(ForkResult::Parent { child }) => child,
            Ok(ForkResult::Child) => {
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    // The orphan: outlives its parent, then ends.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    unsafe { libc::_exit(0) }
                }
                unsafe { libc::_exit(7) }
            }
            Err(_) => return 11,
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        match reap_zombies(main) {
            Ok(Some(WaitStatus::Exited(pid, 7))) if pid == main => {}
            _ => return 12,
        }
        // Nothing left: the orphan was reaped too, not left a zombie.
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => 0,
            _ => 13,
        }
    }

    #[test]
    fn reap_zombies_collects_orphans_and_reports_the_main_child() {
        // SAFETY: the child runs orphan_check, which only forks, sleeps and waits, and
        // leaves with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => unsafe { libc::_exit(orphan_check()) },
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).expect("wait");
                assert_eq!(status, WaitStatus::Exited(child, 0), "see orphan_check");
            }
        }
    }

    #[test]
    fn reap_zombies_does_not_block_on_a_running_child() {
        // SAFETY: as above; the grandchild only sleeps.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        unsafe { libc::_exit(0) }
                    }
                    Ok(ForkResult::Parent { child }) => {
                        let verdict = match reap_zombies(child) {
                            Ok(None) => 0,
                            _ => 1,
                        };
                        // Leave no process behind.
                        let _ = kill(child, Signal::SIGKILL);
                        let _ = waitpid(child, None);
                        verdict
                    }
                    Err(_) => 2,
                };
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).expect("wait");
                assert_eq!(status, WaitStatus::Exited(child, 0));
            }
        }
    }
}
