//! Chapter 5: the chapter 4 container in a cgroup of its own, under limits it cannot
//! exceed, and in a cgroup namespace.
//!
//! The book walks through this file: book/src/ch05-cgroups.md.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use nutshell::cgroups::{self, Resources, online_cpus, report};
use nutshell::cli::{ContainerArgs, LimitArgs, NamespaceArgs, main_with, require_root, shell_line};
use nutshell::launch::{self, Container, ParentStep};
use nutshell::process::Exit;
use nutshell::spec::{CgroupSpec, Program, chapters};
use nutshell::workloads::Builtin;

/// Chapter 5: run the chapter 4 container in a cgroup of its own, with CPU, memory and
/// process limits, and in a cgroup namespace.
///
/// Without a command it takes the tour: it prints which cgroup files get which values for
/// `--cpus 0.5` (or the limits you give), runs busy threads inside for a few seconds, and
/// measures what they got from the cgroup's own counters. Then try `--cpus 0.25
/// --threads 4`, `--cpu-shares 512` (see the v2 weight), `--oom` (the OOM killer),
/// `--fork-bomb` (pids.max), `--no-limits` (what a busy loop takes without a quota),
/// `--plan`, and `-- sh` to look around (`cat /proc/self/cgroup`).
#[derive(Parser)]
#[command(name = "ch05-cgroups")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    // --cpus (the tour defaults to 0.5), --cpu-quota, --cpu-shares, --memory, --pids-limit.
    #[command(flatten)]
    limits: LimitArgs,
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

const TOUR_CPUS: f64 = 0.5;
const OOM_MEMORY: &str = "64M";
const FORK_BOMB_PIDS: u64 = 32;
/// Most busy threads and seconds the tour accepts: enough to see anything, and a typo
/// does not start 10000 threads or a day-long run.
const MAX_THREADS: u64 = 256;
const MAX_SECONDS: u64 = 60;

fn main() -> std::process::ExitCode {
    main_with("ch05-cgroups", || -> anyhow::Result<i32> {
        let args = Args::parse();
        // Everything is checked before anything is created: bad input leaves nothing.
        args.namespaces.validate()?;
        let threads = in_range("--threads", args.threads, 1, MAX_THREADS)?;
        let seconds = in_range("--seconds", args.seconds, 1, MAX_SECONDS)?;
        let (resources, defaults) = resources(&args)?;
        if !args.container.plan {
            require_root(
                "ch05-cgroups",
                "creating cgroups and clone(2) with new namespaces need root",
            )?;
        }
        let program = if args.oom {
            Program::Builtin(Builtin::Allocate {
                limit: resources.memory_bytes.unwrap_or(0),
            })
        } else if args.fork_bomb {
            Program::Builtin(Builtin::ForkLoop {
                limit: resources.pids_max.unwrap_or(FORK_BOMB_PIDS),
            })
        } else if args.command.is_empty() {
            Program::Builtin(Builtin::Burn { threads, seconds })
        } else {
            Program::Args(args.command.clone())
        };
        let rootfs = args.container.rootfs()?;
        // ANCHOR: spec
        let mut spec = chapters::for_chapter(5, &rootfs, program);
        args.namespaces.apply(&mut spec)?;
        spec.cgroup = Some(CgroupSpec {
            path: None,
            resources: resources.clone(),
            ..Default::default()
        });
        // Chapter 5's programs are the limits' demos, each PID 1 of its container.
        spec.process.init = !args.command.is_empty();
        // ANCHOR_END: spec
        let Some((plan, facts)) = args.container.plan_or_print(&spec, &rootfs, true)? else {
            return Ok(0);
        };
        let settings: Vec<_> = plan
            .parent
            .iter()
            .filter_map(|step| match step {
                ParentStep::WriteCgroup(setting) => Some(setting.clone()),
                _ => None,
            })
            .collect();
        // Before the clone: a signal sent from here on waits, pending, to be forwarded,
        // and this process lives on to remove the cgroup.
        nutshell::init::block_handled_signals().context("block the signals to forward")?;
        let mut container = launch::create(plan, &spec, &facts)?;
        let (layout, cgroup) = (facts.cgroups.as_ref(), container.cgroup());
        println!("ch05-cgroups: the chapter 4 container, in a cgroup of its own");
        if let (Some(layout), Some(cgroup)) = (layout, cgroup) {
            print!("{}", report::describe(layout, cgroup));
        }
        println!();
        if settings.is_empty() {
            println!("asked: no limits: the cgroup only counts");
        } else {
            println!("asked:{}{defaults}", args.limits.describe());
            print!("{}", cgroups::render_table(&settings));
        }
        if !args.command.is_empty() {
            // Inside, `ps` shows PID 1; to end the container from another terminal (a
            // fork bomb in `-- sh`, say), the reader needs the host's number for it.
            let host_pid = container.pid().context("no first process")?;
            eprintln!(
                "ch05-cgroups: the container's PID 1 is pid {host_pid} on the host; `kill -9 {host_pid}` from another terminal ends it"
            );
            println!("\n$ {}", shell_line(&args.command));
        }
        container.start().context("start the container")?;
        let code = if args.oom {
            oom(&mut container)?
        } else if args.fork_bomb {
            fork_bomb(&mut container, resources.pids_max.unwrap_or(FORK_BOMB_PIDS))?
        } else if args.command.is_empty() {
            tour(&mut container, resources.cpu_quota, threads, seconds)?
        } else {
            let exit = container
                .wait_forwarding_signals()
                .context("wait for the container")?;
            if let Exit::Signal(_) = exit {
                eprintln!("ch05-cgroups: the container's PID 1 {exit}");
            }
            exit.code()
        };
        let id = container.id().clone();
        container.remove()?;
        println!("\ncgroup nutshell/{id} removed.");
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
/// The limits the flags ask for, with the demos' defaults; and what those defaults were,
/// for the header.
fn resources(args: &Args) -> anyhow::Result<(Resources, String)> {
    let mut resources = args.limits.resources()?;
    let tour = !args.oom && !args.fork_bomb && args.command.is_empty();
    let mut defaults = String::new();
    if tour && !args.no_limits && resources.cpu_quota.is_none() {
        resources.cpu_quota = Some(cgroups::quota_from_cpus(TOUR_CPUS, online_cpus())?);
        defaults = format!(" --cpus {TOUR_CPUS} (the tour's default)");
    }
    if args.oom && resources.memory_bytes.is_none() {
        resources.memory_bytes = Some(cgroups::parse_size(OOM_MEMORY)?);
        defaults = format!(" --memory {OOM_MEMORY} (--oom's default)");
    }
    if args.fork_bomb && resources.pids_max.is_none() {
        resources.pids_max = Some(FORK_BOMB_PIDS);
        defaults = format!(" --pids-limit {FORK_BOMB_PIDS} (--fork-bomb's default)");
    }
    Ok((resources, defaults))
}
// ANCHOR_END: resources

/// The tour: busy threads inside, measured from outside by the cgroup's counters,
/// inside the run: after the threads have started, and before they stop.
fn tour(
    container: &mut Container,
    quota: Option<cgroups::CpuQuota>,
    threads: u64,
    seconds: u64,
) -> anyhow::Result<i32> {
    let settle = Duration::from_millis(200);
    let window = Duration::from_secs(seconds).saturating_sub(2 * settle);
    let cgroup = container.cgroup().context("the container has no cgroup")?;
    thread::sleep(settle);
    let (start, before) = (Instant::now(), cgroup.cpu_stats()?);
    thread::sleep(window);
    let (wall, after) = (start.elapsed(), cgroup.cpu_stats()?);
    let pid = container.pid().context("no first process")?;
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let report = report::cpu_report(cgroup, quota, threads, online_cpus(), wall, before, after);
    let id = container.id().to_string();
    let exit = container.wait_forwarding_signals()?;
    println!("[host]    the same process, seen from the host's /proc/PID/cgroup:");
    for line in host_view.lines().filter(|l| l.contains(&id)) {
        println!("[host]      {line}");
    }
    print!("{report}");
    println!("Try --oom, --fork-bomb, --no-limits, or --cpus 0.25 --threads 4.");
    Ok(exit.code())
}

/// `--oom`: a process allocates past the memory limit; the OOM killer ends it.
fn oom(container: &mut Container) -> anyhow::Result<i32> {
    let exit = container.wait_forwarding_signals()?;
    let cgroup = container.cgroup().context("the container has no cgroup")?;
    print!(
        "{}",
        report::oom_report(
            cgroup,
            &exit.to_string(),
            exit.code(),
            cgroup.memory_events()?
        )
    );
    Ok(exit.code())
}

/// `--fork-bomb`: forks past pids.max fail inside; the host still forks.
fn fork_bomb(container: &mut Container, limit: u64) -> anyhow::Result<i32> {
    // The loop takes milliseconds; the container holds its processes for a second.
    thread::sleep(Duration::from_millis(500));
    let cgroup = container.cgroup().context("the container has no cgroup")?;
    let full = cgroup.pids_stats()?;
    let host = std::process::Command::new("true")
        .status()
        .context("start `true` on the host")?;
    let exit = container.wait_forwarding_signals()?;
    let cgroup = container.cgroup().context("the container has no cgroup")?;
    print!(
        "{}",
        report::fork_bomb_report(limit, full, host.success(), cgroup.pids_stats()?)
    );
    Ok(exit.code())
}
