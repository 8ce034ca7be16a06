//! Tests for exercise ch03-pid. The statement is at the top of `reap.rs`.
//!
//! Each test runs in a process of its own (support::in_child) that makes itself a child
//! subreaper (prctl(PR_SET_CHILD_SUBREAPER)): orphans below it are reparented to it,
//! exactly as orphans in a PID namespace are reparented to PID 1, with no namespace and
//! no root.

#[cfg_attr(not(feature = "solution"), path = "reap.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch03-pid/reap.rs")]
mod reap;
#[path = "../support.rs"]
#[allow(dead_code)] // this exercise needs no root
mod support;

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use reap::reap_zombies;
use support::{CheckFailure, in_child};

/// Run `check` in a process of its own that is a subreaper, and that SIGALRM ends if the
/// learner's code blocks.
fn as_subreaper(check: impl FnOnce() -> Result<(), String>) {
    let verdict = in_child(|| {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("prctl: {e}"))?;
        // SAFETY: alarm(2) only schedules a signal.
        unsafe { libc::alarm(5) };
        check()
    });
    match verdict {
        Ok(()) => {}
        Err(CheckFailure::Signaled(Signal::SIGALRM)) => panic!(
            "reap_zombies blocked for 5 seconds: it must return at once while children \
             are still running (waitpid with WNOHANG)"
        ),
        Err(failure) => panic!("{failure}"),
    }
}

/// Fork a child that runs `body` and exits with the code it returns.
fn spawn(body: impl FnOnce() -> i32) -> Result<Pid, String> {
    // SAFETY: the child only forks, sleeps and leaves with _exit.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = body();
            unsafe { libc::_exit(code) }
        }
    }
}

/// The children of this process that are zombies right now, from /proc.
fn my_zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return zombies;
    };
    for entry in entries.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        if field("PPid:") == me && field("State:").starts_with('Z') {
            zombies.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    zombies
}

#[test]
fn orphans_do_not_stay_zombies() {
    as_subreaper(|| {
        // `main` leaves three orphans behind, which end a little after it.
        let main = spawn(|| {
            for _ in 0..3 {
                let _ = spawn(|| {
                    std::thread::sleep(Duration::from_millis(50));
                    0
                });
            }
            5
        })?;
        std::thread::sleep(Duration::from_millis(400));
        let before = my_zombies().len();
        if before < 4 {
            return Err(format!(
                "the test expected 4 zombies to reap, found {before}"
            ));
        }
        let status = reap_zombies(main).map_err(|e| format!("reap_zombies failed: {e}"))?;
        let left = my_zombies();
        if !left.is_empty() {
            return Err(format!(
                "after reap_zombies, {} zombies are left (pids {}): collect every child that \
                 has ended, not only `main` — the orphans are yours too",
                left.len(),
                left.join(", ")
            ));
        }
        if status != Some(WaitStatus::Exited(main, 5)) {
            return Err(format!(
                "reap_zombies should return main's status, Exited({main}, 5); it returned {status:?}"
            ));
        }
        Ok(())
    });
}

#[test]
fn it_returns_at_once_while_children_still_run() {
    as_subreaper(|| {
        let running = spawn(|| {
            // Killed as soon as the checking process ends, however it ends (a panic,
            // the alarm): nothing is left behind.
            // SAFETY: prctl(2) with plain integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            std::thread::sleep(Duration::from_secs(30));
            0
        })?;
        let result = reap_zombies(running);
        // Leave nothing behind, whatever the verdict.
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(running.as_raw(), libc::SIGKILL) };
        let _ = waitpid(running, None);
        match result {
            Ok(None) => Ok(()),
            other => Err(format!(
                "with one child still running and none ended, reap_zombies should return \
                 Ok(None); it returned {other:?}"
            )),
        }
    });
}

#[test]
fn a_main_killed_by_a_signal_is_reported() {
    as_subreaper(|| {
        let main = spawn(|| {
            // SAFETY: the child kills itself.
            unsafe { libc::raise(libc::SIGTERM) };
            0
        })?;
        std::thread::sleep(Duration::from_millis(200));
        match reap_zombies(main) {
            Ok(Some(WaitStatus::Signaled(pid, nix::sys::signal::Signal::SIGTERM, _)))
                if pid == main =>
            {
                Ok(())
            }
            other => Err(format!(
                "main was killed by SIGTERM; reap_zombies returned {other:?}"
            )),
        }
    });
}

#[test]
fn no_children_at_all_is_not_an_error() {
    as_subreaper(|| match reap_zombies(Pid::from_raw(1)) {
        Ok(None) => Ok(()),
        other => Err(format!(
            "with no children, waitpid fails with ECHILD ({}), which means \"nothing left \
             to reap\": reap_zombies should return Ok(None); it returned {other:?}",
            Errno::ECHILD
        )),
    });
}
