//! Chapter 11's benchmark: the runtime against Debian's runc and a bare `unshare`.
//!
//! It makes one OCI bundle (a copy of the default image, `true` as the program, every
//! namespace of `nutshell spec`'s config but the network's) and times, side by side in
//! one `hyperfine` run:
//!
//! - `nutshell run`, the release build, and `runc run` of that bundle: create, start,
//!   wait, delete, in the foreground;
//! - bare `unshare -pfmuin --mount-proc true`, the namespaces alone (it also makes a
//!   network namespace, which the bundle does not: the issue's reference, kept as given);
//! - a detached container's whole life, for nutshell and runc: `create`, `start`, `state`
//!   until it says `stopped`, `delete`, each a command of its own, from a small `sh`
//!   script that deletes the container also when a step fails.
//!
//! It prints the table (mean ± σ, and each row against runc and against `unshare`) and
//! writes it to `book/src/generated/ch11-bench.txt`, which the book page includes. The
//! table says whether the issue's aims (a fifth of runc's time or less; within twice a
//! bare `unshare`) were met on this run; it asserts neither. Run it with `just bench`, as
//! root. Everything it makes (nutshell's data and state dirs, runc's state dir, the
//! bundle) is in one temp dir under the target directory, removed at the end, also on
//! error, after a `delete --force` of the bench's containers.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The release build of nutshell: `cargo bench` builds the package's binaries with the
/// bench profile, which is the release profile.
const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
/// Timed runs of each command, after [`WARMUP`] untimed ones.
const RUNS: usize = 50;
const WARMUP: usize = 3;
/// How long the whole hyperfine run may take before the bench stops it.
const HYPERFINE_TIMEOUT: Duration = Duration::from_secs(1200);
/// How long one setup or cleanup command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// The issue's aims: nutshell in at most a fifth of runc's time, and within twice the
/// time of a bare `unshare` of the namespaces.
const AIM_RUNC: f64 = 1.0 / 5.0;
const AIM_UNSHARE: f64 = 2.0;

/// The container ids the commands use; [`Work`]'s drop deletes them, whatever happened.
const RUN_ID: &str = "bench-run";
const CYCLE_ID: &str = "bench-cycle";

/// One container's whole life through a runc-style runtime, as a user of its command
/// line lives it: `$1` is the runtime, `$2` its state root, `$3` the bundle, `$4` the id.
/// The container is deleted whichever step fails, and then the script fails.
const CYCLE_SCRIPT: &str = r#"rt=$1 root=$2 bundle=$3 id=$4
ok=0
if "$rt" --root "$root" create --bundle "$bundle" "$id" && "$rt" --root "$root" start "$id"; then
    polls=0
    until "$rt" --root "$root" state "$id" | grep -q '"status": *"stopped"'; do
        polls=$((polls + 1))
        if [ "$polls" -ge 2000 ]; then
            echo "$id did not stop after $polls polls of state" >&2
            ok=1
            break
        fi
    done
else
    ok=1
fi
if [ "$ok" -eq 0 ]; then
    "$rt" --root "$root" delete "$id" || ok=1
else
    "$rt" --root "$root" delete --force "$id"
fi
exit "$ok"
"#;

/// What a row times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NutshellRun,
    RuncRun,
    Unshare,
    NutshellCycle,
    RuncCycle,
}

/// The order of the table, and of the hyperfine command line.
const CASES: [Case; 5] = [
    Case::NutshellRun,
    Case::RuncRun,
    Case::Unshare,
    Case::NutshellCycle,
    Case::RuncCycle,
];

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::NutshellRun => "nutshell run",
            Case::RuncRun => "runc run",
            Case::Unshare => "unshare -pfmuin --mount-proc true",
            Case::NutshellCycle => "nutshell create, start, state…, delete",
            Case::RuncCycle => "runc create, start, state…, delete",
        }
    }

    /// The row it is compared with: runc's of the same kind.
    fn runc_peer(self) -> Case {
        match self {
            Case::NutshellRun | Case::RuncRun | Case::Unshare => Case::RuncRun,
            Case::NutshellCycle | Case::RuncCycle => Case::RuncCycle,
        }
    }
}

/// One line of the table: hyperfine's mean, standard deviation, median and minimum, in
/// seconds.
struct Row {
    case: Case,
    mean: f64,
    stddev: f64,
    median: f64,
    min: f64,
}

/// The bench's temp dir under the target directory. When dropped, the bench's
/// containers are deleted (`delete --force`, by both runtimes), then any mount left
/// under the dir is unmounted, then the dir is removed.
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

    fn bundle(&self) -> PathBuf {
        self.path().join("bundle")
    }

    /// The state root of `runtime`: `nutshell` or `runc`.
    fn root(&self, runtime: &str) -> PathBuf {
        self.path().join(format!("state-{runtime}"))
    }

    /// `BINARY --root ROOT ARGS` for `runtime`, with the bench's data dir.
    fn runtime(&self, runtime: &str, args: &[&str]) -> Command {
        let binary = if runtime == "nutshell" {
            NUTSHELL
        } else {
            runtime
        };
        let mut command = Command::new(binary);
        command
            .env("NUTSHELL_DATA", self.data())
            .arg("--root")
            .arg(self.root(runtime))
            .args(args);
        command
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        for runtime in ["nutshell", "runc"] {
            if !self.root(runtime).exists() {
                continue;
            }
            for id in [RUN_ID, CYCLE_ID] {
                let delete = self.runtime(runtime, &["delete", "--force", id]);
                if let Err(e) = finish(delete, COMMAND_TIMEOUT) {
                    eprintln!("runtime bench: cleaning up: {e:#}");
                }
            }
        }
        unmount_under(self.path());
        // Best effort, like the TempDir's own removal after it (when the field drops).
        nutshell::image::layer::remove_layer_dir(self.path());
    }
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the runtime bench starts containers with nutshell and runc: run it as root (`sudo -E just bench`)"
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runtime bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let hyperfine = version("hyperfine", &["--version"]).context(
        "hyperfine is not installed (Debian: apt-get install hyperfine; `just setup` does it)",
    )?;
    let runc = version("runc", &["--version"])
        .context("runc is not installed (Debian: apt-get install runc; `just setup` does it)")?;
    let unshare =
        version("unshare", &["--version"]).context("unshare (util-linux) is not installed")?;
    let work = Work {
        dir: tempfile::Builder::new()
            .prefix("bench-runtime-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .context("make the bench's temp dir")?,
    };
    let namespaces = make_bundle(&work)?;
    let script = work.path().join("cycle.sh");
    fs::write(&script, CYCLE_SCRIPT).with_context(|| format!("write {}", script.display()))?;
    // One untimed run of each first, with its output shown if it fails: hyperfine would
    // only say that a command failed.
    for case in CASES {
        finish(command_of(&work, &script, case)?, COMMAND_TIMEOUT)
            .with_context(|| format!("a first run of {}", case.label()))?;
    }
    let rows = time_all(&work, &script)?;
    let table = render(&rows, &namespaces, &hyperfine, &runc, &unshare)?;
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/ch11-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?).context("make book/src/generated")?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// Make the bundle: the default image (built in the bench's data dir), copied to
/// `rootfs/`, and `nutshell spec`'s config running `true` without a terminal and
/// without a network namespace. Returns the namespaces the config keeps.
fn make_bundle(work: &Work) -> Result<Vec<String>> {
    let data = work.data();
    fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
    let mut image = Command::new(NUTSHELL);
    image.env("NUTSHELL_DATA", &data).args(["image", "default"]);
    finish(image, COMMAND_TIMEOUT).context("build the default image")?;
    let bundle = work.bundle();
    fs::create_dir(&bundle).with_context(|| format!("mkdir {}", bundle.display()))?;
    let mut copy = Command::new("cp");
    copy.arg("-a")
        .arg(data.join("images/default/rootfs"))
        .arg(bundle.join("rootfs"));
    finish(copy, COMMAND_TIMEOUT).context("copy the default image into the bundle")?;
    let mut spec = Command::new(NUTSHELL);
    spec.env("NUTSHELL_DATA", &data)
        .arg("spec")
        .arg("--bundle")
        .arg(&bundle);
    finish(spec, COMMAND_TIMEOUT).context("nutshell spec")?;
    let path = bundle.join("config.json");
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut config: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(["true"]);
    let namespaces = config["linux"]["namespaces"]
        .as_array_mut()
        .context("nutshell spec's config has no linux.namespaces")?;
    namespaces.retain(|ns| ns["type"] != "network");
    let kept = namespaces
        .iter()
        .filter_map(|ns| ns["type"].as_str().map(str::to_string))
        .collect();
    let text = serde_json::to_string_pretty(&config).context("encode config.json")?;
    fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(kept)
}

/// The command line of `case`, as a [`Command`] (for the untimed first run).
fn command_of(work: &Work, script: &Path, case: Case) -> Result<Command> {
    let words = words_of(work, script, case)?;
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]).env("NUTSHELL_DATA", work.data());
    Ok(command)
}

/// The words of `case`'s command line.
fn words_of(work: &Work, script: &Path, case: Case) -> Result<Vec<String>> {
    let text = |path: &Path| -> Result<String> {
        path.to_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not UTF-8", path.display()))
    };
    let bundle = text(&work.bundle())?;
    let words: Vec<String> = match case {
        Case::NutshellRun | Case::RuncRun => {
            let runtime = if case == Case::NutshellRun {
                NUTSHELL
            } else {
                "runc"
            };
            let root = text(&work.root(if case == Case::NutshellRun {
                "nutshell"
            } else {
                "runc"
            }))?;
            [runtime, "--root", &root, "run", "--bundle", &bundle, RUN_ID]
                .map(str::to_string)
                .to_vec()
        }
        Case::Unshare => ["unshare", "-pfmuin", "--mount-proc", "true"]
            .map(str::to_string)
            .to_vec(),
        Case::NutshellCycle | Case::RuncCycle => {
            let (runtime, name) = if case == Case::NutshellCycle {
                (NUTSHELL, "nutshell")
            } else {
                ("runc", "runc")
            };
            let root = text(&work.root(name))?;
            let script = text(script)?;
            ["sh", &script, runtime, &root, &bundle, CYCLE_ID]
                .map(str::to_string)
                .to_vec()
        }
    };
    for word in &words {
        // hyperfine -N splits its commands into words as a shell would, without one.
        if word.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            bail!("{word:?} would need quoting on hyperfine's command line");
        }
    }
    Ok(words)
}

/// Time every case in one hyperfine run, so that a slow moment of the machine hits
/// them all alike: their rows.
fn time_all(work: &Work, script: &Path) -> Result<Vec<Row>> {
    let export = work.path().join("hyperfine.json");
    let mut hyperfine = Command::new("hyperfine");
    hyperfine
        .env("NUTSHELL_DATA", work.data())
        .args(["--shell=none", "--style", "basic"])
        .args(["--warmup", &WARMUP.to_string()])
        .args(["--runs", &RUNS.to_string()])
        .arg("--export-json")
        .arg(&export);
    for case in CASES {
        hyperfine.args(["--command-name", case.label()]);
        hyperfine.arg(words_of(work, script, case)?.join(" "));
    }
    // Its progress and summary go to the terminal, to watch; the numbers come from JSON.
    hyperfine.stdin(Stdio::null());
    let child = hyperfine.spawn().context("run hyperfine")?;
    let status = wait_for(child, HYPERFINE_TIMEOUT, "hyperfine")?;
    if !status.success() {
        bail!("hyperfine failed ({status})");
    }
    let text = fs::read_to_string(&export).with_context(|| format!("read {}", export.display()))?;
    let report: Value = serde_json::from_str(&text).context("hyperfine's JSON")?;
    let results = report["results"]
        .as_array()
        .context("no results in hyperfine's JSON")?;
    CASES
        .iter()
        .map(|&case| {
            let result = results
                .iter()
                .find(|r| r["command"] == case.label())
                .with_context(|| format!("no result for {} in hyperfine's JSON", case.label()))?;
            let number = |field: &str| {
                result[field]
                    .as_f64()
                    .with_context(|| format!("no {field} for {}", case.label()))
            };
            Ok(Row {
                case,
                mean: number("mean")?,
                stddev: number("stddev")?,
                median: number("median")?,
                min: number("min")?,
            })
        })
        .collect()
}

fn render(
    rows: &[Row],
    namespaces: &[String],
    hyperfine: &str,
    runc: &str,
    unshare: &str,
) -> Result<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "date: {} (UTC)   kernel: {}   cores: {cores}   load average (1 min) at the end: {}\n",
        today(),
        nix::sys::utsname::uname()
            .context("uname")?
            .release()
            .to_string_lossy(),
        fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split(' ').next().map(str::to_string))
            .unwrap_or_else(|| "?".into()),
    );
    let _ = writeln!(
        out,
        "tools: nutshell {} (release build); {runc}; {unshare}; {hyperfine}, as root",
        env!("CARGO_PKG_VERSION"),
    );
    let _ = writeln!(
        out,
        "bundle: the default image, `true`, `nutshell spec`'s config without the network \
         namespace:\n\
         \x20       {}; unshare's are pid, mount, uts, ipc and net\n\
         one hyperfine run, commands side by side; {RUNS} runs each after {WARMUP} \
         warm-ups; the ratios are of means\n",
        namespaces.join(", "),
    );
    let mean_of = |case: Case| rows.iter().find(|r| r.case == case).map(|r| r.mean);
    let ratio = |row: &Row, peer: Case| match mean_of(peer) {
        Some(peer) if peer > 0.0 => format!("{:.2}", row.mean / peer),
        _ => "?".to_string(),
    };
    let _ = writeln!(
        out,
        "{:<40} {:>18} {:>10} {:>10} {:>7} {:>10}",
        "command", "mean ± σ", "median", "min", "/ runc", "/ unshare"
    );
    for row in rows {
        let against_unshare = match row.case {
            Case::NutshellRun | Case::RuncRun | Case::Unshare => ratio(row, Case::Unshare),
            Case::NutshellCycle | Case::RuncCycle => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:>8.1} ± {:>4.1} ms {:>7.1} ms {:>7.1} ms {:>7} {:>10}",
            row.case.label(),
            row.mean * 1e3,
            row.stddev * 1e3,
            row.median * 1e3,
            row.min * 1e3,
            ratio(row, row.case.runc_peer()),
            against_unshare,
        );
    }
    let verdict = |ours: Case, theirs: Case, aim: f64| match (mean_of(ours), mean_of(theirs)) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => {
            let factor = ours / theirs;
            let met = if factor <= aim { "met" } else { "not met" };
            format!("{met} ({factor:.2})")
        }
        _ => "unknown".to_string(),
    };
    let _ = writeln!(
        out,
        "\nthe issue's aims, on this run (measured, not asserted):\n\
         \x20 nutshell run at most 1/5 of runc run:              {}\n\
         \x20 nutshell run within 2× of bare unshare:            {}\n\
         \x20 the same 1/5, for the create…delete cycle:         {}",
        verdict(Case::NutshellRun, Case::RuncRun, AIM_RUNC),
        verdict(Case::NutshellRun, Case::Unshare, AIM_UNSHARE),
        verdict(Case::NutshellCycle, Case::RuncCycle, AIM_RUNC),
    );
    let _ = writeln!(
        out,
        "\nthe cycle is one command per step, from `sh`: create, start, then state until it \
         says\n\
         stopped (each poll a command and a grep), then delete."
    );
    Ok(out)
}

/// Run `command` with stdin, stdout and stderr apart, for at most `timeout`; fails
/// with its output if it fails.
fn finish(mut command: Command, timeout: Duration) -> Result<()> {
    // Files, not pipes: a detached container would inherit a pipe and hold it open.
    let out = tempfile::tempfile().context("make a file for stdout")?;
    let err = tempfile::tempfile().context("make a file for stderr")?;
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().context("dup stdout's file")?)
        .stderr(err.try_clone().context("dup stderr's file")?)
        .spawn()
        .with_context(|| format!("run {command:?}"))?;
    let status = wait_for(child, timeout, &format!("{command:?}"))?;
    if !status.success() {
        bail!(
            "{command:?} failed ({status}): {} {}",
            read_back(out).trim(),
            read_back(err).trim()
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

/// Wait for `child` at most `timeout`; past that, SIGKILL it (by its pid) and fail.
fn wait_for(mut child: Child, timeout: Duration, what: &str) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("wait for {what}"))?
        {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill().with_context(|| format!("kill {what}"))?;
            child.wait().with_context(|| format!("wait for {what}"))?;
            bail!("{what} took more than {timeout:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first line of `program ARGS`, or None if it does not run.
fn version(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new("timeout")
        .arg("10")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Some(text.lines().next().unwrap_or_default().trim().to_string())
}

/// Unmount every mount at or under `dir`, deepest first (best effort).
fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    // The mount point is the fifth field, with spaces and the like octal-escaped; the
    // bench's paths have none (see `words_of`).
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        eprintln!("runtime bench: unmounting leftover {}", point.display());
        if let Err(e) = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("runtime bench: umount {}: {e}", point.display());
        }
    }
}

/// Today's date, UTC, as YYYY-MM-DD (the library's RFC 3339 formatting, cut to the date).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    nutshell::image::pack::rfc3339(now)[..10].to_string()
}
