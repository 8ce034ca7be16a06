//! The container's first process from clone(2) to execveat(2): the only code nutshell
//! runs in a fork of its own memory, so it allocates nothing and calls the kernel
//! directly.
//!
//! The caller may have other threads (a test harness has many). A forked child has only
//! the one thread that forked, and if another held the allocator's lock at that moment,
//! the child's first `malloc` waits for it forever. So everything the child needs — the
//! argument and environment arrays, the fds, which steps to report — is made before the
//! clone, and the child only makes system calls on it: set its parent-death signal,
//! wait for the host side, become root of its user namespace, then execveat(2) the
//! sealed copy of nutshell as `nutshell-init`, a fresh single-threaded program that may
//! do anything. A failure is reported as a fixed-size record over the sync socket.
//!
//! Why exec nutshell again instead of carrying on in the fork: the container's PID 1
//! should not be the caller's process image, with the caller's environment in
//! `/proc/1/environ` and the host's binary behind `/proc/1/exe` (CVE-2019-5736: a root
//! container that can open its own `/proc/1/exe` for writing overwrites the host's
//! binary). The copy it execs is a memfd, sealed against writes, and its environment is
//! the container's only.
//!
//! See also [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html),
//! [execveat(2)](https://man7.org/linux/man-pages/man2/execveat.2.html),
//! [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
//! [PR_SET_PDEATHSIG](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html).

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::wire::Report;

/// What the cloned child needs, made before the clone.
pub(super) struct Prelude {
    /// The child's end of the sync socket.
    pub sync_child: RawFd,
    /// The host side's end, which the child closes at once.
    pub sync_parent: RawFd,
    /// A user namespace to join, already open.
    pub join_user: Option<RawFd>,
    /// Become root of the user namespace: `Some(setgroups allowed)`.
    pub become_root: Option<bool>,
    /// fds nutshell-init needs, whose close-on-exec flag the child clears.
    pub keep: Vec<RawFd>,
    /// The sealed copy of nutshell.
    pub init: RawFd,
    /// The step numbers to report each failure as.
    pub steps: PreludeSteps,
    /// `nutshell-init <sync fd>`, as C strings (kept alive here: the pointer array
    /// execveat takes points into them), and that array.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*mut c_char>,
    /// The container's environment, likewise.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*mut c_char>,
}

/// Which of the plan's child steps each part of the prelude is.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PreludeSteps {
    pub die_with_parent: u32,
    pub join_user: u32,
    pub become_root: u32,
    pub exec_init: u32,
}

impl Prelude {
    /// A prelude that execs `init` as `nutshell-init <sync_child>` with `env`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sync_child: RawFd,
        sync_parent: RawFd,
        join_user: Option<RawFd>,
        become_root: Option<bool>,
        keep: Vec<RawFd>,
        init: RawFd,
        steps: PreludeSteps,
        env: &[String],
    ) -> Result<Prelude, Errno> {
        let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
        let argv = vec![c(super::INIT_ARGV0)?, c(&sync_child.to_string())?];
        let envp = env.iter().map(|v| c(v)).collect::<Result<Vec<_>, _>>()?;
        let pointers = |strings: &[CString]| {
            strings
                .iter()
                // execveat's C prototype takes char *const argv[]: it writes nothing.
                .map(|s| s.as_ptr().cast_mut())
                .chain([std::ptr::null_mut()])
                .collect::<Vec<_>>()
        };
        Ok(Prelude {
            argv_ptrs: pointers(&argv),
            envp_ptrs: pointers(&envp),
            _argv: argv,
            _envp: envp,
            sync_child,
            sync_parent,
            join_user,
            become_root,
            keep,
            init,
            steps,
        })
    }
}

// ANCHOR: clone_first_process
/// clone(2) the container's first process with `flags` and run the prelude in it.
/// Returns its pid; it then waits for the host side's go.
pub(super) fn clone_first_process(flags: CloneFlags, prelude: &Prelude) -> Result<Pid, Errno> {
    // The child runs on this stack, in its own copy of our memory (no CLONE_VM). It
    // makes a handful of system calls, so 256 KiB is plenty; pages are touched only
    // when used.
    let mut stack = vec![0u8; 256 * 1024];
    let dumpable = born_non_dumpable();
    // SAFETY: the child runs `run_prelude` alone, which allocates nothing, takes no lock
    // and leaves by execveat or _exit.
    let child = unsafe {
        nix::sched::clone(
            Box::new(|| run_prelude(prelude)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    };
    if let Some(dumpable) = dumpable {
        // SAFETY: prctl with integer arguments; this process goes on as it was.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable) };
    }
    child
}

/// In the child: die with the parent, wait for it, become root of the user namespace,
/// exec nutshell-init. Never returns.
fn run_prelude(p: &Prelude) -> ! {
    // SAFETY (whole function): raw system calls on fds and pointers made before the
    // clone; nothing here allocates.
    unsafe {
        // The host side's end must go, or the child's own copy would keep its wait from
        // ever seeing that the host side is gone.
        libc::close(p.sync_parent);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(p, p.steps.die_with_parent);
        }
        // One byte: go. End of file: the host side died or gave up; leave quietly.
        let mut go = 0u8;
        loop {
            let got = libc::recv(p.sync_child, (&raw mut go).cast(), 1, 0);
            if got == 1 {
                break;
            }
            if got < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(1);
        }
        if let Some(fd) = p.join_user
            && libc::setns(fd, libc::CLONE_NEWUSER) != 0
        {
            fail(p, p.steps.join_user);
        }
        // ANCHOR: become_root
        if let Some(setgroups) = p.become_root {
            // gid first: once the uid is no longer root, setresgid is refused.
            if libc::setresgid(0, 0, 0) != 0
                || (setgroups && libc::setgroups(0, std::ptr::null()) != 0)
                || libc::setresuid(0, 0, 0) != 0
            {
                fail(p, p.steps.become_root);
            }
            // A change of credentials clears the parent-death signal: ask again.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                fail(p, p.steps.die_with_parent);
            }
        }
        // ANCHOR_END: become_root
        for &fd in &p.keep {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        libc::execveat(
            p.init,
            c"".as_ptr(),
            p.argv_ptrs.as_ptr(),
            p.envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        fail(p, p.steps.exec_init)
    }
}
// ANCHOR_END: clone_first_process

/// CVE-2019-5736: until it execs the sealed copy, the child runs the host's binary, and
/// a process of a container it joins (`nutshell exec`) could open that through its
/// `/proc/PID/exe`. A child born non-dumpable cannot be opened so: only CAP_SYS_PTRACE
/// on the host opens a non-dumpable process's exe. Makes this process non-dumpable for
/// the clone, and returns what to restore. As root only: a non-dumpable child's /proc
/// files belong to root, and a normal user's nutshell writes its uid_map (nor can a
/// normal user write the installed binary anyway).
fn born_non_dumpable() -> Option<libc::c_int> {
    // SAFETY: prctl with integer arguments.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    if !nix::unistd::geteuid().is_root() || dumpable <= 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    Some(dumpable)
}

/// Report step `step` failed with the current errno, and leave.
fn fail(p: &Prelude, step: u32) -> ! {
    // SAFETY: reads errno, sends a record from the stack, and _exits.
    unsafe {
        let errno = *libc::__errno_location();
        let record = Report::Failed { step, errno }.encode();
        libc::send(
            p.sync_child,
            record.as_ptr().cast(),
            record.len(),
            libc::MSG_NOSIGNAL,
        );
        libc::_exit(127)
    }
}

// ANCHOR: sealed_init
/// A sealed, executable copy of `binary` in memory: what the container's first process
/// execs. Made once per process and shared by all its containers.
///
/// memfd_create(2) makes an anonymous file; the copy is written into it, then sealed
/// against writes, growing and shrinking (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK), and
/// against further sealing changes (F_SEAL_SEAL). A container process that opens
/// `/proc/1/exe` finds this file, not the host's binary, and can change nothing in it.
pub(super) fn sealed_init(binary: &Path) -> Result<RawFd, std::io::Error> {
    static SEALED: OnceLock<Result<OwnedFd, (Option<i32>, String)>> = OnceLock::new();
    let made =
        SEALED.get_or_init(|| make_sealed(binary).map_err(|e| (e.raw_os_error(), e.to_string())));
    match made {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err((Some(errno), _)) => Err(std::io::Error::from_raw_os_error(*errno)),
        Err((None, message)) => Err(std::io::Error::other(message.clone())),
    }
}

fn make_sealed(binary: &Path) -> Result<OwnedFd, std::io::Error> {
    let name = c"nutshell-init";
    // SAFETY: memfd_create with a NUL-terminated name; the fd is owned below.
    let fd = Errno::result(unsafe {
        libc::memfd_create(
            name.as_ptr(),
            (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as libc::c_uint,
        )
    })?;
    // SAFETY: a new fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut source = File::open(binary)?;
    let mut target = File::from(memfd.try_clone()?);
    std::io::copy(&mut source, &mut target)?;
    drop(target);
    add_seals(&memfd)?;
    // A file open for writing cannot be executed (ETXTBSY), and memfd_create's fd is.
    // Reopened through /proc, read-only, the copy can; then the writable fd goes.
    let readonly = File::open(format!("/proc/self/fd/{}", memfd.as_raw_fd()))?;
    Ok(OwnedFd::from(readonly))
}
// ANCHOR_END: sealed_init

/// Seal the copy. The kernel refuses F_SEAL_WRITE with EBUSY while a page of the file
/// still has an extra reference (the copy's splice can leave one for a moment, under
/// load): wait a little and ask again, for at most half a second.
fn add_seals(memfd: &OwnedFd) -> Result<(), Errno> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    for _ in 0..250 {
        // SAFETY: fcntl on an fd we own.
        match Errno::result(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) }) {
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(2)),
            other => return other.map(drop),
        }
    }
    Err(Errno::EBUSY)
}
