//! ch02-namespaces: the hostname, IPC objects and clocks of a container, run for real.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    assert_help_mentions, data_dir, require_root, snapshot_settings, stderr, stderr_as_nobody,
    stdout,
};
use nutshell::ipc::{Found, QueueGuard, QueueNames};
use nutshell::namespaces::read_uptime;

const CH02: &str = env!("CARGO_BIN_EXE_ch02-namespaces");

const NOT_FOUND: Found = Found {
    sysv_id: None,
    posix: false,
};

/// Run ch02-namespaces with `args`, and return its output and its pid (the queues it makes
/// are named after its pid).
fn run(data: &Path, args: &[&str]) -> (Output, u32) {
    let child = Command::new(CH02)
        .args(args)
        .env("NUTSHELL_DATA", data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ch02-namespaces");
    let pid = child.id();
    (
        child.wait_with_output().expect("wait for ch02-namespaces"),
        pid,
    )
}

/// The host's hostname, as this test process sees it.
fn host_name() -> String {
    nutshell::uts::hostname()
}

/// Nothing the binary with `pid` could have made is left: no queues, no mounts.
fn assert_nothing_left(pid: u32, data: &Path) {
    for slot in 0..4 {
        let names = QueueNames::unique(pid, slot);
        assert_eq!(names.lookup().expect("look up"), NOT_FOUND, "{names} left");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let data = data.display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&data)),
        "a mount under {data} was left:\n{mounts}"
    );
}

/// Queues this test process makes: keys in `0x4d......`, never used by the binary, and one
/// `n` per test so that tests running in parallel do not meet.
fn test_queues(n: u8) -> QueueGuard {
    let pid = std::process::id();
    let names = QueueNames {
        sysv_key: 0x4d00_0000 | ((pid & 0x003f_ffff) << 2) as i32 | i32::from(n & 3),
        posix_name: format!("/nutshell-test-{pid}-{n}"),
    };
    let guard = QueueGuard::new(names);
    guard.names().create().expect("create the test's queues");
    guard
}

/// The tour's and break-it's snapshot filters: the host's hostname, the binary's queue
/// names (which carry its pid), and uptimes.
fn tour_settings(data: &Path, pid: u32) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(
        &format!(
            r"(?m)^(\[host\]    hostname: ){}\b",
            regex::escape(&host_name())
        ),
        "${1}[HOST]",
    );
    let host = QueueNames::unique(pid, 0);
    let inside = QueueNames::unique(pid, 1);
    settings.add_filter(&format!("{:#010x}", host.sysv_key), "[HOST KEY]");
    settings.add_filter(&format!("{:#010x}", inside.sysv_key), "[CONTAINER KEY]");
    settings.add_filter(&format!(r"/nutshell-{pid}-"), "/nutshell-[PID]-");
    settings.add_filter(r"up \d+\.\d+ s", "up [SECONDS] s");
    settings
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn tour_shows_each_namespace_isolating_its_resource() {
    require_root();
    let data = data_dir();
    let host = host_name();
    let (output, pid) = run(data.path(), &["--uptime-offset", "86400"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();

    // The container's hostname is its own; the host's was never touched.
    let after_hostname = lines
        .iter()
        .position(|l| *l == "$ hostname")
        .expect("a `$ hostname` line");
    assert_eq!(lines[after_hostname + 1], "nutshell");
    assert_eq!(host_name(), host);

    // The host's queues were not found inside, the container's were not found after it.
    let host_queues = QueueNames::unique(pid, 0);
    let inside_queues = QueueNames::unique(pid, 1);
    for line in [
        format!(
            "[inside]  System V key {:#010x}: not found",
            host_queues.sysv_key
        ),
        format!("[inside]  POSIX {}: not found", host_queues.posix_name),
        format!(
            "[inside]  System V key {:#010x}: found",
            inside_queues.sysv_key
        ),
        format!(
            "[host]    System V key {:#010x}: not found",
            inside_queues.sysv_key
        ),
        format!("[host]    POSIX {}: not found", inside_queues.posix_name),
    ] {
        assert!(
            lines.contains(&line.as_str()),
            "no line {line:?} in:\n{text}"
        );
    }
    for line in [
        "[inside]  CLOCK_MONOTONIC  +86400 s",
        "[inside]  CLOCK_BOOTTIME   +86400 s  (what /proc/uptime shows)",
        "[inside]  CLOCK_REALTIME   +0 s  (the wall clock, what `date` shows: never moved)",
    ] {
        assert!(lines.contains(&line), "no line {line:?} in:\n{text}");
    }
    assert_nothing_left(pid, data.path());
    tour_settings(data.path(), pid).bind(|| insta::assert_snapshot!("ch02_tour", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn without_namespaces_the_same_steps_touch_the_hosts_objects() {
    require_root();
    let data = data_dir();
    let host = host_name();
    let (output, pid) = run(
        data.path(),
        &["--no-namespaces", "--uptime-offset", "86400"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();

    // The stand-in host was renamed; the real one was not.
    assert!(
        lines.contains(
            &"[host]    hostname: nutshell  RENAMED by the container (the stand-in host)"
        ),
        "{text}"
    );
    assert_eq!(host_name(), host);

    let host_queues = QueueNames::unique(pid, 0);
    let inside_queues = QueueNames::unique(pid, 1);
    for line in [
        format!(
            "[inside]  System V key {:#010x}: found",
            host_queues.sysv_key
        ),
        format!("[inside]  POSIX {}: found", host_queues.posix_name),
        format!(
            "[host]    System V key {:#010x}: found",
            inside_queues.sysv_key
        ),
        format!("[host]    POSIX {}: found", inside_queues.posix_name),
        "[inside]  CLOCK_BOOTTIME   +0 s  (what /proc/uptime shows)".to_string(),
    ] {
        assert!(
            lines.contains(&line.as_str()),
            "no line {line:?} in:\n{text}"
        );
    }
    // ...and the binary removed what leaked once it had shown it.
    assert_nothing_left(pid, data.path());
    tour_settings(data.path(), pid).bind(|| insta::assert_snapshot!("ch02_break_it", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_hostname_is_the_containers_and_the_hosts_is_unchanged() {
    require_root();
    let data = data_dir();
    let host = host_name();
    let (output, pid) = run(data.path(), &["--hostname", "box-42", "--", "hostname"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().last(), Some("box-42"));
    assert_eq!(host_name(), host);
    assert_nothing_left(pid, data.path());
}

/// The queues a command inside sees: System V from /proc/sysvipc/msg (keys in decimal),
/// POSIX from an mqueue filesystem mounted in the container's own mount namespace, which
/// shows the queues of the mounting process's IPC namespace.
const LIST_QUEUES: &str = "cat /proc/sysvipc/msg; mount -t mqueue mqueue /tmp && ls /tmp";

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_hosts_queues_are_invisible_inside_and_visible_without_the_namespace() {
    require_root();
    let data = data_dir();
    let queues = test_queues(0);
    let key = queues.names().sysv_key.to_string();
    let name = queues
        .names()
        .posix_name
        .trim_start_matches('/')
        .to_string();
    let sees = |text: &str| {
        let words: Vec<&str> = text.split_whitespace().collect();
        (
            words.contains(&key.as_str()),
            words.contains(&name.as_str()),
        )
    };

    let (inside, pid) = run(data.path(), &["--", "sh", "-c", LIST_QUEUES]);
    assert!(inside.status.success(), "{}", stderr(&inside));
    assert_eq!(
        sees(&stdout(&inside)),
        (false, false),
        "{}",
        stdout(&inside)
    );
    assert_nothing_left(pid, data.path());

    let (leaky, pid) = run(
        data.path(),
        &["--no-namespaces", "--", "sh", "-c", LIST_QUEUES],
    );
    assert!(leaky.status.success(), "{}", stderr(&leaky));
    assert_eq!(sees(&stdout(&leaky)), (true, true), "{}", stdout(&leaky));
    assert_nothing_left(pid, data.path());
    queues.remove().expect("remove the test's queues");
}

/// The uptime a `cat /proc/uptime` inside printed, between two host readings.
fn uptime_inside(data: &Path, args: &[&str]) -> (f64, f64, f64) {
    let before = read_uptime(Path::new("/proc")).expect("host uptime");
    let (output, pid) = run(data, args);
    let after = read_uptime(Path::new("/proc")).expect("host uptime");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let inside = text
        .lines()
        .last()
        .and_then(nutshell::namespaces::parse_uptime)
        .unwrap_or_else(|| panic!("no uptime in:\n{text}"));
    assert_nothing_left(pid, data);
    (before, inside, after)
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_uptime_offset_moves_the_containers_uptime_only() {
    require_root();
    let data = data_dir();
    let offset = 86400.0;
    let (before, inside, after) = uptime_inside(
        data.path(),
        &["--uptime-offset", "86400", "--", "cat", "/proc/uptime"],
    );
    // /proc/uptime has two decimals: allow for that, and for the time the run took.
    assert!(
        before + offset - 0.02 <= inside && inside <= after + offset + 0.02,
        "inside {inside} is not the host's {before}..{after} + {offset}"
    );

    let (before, inside, after) = uptime_inside(
        data.path(),
        &[
            "--no-namespaces",
            "--uptime-offset",
            "86400",
            "--",
            "cat",
            "/proc/uptime",
        ],
    );
    assert!(
        before - 0.02 <= inside && inside <= after + 0.02,
        "without a time namespace the uptime {inside} should be the host's {before}..{after}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_wall_clock_is_not_moved() {
    require_root();
    let data = data_dir();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    };
    let before = now();
    let (output, pid) = run(
        data.path(),
        &["--uptime-offset", "86400", "--", "date", "+%s"],
    );
    let after = now();
    assert!(output.status.success(), "{}", stderr(&output));
    let inside: u64 = stdout(&output)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("seconds since the epoch");
    assert!(
        before <= inside && inside <= after,
        "{before} {inside} {after}"
    );
    assert_nothing_left(pid, data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_commands_exit_status_is_passed_on() {
    require_root();
    let data = data_dir();
    let (output, _) = run(data.path(), &["--", "sh", "-c", "exit 3"]);
    assert_eq!(output.status.code(), Some(3));
}

/// Bad input: one line on stderr, exit 1, and nothing left behind.
fn assert_refused(args: &[&str], message: &str) {
    let data = data_dir();
    let (output, pid) = run(data.path(), args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!("ch02-namespaces: error: {message}\n")
    );
    assert!(
        !stdout(&output).contains("made"),
        "something was made: {}",
        stdout(&output)
    );
    assert_nothing_left(pid, data.path());
    assert!(
        !data.path().join("images").exists(),
        "the default image was built for a run that was refused"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_invalid_hostname_is_refused_before_anything_is_made() {
    require_root();
    assert_refused(
        &["--hostname", "under_score"],
        "hostname \"under_score\" is not valid: each dot-separated label must be 1 to 63 letters, digits or '-', not starting or ending with '-'",
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_negative_uptime_offset_is_refused() {
    require_root();
    assert_refused(
        &["--uptime-offset", "-5"],
        "--uptime-offset -5 is negative: a container's uptime can only be moved forward (0 or more seconds)",
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_missing_rootfs_is_one_clear_line() {
    require_root();
    assert_refused(
        &["--rootfs", "/nonexistent/rootfs"],
        "rootfs /nonexistent/rootfs cannot be used: No such file or directory (os error 2)",
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootfs_without_a_shell_is_refused() {
    require_root();
    let empty = data_dir();
    let path = empty.path().display().to_string();
    assert_refused(
        &["--rootfs", &path],
        &format!(
            "rootfs {path} has no /bin/sh: give a root filesystem with a shell, or leave out --rootfs for the default image"
        ),
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_told_it_needs_root() {
    require_root();
    let data = data_dir();
    let err = stderr_as_nobody(CH02, data.path());
    assert!(
        err.starts_with(
            "ch02-namespaces: error: ch02-namespaces needs root: new namespaces need CAP_SYS_ADMIN"
        ),
        "{err}"
    );
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH02,
        &[
            "--rootfs",
            "--hostname",
            "--uptime-offset",
            "--no-namespaces",
            "[CMD]...",
        ],
    );
}

#[test]
fn bad_flags_are_refused_without_root() {
    // validate() runs before require_root, so this needs no privileges.
    let data = data_dir();
    let (output, _) = run(data.path(), &["--hostname=-bad"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("ch02-namespaces: error: hostname \"-bad\" is not valid"),
        "{}",
        stderr(&output)
    );
}
