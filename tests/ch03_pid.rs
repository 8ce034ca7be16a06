//! ch03-pid: PID 1 and ps inside, zombies reaped or not, signals forwarded or ignored, the
//! exit status passed on — run for real, through the chapter binary.
//!
//! Every test that leaves a container running for a while holds it in a [`Running`],
//! which kills the container's PID 1 (and with it the whole namespace) and the binary when
//! dropped, so that a failing assertion leaves no process behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::{
    assert_help_mentions, binary, data_dir, require_root, snapshot_settings, stderr,
    stderr_as_nobody, stdout,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const CH03: &str = env!("CARGO_BIN_EXE_ch03-pid");

/// Long enough for a slow machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The host pid of the container's PID 1, from the line the binary prints on stderr.
fn host_pid_in(line: &str) -> Option<Pid> {
    let rest = line.strip_prefix("ch03-pid: the container's PID 1 is pid ")?;
    let number = rest.split_whitespace().next()?;
    number.parse().ok().map(Pid::from_raw)
}

/// Snapshot settings for a run whose container's PID 1 was `pid` on the host.
fn settings_for(data: &std::path::Path, pid: Pid) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(&format!(r"\b{pid}\b"), "[HOST PID]");
    // Each test builds its own default image, and says so; the reader's is built once.
    settings.add_filter(r"built the default image .*\n", "");
    settings
}

/// A chapter binary started in the background, with its stderr read line by line.
struct Running {
    child: std::process::Child,
    stderr: Receiver<String>,
    seen: Vec<String>,
    /// The container's PID 1, once the binary has printed it.
    pid1: Option<Pid>,
}

impl Running {
    fn start(data: &std::path::Path, args: &[&str]) -> Running {
        let mut child = std::process::Command::new(CH03)
            .env("NUTSHELL_DATA", data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ch03-pid");
        let pipe = child.stderr.take().expect("stderr");
        let (send, stderr) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stderr,
            seen: Vec::new(),
            pid1: None,
        }
    }

    /// Wait until the binary says which host pid is the container's PID 1.
    fn container_pid1(&mut self) -> Pid {
        let deadline = Instant::now() + TIMEOUT;
        while self.pid1.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.pid1 = host_pid_in(&line);
                    self.seen.push(line);
                }
                Err(e) => panic!("no PID 1 line on stderr ({e:?}); saw {:?}", self.seen),
            }
        }
        self.pid1.expect("set above")
    }

    /// Whether the binary is still running after `time`.
    fn still_running_after(&mut self, time: Duration) -> bool {
        std::thread::sleep(time);
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait (with a timeout) for the binary to end; its exit code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => break status,
                None if Instant::now() > deadline => panic!("ch03-pid did not end in time"),
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        loop {
            match self.stderr.recv_timeout(TIMEOUT) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stderr stayed open"),
            }
        }
        let mut out = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut pipe, &mut out).expect("read stdout");
        }
        let err = self.seen.iter().map(|l| format!("{l}\n")).collect();
        (status.code(), out, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only while the binary runs: until it has reaped its child, the container's
        // PID 1 cannot have been replaced by an unrelated process with the same pid.
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid1) = self.pid1 {
                // SIGKILL from the host reaches even a PID 1; the kernel then kills the
                // rest of its namespace.
                let _ = kill(pid1, Signal::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_init_is_pid_1_and_ps_lists_only_the_containers_processes() {
    require_root();
    let data = data_dir();
    let output = binary(CH03, data.path())
        .timeout(TIMEOUT)
        .output()
        .expect("run ch03-pid");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let ps: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("$ ps"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(
        ps,
        [
            "PID   PPID  COMMAND",
            "    1     0 nutshell-init",
            "    2     1 sh",
            "    3     2 ps",
        ],
        "{text}"
    );
    let pid = stderr(&output)
        .lines()
        .find_map(host_pid_in)
        .expect("the PID 1 line");
    // The host sees PID 1 at its own pid, and inside its namespace as 1.
    assert!(text.contains(&format!("NSpid:\t{pid}\t1\n")), "{text}");
    settings_for(data.path(), pid).bind(|| insta::assert_snapshot!("ch03_tour", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_init_reaps_orphans_so_no_zombie_is_left() {
    require_root();
    let data = data_dir();
    let output = binary(CH03, data.path())
        .arg("--orphans")
        .timeout(TIMEOUT)
        .output()
        .expect("run ch03-pid --orphans");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("    1     0 S    nutshell-init\n"), "{text}");
    assert!(!text.contains(" Z "), "a zombie was left:\n{text}");
    snapshot_settings(data.path()).bind(|| insta::assert_snapshot!("ch03_orphans", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn without_an_init_an_orphan_stays_a_zombie() {
    require_root();
    let data = data_dir();
    let output = binary(CH03, data.path())
        .args(["--orphans", "--no-init"])
        .timeout(TIMEOUT)
        .output()
        .expect("run ch03-pid --orphans --no-init");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("    1     0 S    sleep\n"), "{text}");
    assert!(
        text.lines().any(|l| l.ends_with(" 1 Z    sleep")),
        "no zombie orphan:\n{text}"
    );
    snapshot_settings(data.path()).bind(|| insta::assert_snapshot!("ch03_orphans_no_init", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn sigterm_to_the_containers_pid_1_is_forwarded_to_the_command() {
    require_root();
    let data = data_dir();
    let mut running = Running::start(data.path(), &["--", "sleep", "30"]);
    let pid1 = running.container_pid1();
    kill(pid1, Signal::SIGTERM).expect("kill -TERM");
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(128 + 15), "{err}");
    settings_for(data.path(), pid1).bind(|| insta::assert_snapshot!("ch03_sigterm_forwarded", err));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_command_sees_the_forwarded_sigterm_and_its_status_is_passed_on() {
    require_root();
    let data = data_dir();
    let script = "trap 'echo the command got SIGTERM; exit 42' TERM; echo ready; sleep 30 & wait";
    let mut running = Running::start(data.path(), &["--", "sh", "-c", script]);
    let pid1 = running.container_pid1();
    // The trap must be set before the signal comes: wait for the script's first line.
    let mut stdout = BufReader::new(running.child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while line != "ready\n" {
        line.clear();
        stdout.read_line(&mut line).expect("read stdout");
        assert!(!line.is_empty(), "the script ended before it was ready");
    }
    kill(pid1, Signal::SIGTERM).expect("kill -TERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read stdout");
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(42), "{err}");
    assert_eq!(rest, "the command got SIGTERM\n");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn sigterm_to_the_binary_is_passed_on_to_the_container() {
    require_root();
    let data = data_dir();
    let mut running = Running::start(data.path(), &["--", "sleep", "30"]);
    running.container_pid1();
    let binary = Pid::from_raw(i32::try_from(running.child.id()).expect("pid"));
    kill(binary, Signal::SIGTERM).expect("kill -TERM");
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(128 + 15), "{err}");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_bare_pid_1_ignores_sigterm_but_not_sigkill() {
    require_root();
    let data = data_dir();
    let mut running = Running::start(data.path(), &["--no-init", "--", "sleep", "30"]);
    let pid1 = running.container_pid1();
    kill(pid1, Signal::SIGTERM).expect("kill -TERM");
    assert!(
        running.still_running_after(Duration::from_millis(500)),
        "sleep as PID 1 died of SIGTERM: it has no handler, so the kernel should drop it"
    );
    kill(pid1, Signal::SIGKILL).expect("kill -KILL");
    let (code, _, err) = running.finish();
    assert_eq!(code, Some(128 + 9), "{err}");
    settings_for(data.path(), pid1).bind(|| insta::assert_snapshot!("ch03_sigterm_ignored", err));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_commands_exit_status_is_passed_on() {
    require_root();
    let data = data_dir();
    for (args, code) in [
        (&["--", "sh", "-c", "exit 3"][..], 3),
        (&["--no-init", "--", "sh", "-c", "exit 3"][..], 3),
        (&["--", "sh", "-c", "kill -KILL $$"][..], 128 + 9),
    ] {
        let output = binary(CH03, data.path())
            .args(args)
            .timeout(TIMEOUT)
            .output()
            .expect("run");
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// The `ch03-pid: error:` lines of a run's stderr.
fn error_lines(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("ch03-pid: error:"))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn bad_input_is_one_clear_line_and_builds_nothing() {
    require_root();
    let data = data_dir();
    let empty = data_dir();
    let empty_path = empty.path().display().to_string();
    for (args, expected) in [
        (
            vec!["--rootfs", "/nonexistent/rootfs"],
            "ch03-pid: error: rootfs /nonexistent/rootfs cannot be used: No such file or directory (os error 2)".to_string(),
        ),
        (
            vec!["--rootfs", &empty_path],
            format!(
                "ch03-pid: error: rootfs {empty_path} has no /bin/sh: give a root filesystem with a shell, or leave out --rootfs for the default image"
            ),
        ),
        (
            vec!["--uptime-offset", "-5"],
            "ch03-pid: error: --uptime-offset -5 is negative: a container's uptime can only be moved forward (0 or more seconds)".to_string(),
        ),
    ] {
        let output = binary(CH03, data.path())
            .args(&args)
            .timeout(TIMEOUT)
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output), format!("{expected}\n"), "{args:?}");
    }
    let output = binary(CH03, data.path())
        .args(["--hostname", "bad_name"])
        .timeout(TIMEOUT)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(error_lines(&output).len(), 1, "{}", stderr(&output));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    assert!(!data.path().join("images").exists());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_command_missing_from_the_rootfs_is_named() {
    require_root();
    let data = data_dir();
    // With the init or without, the exec's failure comes back to the host side, which
    // names it and exits 127, as a shell does for a command it cannot find.
    for args in [
        &["--", "no-such-program"][..],
        &["--no-init", "--", "no-such-program"],
    ] {
        let output = binary(CH03, data.path())
            .args(args)
            .timeout(TIMEOUT)
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(127), "{args:?}");
        assert_eq!(
            error_lines(&output),
            [
                "ch03-pid: error: run `no-such-program`: exec no-such-program failed in the container process: ENOENT: No such file or directory (no such program in the container (looked up in its PATH), or its ELF interpreter is missing from the image)"
            ],
            "{args:?}"
        );
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_told_it_needs_root() {
    require_root();
    let data = data_dir();
    let err = stderr_as_nobody(CH03, data.path());
    assert!(
        err.starts_with("ch03-pid: error: ch03-pid needs root: "),
        "{err}"
    );
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH03,
        &[
            "--rootfs",
            "--hostname",
            "--uptime-offset",
            "--no-init",
            "--orphans",
            "kill -TERM",
            "[CMD]...",
        ],
    );
}
