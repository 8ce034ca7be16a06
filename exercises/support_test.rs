//! Tests of support.rs itself: every check runs in a fresh process, comes back as a
//! verdict, and ends within its deadline however the code under test behaves. No root.

#[path = "support.rs"]
#[allow(dead_code)] // require_root and private_mount_namespace: no exercise here
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{CheckFailure, in_child, in_child_within};

/// Well under CHECK_TIMEOUT, and far more than a fresh test process needs to start:
/// a check that takes longer than this did not come back by itself.
const PROMPTLY: Duration = Duration::from_secs(20);

/// Whether `pid` is gone, or is a zombie that its new parent has yet to reap.
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

#[test]
fn a_check_that_returns_ok_passes() {
    let verdict = in_child(|| Ok(()));
    assert!(verdict.is_ok(), "{verdict:?}");
}

#[test]
fn a_check_that_returns_an_error_fails_with_its_message() {
    match in_child(|| Err("the hostname is \"host\"".to_string())) {
        Err(CheckFailure::Failed(message)) => assert_eq!(message, "the hostname is \"host\""),
        other => panic!("expected the check's own message, got {other:?}"),
    }
}

#[test]
fn a_panic_is_a_failure_that_says_where_and_what_promptly() {
    let started = Instant::now();
    let verdict = in_child(|| todo!("enter_chroot: chroot, then chdir"));
    assert!(
        started.elapsed() < PROMPTLY,
        "the panicking check took {:?}",
        started.elapsed()
    );
    match verdict {
        Err(CheckFailure::Failed(message)) => {
            let expected_start = format!("your code panicked at {}:", file!());
            assert!(message.starts_with(&expected_start), "{message}");
            assert!(
                message.ends_with(": not yet implemented: enter_chroot: chroot, then chdir"),
                "{message}"
            );
        }
        other => panic!("expected a failure naming the panic, got {other:?}"),
    }
}

#[test]
fn a_check_that_hangs_is_killed_at_its_deadline() {
    let timeout = Duration::from_secs(1);
    // Were the deadline not kept, the check would end by itself, and pass.
    let hang = Duration::from_secs(30);
    let started = Instant::now();
    let verdict = in_child_within(timeout, || {
        std::thread::sleep(hang);
        Ok(())
    });
    let took = started.elapsed();
    assert!(
        took >= timeout && took < PROMPTLY,
        "a check with a deadline of {timeout:?} came back after {took:?}"
    );
    match verdict {
        Err(failure @ CheckFailure::TimedOut { pid, after, .. }) => {
            assert_eq!(after, timeout);
            assert!(has_ended(pid), "the hung check's process {pid} still runs");
            let message = failure.to_string();
            assert!(
                message.contains("check a_check_that_hangs_is_killed_at_its_deadline")
                    && message.contains("within 1s"),
                "the message should name the check and the deadline: {message}"
            );
        }
        other => panic!("expected the check to time out, got {other:?}"),
    }
}

#[test]
fn what_a_check_leaves_running_is_killed_with_it() {
    // The check writes its leftover's pid where the harness finds it: a path from the
    // harness's pid, which the check's process knows as its parent's.
    let pid_file = |harness: u32| {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("leftover-of-{harness}"))
    };
    let verdict = in_child(|| {
        let leftover = Command::new("sleep")
            .arg("600")
            .spawn()
            .map_err(|e| format!("run sleep: {e}"))?;
        let path = pid_file(std::os::unix::process::parent_id());
        std::fs::write(&path, leftover.id().to_string())
            .map_err(|e| format!("write {}: {e}", path.display()))
    });
    assert!(verdict.is_ok(), "{verdict:?}");
    let path = pid_file(std::process::id());
    let pid = std::fs::read_to_string(&path).expect("the check wrote its leftover's pid");
    std::fs::remove_file(&path).expect("remove the pid file");
    let pid: u32 = pid.parse().expect("a pid");
    // Killed, it is reparented and reaped by whoever adopts it: give that a moment.
    let deadline = Instant::now() + PROMPTLY;
    while !has_ended(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        has_ended(pid),
        "the check's leftover `sleep 600` ({pid}) still runs"
    );
}

#[test]
fn a_check_killed_by_a_signal_says_which() {
    let verdict = in_child(|| {
        // SAFETY: raise(3) of a signal whose default action ends this process.
        unsafe { libc::raise(libc::SIGALRM) };
        Ok(())
    });
    match verdict {
        Err(CheckFailure::Signaled(Signal::SIGALRM)) => {}
        other => panic!("expected the check to be killed by SIGALRM, got {other:?}"),
    }
}

#[test]
fn what_a_check_changes_stays_in_its_process() {
    let before = std::env::current_dir().expect("current dir");
    let verdict = in_child(|| {
        let elsewhere = if before == Path::new("/") {
            "/proc"
        } else {
            "/"
        };
        std::env::set_current_dir(elsewhere).map_err(|e| format!("chdir {elsewhere}: {e}"))
    });
    assert!(verdict.is_ok(), "{verdict:?}");
    assert_eq!(
        std::env::current_dir().expect("current dir"),
        before,
        "the check changed the harness's working directory"
    );
}

#[test]
fn a_second_check_in_one_test_is_refused() {
    assert!(in_child(|| Ok(())).is_ok());
    match in_child(|| Ok(())) {
        Err(CheckFailure::Setup(message)) => assert!(message.contains("only one"), "{message}"),
        other => panic!("expected the second check to be refused, got {other:?}"),
    }
}

#[test]
fn a_check_the_fresh_process_does_not_reach_is_a_failure_that_says_so() {
    // A thread named like a test that does not exist: the fresh process runs no test.
    let verdict = std::thread::Builder::new()
        .name("no_test_has_this_name".to_string())
        .spawn(|| in_child(|| Ok(())))
        .expect("start a thread")
        .join()
        .expect("the thread ran");
    match verdict {
        Err(failure @ CheckFailure::NoVerdict { .. }) => {
            let message = failure.to_string();
            assert!(
                message.contains("check no_test_has_this_name: the fresh process did not reach"),
                "{message}"
            );
        }
        other => panic!("expected a failure without a verdict, got {other:?}"),
    }
}

#[test]
fn a_check_off_the_tests_thread_is_refused() {
    let verdict = std::thread::spawn(|| in_child(|| Ok(())))
        .join()
        .expect("the thread ran");
    match verdict {
        Err(CheckFailure::Setup(message)) => assert!(message.contains("thread"), "{message}"),
        other => panic!("expected a check off the test's thread to be refused, got {other:?}"),
    }
}
