//! Chapter 11's soak: N containers through nutshell's `create`, `start` and `delete`,
//! with about a tenth of them interrupted, and a count of what that leaked.
//!
//! For about one container in ten (drawn from a small deterministic generator, its seed
//! printed first, so that a run can be repeated) the `nutshell create` or `nutshell
//! start` process is SIGKILLed, by its pid, at a random moment within the time that
//! command usually takes (measured on a few containers first). After a kill the soak does
//! what a user would do next: it goes on with the next container, whose `create` sweeps
//! stale state. At the end it runs `nutshell list`, and `delete --force` for each id still
//! listed (counted apart: a container killed during `start` is a created container, which
//! only `delete` removes). Then it counts what is left:
//!
//! - mounts: lines of `/proc/self/mountinfo` naming the soak's temp dir;
//! - cgroups: directories under each cgroup hierarchy's `nutshell/` named by a soak id;
//! - state: entries left in the soak's `--root`, and container dirs in its data dir;
//! - processes: any whose command line or executable names `nutshell-init` or the soak's
//!   temp dir, or whose cgroup is a soak id's (not counting those that were there before
//!   the soak began, nor another runtime user's `nutshell-init` in its own cgroup).
//!
//! It prints the counts and fails if anything leaked or a container that was not killed
//! failed. Run it as root with `just soak N` (`cargo bench --bench soak -- N [SEED]`).
//! Everything it makes (nutshell's data dir, its `--root`, the bundle) is in one temp dir
//! under the target directory, removed at the end, also on error; nothing touches
//! /var/lib/nutshell or /run/nutshell. Every wait has a timeout.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
/// Containers when no count is given.
const DEFAULT_COUNT: usize = 200;
/// The generator's seed when none is given: issue 15.
const DEFAULT_SEED: u64 = 0x5eed_0015;
/// The share of containers whose nutshell is killed, in percent.
const KILL_PERCENT: u64 = 10;
/// Containers run untouched first, to measure how long create and start take.
const CALIBRATION: usize = 5;
/// How long one nutshell command may take before the soak kills it and fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a started `true` may take to be reported stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// splitmix64: a tiny, well-mixed generator, deterministic for a given seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (the bias is below 2^-40 for the bounds used here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// The command of a container's life that gets the SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Create,
    Start,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Start => "start",
        }
    }
}

/// How one container's life went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Created, started, stopped and deleted.
    Lived,
    /// Its nutshell was SIGKILLed in this phase.
    Killed(Phase),
    /// A command failed though nothing was killed.
    Failed,
}

/// What the soak found, for the report.
#[derive(Default)]
struct Tally {
    lived: usize,
    killed: BTreeMap<Phase, Vec<String>>,
    /// Kills that came too late: the command had already exited.
    missed: usize,
    failed: Vec<String>,
    /// Ids still listed at the end, and the phase each was killed in, if it was.
    listed: Vec<(String, Option<Phase>)>,
}

/// The soak's temp dir under the target directory; when dropped, every container the
/// soak's `--root` still lists is deleted (`delete --force`), any mount left under the
/// dir is unmounted, and the dir is removed.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    fn root(&self) -> PathBuf {
        self.path().join("state")
    }

    fn bundle(&self) -> PathBuf {
        self.path().join("bundle")
    }

    /// `nutshell --root ROOT ARGS`, with the soak's data dir.
    fn nutshell(&self, args: &[&str]) -> Command {
        let mut command = Command::new(NUTSHELL);
        command
            .env("NUTSHELL_DATA", self.data())
            .arg("--root")
            .arg(self.root())
            .args(args);
        command
    }

    /// The ids `nutshell list` shows.
    fn listed(&self) -> Result<Vec<String>> {
        let out = call(self.nutshell(&["list", "--quiet"]))?;
        if !out.status.success() {
            bail!(
                "nutshell list failed ({}): {}",
                out.status,
                out.stderr.trim()
            );
        }
        Ok(out.stdout.lines().map(str::to_string).collect())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.root().exists() {
            match self.listed() {
                Ok(ids) => {
                    for id in ids {
                        let deleted = call(self.nutshell(&["delete", "--force", &id]));
                        if let Err(e) = deleted {
                            eprintln!("soak: cleaning up {id}: {e:#}");
                        }
                    }
                }
                Err(e) => eprintln!("soak: cleaning up: {e:#}"),
            }
        }
        common::unmount_under(self.path(), "soak");
        // Best effort, like the TempDir's own removal after it (when the field drops).
        nutshell::image::layer::remove_layer_dir(self.path());
    }
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the soak starts and kills real containers: run it as root (`sudo -E just soak`)"
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The soak; true if nothing leaked and nothing failed.
fn run() -> Result<bool> {
    // `cargo bench` adds `--bench` to a harness-less bench's arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let count = match args.first() {
        Some(n) => n
            .parse::<usize>()
            .with_context(|| format!("{n:?} is not a number of containers"))?,
        None => DEFAULT_COUNT,
    };
    let seed = match args.get(1) {
        Some(s) => parse_seed(s)?,
        None => DEFAULT_SEED,
    };
    println!(
        "soak: {count} containers, about {KILL_PERCENT}% of them SIGKILLed in create or start; seed {seed:#x} (again: cargo bench --bench soak -- {count} {seed:#x})"
    );
    let mut rng = SplitMix64(seed);
    let before = nutshell_processes(None)?;
    let work = Work {
        dir: tempfile::Builder::new()
            .prefix("soak-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .context("make the soak's temp dir")?,
    };
    make_bundle(&work)?;
    let prefix = format!("soak-{}-", std::process::id());
    let mut tally = Tally::default();
    let mut create_times = Vec::new();
    let mut start_times = Vec::new();
    for n in 0..CALIBRATION {
        let id = format!("{prefix}calibrate-{n}");
        let (create, start) = live(&work, &id)?;
        create_times.push(create);
        start_times.push(start);
    }
    let window = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let windows = [
        (Phase::Create, window(&mut create_times)),
        (Phase::Start, window(&mut start_times)),
    ];
    println!(
        "kill window (median of {CALIBRATION} untouched runs): create {:.1} ms, start {:.1} ms",
        windows[0].1.as_secs_f64() * 1e3,
        windows[1].1.as_secs_f64() * 1e3
    );
    let mut kills: BTreeMap<String, Phase> = BTreeMap::new();
    for n in 0..count {
        let id = format!("{prefix}{n}");
        let kill = (rng.below(100) < KILL_PERCENT).then(|| {
            let (phase, window) = windows[rng.below(2) as usize];
            let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
            (phase, Duration::from_micros(rng.below(micros)))
        });
        match one_container(&work, &id, kill, &mut tally)? {
            Fate::Lived => tally.lived += 1,
            Fate::Killed(phase) => {
                kills.insert(id.clone(), phase);
                tally.killed.entry(phase).or_default().push(id);
            }
            Fate::Failed => tally.failed.push(id),
        }
    }

    // What a user does at the end: look, and delete what is still there.
    for id in work.listed()? {
        let out = call(work.nutshell(&["delete", "--force", &id]))?;
        if !out.status.success() {
            eprintln!(
                "{id}: delete --force failed ({}): {}",
                out.status,
                out.stderr.trim()
            );
            tally.failed.push(format!("{id} (delete --force)"));
        }
        let phase = kills.get(&id).copied();
        tally.listed.push((id, phase));
    }

    let leaks = Leaks::find(&work, &prefix, &before)?;
    report(count, &tally, &leaks);
    Ok(leaks.total() == 0 && tally.failed.is_empty())
}

fn parse_seed(text: &str) -> Result<u64> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.with_context(|| format!("{text:?} is not a seed (a number, or hex with 0x)"))
}

/// The bundle: the default image (built in the soak's data dir) copied to `rootfs/`, and
/// `nutshell spec`'s config running `true` without a terminal.
fn make_bundle(work: &Work) -> Result<()> {
    let data = work.data();
    fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
    let mut image = Command::new(NUTSHELL);
    image.env("NUTSHELL_DATA", &data).args(["image", "default"]);
    succeed(image, "build the default image")?;
    let bundle = work.bundle();
    fs::create_dir(&bundle).with_context(|| format!("mkdir {}", bundle.display()))?;
    let mut copy = Command::new("cp");
    copy.arg("-a")
        .arg(data.join("images/default/rootfs"))
        .arg(bundle.join("rootfs"));
    succeed(copy, "copy the default image into the bundle")?;
    let mut spec = Command::new(NUTSHELL);
    spec.env("NUTSHELL_DATA", &data)
        .arg("spec")
        .arg("--bundle")
        .arg(&bundle);
    succeed(spec, "nutshell spec")?;
    let path = bundle.join("config.json");
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut config: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(["true"]);
    let text = serde_json::to_string_pretty(&config).context("encode config.json")?;
    fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// One untouched container's life, for the kill windows: how long create and start took.
fn live(work: &Work, id: &str) -> Result<(Duration, Duration)> {
    let bundle = path_str(&work.bundle())?;
    let started = Instant::now();
    succeed(
        work.nutshell(&["create", "--bundle", &bundle, id]),
        "create",
    )?;
    let create = started.elapsed();
    let started = Instant::now();
    succeed(work.nutshell(&["start", id]), "start")?;
    let start = started.elapsed();
    wait_stopped(work, id)?;
    succeed(work.nutshell(&["delete", id]), "delete")?;
    Ok((create, start))
}

/// One container of the soak, its nutshell SIGKILLed `kill.1` into the `kill.0` command
/// if `kill` says so.
fn one_container(
    work: &Work,
    id: &str,
    kill: Option<(Phase, Duration)>,
    tally: &mut Tally,
) -> Result<Fate> {
    let bundle = path_str(&work.bundle())?;
    let steps: [(Phase, Vec<&str>); 2] = [
        (Phase::Create, vec!["create", "--bundle", &bundle, id]),
        (Phase::Start, vec!["start", id]),
    ];
    for (phase, args) in steps {
        let delay = kill.and_then(|(at, delay)| (at == phase).then_some(delay));
        let (out, killed) = call_killing(work.nutshell(&args), delay)?;
        if killed {
            println!(
                "{id}: SIGKILL to nutshell {} after {:.2} ms",
                phase.name(),
                delay.unwrap_or_default().as_secs_f64() * 1e3
            );
            return Ok(Fate::Killed(phase));
        }
        if delay.is_some() {
            tally.missed += 1;
        }
        if !out.status.success() {
            eprintln!(
                "{id}: nutshell {} failed ({}): {}",
                phase.name(),
                out.status,
                out.stderr.trim()
            );
            force_delete(work, id);
            return Ok(Fate::Failed);
        }
    }
    if let Err(e) = wait_stopped(work, id) {
        eprintln!("{id}: {e:#}");
        force_delete(work, id);
        return Ok(Fate::Failed);
    }
    let out = call(work.nutshell(&["delete", id]))?;
    if !out.status.success() {
        eprintln!(
            "{id}: nutshell delete failed ({}): {}",
            out.status,
            out.stderr.trim()
        );
        force_delete(work, id);
        return Ok(Fate::Failed);
    }
    Ok(Fate::Lived)
}

/// `delete --force ID`, after a failure: what failed is reported already.
fn force_delete(work: &Work, id: &str) {
    match call(work.nutshell(&["delete", "--force", id])) {
        Ok(out) if !out.status.success() => {
            eprintln!(
                "{id}: delete --force failed ({}): {}",
                out.status,
                out.stderr.trim()
            )
        }
        Ok(_) => {}
        Err(e) => eprintln!("{id}: delete --force: {e:#}"),
    }
}

/// Poll `nutshell state ID` until it says stopped, for at most [`STOP_TIMEOUT`].
fn wait_stopped(work: &Work, id: &str) -> Result<()> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let out = call(work.nutshell(&["state", id]))?;
        if !out.status.success() {
            bail!(
                "nutshell state failed ({}): {}",
                out.status,
                out.stderr.trim()
            );
        }
        let state: Value = serde_json::from_str(&out.stdout).context("state is not JSON")?;
        if state["status"] == "stopped" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("still {} after {STOP_TIMEOUT:?}", state["status"]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a command printed, and how it ended.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `command` for at most [`COMMAND_TIMEOUT`]; with `kill_after`, SIGKILL it (by its
/// pid) that long after it was spawned if it has not exited by then. Its output, and
/// whether the SIGKILL was sent.
fn call_killing(mut command: Command, kill_after: Option<Duration>) -> Result<(Output, bool)> {
    // Files, not pipes: a created container inherits its creator's stdout and stderr and
    // keeps them open for as long as it lives, so a reader of a pipe would wait for it.
    let out = tempfile::tempfile().context("make a file for stdout")?;
    let err = tempfile::tempfile().context("make a file for stderr")?;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().context("dup stdout's file")?)
        .stderr(err.try_clone().context("dup stderr's file")?)
        .spawn()
        .with_context(|| format!("run {command:?}"))?;
    let mut killed = false;
    if let Some(delay) = kill_after {
        std::thread::sleep(delay.saturating_sub(started.elapsed()));
        if child.try_wait().context("wait for nutshell")?.is_none() {
            // Child::kill is SIGKILL to this child's pid, which is not reaped yet and so
            // cannot have been reused.
            child.kill().context("SIGKILL nutshell")?;
            killed = true;
        }
    }
    let status = common::wait_for(child, COMMAND_TIMEOUT, &format!("{command:?}"))?;
    Ok((
        Output {
            status,
            stdout: read_back(out),
            stderr: read_back(err),
        },
        killed,
    ))
}

/// Run `command` for at most [`COMMAND_TIMEOUT`]: its output.
fn call(command: Command) -> Result<Output> {
    Ok(call_killing(command, None)?.0)
}

/// Run `command`, which must succeed.
fn succeed(command: Command, what: &str) -> Result<()> {
    let out = call(command)?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {} {}",
            out.status,
            out.stdout.trim(),
            out.stderr.trim()
        );
    }
    Ok(())
}

fn read_back(mut file: fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_ok() {
        let _ = file.read_to_string(&mut text);
    }
    text
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// What the soak left behind once the user's cleanup is done.
struct Leaks {
    mounts: Vec<String>,
    cgroups: Vec<PathBuf>,
    state: Vec<PathBuf>,
    processes: Vec<String>,
    /// `nutshell-init` processes in another user's nutshell cgroup: not counted.
    others: usize,
}

impl Leaks {
    fn find(work: &Work, prefix: &str, before: &BTreeSet<(i32, u64)>) -> Result<Leaks> {
        let dir = path_str(work.path())?;
        let mountinfo =
            fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let mounts = mountinfo
            .lines()
            .filter(|l| l.contains(&dir))
            .map(str::to_string)
            .collect();
        let mut cgroups = Vec::new();
        for hierarchy in cgroup_mounts(&mountinfo) {
            find_named(&hierarchy.join("nutshell"), prefix, &mut cgroups);
        }
        let mut state = Vec::new();
        for parent in [work.root(), work.data().join("containers")] {
            for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
                state.push(entry.path());
            }
        }
        let mut processes = Vec::new();
        let mut others = 0;
        let cgroup_of =
            |pid: i32| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        for (pid, start) in nutshell_processes(Some(&dir))? {
            if before.contains(&(pid, start)) {
                continue;
            }
            let cgroup = cgroup_of(pid);
            let ours = cgroup.contains(&format!("/nutshell/{prefix}"));
            let others_cgroup = cgroup.contains("/nutshell/") && !ours;
            let cmdline = cmdline_of(pid);
            if others_cgroup && !cmdline.contains(&dir) {
                others += 1;
                continue;
            }
            let first_cgroup = cgroup.lines().next().unwrap_or_default().to_string();
            processes.push(format!("pid {pid}: {cmdline} (cgroup {first_cgroup})"));
        }
        // Also anything in a soak cgroup that names neither.
        for cgroup in &cgroups {
            let procs = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let line = format!("pid {pid}: {} (in {})", cmdline_of(pid), cgroup.display());
                if !processes
                    .iter()
                    .any(|p| p.starts_with(&format!("pid {pid}:")))
                {
                    processes.push(line);
                }
            }
        }
        Ok(Leaks {
            mounts,
            cgroups,
            state,
            processes,
            others,
        })
    }

    fn total(&self) -> usize {
        self.mounts.len() + self.cgroups.len() + self.state.len() + self.processes.len()
    }
}

/// The mount points of the cgroup hierarchies (v1 and v2) in `mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fs_type = after.split(' ').next()?;
            (fs_type == "cgroup" || fs_type == "cgroup2")
                .then(|| before.split(' ').nth(4).map(PathBuf::from))?
        })
        .collect()
}

/// Every directory at or under `dir` whose name starts with `prefix`, into `found`.
fn find_named(dir: &Path, prefix: &str, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path.clone());
        }
        find_named(&path, prefix, found);
    }
}

/// Processes other than this one whose command line or executable names
/// `nutshell-init`, or, with `dir`, whose command line names `dir`: (pid, start time).
fn nutshell_processes(dir: Option<&str>) -> Result<BTreeSet<(i32, u64)>> {
    let me = std::process::id() as i32;
    let mut found = BTreeSet::new();
    for entry in fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = cmdline_of(pid);
        let exe = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let named = cmdline.contains("nutshell-init")
            || exe.contains("nutshell-init")
            || dir.is_some_and(|d| cmdline.contains(d));
        if let (true, Some(start)) = (named, start_time(pid)) {
            found.insert((pid, start));
        }
    }
    Ok(found)
}

/// `/proc/PID/cmdline`, its arguments joined by spaces (empty if it is gone).
fn cmdline_of(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The start time of `pid` (field 22 of /proc/PID/stat), which with the pid names one
/// process even if the pid is reused.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn report(count: usize, tally: &Tally, leaks: &Leaks) {
    let killed: usize = tally.killed.values().map(Vec::len).sum();
    println!("\n{count} containers:");
    println!(
        "  created, started, stopped and deleted:      {}",
        tally.lived
    );
    for (phase, ids) in &tally.killed {
        println!(
            "  nutshell SIGKILLed during {:<7}           {}",
            format!("{}:", phase.name()),
            ids.len()
        );
    }
    println!(
        "  (kills drawn too late, the command done:   {})",
        tally.missed
    );
    println!(
        "  failed though not killed:                   {}",
        tally.failed.len()
    );
    for id in &tally.failed {
        println!("    {id}");
    }
    let listed_by = |phase: Option<Phase>| tally.listed.iter().filter(|(_, p)| *p == phase).count();
    println!(
        "\nstill listed by `nutshell list` at the end, removed by `delete --force`: {} of {killed} killed",
        tally.listed.len()
    );
    println!("  killed during create: {}", listed_by(Some(Phase::Create)));
    println!("  killed during start:  {}", listed_by(Some(Phase::Start)));
    println!("  not killed:           {}", listed_by(None));
    println!("\nleaked after that:");
    let section = |name: &str, items: Vec<String>| {
        println!("  {name:<10} {}", items.len());
        for item in items {
            println!("    {item}");
        }
    };
    section("mounts", leaks.mounts.clone());
    section(
        "cgroups",
        leaks
            .cgroups
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    );
    section(
        "state",
        leaks
            .state
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    );
    section("processes", leaks.processes.clone());
    if leaks.others > 0 {
        println!(
            "  (not counted: {} nutshell-init processes in other containers' cgroups, not the soak's)",
            leaks.others
        );
    }
    if leaks.total() == 0 {
        println!("\nno leaks");
    } else {
        println!("\n{} leaks: failing", leaks.total());
    }
    if !tally.failed.is_empty() {
        println!(
            "{} containers failed though nothing killed their nutshell: failing",
            tally.failed.len()
        );
    }
}
