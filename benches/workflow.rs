//! The docker-style front end's benchmark: `nutshell run --rm IMAGE true`, end to end,
//! beside `podman run --rm` of the same image with runc, as a docker user meets them.
//!
//! The image is nutshell's default, built in the bench's data dir, written out by
//! `nutshell image save` and read into a podman storage of the bench's own by `podman
//! load`. One `hyperfine` run times, side by side, `true` in a container with no
//! network (`--network none` for both):
//!
//! - `nutshell run --rm`, the release build: the image looked up, the overlay root,
//!   cgroups, the container, its record and log, its teardown;
//! - `podman run --rm` with Debian's runc as its runtime: podman's database and
//!   overlay storage, conmon, runc, podman's removal of the container;
//! - the same podman command with nutshell as podman's runtime, for interest: what
//!   podman and conmon cost around a runtime. If its first run fails, the row is
//!   skipped and the table says why.
//!
//! It prints the table (mean ± σ, median, min, and how many times faster than podman
//! with runc each row is) and writes it to `book/src/generated/workflow-bench.txt`. The
//! table says whether the aim (nutshell at least 5× faster than podman with
//! runc) was met on this run; it asserts nothing. Run it with `just bench`, as root.
//!
//! Everything it makes is in one temp dir under the target directory (nutshell's data
//! and state dirs, podman's root, tmpdir and network config), but for podman's runroot,
//! in a temp dir of its own under `$TMPDIR` (podman's overlay storage refuses a runroot
//! path longer than 50 characters). At the end, also on error: podman's containers are
//! removed (`podman rm -af`), podman's conmon and cleanup processes are waited for,
//! nutshell's containers are removed (`nutshell rm -f` of any recorded, then `nutshell
//! cleanup`), any mount left under either dir is unmounted, and both dirs are removed.
//! Outside them, as for any podman user: runc's state in /run/runc and nutshell's, as
//! podman's runtime, in /run/nutshell (the bench removes that dir again if it made it),
//! podman's `libpod_parent` cgroups, and the blob-info cache that `podman load` keeps in
//! /var/lib/containers/cache.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::{Runs, Timing, command_line, finish, side_by_side, unmount_under, version};
use nix::unistd::Pid;

/// The release build of nutshell: `cargo bench` builds the package's binaries with the
/// bench profile, which is the release profile.
const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
/// Timed runs of each command, after [`WARMUP`] untimed ones.
const RUNS: usize = 50;
const WARMUP: usize = 3;
/// How long the whole hyperfine run may take before the bench stops it.
const HYPERFINE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one setup or cleanup command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long podman's conmon and cleanup processes, which outlive `podman run`, may take
/// to end after the last run.
const STRAY_WAIT: Duration = Duration::from_secs(30);
/// The aim: `nutshell run --rm` at least 5× faster than `podman run --rm` with
/// runc.
const AIM_SPEEDUP: f64 = 5.0;

/// The image as nutshell names it, and as podman names what `podman load` read from
/// `nutshell image save`.
const IMAGE: &str = "default";
const PODMAN_IMAGE: &str = "localhost/default:latest";
/// Where nutshell keeps its containers' state as podman's runtime: its default. podman
/// gives its runtime a clean environment and no `--root` on every call (its cleanup's
/// `delete` has none), so nothing can move it (tests/ch11_podman.rs says the same).
const PODMAN_NUTSHELL_STATE: &str = "/run/nutshell";

/// What a row times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Nutshell,
    PodmanRunc,
    PodmanNutshell,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::Nutshell => "nutshell run --rm",
            Case::PodmanRunc => "podman run --rm, runc",
            Case::PodmanNutshell => "podman run --rm, nutshell as runtime",
        }
    }
}

/// One line of the table: the case, and its times from hyperfine.
struct Row {
    case: Case,
    time: Timing,
}

/// The bench's temp dir under the target directory, and what it made outside it. When
/// dropped, everything podman and nutshell left is removed (see the module's docs).
struct Work {
    dir: tempfile::TempDir,
    /// podman's runroot, apart: see the module's docs.
    runroot: tempfile::TempDir,
    /// runc, as podman is given it: a path.
    runc: PathBuf,
    /// Whether [`PODMAN_NUTSHELL_STATE`] was missing before the bench: then it is
    /// removed again, once empty.
    made_state_root: bool,
}

impl Work {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// nutshell's images and containers' records (`NUTSHELL_DATA`).
    fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// nutshell's containers' state (`NUTSHELL_ROOT`).
    fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// A dir of podman's: `root`, `tmp` or `networks`.
    fn podman_dir(&self, name: &str) -> PathBuf {
        self.path().join("podman").join(name)
    }

    /// `podman` and its global flags, with `runtime` as its OCI runtime: storage,
    /// state, temp files and network config in the bench's dir, never the machine's.
    fn podman_words(&self, runtime: &Path) -> Result<Vec<String>> {
        let mut words = vec!["podman".to_string()];
        for (flag, name) in [
            ("--root", "root"),
            ("--tmpdir", "tmp"),
            ("--network-config-dir", "networks"),
        ] {
            words.push(flag.to_string());
            words.push(utf8(&self.podman_dir(name))?);
        }
        words.push("--runroot".to_string());
        words.push(utf8(self.runroot.path())?);
        // overlay, podman's default for root (vfs would copy the image per container);
        // cgroupfs, as these machines need (DESIGN.md §5); events to a file in the
        // tmpdir, not the journal.
        words.extend(
            [
                "--storage-driver",
                "overlay",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--log-level",
                "error",
                "--runtime",
            ]
            .map(str::to_string),
        );
        words.push(utf8(runtime)?);
        Ok(words)
    }

    /// `podman ARGS` with `runtime`, as a [`Command`].
    fn podman(&self, runtime: &Path, args: &[&str]) -> Result<Command> {
        let words = self.podman_words(runtime)?;
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]).args(args);
        Ok(command)
    }

    /// `nutshell ARGS` with the bench's data and state dirs.
    fn nutshell(&self, args: &[&str]) -> Command {
        let mut command = Command::new(NUTSHELL);
        command
            .env("NUTSHELL_DATA", self.data())
            .env("NUTSHELL_ROOT", self.state())
            .args(args);
        command
    }

    /// Remove nutshell's containers: any still recorded (`rm -f`: a run that outlived
    /// a stopped hyperfine), then any whose nutshell was killed (`cleanup`).
    fn remove_nutshell_containers(&self) -> Result<()> {
        let listed = finish(self.nutshell(&["ps", "--all", "--quiet"]), COMMAND_TIMEOUT)?;
        let ids: Vec<&str> = listed.split_whitespace().collect();
        if !ids.is_empty() {
            let mut rm = self.nutshell(&["rm", "--force"]);
            rm.args(&ids);
            finish(rm, COMMAND_TIMEOUT)?;
        }
        finish(self.nutshell(&["cleanup"]), COMMAND_TIMEOUT)?;
        Ok(())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.podman_dir("root").exists() {
            // A container is removed through the runtime it was made with.
            for runtime in [self.runc.clone(), PathBuf::from(NUTSHELL)] {
                let removed = self
                    .podman(&runtime, &["rm", "--all", "--force", "--time", "0"])
                    .and_then(|rm| finish(rm, COMMAND_TIMEOUT));
                if let Err(e) = removed {
                    eprintln!("workflow bench: cleaning up: {e:#}");
                }
            }
        }
        end_strays(self.path());
        if self.state().exists()
            && let Err(e) = self.remove_nutshell_containers()
        {
            eprintln!("workflow bench: cleaning up: {e:#}");
        }
        for dir in [self.path(), self.runroot.path()] {
            unmount_under(dir, "workflow");
            // Best effort, like the TempDirs' own removal after it (when the fields
            // drop), and also for the read-only dirs a layer or podman's storage holds.
            nutshell::image::layer::remove_layer_dir(dir);
        }
        if self.made_state_root {
            let root = Path::new(PODMAN_NUTSHELL_STATE);
            for dir in [root.join(".exec"), root.to_path_buf()] {
                match fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => eprintln!("workflow bench: left {}: {e}", dir.display()),
                }
            }
        }
    }
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the workflow bench starts containers with nutshell and podman: run it as root (`sudo -E just bench`)"
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workflow bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The tools' versions, for the table's `tools:` line.
struct Versions {
    hyperfine: String,
    podman: String,
    conmon: String,
    runc: String,
}

fn run() -> Result<()> {
    let runc_path = in_path("runc")
        .context("runc is not installed (Debian: apt-get install runc; `just setup` does it)")?;
    let versions = Versions {
        hyperfine: version("hyperfine", &["--version"]).context(
            "hyperfine is not installed (Debian: apt-get install hyperfine; `just setup` does it)",
        )?,
        podman: version("podman", &["--version"]).context(
            "podman is not installed (Debian: apt-get install podman; `just setup` does it)",
        )?,
        conmon: version("conmon", &["--version"]).context(
            "conmon, podman's monitor, is not installed (Debian: apt-get install conmon)",
        )?,
        runc: version(&utf8(&runc_path)?, &["--version"]).context("runc --version failed")?,
    };
    let work = Work {
        dir: tempfile::Builder::new()
            .prefix("bench-workflow-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .context("make the bench's temp dir")?,
        runroot: podman_runroot()?,
        runc: runc_path,
        made_state_root: !Path::new(PODMAN_NUTSHELL_STATE).exists(),
    };
    load_image(&work)?;
    // One untimed run of each first, with its output shown if it fails: hyperfine would
    // only say that a command failed. The row for interest is skipped if it fails.
    let mut cases = Vec::new();
    let mut skipped = None;
    for case in [Case::Nutshell, Case::PodmanRunc, Case::PodmanNutshell] {
        let first = command_of(&work, case)
            .and_then(|command| finish(command, COMMAND_TIMEOUT))
            .with_context(|| format!("a first run of {}", case.label()));
        match first {
            Ok(_) => cases.push(case),
            Err(e) if case == Case::PodmanNutshell => skipped = Some(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    let rows = time_all(&work, &cases)?;
    let table = render(&rows, skipped.as_deref(), &versions)?;
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/workflow-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?).context("make book/src/generated")?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// A temp dir for podman's runroot, in `$TMPDIR`: its overlay storage takes a runroot
/// of at most 50 characters, which a dir under the target directory may pass.
fn podman_runroot() -> Result<tempfile::TempDir> {
    const LONGEST: usize = 50;
    let dir = tempfile::Builder::new()
        .prefix("bench-workflow-")
        .tempdir()
        .context("make a temp dir for podman's runroot")?;
    let length = utf8(dir.path())?.len();
    if length > LONGEST {
        anyhow::bail!(
            "podman's runroot {} is {length} characters long, and podman takes at most \
             {LONGEST}: set TMPDIR to a shorter dir",
            dir.path().display()
        );
    }
    Ok(dir)
}

/// Build the default image in the bench's data dir, save it as an archive and load that
/// into the bench's podman storage.
fn load_image(work: &Work) -> Result<()> {
    let data = work.data();
    fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
    finish(work.nutshell(&["image", IMAGE]), COMMAND_TIMEOUT).context("build the default image")?;
    let archive = utf8(&work.path().join("default.tar"))?;
    finish(
        work.nutshell(&["image", "save", IMAGE, "-o", &archive]),
        COMMAND_TIMEOUT,
    )
    .context("nutshell image save")?;
    let load = work.podman(&work.runc, &["load", "-q", "-i", &archive])?;
    finish(load, COMMAND_TIMEOUT).context("podman load the saved image")?;
    Ok(())
}

/// The command line of `case`, as a [`Command`] (for the untimed first run).
fn command_of(work: &Work, case: Case) -> Result<Command> {
    let words = words_of(work, case)?;
    let mut command = Command::new(&words[0]);
    command
        .args(&words[1..])
        .env("NUTSHELL_DATA", work.data())
        .env("NUTSHELL_ROOT", work.state());
    Ok(command)
}

/// The words of `case`'s command line: `true` in the image, without a network.
fn words_of(work: &Work, case: Case) -> Result<Vec<String>> {
    let podman_run = |runtime: &Path| -> Result<Vec<String>> {
        let mut words = work.podman_words(runtime)?;
        // --pull never: the image is loaded, and nothing may reach for a registry. The
        // ulimits within the shell's hard limit, as these machines need (DESIGN.md §5).
        words.extend(
            [
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                PODMAN_IMAGE,
                "true",
            ]
            .map(str::to_string),
        );
        Ok(words)
    };
    match case {
        Case::Nutshell => Ok(
            [NUTSHELL, "run", "--rm", "--network", "none", IMAGE, "true"]
                .map(str::to_string)
                .to_vec(),
        ),
        Case::PodmanRunc => podman_run(&work.runc),
        Case::PodmanNutshell => podman_run(Path::new(NUTSHELL)),
    }
}

/// Time `cases` in one hyperfine run, so that a slow moment of the machine hits them
/// all alike: their rows.
fn time_all(work: &Work, cases: &[Case]) -> Result<Vec<Row>> {
    let commands = cases
        .iter()
        .map(|&case| Ok((case.label(), command_line(&words_of(work, case)?)?)))
        .collect::<Result<Vec<_>>>()?;
    let runs = Runs {
        runs: RUNS,
        warmup: WARMUP,
        timeout: HYPERFINE_TIMEOUT,
    };
    let (data, state) = (work.data(), work.state());
    let env = [("NUTSHELL_DATA", data.as_path()), ("NUTSHELL_ROOT", &state)];
    let times = side_by_side(&commands, &runs, &env, &work.path().join("hyperfine.json"))?;
    Ok(cases
        .iter()
        .zip(times)
        .map(|(&case, time)| Row { case, time })
        .collect())
}

fn render(rows: &[Row], skipped: Option<&str>, versions: &Versions) -> Result<String> {
    let mut out = common::machine_line()?;
    let _ = writeln!(
        out,
        "tools: nutshell {} (release build); {} with {}; {}; {}, as root",
        env!("CARGO_PKG_VERSION"),
        versions.podman,
        versions.conmon,
        versions.runc,
        versions.hyperfine,
    );
    let _ = writeln!(
        out,
        "image: nutshell's default, saved by `nutshell image save`, loaded by `podman load`; \
         each command\n\
         \x20      runs `true` in it with --network none\n\
         podman: a root, runroot and tmpdir of the bench's, overlay storage, \
         --cgroup-manager cgroupfs,\n\
         \x20       --events-backend file, --pull never, --ulimit nofile=1024:1024 and \
         nproc=1024:1024\n\
         one hyperfine run, commands side by side; {RUNS} runs each after {WARMUP} \
         warm-ups;\n\
         speed-up: the mean of podman with runc over the row's (how many times faster)\n",
    );
    let of = |case: Case| rows.iter().find(|r| r.case == case).map(|r| &r.time);
    let podman = of(Case::PodmanRunc);
    let speedup = |theirs: f64, ours: f64| (ours > 0.0).then(|| theirs / ours);
    let _ = writeln!(
        out,
        "{:<38} {:>18} {:>10} {:>10} {:>9}",
        "command", "mean ± σ", "median", "min", "speed-up"
    );
    for row in rows {
        let factor = podman
            .and_then(|p| speedup(p.mean, row.time.mean))
            .map_or_else(|| "?".to_string(), |f| format!("{f:.2}×"));
        let _ = writeln!(
            out,
            "{:<38} {:>8.1} ± {:>4.1} ms {:>7.1} ms {:>7.1} ms {:>9}",
            row.case.label(),
            row.time.mean * 1e3,
            row.time.stddev * 1e3,
            row.time.median * 1e3,
            row.time.min * 1e3,
            factor,
        );
    }
    if let Some(why) = skipped {
        let _ = writeln!(out, "{:<38} skipped: {why}", Case::PodmanNutshell.label());
    }
    let verdict = match (of(Case::Nutshell), podman) {
        (Some(ours), Some(theirs)) => match (
            speedup(theirs.mean, ours.mean),
            speedup(theirs.median, ours.median),
        ) {
            (Some(by_means), Some(by_medians)) => {
                let met = if by_means >= AIM_SPEEDUP {
                    "met"
                } else {
                    "not met"
                };
                format!("{met} ({by_means:.2}× by means, {by_medians:.2}× by medians)")
            }
            _ => "unknown".to_string(),
        },
        _ => "unknown".to_string(),
    };
    let _ = writeln!(
        out,
        "\nthe issue's aim, on this run (measured, not asserted):\n\
         \x20 nutshell run --rm at least {AIM_SPEEDUP}× faster than podman run --rm with runc: \
         {verdict}"
    );
    Ok(out)
}

/// `path` as text: hyperfine's command lines and podman's flags are text.
fn utf8(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `program` in `$PATH`, as a path.
fn in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Wait at most [`STRAY_WAIT`] for every process whose command line names `dir` to end:
/// podman's conmon, and the `podman container cleanup` it starts when a container
/// exits, both outlive `podman run`. SIGKILL, by pid, any still there after it.
fn end_strays(dir: &Path) {
    let deadline = Instant::now() + STRAY_WAIT;
    loop {
        let strays = processes_naming(dir);
        if strays.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for pid in strays {
                eprintln!("workflow bench: killing {pid}, still running after {STRAY_WAIT:?}");
                if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
                    eprintln!("workflow bench: kill {pid}: {e}");
                }
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes, other than this one, whose command line holds `dir`.
fn processes_naming(dir: &Path) -> Vec<Pid> {
    let needle = dir.as_os_str().as_bytes();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.windows(needle.len()).any(|w| w == needle))
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}
