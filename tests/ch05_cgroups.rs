//! ch05-cgroups, for real through the chapter binary: the tour's measured CPU quota,
//! the OOM kill, the fork bomb stopped at pids.max, the cgroup namespace, and bad input.
//! Every privileged test ends by checking that no cgroup named after the binary's pid is
//! left anywhere under /sys/fs/cgroup.
//!
//! The pure parts (quota and weight math, layout detection, the settings plan) are unit-
//! and snapshot-tested in src/cgroups/.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use common::{
    assert_help_mentions, assert_no_cgroup_left, assert_snapshot_for_layout, data_dir, layout_name,
    require_root, run_named, snapshot_settings, stderr, stderr_as_nobody, stdout,
};
use nutshell::cgroups::{CgroupVersion, detect_host};
use regex::Regex;

const CH05: &str = env!("CARGO_BIN_EXE_ch05-cgroups");

/// The machine has two cores: two CPU burners at once would distort each other's numbers,
/// so the tests that measure CPU take turns.
static MEASURING: Mutex<()> = Mutex::new(());

/// Run the binary with `args` and a name of its own to the end; return its output and
/// the name (its cgroup's too).
fn run(data: &Path, args: &[&str]) -> (Output, String) {
    run_named(CH05, data, "ch05", args)
}

/// The first capture groups of `pattern` in `text`, as numbers.
fn numbers(text: &str, pattern: &str) -> Vec<f64> {
    let captures = Regex::new(pattern)
        .expect("regex")
        .captures(text)
        .unwrap_or_else(|| panic!("no line matches {pattern} in:\n{text}"));
    captures
        .iter()
        .skip(1)
        .flatten()
        .map(|m| m.as_str().parse().expect("a number"))
        .collect()
}

/// The snapshot settings of this chapter: pids, and the measured numbers as placeholders.
fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"measured over \d+\.\d+ s", "measured over [WALL] s");
    settings.add_filter(
        r"measured   \d+\.\d+ CPU: \d+\.\d+ s of CPU time \(([^)]*)\) in \d+\.\d+ s; \d+\.\d+x",
        "measured   [CPU] CPU: [USED] s of CPU time ($1) in [WALL] s; [RATIO]x",
    );
    settings.add_filter(
        r"periods    \d+ with runnable threads \(nr_periods\), \d+ ended throttled \(nr_throttled\): \d+%",
        "periods    [PERIODS] with runnable threads (nr_periods), [THROTTLED] ended throttled (nr_throttled): [SHARE]%",
    );
    settings.add_filter(r"throttled  \d+\.\d+ s", "throttled  [TIME] s");
    settings.add_filter(
        r"times usage hit the limit: \d+",
        "times usage hit the limit: [COUNT]",
    );
    // On a pure v1 host, /proc/PID/cgroup lists the v2 hierarchy (`0::/`) only once
    // something has mounted cgroup2 since boot: a fact about the machine's history,
    // not about the container.
    if layout_name() == "v1" {
        settings.add_filter(r"(?m)^\[inside\]    0::/\n", "");
    }
    settings
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH05,
        &[
            "--cpus",
            "--memory",
            "--pids-limit",
            "--oom",
            "--fork-bomb",
            "--no-limits",
        ],
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_refused_up_front() {
    require_root();
    let data = data_dir();
    let err = stderr_as_nobody(CH05, data.path());
    assert!(
        err.starts_with("ch05-cgroups: error: ch05-cgroups needs root"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn half_a_cpu_for_two_busy_threads_measures_half_a_cpu_throttled() {
    require_root();
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let data = data_dir();
    let (output, pid) = run(data.path(), &["--seconds", "3", "--threads", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // DESIGN §4: a quota of at most 0.5 CPU with more busy threads than the quota
    // measures 0.8x to 1.1x of the quota, with throttling seen.
    let ratio = numbers(&text, r"measured   [0-9.]+ CPU: .* ([0-9.]+)x the expected")[0];
    assert!(
        (0.8..=1.1).contains(&ratio),
        "measured {ratio}x the quota:\n{text}"
    );
    let periods = numbers(
        &text,
        r"periods    (\d+) with runnable threads \(nr_periods\), (\d+) ended throttled",
    );
    assert!(
        periods[0] > 0.0 && periods[1] > 0.0,
        "no throttling seen:\n{text}"
    );
    // The cgroup namespace: every hierarchy is `/` inside.
    for line in text.lines().filter(|l| l.starts_with("[inside]    ")) {
        assert!(line.ends_with(":/"), "not the namespace's root: {line}");
    }
    assert_snapshot_for_layout(settings(data.path()), "ch05_tour", &text);
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn without_limits_busy_threads_are_never_throttled() {
    require_root();
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let data = data_dir();
    let (output, pid) = run(
        data.path(),
        &["--no-limits", "--seconds", "2", "--threads", "2"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let periods = numbers(
        &text,
        r"periods    (\d+) with runnable threads \(nr_periods\), (\d+) ended throttled",
    );
    assert_eq!(periods[1], 0.0, "throttled without a quota:\n{text}");
    // More than the tour's quota could ever give, even on a busy machine.
    let measured = numbers(&text, r"measured   ([0-9.]+) CPU")[0];
    assert!(
        measured > 0.6,
        "only {measured} CPU without a limit:\n{text}"
    );
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn allocating_past_the_memory_limit_ends_in_an_oom_kill() {
    require_root();
    let data = data_dir();
    let (output, pid) = run(data.path(), &["--oom"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(137), "{text}{}", stderr(&output));
    let kills = numbers(&text, r"oom_kill: (\d+)")[0];
    assert!(kills >= 1.0, "no OOM kill counted:\n{text}");
    assert_snapshot_for_layout(settings(data.path()), "ch05_oom", &text);
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_host_still_forks() {
    require_root();
    let data = data_dir();
    let (output, pid) = run(data.path(), &["--fork-bomb", "--pids-limit", "24"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let current = numbers(&text, r"pids.current: (\d+) \(pids.max (\d+)\)");
    assert!(current[0] <= current[1], "over the limit:\n{text}");
    let refused = numbers(&text, r"pids.events max\): (\d+)")[0];
    assert!(refused >= 1.0, "no fork refused:\n{text}");
    assert!(text.contains("the host started a process: yes"), "{text}");
    assert_snapshot_for_layout(settings(data.path()), "ch05_fork_bomb", &text);
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn inside_the_cgroup_namespace_the_container_is_the_root() {
    require_root();
    let data = data_dir();
    let layout = detect_host(Path::new("/proc")).expect("detect the cgroup layout");
    // The container's view of its cgroup, which the plan mounts read-only at
    // /sys/fs/cgroup: the pids hierarchy under its own name on v1, the one tree on v2.
    let pids = match layout.mount_for("pids").map(|m| m.version) {
        Some(CgroupVersion::V1) => "/sys/fs/cgroup/pids",
        _ => "/sys/fs/cgroup",
    };
    let script = format!(
        "cat /proc/self/cgroup; echo pids.max=$(cat {pids}/pids.max) && \
         echo dirs=$(find {pids} -mindepth 1 -type d | wc -l)"
    );
    let (output, pid) = run(
        data.path(),
        &["--pids-limit", "17", "--", "sh", "-c", &script],
    );
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    // With a command, the host's pid of PID 1, to end the container from outside.
    assert!(
        Regex::new(r"(?m)^ch05-cgroups: the container's PID 1 is pid (\d+) on the host; `kill -9 (\d+)` from another terminal ends it$")
            .expect("regex")
            .captures(&stderr(&output))
            .is_some_and(|c| c[1] == c[2]),
        "{}",
        stderr(&output)
    );
    let proc_lines: Vec<&str> = text
        .lines()
        .filter(|l| Regex::new(r"^\d+:[^:]*:").expect("regex").is_match(l))
        .collect();
    assert!(!proc_lines.is_empty(), "{text}");
    for line in proc_lines {
        assert!(line.ends_with(":/"), "not the namespace's root: {line}");
    }
    assert!(
        text.contains("pids.max=17"),
        "the mounted cgroupfs is not the container's cgroup:\n{text}"
    );
    assert!(
        text.contains("dirs=0"),
        "the mounted cgroupfs shows cgroups beyond the container's:\n{text}"
    );
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn bad_limits_are_refused_before_anything_is_created() {
    require_root();
    let data = data_dir();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--cpus", "0"],
            "--cpus 0: must be a number greater than 0",
        ),
        (
            &["--cpus", "-1"],
            "--cpus -1: must be a number greater than 0",
        ),
        (
            &["--cpus", "1000"],
            "--cpus 1000: must be a number greater than 0",
        ),
        (
            &["--memory", "1k"],
            "memory limit 1024 bytes: must be at least",
        ),
        (
            &["--cpu-period", "10"],
            "cpu period 10 µs: must be between 1000 and 1000000",
        ),
        (
            &["--cpu-quota", "-5"],
            "--cpu-quota -5: must not be negative",
        ),
        (&["--pids-limit", "0"], "pids limit 0: must be at least 1"),
        (
            &["--cpu-shares", "1"],
            "cpu shares 1: must be between 2 and 262144",
        ),
    ];
    for (args, message) in cases {
        let (output, pid) = run(data.path(), args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(
            err.starts_with(&format!("ch05-cgroups: error: {message}")),
            "{args:?}: {err}"
        );
        assert!(
            stdout(&output).is_empty(),
            "{args:?} printed: {}",
            stdout(&output)
        );
        assert_no_cgroup_left(&pid);
    }
}

/// Run by `just test-layouts` in its pure-v2 guest before the guest's init enables any
/// controller, and skipped by `just test-all` on the host, whose root is not bare: a
/// root that delegates nothing is what a pure-v2 machine without systemd gives, and
/// nutshell, which never writes to a cgroup it did not make, says what to enable.
#[test]
#[ignore = "needs a pure cgroup v2 root with no controller enabled: `just test-layouts` runs it in its v2 guest"]
fn on_a_bare_v2_root_the_refusal_says_which_controller_to_enable() {
    require_root();
    let layout = detect_host(Path::new("/proc")).expect("detect the cgroup layout");
    let root = layout
        .v2_mount()
        .filter(|_| layout.layout == nutshell::cgroups::Layout::V2)
        .expect("this test needs a pure cgroup v2 host: `just test-layouts` runs it in one");
    let control = root.mount_point.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).expect("read the root's subtree_control");
    assert_eq!(
        enabled.trim(),
        "",
        "the root enables controllers already: {enabled}"
    );
    let data = data_dir();
    let (output, pid) = run(data.path(), &["--seconds", "1"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    // The default image is built first (it says so); then the refusal, in one line.
    let refusal: Vec<&str> = err
        .lines()
        .filter(|line| !line.starts_with("built the default image"))
        .collect();
    assert_eq!(refusal.len(), 1, "not one line: {err}");
    let control = control.display();
    assert!(
        err.contains(&format!(
            "controller cpu is not enabled in {control}: nutshell never writes to a cgroup \
             it did not create; enable it as root with `echo +cpu > {control}`"
        )),
        "{err}"
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert_no_cgroup_left(&pid);
}
