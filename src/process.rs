//! Starting the container's process: clone, prepare, exec, wait.
//!
//! Every chapter runs its container the same way. The parent creates the child with
//! clone(2) — plain fork(2) in chapter 1 — asking for the new namespaces the chapter has
//! introduced so far (see [`Isolation`]); the child runs a list of named preparation steps
//! (chapter 1 has one: enter the new root) and then execs the command. The child cannot print its own errors reliably (its stdout may be the
//! container's), so it reports a failed step over a pipe whose write end is close-on-exec:
//! if exec succeeds the kernel closes the pipe and the parent reads nothing, if any step or
//! exec itself fails the parent reads which one and the errno. runc and youki use the same
//! trick for their "exec failed" errors.
//!
//! Introduced in chapter 1; chapter 2 adds the namespaces, later chapters add steps.
//!
//! See also [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html),
//! [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html),
//! [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html),
//! [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html),
//! [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html).

use std::ffi::{CString, NulError};
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, execve, pipe2};

use crate::namespaces::{self, Namespace, NamespaceError, TimeOffsets};

mod sync;

pub use sync::{Gate, GateOpener, GateWaiter, ParentStep};

/// The `PATH` a container's command is resolved against, as runc and Docker set it.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors from starting or waiting for a container process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The command line was empty.
    #[error("no command to run")]
    EmptyCommand,
    /// An argument contained a NUL byte, which execve(2) cannot pass.
    #[error("argument {0:?} contains a NUL byte")]
    NulInArgument(String, #[source] NulError),
    /// pipe2(2) for the error channel failed.
    #[error("create the child's error pipe: {0}")]
    Pipe(#[source] Errno),
    /// clone(2) failed.
    #[error("clone the container process (new namespaces: {namespaces}): {source}")]
    Clone {
        /// The namespaces asked for, `none` for a plain fork.
        namespaces: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Preparing a namespace in the parent (the time namespace's offsets) failed.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// The time namespace was asked for in `namespaces`, where clone(2) cannot make it.
    #[error("the time namespace is made with `time_offsets`, not in the clone flags")]
    TimeInCloneFlags,
    /// waitpid(2) failed.
    #[error("wait for process {pid}: {source}")]
    Wait {
        /// The process waited for.
        pid: Pid,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A step the parent does for the waiting child (its id maps, its cgroup) failed;
    /// the child has been killed and reaped.
    #[error("{step}: {source}")]
    ParentStep {
        /// Which step, as named by the caller.
        step: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A preparation step or exec failed in the child.
    #[error("{step} failed in the container process: {errno}")]
    ChildStep {
        /// Which step failed, as named by the caller (or `exec COMMAND`).
        step: String,
        /// The errno the step returned.
        errno: Errno,
    },
}

/// One thing the child does between fork and exec, named so a failure says which.
pub struct Step<'a> {
    /// What the step does, shown in errors: `chroot into /var/lib/nutshell/...`.
    pub name: String,
    /// The work; runs in the forked child only.
    pub run: Box<dyn FnOnce() -> Result<(), Errno> + 'a>,
}

impl<'a> Step<'a> {
    /// A named step.
    pub fn new(name: impl Into<String>, run: impl FnOnce() -> Result<(), Errno> + 'a) -> Self {
        Step {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// How a container process ended, in the shell's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The status a shell reports: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// A started container process.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
}

impl Child {
    /// The process id, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Wait until the process ends and say how.
    pub fn wait(self) -> Result<Exit, ProcessError> {
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(Exit::Code(code)),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Exit::Signal(signal as i32)),
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(ProcessError::Wait {
                        pid: self.pid,
                        source,
                    });
                }
            }
        }
    }
}

/// The new namespaces a container process starts in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// Namespaces the child is cloned into. Not [`Namespace::Time`]: see `time_offsets`.
    pub namespaces: Vec<Namespace>,
    /// A new time namespace with these clock offsets. clone(2) has no flag for it (its
    /// bit is taken by the exit signal), and its offsets must be written before the first
    /// process enters it, so the parent makes it for its children before cloning; see
    /// [`namespaces::new_time_namespace_for_children`].
    pub time_offsets: Option<TimeOffsets>,
}

impl Isolation {
    /// No new namespaces: chapter 1's plain fork.
    pub fn none() -> Self {
        Isolation::default()
    }
}

/// The environment a container's command starts with: a fixed `PATH` and `HOME`, and the
/// host's `TERM` so that interactive tools draw correctly. Nothing else leaks in.
pub fn container_env() -> Vec<CString> {
    let path = format!("PATH={CONTAINER_PATH}");
    let term = std::env::var("TERM")
        .ok()
        .map(|term| format!("TERM={term}"));
    [Some(path), Some("HOME=/root".to_string()), term]
        .into_iter()
        .flatten()
        .filter_map(|var| CString::new(var).ok())
        .collect()
}

/// Start a child in the new namespaces of `isolation` that runs `steps` in order and then
/// execs `argv` (resolved against [`CONTAINER_PATH`] inside whatever root the steps
/// entered). Returns once the child has exec'd, or with the step that failed; a child
/// that failed has been reaped.
pub fn spawn(
    isolation: &Isolation,
    steps: Vec<Step<'_>>,
    argv: &[String],
) -> Result<Child, ProcessError> {
    let command = Command::new(argv)?;
    clone_child(isolation, Vec::new(), steps, |report| {
        let errno = command.exec();
        report_failure(report, &format!("exec {}", command.program), errno);
        127
    })
}

/// A command ready to exec: its arguments and environment already converted to C
/// strings, so that the child has nothing left to allocate or fail on but the exec.
#[derive(Debug, Clone)]
pub struct Command {
    program: String,
    args: Vec<CString>,
    env: Vec<CString>,
}

impl Command {
    /// `argv[0]` and its arguments, with the container's environment ([`container_env`]).
    pub fn new(argv: &[String]) -> Result<Command, ProcessError> {
        let program = argv.first().ok_or(ProcessError::EmptyCommand)?.clone();
        let args = argv
            .iter()
            .map(|a| {
                CString::new(a.as_bytes()).map_err(|e| ProcessError::NulInArgument(a.clone(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Command {
            program,
            args,
            env: container_env(),
        })
    }

    /// The program name as given.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Replace this process with the command. Returns only on failure, with the errno.
    pub fn exec(&self) -> Errno {
        // Rust's runtime ignores SIGPIPE, and exec keeps ignored signals ignored: without
        // this, `yes | head` inside the container would see EPIPE errors instead of the
        // quiet death every Unix program expects.
        // SAFETY: resetting a disposition to the default installs no handler.
        if let Err(errno) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) } {
            return errno;
        }
        exec_in_path(&self.program, &self.args, &self.env)
    }
}

/// Like [`spawn`], but after the steps the child runs `body` instead of a command and
/// exits with the code it returns. Chapter 1's escape runs this way: it is code the
/// reader can read, not a program in the image.
pub fn spawn_fn(
    isolation: &Isolation,
    steps: Vec<Step<'_>>,
    body: impl FnOnce() -> i32,
) -> Result<Child, ProcessError> {
    spawn_fn_after(isolation, Vec::new(), steps, body)
}

/// Like [`spawn_fn`], but the child first waits while the parent runs `parent_steps`
/// for it, in order; if one fails, the child is killed and the error names that step.
/// Chapter 6 writes the child's id maps this way.
pub fn spawn_fn_after(
    isolation: &Isolation,
    parent_steps: Vec<ParentStep<'_>>,
    steps: Vec<Step<'_>>,
    body: impl FnOnce() -> i32,
) -> Result<Child, ProcessError> {
    clone_child(isolation, parent_steps, steps, |report| {
        drop(report);
        let code = body();
        let _ = std::io::stdout().flush();
        code
    })
}

// ANCHOR: clone_child
/// Clone a child into the namespaces of `isolation`; the child waits while the parent
/// runs `parent_steps` for it, then runs `steps`, then `then`, and exits with the code it
/// returns. The parent waits until the report pipe closes (on exec, or when `then` drops
/// it) to learn whether a step failed.
fn clone_child(
    isolation: &Isolation,
    parent_steps: Vec<ParentStep<'_>>,
    steps: Vec<Step<'_>>,
    then: impl FnOnce(OwnedFd) -> i32,
) -> Result<Child, ProcessError> {
    if isolation.namespaces.contains(&Namespace::Time) {
        return Err(ProcessError::TimeInCloneFlags);
    }
    // A new user namespace owns the namespaces cloned with it, and the time namespace
    // should be one of them: the child makes it, once it is root inside (a normal user
    // could not make one out here anyway). Without one, the parent makes it here.
    let in_user_namespace = isolation.namespaces.contains(&Namespace::User);
    let child_time = isolation.time_offsets.filter(|_| in_user_namespace);
    if let Some(offsets) = isolation.time_offsets.filter(|_| !in_user_namespace) {
        namespaces::new_time_namespace_for_children(offsets, std::path::Path::new("/proc"))?;
    }
    let (report_read, report_write) = pipe2(OFlag::O_CLOEXEC).map_err(ProcessError::Pipe)?;
    let (go_wait, go_open) = Gate::new()?.split();

    // Whatever the parent buffered would otherwise be printed twice, once by each process.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();

    let waits = !parent_steps.is_empty();
    let parents_end = go_open.0.as_raw_fd();
    let mut child_side = Some((steps, then, report_write, go_wait));
    let child_main = Box::new(move || {
        let Some((steps, then, report_write, go_wait)) = child_side.take() else {
            return 127;
        };
        // The child's copy of the parent's end must go, or the child would keep its own
        // gate from ever reporting that the parent is gone.
        // SAFETY: closes an fd this child inherited and never uses.
        unsafe { libc::close(parents_end) };
        // Until the parent has done its part (the id maps above all) the child is
        // nobody in its namespace: nothing it does now would work.
        if waits && !go_wait.wait() {
            // SAFETY: the parent gave up and reports why; leave quietly.
            unsafe { libc::_exit(127) }
        }
        let time_step = child_time.map(|offsets| {
            Step::new("enter a new time namespace", move || {
                namespaces::enter_new_time_namespace(offsets)
            })
        });
        let code = match time_step
            .into_iter()
            .chain(steps)
            .try_for_each(|step| (step.run)().map_err(|errno| (step.name, errno)))
        {
            Ok(()) => then(report_write),
            Err((name, errno)) => {
                report_failure(report_write, &name, errno);
                127
            }
        };
        // _exit, not exit: the child must not run the parent's atexit handlers or flush
        // its copies of the parent's stdio buffers.
        // SAFETY: _exit is async-signal-safe and ends only this child.
        unsafe { libc::_exit(code) }
    });
    // The child runs on this stack, in its own copy of our memory (no CLONE_VM). Pages
    // of a zeroed Vec are only touched when used.
    let mut stack = vec![0u8; CHILD_STACK_SIZE];
    let flags = CloneFlags::from_bits_retain(namespaces::clone_flags(&isolation.namespaces));
    // SAFETY: the chapter binaries are single-threaded. In a multi-threaded caller (a
    // test) the child runs only the steps and exec or the body, and leaves with _exit.
    let pid = unsafe { nix::sched::clone(child_main, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|source| ProcessError::Clone {
            namespaces: namespaces::describe(&isolation.namespaces),
            source,
        })?;
    // The parent's copies of the child's ends were inside `child_main`, which clone
    // dropped.
    let child = Child { pid };
    for step in parent_steps {
        if let Err(source) = (step.run)(pid) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            child.wait()?;
            return Err(ProcessError::ParentStep {
                step: step.name,
                source,
            });
        }
    }
    if waits {
        // If the child is gone already, the report pipe says why.
        let _ = go_open.open();
    } else {
        drop(go_open);
    }
    match read_failure(report_read) {
        None => Ok(child),
        Some((step, errno)) => {
            child.wait()?;
            Err(ProcessError::ChildStep { step, errno })
        }
    }
}
// ANCHOR_END: clone_child

/// The stack the cloned child starts on, before it execs.
const CHILD_STACK_SIZE: usize = 8 * 1024 * 1024;

// ANCHOR: exec_in_path
/// execve `program` directly if it contains a `/`, else the first match in
/// [`CONTAINER_PATH`]: the container's PATH, not the host's, since the lookup happens
/// inside the container's root. Returns only on failure.
fn exec_in_path(program: &str, args: &[CString], env: &[CString]) -> Errno {
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.to_string()]
    } else {
        CONTAINER_PATH
            .split(':')
            .map(|dir| format!("{dir}/{program}"))
            .collect()
    };
    let mut last = Errno::ENOENT;
    for candidate in candidates {
        let Ok(path) = CString::new(candidate) else {
            return Errno::EINVAL;
        };
        match execve(&path, args, env) {
            // Keep looking past a directory that lacks the program; any other error
            // (EACCES, ENOEXEC, a missing ELF interpreter) is the answer.
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(errno) => {
                last = errno;
                break;
            }
            Ok(never) => match never {},
        }
    }
    last
}
// ANCHOR_END: exec_in_path

/// Tell the parent which step failed and with which errno.
fn report_failure(report: OwnedFd, step: &str, errno: Errno) {
    let mut message = (errno as i32).to_ne_bytes().to_vec();
    message.extend_from_slice(step.as_bytes());
    let _ = std::fs::File::from(report).write_all(&message);
}

/// Read what the child reported; `None` means the pipe closed on a successful exec.
fn read_failure(report: OwnedFd) -> Option<(String, Errno)> {
    let mut message = Vec::new();
    std::fs::File::from(report).read_to_end(&mut message).ok()?;
    if message.len() < 4 {
        return None;
    }
    let (errno, step) = message.split_at(4);
    let errno = i32::from_ne_bytes([errno[0], errno[1], errno[2], errno[3]]);
    Some((
        String::from_utf8_lossy(step).into_owned(),
        Errno::from_raw(errno),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_of_a_signal_is_128_plus_the_signal() {
        assert_eq!(Exit::Signal(9).code(), 137);
        assert_eq!(Exit::Code(3).code(), 3);
    }

    #[test]
    fn container_env_has_the_container_path_not_the_hosts() {
        let env = container_env();
        assert_eq!(
            env[0].to_str().ok(),
            Some(format!("PATH={CONTAINER_PATH}").as_str())
        );
        assert!(env.iter().all(|e| !e.to_bytes().starts_with(b"USER=")));
    }

    #[test]
    fn spawn_runs_a_command_and_reports_its_exit_code() {
        let child = spawn(
            &Isolation::none(),
            vec![],
            &["sh".into(), "-c".into(), "exit 7".into()],
        )
        .expect("spawn sh");
        assert_eq!(child.wait().expect("wait"), Exit::Code(7));
    }

    #[test]
    fn spawn_names_the_failed_step_and_keeps_its_errno() {
        let steps = vec![Step::new("enter the new root", || Err(Errno::EPERM))];
        let err = spawn(&Isolation::none(), steps, &["true".into()]).expect_err("the step fails");
        assert_eq!(
            err.to_string(),
            "enter the new root failed in the container process: EPERM: Operation not permitted"
        );
    }

    #[test]
    fn the_command_starts_with_sigpipe_at_its_default() {
        // SigCgt/SigIgn are bitmasks of caught/ignored signals; SIGPIPE is bit 13 - 1.
        let script =
            "grep SigIgn /proc/self/status | (read _ mask; [ $(( 0x$mask & 0x1000 )) -eq 0 ])";
        let child = spawn(
            &Isolation::none(),
            vec![],
            &["sh".into(), "-c".into(), script.into()],
        )
        .expect("spawn sh");
        assert_eq!(
            child.wait().expect("wait"),
            Exit::Code(0),
            "SIGPIPE is still ignored in the command"
        );
    }

    #[test]
    fn spawn_reports_a_missing_command() {
        let err = spawn(
            &Isolation::none(),
            vec![],
            &["nutshell-no-such-command".into()],
        )
        .expect_err("not found");
        assert!(
            matches!(
                err,
                ProcessError::ChildStep {
                    errno: Errno::ENOENT,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("exec nutshell-no-such-command failed"),
            "{err}"
        );
    }
}
