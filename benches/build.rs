//! Chapter 10's benchmark: building `examples/webapp`, nutshell against buildah.
//!
//! It builds the same Containerfile and context five ways, in one run:
//!
//! - nutshell's [`build`] with `no_cache`: every step runs (its `RUN` in a container,
//!   each `COPY` written as a layer), on a store that already holds the base image;
//! - nutshell's [`build`] again, with the cache: every step must come out `CACHED`, or
//!   the bench fails;
//! - Debian's `buildah build --layers --no-cache`, on a storage emptied before each run,
//!   and `buildah build --layers`, right after it, which must use its cache for every
//!   step; and, for reference, plain `buildah build` (its default: no `--layers`, so no
//!   layer per step and no cache).
//!
//! buildah gets nutshell's default image as its base with `--from oci-archive:PATH`, the
//! archive `nutshell image save default --output PATH.tar` writes; it runs as
//! `--isolation chroot` on `--storage-driver vfs`, which work on any machine. The rounds
//! interleave the builders, so that a slow moment of the machine hits them all alike;
//! a first round is a warm-up, not counted. It prints the table and writes it to
//! `book/src/generated/ch10-bench.txt`, which the book page includes. Run it with
//! `just bench`, as root (a `RUN` step is a container). Everything it makes (nutshell's
//! data and state dirs, buildah's storage) is in one temp dir under the target directory,
//! removed at the end, also on error.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nutshell::build::Instruction;
use nutshell::build::engine::{BuildNetwork, BuildOptions, StepOutcome, build};
use nutshell::image::archive::{self, SaveFormat};
use nutshell::image::store::OciStore;
use nutshell::image::{ImageStore, Source};
use nutshell::launch::HostFacts;
use nutshell::launch::images::CallerUnpacker;

/// Timed runs per measurement, after one warm-up round; the table shows median and min.
const RUNS: usize = 5;
/// How long one buildah command may take, in seconds, before `timeout` stops it.
const COMMAND_TIMEOUT: &str = "300";
/// What buildah 1.28 says when its re-exec in chroot isolation cannot seal the memfd
/// copy of its binary; such a build is tried again, up to [`MEMFD_ATTEMPTS`] times.
const MEMFD_BUSY: &str = "sealing memfd copy: Device or resource busy";
const MEMFD_ATTEMPTS: usize = 3;

/// One way of building, a line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NutshellCold,
    NutshellCached,
    BuildahCold,
    BuildahCached,
    BuildahDefault,
}

/// The order of the table, and of each round.
const CASES: [Case; 5] = [
    Case::NutshellCold,
    Case::NutshellCached,
    Case::BuildahCold,
    Case::BuildahCached,
    Case::BuildahDefault,
];

/// What nutshell's builds made, for the table's notes.
#[derive(Default)]
struct Seen {
    /// The manifest digests of every build.
    digests: BTreeSet<String>,
    /// The keywords of the steps a no-cache build ran (that made a layer).
    cold_built: Vec<String>,
    /// buildah builds run again after a transient memfd error.
    buildah_retries: usize,
    /// The image ids buildah's uncached builds printed last.
    buildah_ids: BTreeSet<String>,
}

struct Row {
    case: Case,
    median: Duration,
    min: Duration,
}

/// The bench's temp dir, and buildah's storage in it: removed when dropped, buildah's
/// containers and images first, then any mount left under the dir, then the dir.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let buildah = Buildah::new(self.path());
        if buildah.root.exists() {
            for args in [&["rm", "--all"][..], &["rmi", "--all", "--force"][..]] {
                if let Err(e) = buildah.run(args) {
                    eprintln!("build bench: cleaning up: {e:#}");
                }
            }
        }
        common::unmount_under(self.path(), "build");
        // Best effort, like the TempDir's own removal after it (when the field drops),
        // and also for read-only dirs (a layer may hold one).
        nutshell::image::layer::remove_layer_dir(self.path());
    }
}

/// buildah, with its storage in the bench's temp dir.
struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
}

impl Buildah {
    fn new(work: &Path) -> Buildah {
        Buildah {
            root: work.join("buildah/root"),
            runroot: work.join("buildah/runroot"),
        }
    }

    /// `buildah ARGS` on the bench's storage, under `timeout`: its stdout, or its stderr
    /// in the error.
    fn run(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new("timeout");
        command
            .args([
                COMMAND_TIMEOUT,
                "buildah",
                "--storage-driver",
                "vfs",
                "--root",
            ])
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args);
        let output = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("run {command:?}"))?;
        if !output.status.success() {
            bail!(
                "{command:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// What every build needs.
struct Setup {
    store: OciStore,
    facts: HostFacts,
    unpacker: CallerUnpacker,
    context: PathBuf,
    containerfile: PathBuf,
    base_archive: PathBuf,
    buildah: Buildah,
    /// The Containerfile's instructions after `FROM`: the steps buildah must find cached.
    steps_after_from: usize,
    /// What those are, for the table.
    shape: String,
}

fn main() -> ExitCode {
    // A `RUN` step's container re-executes this binary as its init (`/proc/self/exe`).
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| argv0 == nutshell::launch::INIT_ARGV0)
    {
        nutshell::launch::init_main();
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the build bench runs containers: run it as root (`sudo -E just bench`)");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("bench-build-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .context("make the bench's temp dir")?;
    // The containers' root, a user in a namespace of its own, must pass through it.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711))
        .context("chmod the bench's temp dir")?;
    let work = Work { dir };
    let buildah_version = common::version("buildah", &["--version"]);
    if buildah_version.is_none() {
        bail!("buildah is not installed (Debian: apt-get install buildah)");
    }
    let setup = prepare(work.path())?;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    let mut seen = Seen::default();
    for round in 0..=RUNS {
        for (i, &case) in CASES.iter().enumerate() {
            let elapsed = build_once(&setup, case, &mut seen)
                .with_context(|| format!("{} (round {round})", case.label()))?;
            if round > 0 {
                times[i].push(elapsed);
            }
        }
    }
    let rows: Vec<Row> = CASES
        .iter()
        .zip(&mut times)
        .map(|(&case, times)| {
            times.sort();
            Row {
                case,
                median: times[times.len() / 2],
                min: times[0],
            }
        })
        .collect();
    let table = render(&setup, &rows, buildah_version.as_deref(), &seen)?;
    drop(setup);
    drop(work);
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/ch10-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?).context("make book/src/generated")?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// nutshell's data and state dirs in `work`, the default image in its store, and that
/// image saved as an OCI archive for buildah.
fn prepare(work: &Path) -> Result<Setup> {
    let data = work.join("data");
    let state = work.join("state");
    for dir in [&data, &state] {
        fs::create_dir(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    // SAFETY: the bench is still single-threaded here: no other thread reads the
    // environment while it changes.
    unsafe {
        std::env::set_var(nutshell::store::DATA_ENV, &data);
        std::env::set_var(nutshell::store::STATE_ENV, &state);
    }
    let facts = HostFacts::detect();
    if facts.data_dir != data || facts.state_root != state {
        bail!(
            "nutshell did not take its dirs from {} and {}",
            nutshell::store::DATA_ENV,
            nutshell::store::STATE_ENV
        );
    }
    ImageStore::new(&facts.data_dir)
        .ensure_default(Source::Auto, Path::new("/"))
        .context("make the default image")?;
    let store = OciStore::new(&facts.data_dir);
    let unpacker = CallerUnpacker::new(&facts).context("set up the layer unpacker")?;
    let base_archive = work.join("default.tar");
    let image = store.get("default").context("find the default image")?;
    archive::save(&store, &image, &base_archive, SaveFormat::Archive)
        .context("save the default image for buildah")?;
    let context = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webapp");
    let containerfile = context.join("Containerfile");
    let text = fs::read_to_string(&containerfile)
        .with_context(|| format!("read {}", containerfile.display()))?;
    let parsed =
        nutshell::build::parse(&text, &containerfile).context("parse the Containerfile")?;
    let count = |is: fn(&Instruction) -> bool| {
        parsed
            .instructions
            .iter()
            .filter(|i| is(&i.instruction))
            .count()
    };
    let steps_after_from = count(|i| !matches!(i, Instruction::From { .. }));
    let shape = format!(
        "{steps_after_from} instructions after FROM, {} COPY and {} RUN among them",
        count(|i| matches!(i, Instruction::Copy(_))),
        count(|i| matches!(i, Instruction::Run(_))),
    );
    let buildah = Buildah::new(work);
    for dir in [&buildah.root, &buildah.runroot] {
        fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    Ok(Setup {
        store,
        facts,
        unpacker,
        context,
        containerfile,
        base_archive,
        buildah,
        steps_after_from,
        shape,
    })
}

/// Build once as `case` says, checking it did what the case means: the time it took.
/// What nutshell's builds made goes into `seen`.
fn build_once(setup: &Setup, case: Case, seen: &mut Seen) -> Result<Duration> {
    match case {
        Case::NutshellCold | Case::NutshellCached => {
            let options = BuildOptions {
                context: setup.context.clone(),
                file: None,
                tag: "webapp".into(),
                build_args: Default::default(),
                no_cache: case == Case::NutshellCold,
                target: None,
                network: BuildNetwork::None,
                epoch: nutshell::image::pack::source_date_epoch(),
            };
            let start = Instant::now();
            let built = build(
                &options,
                &setup.store,
                &setup.facts,
                &setup.unpacker,
                &mut std::io::sink(),
            )
            .context("nutshell build")?;
            let elapsed = start.elapsed();
            let made: Vec<&str> = built
                .steps
                .iter()
                .filter(|(_, outcome)| *outcome == StepOutcome::Built)
                .map(|(label, _)| label.as_str())
                .collect();
            match case {
                Case::NutshellCached if !made.is_empty() => {
                    bail!("the cached build ran steps: {}", made.join("; "));
                }
                Case::NutshellCold if made.is_empty() => bail!("the --no-cache build ran no step"),
                Case::NutshellCold => {
                    // A label is `[2/11] COPY index.html ./`: keep the keyword.
                    seen.cold_built = made
                        .iter()
                        .map(|label| {
                            let keyword = label.split_once("] ").map_or(*label, |(_, rest)| rest);
                            keyword.split(' ').next().unwrap_or_default().to_string()
                        })
                        .collect();
                }
                _ => {}
            }
            seen.digests.insert(built.image.manifest_digest.to_string());
            Ok(elapsed)
        }
        Case::BuildahCold | Case::BuildahCached | Case::BuildahDefault => {
            let from = format!("oci-archive:{}", setup.base_archive.display());
            let mut args = vec!["build", "--isolation", "chroot"];
            match case {
                Case::BuildahCold => args.extend(["--layers", "--no-cache"]),
                Case::BuildahCached => args.push("--layers"),
                _ => {}
            }
            let file = setup.containerfile.to_string_lossy();
            let context = setup.context.to_string_lossy();
            args.extend(["--from", &from, "-t", "webapp", "-f", &file, &context]);
            let mut attempt = 1;
            let (stdout, elapsed) = loop {
                if case != Case::BuildahCached {
                    // Cold: nothing of an earlier build in the storage, untimed.
                    setup.buildah.run(&["rm", "--all"])?;
                    setup.buildah.run(&["rmi", "--all", "--force"])?;
                }
                let start = Instant::now();
                match setup.buildah.run(&args) {
                    Ok(stdout) => break (stdout, start.elapsed()),
                    // Now and then the RUN step's re-exec of buildah fails to seal the
                    // memfd copy of its own binary (EBUSY from the kernel while pages of
                    // it are still referenced): not the build's fault, so it is run
                    // again, timed afresh, and counted in the notes.
                    Err(e) if attempt < MEMFD_ATTEMPTS && format!("{e:#}").contains(MEMFD_BUSY) => {
                        eprintln!("build bench: buildah hit `{MEMFD_BUSY}`: running it again");
                        seen.buildah_retries += 1;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            };
            let cached = stdout.matches("--> Using cache").count();
            if case == Case::BuildahCached && cached != setup.steps_after_from {
                bail!(
                    "buildah used its cache for {cached} of {} steps",
                    setup.steps_after_from
                );
            }
            if case != Case::BuildahCached {
                if cached != 0 {
                    bail!("buildah used its cache in a build without it");
                }
                let id = stdout.lines().last().unwrap_or_default().trim();
                seen.buildah_ids.insert(id.to_string());
            }
            Ok(elapsed)
        }
    }
}

impl Case {
    /// The row's label: the builder, and what it does.
    fn label(self) -> &'static str {
        match self {
            Case::NutshellCold => "nutshell build, no cache   (every step runs)",
            Case::NutshellCached => "nutshell build, cached     (every step CACHED)",
            Case::BuildahCold => "buildah build --layers --no-cache",
            Case::BuildahCached => "buildah build --layers     (every step cached)",
            Case::BuildahDefault => "buildah build              (default: no --layers, no cache)",
        }
    }
}

fn render(setup: &Setup, rows: &[Row], buildah: Option<&str>, seen: &Seen) -> Result<String> {
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
        "tools: nutshell {}; {}, as root, --isolation chroot --storage-driver vfs",
        env!("CARGO_PKG_VERSION"),
        buildah.unwrap_or("buildah ?"),
    );
    let base = setup
        .store
        .get("default")
        .context("find the default image")?;
    let _ = writeln!(
        out,
        "build: examples/webapp ({}), no network;\n\
         \x20      the base is nutshell's default image ({} layer, {:.1} MiB), in nutshell's \
         store,\n\
         \x20      given to buildah as --from oci-archive:default.tar \
         (`nutshell image save default`)",
        setup.shape,
        base.manifest.layers.len(),
        base.size() as f64 / f64::from(1 << 20),
    );
    let _ = writeln!(
        out,
        "rounds interleave the builders, one warm-up round first; median and min of {RUNS} \
         runs\n"
    );
    let _ = writeln!(out, "{:<62} {:>10} {:>10}", "built by", "median", "min");
    for row in rows {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let _ = writeln!(
            out,
            "{:<62} {:>7.1} ms {:>7.1} ms",
            row.case.label(),
            ms(row.median),
            ms(row.min),
        );
    }
    let median_of = |case| {
        rows.iter()
            .find(|r| r.case == case)
            .map(|r| r.median.as_secs_f64())
    };
    let factor = |slow, fast| match (median_of(slow), median_of(fast)) {
        (Some(s), Some(f)) => format!("{:.0}", s / f),
        _ => "?".to_string(),
    };
    let _ = writeln!(
        out,
        "\nbuildah / nutshell, median time (above 1: nutshell is faster):\n\
         \x20 no cache {} (against --layers --no-cache), {} (against buildah's default); \
         cached {}\n",
        factor(Case::BuildahCold, Case::NutshellCold),
        factor(Case::BuildahDefault, Case::NutshellCold),
        factor(Case::BuildahCached, Case::NutshellCached),
    );
    let digests = &seen.digests;
    let _ = writeln!(
        out,
        "\"no cache\" is cold for the build cache only: the base image is already in \
         nutshell's store.\n\
         nutshell's no-cache build makes {} layers ({}; a RUN is a container)\n\
         and still writes their cache entries; its cached build makes none and starts no container.\n\
         buildah's uncached runs start from an emptied storage (emptied untimed), so \
         they also\n\
         import the base from the archive, which every buildah build does again, cached \
         or not.\n\
         --layers commits an image for every step; on vfs a new layer is a full copy of \
         the tree.\n\
         nutshell's {} builds, cached or not, made {} image{}{};\n\
         buildah's {} uncached builds made {}.",
        seen.cold_built.len(),
        seen.cold_built.join(", "),
        2 * (RUNS + 1),
        digests.len(),
        if digests.len() == 1 { "" } else { "s" },
        if digests.len() == 1 {
            " (every time is clamped to SOURCE_DATE_EPOCH)"
        } else {
            ""
        },
        2 * (RUNS + 1),
        seen.buildah_ids.len(),
    );
    if seen.buildah_retries > 0 {
        let _ = writeln!(
            out,
            "buildah builds run again after `{MEMFD_BUSY}` (transient): {}",
            seen.buildah_retries
        );
    }
    Ok(out)
}

/// Today's date, UTC, as YYYY-MM-DD (the library's RFC 3339 formatting, cut to the date).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    nutshell::image::pack::rfc3339(now)[..10].to_string()
}
