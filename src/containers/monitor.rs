//! The monitor: the process that owns one docker-style container from its start to its
//! end, the part podman gives to conmon.
//!
//! It launches the container through the one pipeline, holding the container's stdout
//! and stderr (pipes) or its terminal (a pty master, received over a console socket).
//! Everything the container writes goes to its log, line by line; attached (`run`
//! without `-d`), also to the caller's terminal. When the container's first process
//! ends, the monitor reads what is left in the pipes, records the exit code and the
//! time, tears the container down — network, cgroup, overlay, state — and, with `--rm`,
//! removes the record too.
//!
//! For `run -d` the monitor is a process of its own, in a session of its own: it
//! survives the command that started it and the terminal that command ran in. It holds
//! the container's launch lock, so if it is killed, its container (which dies with it,
//! PR_SET_PDEATHSIG) is swept by the next command, which also marks the record exited.
//!
//! One loop serves both: poll(2) over the output, the caller's stdin (with a terminal),
//! a signalfd and the first process's pidfd. A signal the monitor gets is passed on to
//! the container; SIGWINCH resizes the container's terminal to the caller's.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::ContainersError;
use super::logs::{LineWriter, Stream};
use super::record::{Phase, Record, Records};
use crate::launch::{self, Container, ContainerId, HostFacts, ProcessRef};
use crate::spec::ContainerSpec;

/// How long the monitor reads a dead container's pipes for what is left: a process
/// outside its PID namespace (none, normally) could hold them open.
const DRAIN: Duration = Duration::from_secs(2);

/// How long the container's process has to send its terminal over the console socket.
const CONSOLE_WAIT: Duration = Duration::from_secs(10);

/// How the monitor is connected to the caller.
#[derive(Debug)]
pub enum Attach {
    /// `run -d`: nothing; `ready` gets one line once the container runs (`ok`) or could
    /// not start (the error).
    Detached {
        /// The write end of the pipe the `run` command waits on.
        ready: OwnedFd,
    },
    /// `run`: the container's output to this process's stdout and stderr, its stdin
    /// from ours with `interactive`; with a terminal, ours in raw mode.
    Attached {
        /// `-i`.
        interactive: bool,
    },
}

// ANCHOR: monitor
/// Launch the recorded container `record` from `spec`, relay and log its output until
/// its first process ends, record how it ended and tear it down. Returns its exit code.
pub fn monitor(
    records: &Records,
    mut record: Record,
    mut spec: ContainerSpec,
    facts: &HostFacts,
    attach: Attach,
) -> Result<i32, ContainersError> {
    record.monitor = ProcessRef::of(std::process::id() as i32);
    records.save(&record)?;
    let attached = matches!(attach, Attach::Attached { .. });
    let interactive = matches!(attach, Attach::Attached { interactive: true });
    let signals = block_signals()?;
    let terminal = CallerTerminal::open().filter(|_| attached && spec.process.terminal);
    let launched = open_log(&records.dir(&record.id)).and_then(|log| {
        let (container, output) =
            launch_holding_output(&record.id, &mut spec, facts, terminal.as_ref(), interactive)?;
        Ok((log, container, output))
    });
    let (mut log, mut container, output) = match launched {
        Ok(launched) => launched,
        Err(err) => {
            // Nothing is left of a container that never ran: no record either.
            let _ = records.remove(&record);
            if let Attach::Detached { ready } = attach {
                report_ready(ready, &format!("{}\n", crate::cli::one_line(&err)));
            }
            return Err(err);
        }
    };
    record.phase = Phase::Running;
    record.started = Some(crate::launch::now_secs());
    record.pid = container.pid().map(|p| p.as_raw());
    record.address = container.address();
    records.save(&record)?;
    if let Attach::Detached { ready } = attach {
        report_ready(ready, "ok\n");
    }
    // Raw only now: an error before this prints as usual. Without -i nothing is typed
    // to the container, and the terminal stays as it is.
    let raw = terminal
        .as_ref()
        .filter(|_| interactive)
        .map(CallerTerminal::raw);
    let relay = Relay {
        attached,
        interactive,
        terminal: terminal.as_ref(),
    };
    let exit = relay.run(&mut container, output, &signals, &mut log)?;
    drop(raw);
    record.phase = Phase::Exited;
    record.exit_code = Some(exit);
    record.finished = Some(crate::launch::now_secs());
    record.pid = None;
    let removed = container.remove();
    if let Err(err) = &removed {
        record.error = Some(format!("teardown: {}", crate::cli::one_line(err)));
    }
    if record.auto_remove {
        records.remove(&record)?;
    } else {
        records.save(&record)?;
    }
    removed?;
    Ok(exit)
}
// ANCHOR_END: monitor

// ANCHOR: launch_holding_output
/// Launch container `id` and start it, holding its output: the read ends of pipes that
/// are its stdout and stderr, or with a terminal the pty's master end. `terminal` is
/// the caller's, whose size the container's gets.
fn launch_holding_output(
    id: &str,
    spec: &mut ContainerSpec,
    facts: &HostFacts,
    terminal: Option<&CallerTerminal>,
    interactive: bool,
) -> Result<(Container, Vec<(OwnedFd, Stream)>), ContainersError> {
    let id = ContainerId::parse(id)?;
    let console = if spec.process.terminal {
        let path = console_path(&facts.state_root, id.as_str());
        let listener = listen(&path)?;
        spec.console_socket = Some(path);
        spec.process.console_size = terminal.and_then(CallerTerminal::size);
        Some(listener)
    } else {
        None
    };
    let launched = (|| {
        let plan = launch::plan(&id, spec, facts)?;
        // The container inherits this process's stdio at the clone: the pipes, for the
        // moment create takes, then this process's own again.
        let stdio = match console {
            None => Some(Stdio::redirect(interactive)?),
            Some(_) => None,
        };
        let created = launch::create(plan, spec, facts);
        let pipes = stdio.map(Stdio::restore).transpose()?;
        let mut container = created?;
        let output = match (&console, pipes) {
            (Some(listener), _) => vec![(receive_terminal(listener)?, Stream::Stdout)],
            (None, Some((out, err))) => vec![(out, Stream::Stdout), (err, Stream::Stderr)],
            (None, None) => Vec::new(),
        };
        container.start()?;
        Ok((container, output))
    })();
    if let Some(path) = &spec.console_socket {
        let _ = std::fs::remove_file(path);
    }
    launched
}
// ANCHOR_END: launch_holding_output

/// Open the container's log in `dir`, to append to.
fn open_log(dir: &std::path::Path) -> Result<std::fs::File, ContainersError> {
    let path = dir.join("container.log");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| ContainersError::Io {
            op: "open",
            path,
            source,
        })
}

// ANCHOR: attach_terminal
/// Run `spec` (a process with a terminal: `exec -t`) attached to the caller: its
/// terminal's output relayed to ours until it ends, and with `interactive` (`-i`) our
/// keys to it, ours in raw mode; then remove it. Returns its exit code.
pub fn attach_terminal(
    id: &ContainerId,
    mut spec: ContainerSpec,
    facts: &HostFacts,
    interactive: bool,
) -> Result<i32, ContainersError> {
    let signals = block_signals()?;
    spec.process.terminal = true;
    let terminal = CallerTerminal::open();
    let (mut process, output) = launch_holding_output(
        id.as_str(),
        &mut spec,
        facts,
        terminal.as_ref(),
        interactive,
    )?;
    let raw = terminal
        .as_ref()
        .filter(|_| interactive)
        .map(CallerTerminal::raw);
    let relay = Relay {
        attached: true,
        interactive,
        terminal: terminal.as_ref(),
    };
    let exit = relay.run(&mut process, output, &signals, &mut std::io::sink());
    drop(raw);
    process.remove()?;
    exit
}
// ANCHOR_END: attach_terminal

/// A close-on-exec copy of `fd` (a stdio number), above stdio.
pub(super) fn dup_cloexec(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC of an open fd; the new fd is ours alone.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Where the monitor of container `id` listens for its terminal: in the state root, under
/// a short name, since a socket's path must fit in 108 bytes (`sun_path`) and a data
/// directory's records may lie deeper than that allows.
pub fn console_path(state_root: &std::path::Path, id: &str) -> std::path::PathBuf {
    state_root.join(format!(".console-{}", &id[..12.min(id.len())]))
}

/// Listen on `path` for the container's terminal.
fn listen(path: &std::path::Path) -> Result<std::os::unix::net::UnixListener, ContainersError> {
    let io = |op: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ContainersError::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("make", dir))?;
    }
    // A socket left by a monitor that was killed while it listened.
    let _ = std::fs::remove_file(path);
    std::os::unix::net::UnixListener::bind(path).map_err(io("listen on", path))
}

/// Write the one line the waiting `run -d` reads; it may have gone (killed), which
/// changes nothing here.
fn report_ready(ready: OwnedFd, line: &str) {
    let mut file = std::fs::File::from(ready);
    let _ = file.write_all(line.as_bytes());
}

/// The signals the monitor takes through its signalfd: those it passes on, SIGCHLD
/// (blocked so that it does not interrupt) and SIGWINCH.
fn block_signals() -> Result<SignalFd, ContainersError> {
    let mut set: SigSet = crate::init::handled_signals();
    set.add(Signal::SIGWINCH);
    set.thread_block().map_err(|source| ContainersError::Sys {
        op: "block the signals to pass on",
        source,
    })?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|source| {
        ContainersError::Sys {
            op: "make a signalfd",
            source,
        }
    })
}

/// This process's stdio while the container is cloned: stdout and stderr are pipes whose
/// read ends the monitor keeps; stdin is ours (`-i`) or /dev/null.
struct Stdio {
    saved: [OwnedFd; 3],
    readers: (OwnedFd, OwnedFd),
}

impl Stdio {
    fn redirect(interactive: bool) -> Result<Stdio, ContainersError> {
        let sys = |op: &'static str| move |source| ContainersError::Sys { op, source };
        let save = |fd: RawFd| dup_cloexec(fd).map_err(sys("save stdio"));
        let saved = [save(0)?, save(1)?, save(2)?];
        let (out_r, out_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("make a pipe"))?;
        let (err_r, err_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("make a pipe"))?;
        let null = std::fs::File::open("/dev/null").map_err(|source| ContainersError::Io {
            op: "open",
            path: "/dev/null".into(),
            source,
        })?;
        let stdio = Stdio {
            saved,
            readers: (out_r, err_r),
        };
        let onto = |from: BorrowedFd, to: RawFd| {
            // SAFETY: dup2 onto a stdio number; dup2 clears close-on-exec on the copy.
            Errno::result(unsafe { libc::dup2(from.as_raw_fd(), to) }).map(drop)
        };
        let redirected = (|| {
            if !interactive {
                onto(null.as_fd(), 0)?;
            }
            onto(out_w.as_fd(), 1)?;
            onto(err_w.as_fd(), 2)
        })();
        if let Err(source) = redirected {
            let _ = stdio.restore();
            return Err(ContainersError::Sys {
                op: "redirect stdio",
                source,
            });
        }
        Ok(stdio)
    }

    /// Put our own stdio back; the pipes' write ends are then the container's alone, so
    /// they read end-of-file once its processes are gone.
    fn restore(self) -> Result<(OwnedFd, OwnedFd), ContainersError> {
        for (fd, saved) in self.saved.iter().enumerate() {
            // SAFETY: dup2 of our saved copy back onto its stdio number.
            Errno::result(unsafe { libc::dup2(saved.as_raw_fd(), fd as RawFd) }).map_err(
                |source| ContainersError::Sys {
                    op: "restore stdio",
                    source,
                },
            )?;
        }
        Ok(self.readers)
    }
}

// ANCHOR: receive_terminal
/// Take the pty master the container's process sends over the console socket, as
/// runc's `recvtty` and conmon do. It was sent while the container was made, so it
/// waits in the socket; the wait is bounded all the same.
fn receive_terminal(
    listener: &std::os::unix::net::UnixListener,
) -> Result<OwnedFd, ContainersError> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let sys = |op: &'static str| move |source| ContainersError::Sys { op, source };
    let readable = crate::launch::poll_readable(listener.as_fd(), CONSOLE_WAIT)
        .map_err(sys("wait on the console socket"))?;
    if !readable {
        return Err(ContainersError::Sys {
            op: "wait for the container's terminal",
            source: Errno::ETIMEDOUT,
        });
    }
    let (stream, _) = listener.accept().map_err(|source| ContainersError::Io {
        op: "accept on",
        path: "the console socket".into(),
        source,
    })?;
    let mut name = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive the terminal"))?;
    for cmsg in message
        .cmsgs()
        .map_err(sys("read the terminal's message"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the fd SCM_RIGHTS just gave us; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(ContainersError::Sys {
        op: "receive the terminal (no fd came)",
        source: Errno::EBADMSG,
    })
}
// ANCHOR_END: receive_terminal

/// The caller's terminal, when stdin is one.
struct CallerTerminal {
    fd: BorrowedFd<'static>,
}

/// The caller's terminal modes, put back when this goes, however the monitor ends.
struct RawMode {
    fd: BorrowedFd<'static>,
    /// The modes as they were; `None` if they could not be read, and so were not changed.
    saved: Option<nix::sys::termios::Termios>,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ =
                nix::sys::termios::tcsetattr(self.fd, nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

impl CallerTerminal {
    fn open() -> Option<CallerTerminal> {
        // SAFETY: stdin stays open for the whole run.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        nix::unistd::isatty(fd)
            .unwrap_or(false)
            .then_some(CallerTerminal { fd })
    }

    /// Its size, as (rows, columns).
    fn size(&self) -> Option<(u16, u16)> {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ into a winsize.
        let got = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        (got == 0).then_some((size.ws_row, size.ws_col))
    }

    // ANCHOR: raw
    /// Raw mode: every key goes to the container as it is typed, Ctrl-C included (the
    /// container's terminal turns it into SIGINT for its foreground process).
    fn raw(&self) -> RawMode {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(self.fd).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(self.fd, SetArg::TCSANOW, &raw);
        }
        RawMode { fd: self.fd, saved }
    }
    // ANCHOR_END: raw

    /// Give the container's terminal (its master end) the caller's size: TIOCSWINSZ
    /// on the master reaches the slave, and the kernel sends its foreground process
    /// group SIGWINCH.
    fn resize(&self, master: BorrowedFd) {
        if let Some((rows, cols)) = self.size() {
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ with a winsize, on our pty master.
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        }
    }
}

/// The loop that carries the container's output to its log (and the caller).
struct Relay<'a> {
    attached: bool,
    /// `-i`: the caller's stdin goes to the container's terminal.
    interactive: bool,
    terminal: Option<&'a CallerTerminal>,
}

impl Relay<'_> {
    // ANCHOR: relay
    fn run(
        &self,
        container: &mut Container,
        mut sources: Vec<(OwnedFd, Stream)>,
        signals: &SignalFd,
        log: &mut impl Write,
    ) -> Result<i32, ContainersError> {
        let mut writers: Vec<LineWriter> =
            sources.iter().map(|(_, s)| LineWriter::new(*s)).collect();
        // The caller's keys go to the container's terminal (the one source) with -i.
        let mut stdin_open = self.interactive && self.terminal.is_some();
        let mut exit = None;
        let mut drain_until = None;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let mut fds: Vec<libc::pollfd> = sources
                .iter()
                .map(|(fd, _)| pollfd(fd.as_raw_fd()))
                .collect();
            fds.push(pollfd(signals.as_fd().as_raw_fd()));
            let pidfd = container.pidfd().map(|fd| fd.as_raw_fd());
            if exit.is_none()
                && let Some(fd) = pidfd
            {
                fds.push(pollfd(fd));
            }
            if stdin_open {
                fds.push(pollfd(0));
            }
            let timeout = match drain_until {
                Some(until) => {
                    let left: Duration = Instant::saturating_duration_since(&until, Instant::now());
                    if left.is_zero() || sources.is_empty() {
                        break;
                    }
                    left.as_millis().min(1000) as i32
                }
                None => -1,
            };
            // SAFETY: poll over our own fds, all open for the call.
            match Errno::result(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout) }) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(source) => {
                    return Err(ContainersError::Sys { op: "poll", source });
                }
            }
            let ready = |fd: RawFd| {
                fds.iter().any(|p| {
                    p.fd == fd && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                })
            };
            let mut ended = Vec::new();
            for (i, (fd, stream)) in sources.iter().enumerate() {
                if !ready(fd.as_raw_fd()) {
                    continue;
                }
                // A pty master reads EIO once the last slave is closed: its end.
                match nix::unistd::read(fd, &mut buffer) {
                    Ok(0) | Err(Errno::EIO) => ended.push(i),
                    Ok(n) => {
                        let bytes = &buffer[..n];
                        writers[i].push(bytes, log).map_err(log_error)?;
                        if self.attached {
                            let _ = match stream {
                                Stream::Stdout => write_all(1, bytes),
                                Stream::Stderr => write_all(2, bytes),
                            };
                        }
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(source) => {
                        return Err(ContainersError::Sys {
                            op: "read the container's output",
                            source,
                        });
                    }
                }
            }
            for i in ended.into_iter().rev() {
                writers[i].finish(log).map_err(log_error)?;
                writers.remove(i);
                sources.remove(i);
            }
            if ready(signals.as_fd().as_raw_fd()) {
                while let Ok(Some(info)) = signals.read_signal() {
                    let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    match signal {
                        Signal::SIGCHLD => {}
                        Signal::SIGWINCH => {
                            if let (Some(term), Some((master, _))) =
                                (self.terminal, sources.first())
                            {
                                term.resize(master.as_fd());
                            }
                        }
                        other if exit.is_none() => {
                            let _ = container.kill(other);
                        }
                        _ => {}
                    }
                }
            }
            if stdin_open && ready(0) {
                match std::io::stdin().lock().read(&mut buffer) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        if let Some((master, _)) = sources.first() {
                            let _ = write_all(master.as_raw_fd(), &buffer[..n]);
                        }
                    }
                }
            }
            if exit.is_none() && pidfd.is_some_and(ready) {
                exit = Some(container.wait()?.code());
                drain_until = Some(Instant::now() + DRAIN);
                stdin_open = false;
            }
            if exit.is_some() && sources.is_empty() {
                break;
            }
        }
        for writer in &mut writers {
            writer.finish(log).map_err(log_error)?;
        }
        match exit {
            Some(code) => Ok(code),
            None => Ok(container.wait()?.code()),
        }
    }
    // ANCHOR_END: relay
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: the fd stays open for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn log_error(source: std::io::Error) -> ContainersError {
    ContainersError::Io {
        op: "write",
        path: "the container's log".into(),
        source,
    }
}
