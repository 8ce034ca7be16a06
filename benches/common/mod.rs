//! What the benches share: running a setup command with a timeout, a tool's version,
//! the one hyperfine run that times commands side by side (`runtime` and `workflow`),
//! the machine line that heads their tables, and the unmounting their temp dirs need
//! when they are removed.

#![allow(dead_code)] // each bench uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One command's times from hyperfine, in seconds.
pub struct Timing {
    /// The mean and its standard deviation.
    pub mean: f64,
    pub stddev: f64,
    /// The median and the fastest run.
    pub median: f64,
    pub min: f64,
}

/// How many times hyperfine runs each command, and how long it may take in all.
pub struct Runs {
    /// Timed runs of each command.
    pub runs: usize,
    /// Untimed runs of each command before its timed ones.
    pub warmup: usize,
    /// How long the whole hyperfine run may take before it is stopped.
    pub timeout: Duration,
}

/// `words` as one of hyperfine's command lines. hyperfine's `--shell=none` splits a
/// command into words as a shell would, without one, so no word may need quoting.
pub fn command_line(words: &[String]) -> Result<String> {
    for word in words {
        if word.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            bail!("{word:?} would need quoting on hyperfine's command line");
        }
    }
    Ok(words.join(" "))
}

/// Time `commands` (a label and a [`command_line`] each) in one hyperfine run, side by
/// side, so that a slow moment of the machine hits them all alike; `env` is set for
/// them, and hyperfine's JSON goes to `export`. Their timings, in the order given.
pub fn side_by_side(
    commands: &[(&str, String)],
    runs: &Runs,
    env: &[(&str, &Path)],
    export: &Path,
) -> Result<Vec<Timing>> {
    let mut hyperfine = Command::new("hyperfine");
    hyperfine
        .envs(env.iter().copied())
        .args(["--shell=none", "--style", "basic"])
        .args(["--warmup", &runs.warmup.to_string()])
        .args(["--runs", &runs.runs.to_string()])
        .arg("--export-json")
        .arg(export);
    for (label, line) in commands {
        hyperfine.args(["--command-name", label]).arg(line);
    }
    // Its progress and summary go to the terminal, to watch; the numbers come from JSON.
    hyperfine.stdin(Stdio::null());
    let child = hyperfine.spawn().context("run hyperfine")?;
    let status = wait_for(child, runs.timeout, "hyperfine")?;
    if !status.success() {
        bail!("hyperfine failed ({status})");
    }
    let text = fs::read_to_string(export).with_context(|| format!("read {}", export.display()))?;
    let report: Value = serde_json::from_str(&text).context("hyperfine's JSON")?;
    let results = report["results"]
        .as_array()
        .context("no results in hyperfine's JSON")?;
    commands
        .iter()
        .map(|(label, _)| {
            let result = results
                .iter()
                .find(|r| r["command"] == *label)
                .with_context(|| format!("no result for {label} in hyperfine's JSON"))?;
            let number = |field: &str| {
                result[field]
                    .as_f64()
                    .with_context(|| format!("no {field} for {label}"))
            };
            Ok(Timing {
                mean: number("mean")?,
                stddev: number("stddev")?,
                median: number("median")?,
                min: number("min")?,
            })
        })
        .collect()
}

/// The line that heads a table: the date, the kernel, the cores and the load.
pub fn machine_line() -> Result<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(format!(
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
    ))
}

/// Run `command` with stdin, stdout and stderr apart, for at most `timeout`: its
/// stdout; fails with its output if it fails.
pub fn finish(mut command: Command, timeout: Duration) -> Result<String> {
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
    Ok(read_back(out))
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
pub fn wait_for(mut child: Child, timeout: Duration, what: &str) -> Result<ExitStatus> {
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
pub fn version(program: &str, args: &[&str]) -> Option<String> {
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

/// Unmount every mount at or under `dir`, deepest first (best effort); `bench` names
/// the bench in what it says.
pub fn unmount_under(dir: &Path, bench: &str) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    // The mount point is the fifth field, with spaces and the like octal-escaped.
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        eprintln!("{bench} bench: unmounting leftover {}", point.display());
        if let Err(e) = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("{bench} bench: umount {}: {e}", point.display());
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

/// A mountinfo field with its octal escapes (space, tab, newline, backslash) undone.
fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
