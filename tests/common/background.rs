//! A process the tests or a benchmark start and must stop, whatever happens in between.
//! Shared by tests/common and benches/network.rs (included there by path).

use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// How long a process gets to end after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(30);

/// A running child, stopped when dropped: on a failed assertion or an early `?` too.
/// It is asked first with SIGTERM, which a chapter binary passes on to its container and
/// then tears everything down (cgroup, veth, rules, lease); only if it has not ended
/// within [`GRACE`] is it killed, which would leave that teardown to a sweep.
pub struct Background(Option<Child>);

impl Background {
    /// Watch `child`.
    pub fn new(child: Child) -> Background {
        Background(Some(child))
    }

    /// Wait for it to end by itself, at most `timeout`, and collect its output. Past
    /// the timeout it is stopped, and the result is an error.
    pub fn wait(mut self, timeout: Duration) -> Result<Output, String> {
        let mut child = self.0.take().expect("a child");
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() > deadline => {
                    let id = child.id();
                    let _ = terminate(child);
                    return Err(format!("process {id} did not finish within {timeout:?}"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("wait for process {}: {e}", child.id())),
            }
        }
        child
            .wait_with_output()
            .map_err(|e| format!("collect the output: {e}"))
    }

    /// Stop it now (SIGTERM, then SIGKILL after [`GRACE`]) and collect its output.
    pub fn stop(mut self) -> Output {
        let child = self.0.take().expect("a child");
        terminate(child).expect("collect the output of a stopped process")
    }

    /// Kill it with SIGKILL, as a crash or an OOM kill would, and reap it: what it made
    /// stays behind for a sweep to find.
    pub fn kill(mut self) {
        if let Some(mut child) = self.0.take() {
            // Ended already: nothing to kill.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            // Nothing to do about an error here: the process is gone either way.
            let _ = terminate(child);
        }
    }
}

/// SIGTERM, a wait of at most [`GRACE`], then SIGKILL; the output either way.
fn terminate(mut child: Child) -> std::io::Result<Output> {
    // SAFETY: kill(2) on our own child, which is not reaped yet: its pid is still ours.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + GRACE;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // If it ended meanwhile, killing the unreaped child does nothing.
    let _ = child.kill();
    child.wait_with_output()
}
