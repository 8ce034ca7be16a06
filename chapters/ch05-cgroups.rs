//! Chapter 5: the chapter 4 container in a cgroup of its own, under limits it cannot
//! exceed, and in a cgroup namespace.
//!
//! The book walks through this file: book/src/ch05-cgroups.md.

use std::fmt::Write as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nutshell::cgroups::{
    self, Cgroup, CgroupLayout, CgroupVersion, CpuQuota, CpuStats, DEFAULT_PERIOD_US, MIN_QUOTA_US,
    Resources, Setting, online_cpus,
};
use nutshell::cli::{
    LimitArgs, NamespaceArgs, RootfsArgs, main_with, non_negative, require_root, shell_line,
};
use nutshell::init;
use nutshell::mounts::{self, MountPlan};
use nutshell::namespaces::Namespace;
use nutshell::process::{self, Child, Command, Exit, Step};
use nutshell::rootfs::require_shell;
use nutshell::uts::hostname_step;
use nutshell::workloads;

/// Chapter 5: run the chapter 4 container in a cgroup of its own, with CPU, memory and
/// process limits, and in a cgroup namespace.
///
/// Without a command it takes the tour: it prints which cgroup files get which values for
/// `--cpus 0.5` (or the limits you give), runs busy threads inside for a few seconds, and
/// measures what they got from the cgroup's own counters. Then try `--cpus 0.25
/// --threads 4`, `--cpu-shares 512` (see the v2 weight), `--oom` (the OOM killer),
/// `--fork-bomb` (pids.max), `--no-limits` (what a busy loop takes without a quota), and
/// `-- sh` to look around (`cat /proc/self/cgroup`).
#[derive(Parser)]
#[command(name = "ch05-cgroups")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    // --cpus (the tour defaults to 0.5), --memory and --pids-limit, as in chapters 6 and 7.
    #[command(flatten)]
    limits: LimitArgs,
    /// CPU time the container may use per period, in microseconds (instead of --cpus)
    #[arg(
        long,
        value_name = "US",
        allow_negative_numbers = true,
        conflicts_with = "cpus"
    )]
    cpu_quota: Option<i64>,
    /// The period of --cpu-quota, in microseconds, 1000 to 1000000 [default: 100000]
    #[arg(
        long,
        value_name = "US",
        allow_negative_numbers = true,
        conflicts_with = "cpus"
    )]
    cpu_period: Option<i64>,
    /// Relative CPU weight under contention, in v1 shares (2 to 262144, default 1024)
    #[arg(long, value_name = "SHARES", allow_negative_numbers = true)]
    cpu_shares: Option<i64>,
    /// Busy threads the tour runs inside
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        allow_negative_numbers = true
    )]
    threads: i64,
    /// How long the tour's threads run, in seconds
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    seconds: i64,
    /// Allocate memory inside until the OOM killer stops it [default --memory 64M]
    #[arg(long, conflicts_with_all = ["fork_bomb", "no_limits", "command"])]
    oom: bool,
    /// Start processes inside until pids.max refuses them [default --pids-limit 32]
    #[arg(long, conflicts_with_all = ["no_limits", "command"])]
    fork_bomb: bool,
    /// Break it: the tour's busy threads with no CPU limit at all
    #[arg(long, conflicts_with_all = ["cpus", "cpu_quota", "cpu_period", "command"])]
    no_limits: bool,
    /// The command to run inside [default: the tour]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// What the container runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Demo {
    /// Busy threads, measured; `limited` is false for `--no-limits`.
    Tour {
        limited: bool,
    },
    Oom,
    ForkBomb,
    Command,
}

const TOUR_CPUS: f64 = 0.5;
const OOM_MEMORY: &str = "64M";
const FORK_BOMB_PIDS: u64 = 32;
/// Most busy threads and seconds the tour accepts: enough to see anything, and a typo
/// does not start 10000 threads or a day-long run.
const MAX_THREADS: u64 = 256;
const MAX_SECONDS: u64 = 60;

fn main() -> std::process::ExitCode {
    main_with("ch05-cgroups", || {
        let args = Args::parse();
        require_root(
            "ch05-cgroups",
            "creating cgroups and clone(2) with new namespaces need root",
        )?;
        let demo = if args.oom {
            Demo::Oom
        } else if args.fork_bomb {
            Demo::ForkBomb
        } else if !args.command.is_empty() {
            Demo::Command
        } else {
            Demo::Tour {
                limited: !args.no_limits,
            }
        };
        // Everything is checked before anything is created: bad input leaves nothing.
        args.namespaces.validate()?;
        let threads = in_range("--threads", args.threads, 1, MAX_THREADS)?;
        let seconds = in_range("--seconds", args.seconds, 1, MAX_SECONDS)?;
        let resources = resources(&args, demo)?;
        let layout =
            cgroups::detect_host(Path::new("/proc")).context("detect the cgroup layout")?;
        let settings = cgroups::plan(&resources, &layout, cgroups::swap_accounting(&layout))?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;
        let plan = MountPlan::for_rootfs(&rootfs, mounts::tty_gid(&rootfs));

        let name = format!("nutshell-{}", std::process::id());
        let path = format!("{}/{name}", cgroups::PARENT);
        let mut cgroup = Cgroup::create(&layout, &path, &controllers(&layout, &settings))?;
        cgroup.apply(&settings)?;
        print_plan(&layout, &cgroup, &args, demo, &settings);

        // Before the clone: a signal sent from here on waits, pending, to be forwarded,
        // and this process lives on to remove the cgroup.
        init::block_handled_signals().context("block the signals to forward")?;
        let code = match demo {
            Demo::Tour { .. } => tour(
                &cgroup,
                &plan,
                &args.namespaces,
                &resources,
                threads,
                seconds,
            )?,
            Demo::Oom => oom(&cgroup, &plan, &args.namespaces, &resources)?,
            Demo::ForkBomb => fork_bomb(&cgroup, &plan, &args.namespaces, &resources)?,
            Demo::Command => {
                let command = Command::new(&args.command)?;
                println!("\n$ {}", shell_line(&args.command));
                let child = start_container(&cgroup, &plan, &args.namespaces, || {
                    init::run_as_init(&command)
                })
                .with_context(|| format!("run `{}`", shell_line(&args.command)))?;
                let exit =
                    init::wait_forwarding_signals(child).context("wait for the container")?;
                if let Exit::Signal(_) = exit {
                    eprintln!("ch05-cgroups: the container's PID 1 {exit}");
                }
                exit.code()
            }
        };
        cgroup.remove()?;
        println!("\ncgroup {name} removed.");
        Ok(code)
    })
}

/// `value` as a count between `min` and `max`, or an error naming the flag.
fn in_range(flag: &str, value: i64, min: u64, max: u64) -> anyhow::Result<u64> {
    u64::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| anyhow::anyhow!("{flag} {value}: must be between {min} and {max}"))
}

// ANCHOR: resources
/// The limits asked for, checked against what the kernel accepts and this machine has.
fn resources(args: &Args, demo: Demo) -> anyhow::Result<Resources> {
    let online = online_cpus();
    let quota = non_negative("--cpu-quota", args.cpu_quota)?;
    let period = non_negative("--cpu-period", args.cpu_period)?;
    let cpu_quota = match (args.limits.cpu_quota()?, quota, period) {
        (Some(quota), _, _) => Some(quota),
        (None, Some(quota), period) => {
            let quota = cgroups::quota_from_parts(quota, period.unwrap_or(DEFAULT_PERIOD_US))?;
            if quota.cpus() > online as f64 {
                anyhow::bail!(
                    "--cpu-quota {} per --cpu-period {} is {:.2} CPUs: this machine has {online}",
                    quota.quota_us,
                    quota.period_us,
                    quota.cpus()
                );
            }
            Some(quota)
        }
        (None, None, Some(period)) => {
            cgroups::quota_from_parts(MIN_QUOTA_US, period)?;
            anyhow::bail!("--cpu-period {period} needs --cpu-quota: a period alone limits nothing")
        }
        (None, None, None) if demo == Demo::Tour { limited: true } => {
            Some(cgroups::quota_from_cpus(TOUR_CPUS, online)?)
        }
        (None, None, None) => None,
    };
    let cpu_shares = non_negative("--cpu-shares", args.cpu_shares)?
        .map(cgroups::validate_shares)
        .transpose()?;
    let memory_bytes = match args.limits.memory_bytes()? {
        None if demo == Demo::Oom => Some(cgroups::parse_size(OOM_MEMORY)?),
        memory => memory,
    };
    let pids_max = match args.limits.pids_max()? {
        None if demo == Demo::ForkBomb => Some(FORK_BOMB_PIDS),
        pids => pids,
    };
    Ok(Resources {
        cpu_quota,
        cpu_shares,
        memory_bytes,
        pids_max,
        ..Resources::default()
    })
}
// ANCHOR_END: resources

/// The controllers the cgroup needs: those of the settings, and always `cpu` (and v1's
/// separate `cpuacct`, where usage is counted) for the CPU time report.
fn controllers<'a>(layout: &CgroupLayout, settings: &'a [Setting]) -> Vec<&'a str> {
    let mut controllers = vec!["cpu"];
    if layout.v1_mount_for("cpuacct").is_some() {
        controllers.push("cpuacct");
    }
    for setting in settings {
        if !controllers.contains(&setting.controller.as_str()) {
            controllers.push(&setting.controller);
        }
    }
    controllers
}

/// The header: where the cgroup is, what was asked, and the plan as a table.
fn print_plan(
    layout: &CgroupLayout,
    cgroup: &Cgroup,
    args: &Args,
    demo: Demo,
    settings: &[Setting],
) {
    println!("ch05-cgroups: the chapter 4 container, in a cgroup of its own");
    println!("cgroup layout: {}", layout.layout);
    let width = cgroup
        .dirs()
        .iter()
        .map(|d| d.path.display().to_string().len())
        .max()
        .unwrap_or(0);
    for dir in cgroup.dirs() {
        let version = match dir.version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        };
        println!(
            "  {version} {:<width$}  {}",
            dir.path.display().to_string(),
            dir.controllers.join(" ")
        );
    }
    println!();
    let mut asked = String::new();
    if let Some(cpus) = args.limits.cpus {
        let _ = write!(asked, " --cpus {cpus}");
    }
    if let Some(quota) = args.cpu_quota {
        let _ = write!(asked, " --cpu-quota {quota}");
    }
    if let Some(period) = args.cpu_period {
        let _ = write!(asked, " --cpu-period {period}");
    }
    if let Some(shares) = args.cpu_shares {
        let _ = write!(asked, " --cpu-shares {shares}");
    }
    if let Some(memory) = &args.limits.memory {
        let _ = write!(asked, " --memory {memory}");
    }
    if let Some(pids) = args.limits.pids_limit {
        let _ = write!(asked, " --pids-limit {pids}");
    }
    let defaults = match demo {
        Demo::Tour { limited: true } if args.limits.cpus.is_none() && args.cpu_quota.is_none() => {
            format!(" --cpus {TOUR_CPUS} (the tour's default)")
        }
        Demo::Oom if args.limits.memory.is_none() => {
            format!(" --memory {OOM_MEMORY} (--oom's default)")
        }
        Demo::ForkBomb if args.limits.pids_limit.is_none() => {
            format!(" --pids-limit {FORK_BOMB_PIDS} (--fork-bomb's default)")
        }
        _ => String::new(),
    };
    if settings.is_empty() {
        println!("asked: no limits: the cgroup only counts");
    } else {
        println!("asked:{asked}{defaults}");
        print!("{}", cgroups::render_table(settings));
    }
}

// ANCHOR: start_container
/// Clone the container's first process into new UTS, IPC, time, mount and PID
/// namespaces. Before anything else it joins the cgroup, so that whatever it starts is
/// limited; then it makes its cgroup namespace, whose root is the cgroup it is in at that
/// moment; then the hostname, the mount plan, and `body`.
fn start_container(
    cgroup: &Cgroup,
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    body: impl FnOnce() -> i32,
) -> anyhow::Result<Child> {
    let isolation = namespaces.isolation(&[
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
    ]);
    let mut steps = vec![
        Step::new(format!("join cgroup {}", cgroup.name()), || {
            cgroup.join_self()
        }),
        // Not a clone flag: cloned with CLONE_NEWCGROUP, the namespace would be rooted
        // at the parent's cgroup, before the join.
        Step::new("unshare the cgroup namespace", || {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        }),
        hostname_step(&namespaces.hostname),
    ];
    steps.extend(mounts::steps(plan));
    Ok(process::spawn_fn(&isolation, steps, body)?)
}
// ANCHOR_END: start_container

/// Run `during` while the container runs; if it fails, kill the container (its PID 1:
/// the whole PID namespace goes with it) so that the cgroup can be removed. Then wait.
fn while_running<T>(
    child: Child,
    during: impl FnOnce(Pid) -> anyhow::Result<T>,
) -> anyhow::Result<(T, Exit)> {
    let pid = child.pid();
    match during(pid) {
        Ok(value) => {
            let exit = init::wait_forwarding_signals(child).context("wait for the container")?;
            Ok((value, exit))
        }
        Err(err) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = child.wait();
            Err(err)
        }
    }
}

/// The cgroup paths of process `pid`, as its /proc/PID/cgroup shows them to us.
fn cgroup_lines(pid: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// In the container: show its view of /proc/self/cgroup.
fn print_inside_view() {
    println!("\n[inside]  /proc/self/cgroup (the cgroup namespace's view):");
    for line in cgroup_lines("self") {
        println!("[inside]    {line}");
    }
}

/// The tour: busy threads inside, measured from outside by the cgroup's counters.
fn tour(
    cgroup: &Cgroup,
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    resources: &Resources,
    threads: u64,
    seconds: u64,
) -> anyhow::Result<i32> {
    let child = start_container(cgroup, plan, namespaces, || {
        print_inside_view();
        workloads::burn(threads, seconds)
    })
    .context("run the busy threads")?;
    // Measure inside the run: after the threads have started, and before they stop.
    let settle = Duration::from_millis(200);
    let window = Duration::from_secs(seconds).saturating_sub(2 * settle);
    let (measured, exit) = while_running(child, |pid| {
        thread::sleep(settle);
        let (start, before) = (Instant::now(), cgroup.cpu_stats()?);
        thread::sleep(window);
        let (wall, after) = (start.elapsed(), cgroup.cpu_stats()?);
        Ok((wall, before, after, cgroup_lines(&pid.to_string())))
    })?;
    let (wall, before, after, host_view) = measured;
    println!("[host]    the same process, seen from the host's /proc/PID/cgroup:");
    for line in host_view.iter().filter(|l| l.contains(cgroup.name())) {
        println!("[host]      {line}");
    }
    report_cpu(cgroup, resources.cpu_quota, threads, wall, before, after);
    Ok(exit.code())
}

// ANCHOR: report_cpu
/// Expected vs measured CPU, and how often and how long the group was throttled.
fn report_cpu(
    cgroup: &Cgroup,
    quota: Option<CpuQuota>,
    threads: u64,
    wall: Duration,
    before: CpuStats,
    after: CpuStats,
) {
    let online = online_cpus() as f64;
    let wanted = (threads as f64).min(online);
    let expected = quota.map_or(wanted, |q| q.cpus().min(wanted));
    let used = after.usage_ns.saturating_sub(before.usage_ns) as f64 / 1e9;
    let measured = used / wall.as_secs_f64();
    let periods = after.nr_periods.saturating_sub(before.nr_periods);
    let throttled = after.nr_throttled.saturating_sub(before.nr_throttled);
    let throttled_s = after.throttled_ns.saturating_sub(before.throttled_ns) as f64 / 1e9;
    let usage_file = match cgroup
        .dirs()
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == "cpu"))
    {
        Some(dir) if dir.version == CgroupVersion::V1 => "cpuacct.usage",
        _ => "cpu.stat usage_usec",
    };
    println!();
    println!(
        "measured over {:.2} s of the run, from the cgroup's own counters:",
        wall.as_secs_f64()
    );
    match quota {
        Some(q) => println!(
            "  expected   {expected:.2} CPU: the quota, {} of every {} µs ({threads} busy threads want {wanted:.2})",
            q.quota_us, q.period_us
        ),
        None => println!(
            "  expected   {expected:.2} CPU: no quota; {threads} busy threads on {online} CPUs take {wanted:.2}"
        ),
    }
    println!(
        "  measured   {measured:.2} CPU: {used:.2} s of CPU time ({usage_file}) in {:.2} s; {:.2}x the expected",
        wall.as_secs_f64(),
        measured / expected
    );
    let share = if periods == 0 {
        0.0
    } else {
        100.0 * throttled as f64 / periods as f64
    };
    println!(
        "  periods    {periods} with runnable threads (nr_periods), {throttled} ended throttled (nr_throttled): {share:.0}%"
    );
    println!(
        "  throttled  {throttled_s:.2} s in total (throttled time): runnable threads waiting for the next period"
    );
    println!();
    match quota {
        Some(q) => {
            println!(
                "Each {} ms period the group may run for {} ms in total, on all CPUs together.",
                q.period_us / 1000,
                q.quota_us as f64 / 1000.0
            );
            println!(
                "Busy threads use that up early in the period; then the kernel takes them off"
            );
            println!(
                "the CPU (throttles the group) until the next period refills the quota. So the"
            );
            println!("threads do not run slower: they run at full speed in bursts, and wait.");
        }
        None => {
            println!(
                "No quota: nothing throttles the group, and busy threads take whole CPUs from"
            );
            println!("everything else on the machine. Run the tour with --cpus 0.5 to compare.");
        }
    }
    println!("Try --oom, --fork-bomb, --no-limits, or --cpus 0.25 --threads 4.");
}
// ANCHOR_END: report_cpu

/// `--oom`: a process allocates past the memory limit; the OOM killer ends it.
fn oom(
    cgroup: &Cgroup,
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    resources: &Resources,
) -> anyhow::Result<i32> {
    let limit = resources.memory_bytes.unwrap_or(0);
    let child = start_container(cgroup, plan, namespaces, || workloads::allocate(limit))
        .context("run the allocator")?;
    let ((), exit) = while_running(child, |_| Ok(()))?;
    let events = cgroup.memory_events()?;
    let counter = match cgroup
        .dirs()
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == "memory"))
    {
        Some(dir) if dir.version == CgroupVersion::V1 => "memory.oom_control oom_kill",
        _ => "memory.events oom_kill",
    };
    println!();
    println!("the allocator {exit}: exit status {}", exit.code());
    println!("  {counter}: {}", events.oom_kill);
    if events.limit_hits > 0 {
        println!("  times usage hit the limit: {}", events.limit_hits);
    }
    if let Some(peak) = events.peak_bytes {
        println!("  peak usage: {} MiB", peak >> 20);
    }
    println!();
    if events.oom_kill > 0 {
        println!("At the limit the kernel first reclaims what it can (page cache; swap is not");
        println!(
            "allowed here). Anonymous memory that is in use cannot be reclaimed, so it ran the"
        );
        println!(
            "OOM killer inside the cgroup only: SIGKILL (signal 9) for the biggest process, and"
        );
        println!(
            "128 + 9 = 137 is the status a shell reports. Nothing outside the container was touched."
        );
    }
    Ok(exit.code())
}

/// `--fork-bomb`: forks past pids.max fail inside; the host still forks.
fn fork_bomb(
    cgroup: &Cgroup,
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    resources: &Resources,
) -> anyhow::Result<i32> {
    let limit = resources.pids_max.unwrap_or(FORK_BOMB_PIDS);
    let child = start_container(cgroup, plan, namespaces, || workloads::fork_loop(limit))
        .context("run the fork loop")?;
    let (full, exit) = while_running(child, |_| {
        // The loop takes milliseconds; the container holds its processes for a second.
        thread::sleep(Duration::from_millis(500));
        let full = cgroup.pids_stats()?;
        let host = std::process::Command::new("true")
            .status()
            .context("start `true` on the host")?;
        Ok((full, host.success()))
    })?;
    let (stats, host_ok) = full;
    let after = cgroup.pids_stats()?;
    println!();
    println!("while the container was full:");
    println!("  pids.current: {} (pids.max {limit})", stats.current);
    println!(
        "  the host started a process: {}",
        if host_ok { "yes" } else { "no" }
    );
    println!(
        "forks refused by pids.max (pids.events max): {}",
        after.max_hits
    );
    println!();
    println!("pids.max counts every task in the cgroup, threads included. At the limit fork(2)");
    println!("and clone(2) fail with EAGAIN, inside the container only: a fork bomb stops at");
    println!("the limit instead of filling the host's process table.");
    Ok(exit.code())
}
