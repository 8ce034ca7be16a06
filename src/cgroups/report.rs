//! What chapter 5 prints about a container's cgroup: where it is, what the limits did,
//! measured from the cgroup's own counters.

use std::fmt::Write as _;
use std::time::Duration;

use super::cgroup::{Cgroup, CpuStats, MemoryEvents, PidsStats};
use super::cpu::CpuQuota;
use super::layout::{CgroupLayout, CgroupVersion};

/// The layout and the cgroup's directories, one per hierarchy, with their controllers.
pub fn describe(layout: &CgroupLayout, cgroup: &Cgroup) -> String {
    let mut text = format!("cgroup layout: {}\n", layout.layout);
    let width = cgroup
        .dirs()
        .iter()
        .map(|d| d.path.display().to_string().len())
        .max()
        .unwrap_or(0);
    for dir in cgroup.dirs() {
        let version = dir.version.short();
        let _ = writeln!(
            text,
            "  {version} {:<width$}  {}",
            dir.path.display().to_string(),
            dir.controllers.join(" ")
        );
    }
    text
}

/// The file CPU usage is counted in: v1's separate cpuacct hierarchy, or v2's cpu.stat.
fn usage_file(cgroup: &Cgroup) -> &'static str {
    match cgroup
        .dirs()
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == "cpu"))
    {
        Some(dir) if dir.version == CgroupVersion::V1 => "cpuacct.usage",
        _ => "cpu.stat usage_usec",
    }
}

// ANCHOR: report_cpu
/// Expected vs measured CPU over `wall`, between the counters `before` and `after`, and
/// how often and how long the group was throttled.
pub fn cpu_report(
    cgroup: &Cgroup,
    quota: Option<CpuQuota>,
    threads: u64,
    online: usize,
    wall: Duration,
    before: CpuStats,
    after: CpuStats,
) -> String {
    // ANCHOR: measured_cpu
    let online = online as f64;
    let wanted = (threads as f64).min(online);
    let expected = quota.map_or(wanted, |q| q.cpus().min(wanted));
    let used = after.usage_ns.saturating_sub(before.usage_ns) as f64 / 1e9;
    let measured = used / wall.as_secs_f64();
    let periods = after.nr_periods.saturating_sub(before.nr_periods);
    let throttled = after.nr_throttled.saturating_sub(before.nr_throttled);
    let throttled_s = after.throttled_ns.saturating_sub(before.throttled_ns) as f64 / 1e9;
    let share = if periods == 0 {
        0.0
    } else {
        100.0 * throttled as f64 / periods as f64
    };
    // ANCHOR_END: measured_cpu
    let mut text = format!(
        "\nmeasured over {:.2} s of the run, from the cgroup's own counters:\n",
        wall.as_secs_f64()
    );
    let _ = match quota {
        Some(q) => writeln!(
            text,
            "  expected   {expected:.2} CPU: the quota, {} of every {} µs ({threads} busy threads want {wanted:.2})",
            q.quota_us, q.period_us
        ),
        None => writeln!(
            text,
            "  expected   {expected:.2} CPU: no quota; {threads} busy threads on {online} CPUs take {wanted:.2}"
        ),
    };
    let _ = writeln!(
        text,
        "  measured   {measured:.2} CPU: {used:.2} s of CPU time ({}) in {:.2} s; {:.2}x the expected",
        usage_file(cgroup),
        wall.as_secs_f64(),
        measured / expected
    );
    let _ = writeln!(
        text,
        "  periods    {periods} with runnable threads (nr_periods), {throttled} ended throttled (nr_throttled): {share:.0}%"
    );
    let _ = writeln!(
        text,
        "  throttled  {throttled_s:.2} s in total (throttled time): runnable threads waiting for the next period\n"
    );
    match quota {
        Some(q) => {
            let _ = writeln!(
                text,
                "Each {} ms period the group may run for {} ms in total, on all CPUs together.",
                q.period_us / 1000,
                q.quota_us as f64 / 1000.0
            );
            text.push_str(
                "Busy threads use that up early in the period; then the kernel takes them off\n",
            );
            text.push_str(
                "the CPU (throttles the group) until the next period refills the quota. So the\n",
            );
            text.push_str(
                "threads do not run slower: they run at full speed in bursts, and wait.\n",
            );
        }
        None => {
            text.push_str(
                "No quota: nothing throttles the group, and busy threads take whole CPUs from\n",
            );
            text.push_str(
                "everything else on the machine. Run the tour with --cpus 0.5 to compare.\n",
            );
        }
    }
    text
}
// ANCHOR_END: report_cpu

/// What the OOM killer did, from the memory controller's counters.
pub fn oom_report(cgroup: &Cgroup, exit: &str, code: i32, events: MemoryEvents) -> String {
    let counter = match cgroup
        .dirs()
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == "memory"))
    {
        Some(dir) if dir.version == CgroupVersion::V1 => "memory.oom_control oom_kill",
        _ => "memory.events oom_kill",
    };
    let mut text = format!("\nthe allocator {exit}: exit status {code}\n");
    let _ = writeln!(text, "  {counter}: {}", events.oom_kill);
    if events.limit_hits > 0 {
        let _ = writeln!(text, "  times usage hit the limit: {}", events.limit_hits);
    }
    if let Some(peak) = events.peak_bytes {
        let _ = writeln!(text, "  peak usage: {} MiB", peak >> 20);
    }
    if events.oom_kill > 0 {
        text.push_str(
            "\nAt the limit the kernel first reclaims what it can (page cache; swap is not\n",
        );
        text.push_str(
            "allowed here). Anonymous memory that is in use cannot be reclaimed, so it ran the\n",
        );
        text.push_str(
            "OOM killer inside the cgroup only: SIGKILL (signal 9) for the biggest process, and\n",
        );
        text.push_str("128 + 9 = 137 is the status a shell reports. Nothing outside the container was touched.\n");
    }
    text
}

/// What pids.max did to a fork bomb, and whether the host could still fork meanwhile.
pub fn fork_bomb_report(
    limit: u64,
    full: PidsStats,
    host_forked: bool,
    after: PidsStats,
) -> String {
    let mut text = String::from("\nwhile the container was full:\n");
    let _ = writeln!(text, "  pids.current: {} (pids.max {limit})", full.current);
    let _ = writeln!(
        text,
        "  the host started a process: {}",
        if host_forked { "yes" } else { "no" }
    );
    let _ = writeln!(
        text,
        "forks refused by pids.max (pids.events max): {}\n",
        after.max_hits
    );
    text.push_str(
        "pids.max counts every task in the cgroup, threads included. At the limit fork(2)\n",
    );
    text.push_str(
        "and clone(2) fail with EAGAIN, inside the container only: a fork bomb stops at\n",
    );
    text.push_str("the limit instead of filling the host's process table.\n");
    text
}
