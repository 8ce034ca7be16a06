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

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use common::{Runs, Timing, command_line, finish, side_by_side, unmount_under, version};
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

/// One line of the table: the case, and its times from hyperfine.
struct Row {
    case: Case,
    time: Timing,
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
        unmount_under(self.path(), "runtime");
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
    Ok(words)
}

/// Time every case in one hyperfine run, so that a slow moment of the machine hits
/// them all alike: their rows.
fn time_all(work: &Work, script: &Path) -> Result<Vec<Row>> {
    let commands = CASES
        .iter()
        .map(|&case| Ok((case.label(), command_line(&words_of(work, script, case)?)?)))
        .collect::<Result<Vec<_>>>()?;
    let runs = Runs {
        runs: RUNS,
        warmup: WARMUP,
        timeout: HYPERFINE_TIMEOUT,
    };
    let data = work.data();
    let export = work.path().join("hyperfine.json");
    let times = side_by_side(&commands, &runs, &[("NUTSHELL_DATA", &data)], &export)?;
    Ok(CASES
        .iter()
        .zip(times)
        .map(|(&case, time)| Row { case, time })
        .collect())
}

fn render(
    rows: &[Row],
    namespaces: &[String],
    hyperfine: &str,
    runc: &str,
    unshare: &str,
) -> Result<String> {
    let mut out = common::machine_line()?;
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
    let mean_of = |case: Case| rows.iter().find(|r| r.case == case).map(|r| r.time.mean);
    let ratio = |row: &Row, peer: Case| match mean_of(peer) {
        Some(peer) if peer > 0.0 => format!("{:.2}", row.time.mean / peer),
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
            row.time.mean * 1e3,
            row.time.stddev * 1e3,
            row.time.median * 1e3,
            row.time.min * 1e3,
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
