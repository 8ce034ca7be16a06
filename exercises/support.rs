//! Test support shared by the exercises: run a check in a fresh process of its own.
//!
//! The exercises change process-wide state (the root directory, namespaces, credentials),
//! which must not leak into the test harness or into the tests running beside it. So each
//! check runs in a process of its own — but not in a fork(2) of the harness. The harness
//! runs a thread per test, and a fork copies the locks those threads hold at that instant
//! (stderr's, the panic machinery's, the backtrace printer's) without the threads that
//! would release them: a panic in the forked child, such as every starter's `todo!()`,
//! could then wait on one of them forever.
//!
//! Instead, `in_child` runs the test binary again (`current_exe`), filtered to exactly the
//! calling test, with [`VERDICT_VAR`] naming a file in its environment. That fresh process
//! runs the test from the top; its `in_child` sees the variable, runs the check right
//! there, writes the verdict to the file and exits, before the rest of the test (which is
//! the harness's to run). The harness waits for it with a deadline, and kills it and
//! everything it started if it runs past.
//!
//! So what a test sets up before `in_child` is set up twice, and the check uses the fresh
//! process's copy: whatever is to be checked about what the check did (a file it wrote, a
//! layer it left alone) is checked inside the check.
//!
//! In the fresh process the check runs on the test's thread, and the only other thread is
//! libtest's main thread, waiting for the test to end: the check may fork. But unshare(2)
//! and setns(2) move only the calling thread, so a check that looks at its own namespaces
//! reads /proc/thread-self, not /proc/self (which is the main thread's).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

/// How long a check may run before its process is killed. The slowest check takes well
/// under a second (ch03's sleeps add up to half of one), so 45 s leaves room for a loaded
/// 2-core CI machine, ends a hung check long before CI's own limit, and comes before
/// libtest's "has been running for over 60 seconds", which would only add noise.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(45);

/// In the fresh process: the file to write the verdict to. That it is set is what tells
/// `in_child` it runs in the fresh process.
const VERDICT_VAR: &str = "NUTSHELL_CHECK_VERDICT";

/// In the fresh process: the harness's pid, to tell whether the harness is still there.
const HARNESS_VAR: &str = "NUTSHELL_CHECK_HARNESS";

/// How often the harness looks whether the check's process has ended: small beside the
/// time a fresh test process takes to start.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How long a process killed with SIGKILL may take to end.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The lines of the check process's output shown when it ends without a verdict.
const OUTPUT_TAIL_LINES: usize = 30;

/// The exercise these tests belong to, from the test target's name (`ch01_chroot`).
fn exercise() -> String {
    env!("CARGO_CRATE_NAME").replace('_', "-")
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum CheckFailure {
    /// The check returned this message, or panicked ("your code panicked at ...").
    Failed(String),
    /// A signal killed the process running the check before it reported.
    Signaled(Signal),
    /// The check ran past its deadline, so its process (pid) and all it started were killed.
    TimedOut {
        test: String,
        after: Duration,
        pid: u32,
    },
    /// The process running the check ended without a verdict, and not by a signal.
    NoVerdict {
        test: String,
        status: ExitStatus,
        output: String,
    },
    /// The check could not be started, or its process not waited for.
    Setup(String),
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Failed(message) => write!(f, "{message}"),
            CheckFailure::Signaled(signal) => write!(
                f,
                // Debug: the signal's name, SIGALRM (nix's Display needs its "signal" feature).
                "the process running the check was killed by {signal:?} before it reported"
            ),
            CheckFailure::TimedOut { test, after, pid } => write!(
                f,
                "exercise {}, check {test}: did not finish within {after:?}, so its process \
                 (pid {pid}) and everything it started were killed. Does your code wait for \
                 something that never happens?",
                exercise()
            ),
            CheckFailure::NoVerdict {
                test,
                status,
                output,
            } if status.success() => write!(
                f,
                "exercise {}, check {test}: the fresh process did not reach the check (does \
                 the test binary have a test of that name? does the test return before \
                 in_child?). The end of its output:\n{output}",
                exercise()
            ),
            CheckFailure::NoVerdict {
                test,
                status,
                output,
            } => write!(
                f,
                "exercise {}, check {test}: the process running it ended ({status}) without \
                 a verdict. The end of its output:\n{output}",
                exercise()
            ),
            CheckFailure::Setup(message) => write!(f, "could not run the check: {message}"),
        }
    }
}

/// Fail the calling test at once, with a clear message, unless it runs as root.
pub fn require_root(exercise: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this exercise's tests need root (they call chroot and friends): run `sudo just exercise {exercise}`"
    );
}

/// Run `check` in a fresh process (see the module docs) and return its verdict: a
/// failure holds the message, including a panic in the learner's code (such as the
/// starter's `todo!()`). A check that runs past [`CHECK_TIMEOUT`] is killed and fails.
/// Call it once per test, from the test's own thread.
pub fn in_child(check: impl FnOnce() -> Result<(), String>) -> Result<(), CheckFailure> {
    in_child_within(CHECK_TIMEOUT, check)
}

/// [`in_child`] with a deadline of `timeout` instead of [`CHECK_TIMEOUT`].
pub fn in_child_within(
    timeout: Duration,
    check: impl FnOnce() -> Result<(), String>,
) -> Result<(), CheckFailure> {
    match std::env::var_os(VERDICT_VAR) {
        Some(verdict_path) => run_here_and_exit(Path::new(&verdict_path), check),
        None => run_in_fresh_process(timeout),
    }
}

thread_local! {
    /// Whether this test has started its check: a second one could not run (see
    /// `claim_the_only_check`).
    static CHECK_STARTED: Cell<bool> = const { Cell::new(false) };

    /// Where the check panicked, recorded by the panic hook for the verdict.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The harness's side: run this test again in a fresh process that runs its check, and
/// wait for the verdict.
fn run_in_fresh_process(timeout: Duration) -> Result<(), CheckFailure> {
    let test = current_test()?;
    claim_the_only_check()?;
    let setup = |what: &str, e: std::io::Error| CheckFailure::Setup(format!("{what}: {e}"));
    // Everything of the check's in one directory the harness removes, however the check
    // ends: the verdict, the process's output, and the temp dirs of the test's own setup
    // (TMPDIR), which the fresh process cannot remove once it has changed its root.
    let scratch = tempfile::tempdir().map_err(|e| setup("create a scratch dir", e))?;
    let verdict_path = scratch.path().join("verdict");
    File::create(&verdict_path)
        .map_err(|e| setup(&format!("create {}", verdict_path.display()), e))?;
    let temp_dir = scratch.path().join("tmp");
    fs::create_dir(&temp_dir).map_err(|e| setup(&format!("mkdir {}", temp_dir.display()), e))?;
    let output_path = scratch.path().join("output");
    // A file, not a pipe: a pipe that nobody reads until the end would block a check that
    // writes a lot, and that would look like a hang.
    let output = File::create(&output_path)
        .map_err(|e| setup(&format!("create {}", output_path.display()), e))?;
    let output_too = output
        .try_clone()
        .map_err(|e| setup(&format!("dup {}", output_path.display()), e))?;
    let exe = std::env::current_exe().map_err(|e| setup("find the test binary", e))?;
    let mut child = Command::new(&exe)
        // --include-ignored: this test may be one that `cargo test -- --include-ignored`
        // runs; --test-threads=1: nothing runs beside the check.
        .args([
            "--exact",
            &test,
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
            "--color=never",
        ])
        .env(VERDICT_VAR, &verdict_path)
        .env(HARNESS_VAR, std::process::id().to_string())
        .env("TMPDIR", &temp_dir)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_too)
        // A process group of its own, to kill everything the check starts along with it.
        .process_group(0)
        .spawn()
        .map_err(|e| setup(&format!("run {}", exe.display()), e))?;
    let pid = child.id();
    let ended = wait_then_kill_the_group(&mut child, timeout)?;
    let Some(status) = ended else {
        return Err(CheckFailure::TimedOut {
            test,
            after: timeout,
            pid,
        });
    };
    let verdict = fs::read_to_string(&verdict_path)
        .map_err(|e| setup(&format!("read {}", verdict_path.display()), e))?;
    match verdict.split_once('\n') {
        Some(("pass", _)) => Ok(()),
        Some(("fail", message)) => Err(CheckFailure::Failed(message.to_string())),
        _ => match status.signal().map(Signal::try_from) {
            Some(Ok(signal)) => Err(CheckFailure::Signaled(signal)),
            _ => Err(CheckFailure::NoVerdict {
                test,
                status,
                output: fs::read_to_string(&output_path)
                    .map(|output| tail(&output))
                    .unwrap_or_else(|e| format!("(read {}: {e})", output_path.display())),
            }),
        },
    }
}

/// The calling test's name, as `--exact` takes it: libtest runs each test on a thread it
/// names after the test (with --test-threads=1 too). Refused on any other thread: one the
/// test started, or libtest's main thread, where it runs a test only if it cannot start a
/// thread.
fn current_test() -> Result<String, CheckFailure> {
    match std::thread::current().name() {
        Some(name) if name != "main" => Ok(name.to_string()),
        other => Err(CheckFailure::Setup(format!(
            "in_child was called on the thread {}, not on the test's own thread, whose name \
             (the test's) tells the fresh process which test to run",
            other.unwrap_or("with no name")
        ))),
    }
}

/// Refuse a second check in one test: the fresh process runs the test from the top, so it
/// would run the first check again, not the second.
fn claim_the_only_check() -> Result<(), CheckFailure> {
    if CHECK_STARTED.replace(true) {
        return Err(CheckFailure::Setup(
            "this test already ran a check with in_child: a test may run only one".to_string(),
        ));
    }
    Ok(())
}

/// Wait for `child` to end, at most `timeout`, then kill its process group: on time, that
/// ends what the check left running; past it, the check itself. Returns the exit status,
/// or `None` if the check ran past its time.
fn wait_then_kill_the_group(
    child: &mut Child,
    timeout: Duration,
) -> Result<Option<ExitStatus>, CheckFailure> {
    let pid = Pid::from_raw(child.id() as i32);
    let on_time = has_ended_by(pid, Instant::now() + timeout);
    // The group is named by the leader's pid. Until the leader is reaped (has_ended_by
    // leaves it a zombie) that pid cannot be reused, so this kills only the check's
    // processes. ESRCH means there is nothing left to kill; any other failure shows below,
    // as the leader not ending.
    // SAFETY: kill(2) with plain integer arguments.
    unsafe { libc::kill(-pid.as_raw(), libc::SIGKILL) };
    let grace = Instant::now() + KILL_GRACE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < grace => std::thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                return Err(CheckFailure::Setup(format!(
                    "the check's process {pid} was still there {KILL_GRACE:?} after SIGKILL"
                )));
            }
            Err(e) => {
                return Err(CheckFailure::Setup(format!(
                    "wait for the check's process {pid}: {e}"
                )));
            }
        }
    };
    match on_time {
        Ok(true) => Ok(Some(status)),
        Ok(false) => Ok(None),
        Err(e) => Err(CheckFailure::Setup(format!(
            "waitid for the check's process {pid}: {e}"
        ))),
    }
}

/// Whether the child `pid` has ended by `deadline`; it is left unreaped.
fn has_ended_by(pid: Pid, deadline: Instant) -> nix::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The last [`OUTPUT_TAIL_LINES`] lines of `output`.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join("\n")
}

/// The fresh process's side: run `check` here, write its verdict, and exit.
fn run_here_and_exit(verdict_path: &Path, check: impl FnOnce() -> Result<(), String>) -> ! {
    // Opened before the check runs: once it has changed the root, the path may not resolve.
    let mut verdict_file = match OpenOptions::new().write(true).open(verdict_path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("open the verdict file {}: {e}", verdict_path.display());
            std::process::exit(1)
        }
    };
    let verdict = die_with_the_harness().and_then(|()| run_catching_panics(check));
    let text = match verdict {
        Ok(()) => "pass\n".to_string(),
        Err(message) => format!("fail\n{message}"),
    };
    if let Err(e) = verdict_file.write_all(text.as_bytes()) {
        eprintln!("write the verdict to {}: {e}", verdict_path.display());
        std::process::exit(1)
    }
    std::process::exit(0)
}

/// Ask for SIGKILL when the harness's thread that started this process ends, so that a
/// harness killed mid-check (Ctrl-C, the checker's timeout) leaves nothing running. A
/// check that changes its uid loses this (prctl(2)); the harness's deadline still holds.
fn die_with_the_harness() -> Result<(), String> {
    // SAFETY: prctl(2) with plain integer arguments.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    Errno::result(set).map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    // The harness may have ended before the prctl, and then no signal will come.
    let harness = std::env::var(HARNESS_VAR).ok();
    if harness != Some(std::os::unix::process::parent_id().to_string()) {
        return Err(format!(
            "the harness that started this check ({HARNESS_VAR}={harness:?}) has gone"
        ));
    }
    Ok(())
}

/// Run `check`, and turn a panic in it into a failure that says where and what.
fn run_catching_panics(check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    // Instead of the default hook, which prints the panic (and a backtrace, with
    // RUST_BACKTRACE=1) to an output no one reads when the verdict comes: keep the place.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string());
        PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
    }));
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(verdict) => verdict,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(match PANIC_LOCATION.with(|slot| slot.borrow_mut().take()) {
                Some(location) => format!("your code panicked at {location}: {what}"),
                None => format!("your code panicked: {what}"),
            })
        }
    }
}

/// In the check's process: a mount namespace of its own, with every mount private, so
/// that nothing the check mounts reaches the host. For the exercises that mount.
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
