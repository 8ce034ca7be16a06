//! The host side's file descriptors for its container: the sync socket, and the pidfd
//! that names the first process without the races of a pid.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::wire::Report;

/// A SOCK_SEQPACKET pair, close-on-exec: (host side's end, child's end).
pub(super) fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills the two fds of the array passed.
    Errno::result(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: two new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(super) fn send_message(sync: BorrowedFd, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: send from a buffer of the length passed.
    let sent = Errno::result(unsafe {
        libc::send(
            sync.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    })?;
    if sent as usize == bytes.len() {
        Ok(())
    } else {
        Err(Errno::EMSGSIZE)
    }
}

/// The next report, waiting at most `timeout`; `None` when the other end closed.
pub(super) fn receive_report(sync: BorrowedFd, timeout: Duration) -> Result<Option<Report>, Errno> {
    if !poll_readable(sync, timeout)? {
        return Err(Errno::ETIMEDOUT);
    }
    let mut bytes = [0u8; 64];
    // SAFETY: recv into a buffer of the length passed.
    let got = loop {
        match Errno::result(unsafe {
            libc::recv(sync.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len(), 0)
        }) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if got == 0 {
        return Ok(None);
    }
    Report::decode(&bytes[..got as usize])
        .map(Some)
        .ok_or(Errno::EBADMSG)
}

/// poll(2) `fd` for input for at most `timeout`: whether it is readable (for a pidfd:
/// whether the process has exited).
pub(crate) fn poll_readable(fd: BorrowedFd, timeout: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pollfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: poll on one pollfd of ours.
        match Errno::result(unsafe { libc::poll(&mut pollfd, 1, ms) }) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open on a pid; the result is a new fd or -1.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd, signal: Signal) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal on our pidfd, with no siginfo.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}
