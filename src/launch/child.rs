//! nutshell-init: the container's first process once it has exec'd the sealed copy of
//! nutshell. A fresh, single-threaded program with the container's environment only; it
//! receives its steps from the host side, performs them, waits at the start gate, and
//! execs the container's program — or stays as its init.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::{ForkResult, Gid, Uid, fork};

use super::steps::ChildStep;
use super::wire::{Boot, Report};
use crate::capabilities;
use crate::init;
use crate::mounts::Applier;
use crate::spec::{CONTAINER_PATH, Program};

// ANCHOR: init_main
/// The main of nutshell-init, `nutshell-init <sync fd>`: never returns.
pub fn init_main() -> ! {
    let sync = std::env::args()
        .nth(1)
        .and_then(|fd| fd.parse::<RawFd>().ok());
    let Some(sync) = sync else {
        eprintln!("nutshell-init: run by nutshell only, as nutshell-init <sync fd>");
        std::process::exit(127);
    };
    // SAFETY: the fd was passed to this process for it alone.
    let sync = unsafe { OwnedFd::from_raw_fd(sync) };
    let boot = match receive_boot(&sync) {
        Ok(boot) => boot,
        Err(errno) => {
            eprintln!("nutshell-init: receive the container's steps: {errno}");
            std::process::exit(127);
        }
    };
    let code = run(sync, boot);
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}
// ANCHOR_END: init_main

/// The steps from `boot.first` on. A failing one is reported by position, and ends the
/// process: the host side explains it.
fn run(sync: OwnedFd, boot: Boot) -> i32 {
    // The prelude cleared close-on-exec on these so that they survived the exec into
    // this program; the container's program must not inherit them. The sync socket's
    // closing at that exec is also what tells the host side the program started.
    for fd in [sync.as_raw_fd(), boot.start_gate]
        .iter()
        .chain(&boot.trees)
        .chain(&boot.exec_fifo)
        .chain(&boot.console_socket)
    {
        // SAFETY: fcntl on fds passed to this process.
        unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: the host side passed these fds for this process alone.
    let trees: Vec<OwnedFd> = boot
        .trees
        .iter()
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    let mut gate = Some(unsafe { std::fs::File::from_raw_fd(boot.start_gate) });
    // SAFETY: as above.
    let mut exec_fifo = boot.exec_fifo.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let mut applier = Some(Applier::new(&boot.rootfs, &trees));
    let mut sync = Some(sync);
    for (index, step) in boot.steps.iter().enumerate().skip(boot.first) {
        let failed = |errno: Errno| Report::failed(index as u32, errno);
        let result = match step {
            ChildStep::Exec { program, env, init } => {
                drop(applier.take());
                drop(trees);
                let Some(sync) = sync.take() else {
                    return 127;
                };
                return exec(program, env, *init, sync, index as u32);
            }
            ChildStep::WaitForStart { detached } => {
                let fd = sync.as_ref().map(AsRawFd::as_raw_fd).unwrap_or(-1);
                let waited = wait_for_start(fd, gate.take(), *detached);
                if waited.is_ok() && *detached {
                    // Its creator is gone: from here on, reports go to `nutshell start`.
                    match exec_fifo.take() {
                        Some(fifo) => sync = Some(fifo),
                        None => return 127,
                    }
                }
                waited
            }
            ChildStep::CloseInheritedFds { preserve } => {
                let mut keep = vec![
                    sync.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                    boot.start_gate,
                    boot.exec_fifo.unwrap_or(-1),
                    boot.console_socket.unwrap_or(-1),
                ];
                keep.extend(&boot.trees);
                keep.extend((0..*preserve as RawFd).map(|n| 3 + n));
                close_inherited_fds(&keep)
            }
            ChildStep::SetUpConsole { uid, size } => match boot.console_socket {
                // SAFETY: the host side passed this fd for this process alone.
                Some(fd) => set_up_console(unsafe { OwnedFd::from_raw_fd(fd) }, *uid, *size),
                None => Err(Errno::EBADF),
            },
            ChildStep::FindProgram(args) => {
                let env = boot.steps.iter().find_map(|step| match step {
                    ChildStep::Exec { env, .. } => Some(env.as_slice()),
                    _ => None,
                });
                find_program(args, env.unwrap_or_default())
            }
            ChildStep::Mount(op) => match applier.as_mut() {
                Some(applier) => applier.apply(op),
                None => Err(Errno::EINVAL),
            },
            step => run_step(step, &boot),
        };
        if let Err(errno) = result {
            if let Some(sync) = &sync {
                send(sync.as_raw_fd(), failed(errno));
            }
            return 127;
        }
    }
    127
}

/// One step that needs nothing but its own data.
fn run_step(step: &ChildStep, boot: &Boot) -> Result<(), Errno> {
    match step {
        ChildStep::JoinNamespace { kind, path } => {
            let ns = std::fs::File::open(path).map_err(io_errno)?;
            nix::sched::setns(
                ns,
                nix::sched::CloneFlags::from_bits_retain(kind.clone_flag()),
            )
        }
        ChildStep::EnterTimeNamespace(offsets) => {
            crate::namespaces::enter_new_time_namespace(*offsets)
        }
        ChildStep::UnshareCgroupNamespace => {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        }
        ChildStep::SetHostname(name) => crate::uts::set_hostname(name),
        ChildStep::SetDomainname(name) => {
            // SAFETY: setdomainname reads the bytes of the length passed.
            Errno::result(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })
                .map(drop)
        }
        ChildStep::Sysctl { key, value } => {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(path, value).map_err(io_errno)
        }
        ChildStep::DropBoundingSet(keep) => {
            capabilities::drop_bounding(*keep, boot.cap_last_cap).map_err(cap_errno)
        }
        ChildStep::SetUser { user, keep_caps } => {
            if *keep_caps {
                capabilities::set_keep_caps(true).map_err(cap_errno)?;
            }
            if boot.setgroups {
                let groups: Vec<Gid> = user
                    .additional_gids
                    .iter()
                    .map(|&g| Gid::from_raw(g))
                    .collect();
                nix::unistd::setgroups(&groups)?;
            }
            let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
            nix::unistd::setresgid(gid, gid, gid)?;
            nix::unistd::setresuid(uid, uid, uid)?;
            if *keep_caps {
                capabilities::set_keep_caps(false).map_err(cap_errno)?;
            }
            Ok(())
        }
        ChildStep::SetCapabilities(caps) => capabilities::apply(caps).map_err(cap_errno),
        ChildStep::NoNewPrivileges => {
            // SAFETY: prctl with integer arguments.
            Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
        }
        ChildStep::SetUmask(mask) => {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(*mask));
            Ok(())
        }
        ChildStep::Chdir(cwd) => enter_cwd(cwd),
        ChildStep::Seccomp(filter) => crate::seccomp::install(filter),
        ChildStep::RunHooks {
            stage,
            hooks,
            state,
        } => crate::hooks::run_stage(hooks, state, *stage, std::process::id() as i32)
            .map_err(|err| err.errno()),
        ChildStep::ResetSignals => {
            reset_signals();
            Ok(())
        }
        // The prelude's steps, and those `run` handles itself.
        _ => Err(Errno::EINVAL),
    }
}

// ANCHOR: close_inherited_fds
/// Close every fd above stdio but `keep`: whatever the caller left open (a directory of
/// the host, a socket) would otherwise be the container's way out. close_range(2) closes
/// each gap between the kept fds in one call.
fn close_inherited_fds(keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().filter(|&fd| fd >= 3) {
        if fd > first {
            // SAFETY: closes fds this process does not use.
            Errno::result(unsafe { libc::close_range(first, fd - 1, 0) })?;
        }
        first = fd + 1;
    }
    // SAFETY: as above, up to the highest fd there is.
    Errno::result(unsafe { libc::close_range(first, u32::MAX, 0) }).map(drop)
}
// ANCHOR_END: close_inherited_fds

// ANCHOR: enter_cwd
/// chdir(2) to `cwd`, then check where that is. An fd the caller leaked could have been
/// named as the working directory (`/proc/self/fd/7`), putting it outside the root: then
/// getcwd(2) fails with ENOENT, because the path cannot be reached from the root
/// (runc's CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), Errno> {
    nix::unistd::chdir(cwd)?;
    match nix::unistd::getcwd() {
        Ok(path) if path.is_absolute() => Ok(()),
        Ok(_) => Err(Errno::ENOENT),
        Err(errno) => Err(errno),
    }
}
// ANCHOR_END: enter_cwd

/// Put every signal back to its default disposition. exec(2) resets caught signals, but
/// an ignored one stays ignored: a chapter binary started with `&` from a script has
/// SIGINT ignored, and so would the container's program.
fn reset_signals() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installs the default disposition, no handler. glibc reserves two
        // real-time signals and refuses them with EINVAL, which is fine.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

// ANCHOR: set_up_console
/// The container's terminal, made the way runc makes it: a pty from the container's own
/// `/dev/ptmx` (so that `tty` names a `/dev/pts` entry that exists inside), its slave end
/// becomes stdio and the controlling terminal of a new session, and its master end goes
/// to whoever listens on the console socket, with SCM_RIGHTS. That listener (podman's
/// conmon, runc's `recvtty`) then relays the terminal.
fn set_up_console(socket: OwnedFd, uid: u32, size: Option<(u16, u16)>) -> Result<(), Errno> {
    use nix::fcntl::{OFlag, open};
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on our pty master, with the argument types they take.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: as above; TIOCGPTPEER opens the slave end without a path lookup.
    let slave = Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: a new fd nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    nix::unistd::fchown(&slave, Some(Uid::from_raw(uid)), None)?;
    if let Some((rows, cols)) = size {
        let winsize = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a winsize.
        Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &winsize) })?;
    }
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY on our slave, with 0: do not steal it from another session.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    for target in 0..=2 {
        // SAFETY: dup2 of our fd onto the stdio numbers.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })?;
    }
    send_fd(socket.as_raw_fd(), master.as_raw_fd(), b"/dev/ptmx")
}
// ANCHOR_END: set_up_console

// ANCHOR: send_fd
/// Send `fd` over the unix socket `socket` (SCM_RIGHTS), with `name` as the message.
fn send_fd(socket: RawFd, fd: RawFd, name: &[u8]) -> Result<(), Errno> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let iov = [std::io::IoSlice::new(name)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}
// ANCHOR_END: send_fd

// ANCHOR: wait_for_start
/// Report ready, then wait until `start` writes to the gate. Attached, it dies with its
/// creator; detached, it lives on after it (runc's container waits for `runc start` the
/// same way), and a write to the exec fifo with no reader must not kill it.
fn wait_for_start(sync: RawFd, gate: Option<std::fs::File>, detached: bool) -> Result<(), Errno> {
    // The credentials may have changed since the prelude asked, which clears it.
    let signal = if detached { 0 } else { libc::SIGKILL };
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) })?;
    if detached {
        // SAFETY: the ignore disposition, no handler; the program gets the default back
        // before its exec (become_program).
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    }
    let Some(mut gate) = gate else {
        return Err(Errno::EBADF);
    };
    send(sync, Report::Ready);
    let mut byte = [0u8; 1];
    loop {
        match gate.read(&mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Errno::EPIPE),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_errno(e)),
        }
    }
}
// ANCHOR_END: wait_for_start

// ANCHOR: exec
/// The last step: exec the program, or run the builtin; with `init`, stay as PID 1 and
/// do that in a child, passing signals on and reaping orphans.
fn exec(program: &Program, env: &[String], init: bool, sync: OwnedFd, step: u32) -> i32 {
    if !init {
        return become_program(program, env, sync, step);
    }
    if let Err(errno) = init::become_init() {
        send(sync.as_raw_fd(), Report::failed(step, errno));
        return 127;
    }
    // The child says through this pipe whether its exec failed; the pipe closes on exec.
    let Ok((read_end, write_end)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return 127;
    };
    // SAFETY: this process is single-threaded: it was exec'd, and made no thread.
    let main = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(read_end);
            drop(sync);
            std::process::exit(become_program(program, env, write_end, step))
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => {
            send(sync.as_raw_fd(), Report::failed(step, errno));
            return 127;
        }
    };
    drop(write_end);
    let mut report = Vec::new();
    let _ = std::fs::File::from(read_end).read_to_end(&mut report);
    match Report::decode(&report) {
        Some(failed @ Report::Failed { .. }) => {
            send(sync.as_raw_fd(), failed);
            let _ = nix::sys::wait::waitpid(main, None);
            return 127;
        }
        _ => send(sync.as_raw_fd(), Report::Started),
    }
    drop(sync);
    match init::supervise(main) {
        Ok(exit) => exit.code(),
        Err(err) => {
            eprintln!("{}: {err}", init::INIT_NAME);
            // Returning makes PID 1 exit, and the kernel then kills the whole namespace.
            1
        }
    }
}
// ANCHOR_END: exec

/// Become the program: exec it, reporting a failure on `report`; or run the builtin,
/// after closing `report` to say it started.
fn become_program(program: &Program, env: &[String], report: OwnedFd, step: u32) -> i32 {
    // A blocked signal stays blocked across execve: the program must not inherit the
    // mask that kept the host side's or the init's signals pending.
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    // SAFETY: the default disposition; Rust's runtime ignored SIGPIPE in this process.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    match program {
        Program::Args(args) => {
            let errno = exec_in_path(args, env);
            write_report(report.as_raw_fd(), Report::failed(step, errno));
            127
        }
        Program::Builtin(builtin) => {
            drop(report);
            builtin.run()
        }
    }
}

// ANCHOR: exec_in_path
/// execve `args[0]` directly if it contains a `/`, else the first match in the
/// container's `PATH` (from `env`, or [`CONTAINER_PATH`]): the lookup happens inside the
/// container's root. Returns only on failure.
fn exec_in_path(args: &[String], env: &[String]) -> Errno {
    let to_c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let (Ok(argv), Ok(envp)) = (
        args.iter().map(|a| to_c(a)).collect::<Result<Vec<_>, _>>(),
        env.iter().map(|v| to_c(v)).collect::<Result<Vec<_>, _>>(),
    ) else {
        return Errno::EINVAL;
    };
    let Some(program) = args.first() else {
        return Errno::ENOENT;
    };
    let candidates = candidates(program, env);
    let mut last = Errno::ENOENT;
    for candidate in candidates {
        let Ok(candidate) = to_c(&candidate) else {
            return Errno::EINVAL;
        };
        match nix::unistd::execve(&candidate, &argv, &envp) {
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

/// Where `program` is looked for: itself if it has a `/`, else in each directory of the
/// `PATH` in `env` (or [`CONTAINER_PATH`]).
fn candidates(program: &str, env: &[String]) -> Vec<String> {
    let path = env
        .iter()
        .find_map(|var| var.strip_prefix("PATH="))
        .unwrap_or(CONTAINER_PATH);
    if program.contains('/') {
        vec![program.to_string()]
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| format!("{dir}/{program}"))
            .collect()
    }
}
// ANCHOR_END: exec_in_path

/// Whether `args[0]` is an executable file in the container: the lookup [`exec_in_path`]
/// will make, made ahead of time. ENOENT when it is nowhere, EACCES when the first one
/// found may not be executed.
fn find_program(args: &[String], env: &[String]) -> Result<(), Errno> {
    let program = args.first().ok_or(Errno::ENOENT)?;
    for candidate in candidates(program, env) {
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if !meta.is_file() {
            return Err(Errno::EACCES);
        }
        return nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK);
    }
    Err(Errno::ENOENT)
}

/// Receive the one message with the steps: its size first (MSG_PEEK|MSG_TRUNC tells a
/// SOCK_SEQPACKET message's length), then the message.
fn receive_boot(sync: &OwnedFd) -> Result<Boot, Errno> {
    let peek = libc::MSG_PEEK | libc::MSG_TRUNC;
    // SAFETY: recv into no buffer, only asking for the length.
    let len =
        Errno::result(unsafe { libc::recv(sync.as_raw_fd(), std::ptr::null_mut(), 0, peek) })?;
    let mut buffer = vec![0u8; len as usize];
    // SAFETY: recv into a buffer of the length passed.
    let got = Errno::result(unsafe {
        libc::recv(
            sync.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
        )
    })?;
    buffer.truncate(got as usize);
    serde_json::from_slice(&buffer).map_err(|_| Errno::EBADMSG)
}

/// Write a report to the sync socket or to the init's pipe: write(2) takes both.
fn write_report(fd: RawFd, report: Report) {
    let bytes = report.encode();
    // SAFETY: write from a buffer of the length passed.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

/// Send a report; if the host side is gone there is no one to tell (MSG_NOSIGNAL: no
/// SIGPIPE for it either). A detached container's reports after the gate go to the exec
/// fifo, which is no socket: written with write(2), SIGPIPE ignored.
fn send(sync: RawFd, report: Report) {
    let bytes = report.encode();
    // SAFETY: send from a buffer of the length passed.
    let sent = unsafe { libc::send(sync, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if sent < 0 && Errno::last() == Errno::ENOTSOCK {
        write_report(sync, report);
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn cap_errno(e: capabilities::CapError) -> Errno {
    std::error::Error::source(&e)
        .and_then(|source| source.downcast_ref::<Errno>().copied())
        .unwrap_or(Errno::EPERM)
}
