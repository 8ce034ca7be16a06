//! Chapter 8's benchmark: what a bridge network costs. It measures, in one run:
//!
//! - container start to exit of `true`, with `--network none` (a namespace with `lo`)
//!   and with the default bridge (lease, veth, addresses, route, nft), median of runs;
//! - TCP throughput, one 1 GiB stream through busybox `nc`, container to container over
//!   the bridge, beside the same tools over loopback: in one container, and on the host.
//!
//! It prints the table and writes it to `book/src/generated/ch08-bench.txt`, which the
//! book page includes. Run it with `just bench`, as root. It first moves itself into a
//! network namespace of its own (still single-threaded), so the bridge, the veths and the
//! nftables table it makes live and die there; no packet reaches the host's network.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use background::Background;
use nix::sched::{CloneFlags, unshare};

#[allow(dead_code)] // the bench uses only part of it
#[path = "../tests/common/background.rs"]
mod background;

const BIN: &str = env!("CARGO_BIN_EXE_ch08-network");
/// Runs per start measurement; the table shows the median.
const RUNS: usize = 11;
/// Throughput runs; the table shows the median.
const STREAMS: usize = 3;
/// How much each stream sends: 16384 blocks of 64 KiB, 1 GiB.
const BLOCKS: usize = 16384;
const BLOCK: &str = "64k";
/// How long one run may take before the bench gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the network bench makes bridges and veths: run it as root (`sudo -E just bench`)"
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("network bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // Still single-threaded: from here on every link and rule is in our own namespace.
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    sh("ip link set lo up")?;
    let data = tempfile::Builder::new()
        .prefix("nutshell-bench-net-")
        .tempdir()
        .context("make the bench's data dir")?;
    fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    // The first run builds the default image: not measured.
    finish(ch08(data.path(), &["--network", "none", "--", "true"]).spawn()?)?;

    let mut table = format!(
        "date: {} (UTC)   kernel: {}\n\n",
        today(),
        nix::sys::utsname::uname()?.release().to_string_lossy()
    );
    let _ = writeln!(
        table,
        "container start to the exit of `true`, median of {RUNS} runs"
    );
    for (what, flags) in [
        ("--network none (lo only)", &["--network", "none"][..]),
        ("--network bridge", &[][..]),
    ] {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            finish(ch08(data.path(), &[flags, &["--", "true"]].concat()).spawn()?)?;
            times.push(started.elapsed());
        }
        let _ = writeln!(
            table,
            "  {what:<26} {:>8.1} ms",
            median(&mut times).as_secs_f64() * 1e3
        );
    }

    let _ = writeln!(
        table,
        "\nTCP throughput, 1 GiB through busybox nc, median of {STREAMS} streams"
    );
    let paths = [
        ("container to container (bridge)", Route::Bridge),
        ("in one container (its lo)", Route::ContainerLoopback),
        ("on the host (lo)", Route::HostLoopback),
    ];
    for (what, path) in paths {
        let mut rates = Vec::new();
        for _ in 0..STREAMS {
            rates.push(stream(data.path(), path)?);
        }
        rates.sort_by(f64::total_cmp);
        let _ = writeln!(table, "  {what:<32} {:>7.0} MiB/s", rates[STREAMS / 2]);
    }
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/ch08-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?)?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Bridge,
    ContainerLoopback,
    HostLoopback,
}

/// One stream on `path`: its rate in MiB/s, from the seconds busybox `time` reports
/// around the sending pipeline (so a container's start is not counted). On the host the
/// same busybox applets run, by name.
fn stream(data: &Path, path: Route) -> Result<f64> {
    let bb = if matches!(path, Route::HostLoopback) {
        "busybox "
    } else {
        ""
    };
    // The receiver counts what arrives and says so back: `nc -e` runs wc on the socket
    // (a plain `nc -l` in the background would close at the EOF of its own stdin).
    let receive = format!("{bb}nc -l -p 5001 -e {bb}wc -c");
    let timed = |to: &str| {
        format!(
            "{bb}time {bb}sh -c '{bb}dd if=/dev/zero bs={BLOCK} count={BLOCKS} 2>/dev/null | {bb}nc -w 10 {to} 5001' 2>&1"
        )
    };
    let report = match path {
        Route::Bridge => {
            // Stopped, and so torn down, however this ends.
            let server = Background::new(
                ch08(data, &["--name", "server", "--", "sh", "-c", &receive]).spawn()?,
            );
            let address = leased_to(data, "server")?;
            // Until the server listens the connection is refused, nc fails, and the
            // client tries again.
            let client = format!(
                "for i in $(seq 100); do if out=$({}); then echo \"$out\"; exit 0; fi; sleep 0.05; done; exit 1",
                timed(&address)
            );
            let out = finish(ch08(data, &["--", "sh", "-c", &client]).spawn()?)?;
            finished(server)?;
            out
        }
        Route::ContainerLoopback => {
            let script = format!("{receive} & sleep 0.3; {}", timed("127.0.0.1"));
            finish(ch08(data, &["--network", "none", "--", "sh", "-c", &script]).spawn()?)?
        }
        // The trap ends the receiver if the sender never reached it.
        Route::HostLoopback => sh(&format!(
            "{receive} & trap 'kill $! 2>/dev/null' EXIT; sleep 0.3; {}",
            timed("127.0.0.1")
        ))?,
    };
    let bytes = (BLOCKS * 64 * 1024).to_string();
    if !report.lines().any(|l| l.trim() == bytes) {
        bail!("the receiver did not count {bytes} bytes: {report:?}");
    }
    let seconds = parse_real(&report).with_context(|| format!("no time in {report:?}"))?;
    Ok((BLOCKS as f64 * 64.0 / 1024.0) / seconds)
}

/// The address leased to container `id`, once it has one: its lease file's name.
fn leased_to(data: &Path, id: &str) -> Result<String> {
    let dir = data.join("net").join(nutshell::net::DEFAULT_BRIDGE);
    let deadline = Instant::now() + RUN_TIMEOUT;
    while Instant::now() < deadline {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if fs::read_to_string(entry.path()).is_ok_and(|owner| owner == id) {
                return Ok(entry.file_name().to_string_lossy().into_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("container {id} got no address")
}

/// busybox `time`'s `real\t0m 1.23s`, in seconds.
fn parse_real(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("real"))?;
    let value = line.trim_start().strip_prefix("real")?.trim();
    let (minutes, seconds) = value.split_once('m')?;
    let seconds = seconds.trim().trim_end_matches('s').parse::<f64>().ok()?;
    Some(minutes.trim().parse::<f64>().ok()? * 60.0 + seconds)
}

fn ch08(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", data.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn sh(script: &str) -> Result<String> {
    let child = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    finish(child)
}

/// Wait for `child` at most [`RUN_TIMEOUT`] (stopping it past that); its stdout, or an
/// error with its stderr.
fn finish(child: Child) -> Result<String> {
    finished(Background::new(child))
}

fn finished(child: Background) -> Result<String> {
    let output = child.wait(RUN_TIMEOUT).map_err(|e| anyhow!(e))?;
    if !output.status.success() {
        bail!(
            "a run failed ({}): {} {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Today's date, UTC, as YYYY-MM-DD (the library's RFC 3339 formatting, cut to the date).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    nutshell::image::pack::rfc3339(now)[..10].to_string()
}
