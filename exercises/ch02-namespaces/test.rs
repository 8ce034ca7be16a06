//! Tests for exercise ch02-namespaces. The statement is at the top of `enter_new_uts.rs`.

#[cfg_attr(not(feature = "solution"), path = "enter_new_uts.rs")]
#[cfg_attr(
    feature = "solution",
    path = "../solutions/ch02-namespaces/enter_new_uts.rs"
)]
mod enter_new_uts;
#[path = "../support.rs"]
mod support;

use std::fs::File;

use enter_new_uts::enter_new_uts;
use nix::sched::{CloneFlags, setns, unshare};
use support::{in_child, require_root};

/// The name the stand-in host has while the learner's code runs.
const STAND_IN: &str = "stand-in-host";

fn hostname() -> Result<String, String> {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .map_err(|e| format!("gethostname: {e}"))
}

/// In the check's process: move into a scratch UTS namespace that stands in for the host
/// and name it, so that nothing the learner's code does can rename the real machine.
/// Returns a handle on the stand-in, to go back into it and look.
fn stand_in_host() -> Result<File, String> {
    unshare(CloneFlags::CLONE_NEWUTS).map_err(|e| format!("unshare the stand-in: {e}"))?;
    nix::unistd::sethostname(STAND_IN).map_err(|e| format!("name the stand-in: {e}"))?;
    // thread-self: unshare(2) moves only the calling thread, and /proc/self is the main
    // thread's, which may still be in the host's namespace.
    File::open("/proc/thread-self/ns/uts")
        .map_err(|e| format!("open /proc/thread-self/ns/uts: {e}"))
}

#[test]
fn the_hostname_changes_inside() {
    require_root("ch02-namespaces");
    let verdict = in_child(|| {
        stand_in_host()?;
        enter_new_uts("nutshell-exercise").map_err(|e| format!("enter_new_uts failed: {e}"))?;
        match hostname()?.as_str() {
            "nutshell-exercise" => Ok(()),
            other => Err(format!(
                "after enter_new_uts(\"nutshell-exercise\") the hostname is {other:?}"
            )),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn the_hosts_hostname_is_unchanged() {
    require_root("ch02-namespaces");
    let real_host = hostname().unwrap_or_else(|message| panic!("{message}"));
    let verdict = in_child(|| {
        let host = stand_in_host()?;
        enter_new_uts("nutshell-exercise").map_err(|e| format!("enter_new_uts failed: {e}"))?;
        // Go back to the stand-in host and look at its name.
        setns(&host, CloneFlags::CLONE_NEWUTS).map_err(|e| format!("setns: {e}"))?;
        match hostname()?.as_str() {
            STAND_IN => Ok(()),
            other => Err(format!(
                "the host was renamed to {other:?}: sethostname(2) changed the UTS namespace \
                 the process shared with the host. Give the process a new UTS namespace first. \
                 (The tests ran in a stand-in for the host: the real machine is untouched.)"
            )),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
    // And this test process, which never moved, still has the machine's name.
    assert_eq!(
        hostname().unwrap_or_else(|message| panic!("{message}")),
        real_host
    );
}

#[test]
fn a_name_too_long_is_an_error_not_a_panic() {
    require_root("ch02-namespaces");
    let verdict = in_child(|| {
        stand_in_host()?;
        match enter_new_uts(&"x".repeat(65)) {
            Err(nix::errno::Errno::EINVAL) => Ok(()),
            Err(other) => Err(format!(
                "expected EINVAL for a 65-byte hostname, got {other}"
            )),
            Ok(()) => Err("enter_new_uts accepted a 65-byte hostname".to_string()),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}
