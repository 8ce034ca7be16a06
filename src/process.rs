//! How a container's process ended, in the shell's terms; and running a helper program
//! (nft, pasta, newuidmap) to its end with a time limit.
//!
//! Starting one is [`crate::launch`]'s job: chapter 1's container is the first one
//! launched, with no namespaces at all.
//!
//! See also [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html).

use std::fmt;

/// How a container process ended, in the shell's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Run `command` to its end with `input` on its stdin (a few KiB at most: it is written
/// before the output is read) and its output collected; kill it after `timeout`.
///
/// The output is read while the program runs, so that one that prints more than a pipe
/// holds (64 KiB) does not block forever on a full pipe. A daemon it leaves behind
/// (pasta's) may keep the pipes open: reading stops once the program itself has ended
/// and what it wrote is drained.
pub fn run_within(
    command: &mut std::process::Command,
    input: &[u8],
    timeout: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + timeout;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(input));
    let file = |fd: std::os::fd::OwnedFd| std::fs::File::from(fd);
    let mut pipes = [
        child.stdout.take().map(|p| file(p.into())),
        child.stderr.take().map(|p| file(p.into())),
    ];
    let mut collected = [Vec::new(), Vec::new()];
    let mut status = None;
    loop {
        if status.is_none() {
            status = child.try_wait()?;
        }
        let open: Vec<usize> = (0..2).filter(|&i| pipes[i].is_some()).collect();
        if open.is_empty() && status.is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("did not finish within {timeout:?}"),
            ));
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: pipes[i].as_ref().map_or(-1, |p| p.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll on pollfds we own, with a short timeout.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 10) };
        if ready == 0 && status.is_some() {
            // Ended and drained: what still holds the pipes is not the program.
            break;
        }
        for (fd, &i) in fds.iter().zip(&open) {
            if fd.revents == 0 {
                continue;
            }
            let mut buf = [0u8; 16 * 1024];
            match pipes[i].as_mut().map(|p| p.read(&mut buf)) {
                Some(Ok(0)) | Some(Err(_)) => pipes[i] = None,
                Some(Ok(n)) => collected[i].extend_from_slice(&buf[..n]),
                None => {}
            }
        }
    }
    if let Some(Err(e)) = written {
        // A program that exits without reading its input closes the pipe: EPIPE is its
        // answer, not ours to report.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e);
        }
    }
    let [stdout, stderr] = collected;
    Ok(std::process::Output {
        status: status.expect("the loop ends only once the program has"),
        stdout,
        stderr,
    })
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
    fn run_within_passes_input_and_collects_more_than_a_pipe_holds() {
        let mut cat = std::process::Command::new("cat");
        let output = run_within(&mut cat, b"hello", std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(output.stdout, b"hello");
        // 1 MiB on stdout: a program that fills the pipe must not block forever.
        let mut big = std::process::Command::new("head");
        big.args(["-c", "1048576", "/dev/zero"]);
        let output = run_within(&mut big, b"", std::time::Duration::from_secs(10)).unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout.len(), 1 << 20);
    }

    #[test]
    fn run_within_kills_a_program_past_its_timeout() {
        let mut sleep = std::process::Command::new("sleep");
        sleep.arg("30");
        let err = run_within(&mut sleep, b"", std::time::Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }
}
