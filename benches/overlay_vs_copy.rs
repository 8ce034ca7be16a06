//! Chapter 7's benchmark: start 1 and 10 "containers" on the default image, by overlay
//! (make upper and work, mount, write one small file) and by copying the root (copy the
//! tree, write one small file). It reports the wall time (median of several runs) and the
//! disk space each approach adds, prints the table and writes it to
//! `book/src/generated/ch07-bench.txt`, which the book page includes.
//!
//! Run it with `just bench`, as root. It runs in its own mount namespace (it unshares one
//! first, while it is still single-threaded), so every mount it makes dies with it; all
//! files go to one temp dir, removed at the end, also on error.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::{CloneFlags, unshare};
use nutshell::image::{ImageStore, Source};
use nutshell::overlay::ContainerDirs;

/// Runs per measurement; the table shows the median.
const RUNS: usize = 5;
/// How many containers each measurement starts.
const COUNTS: [usize; 2] = [1, 10];
/// The file each container writes: in /tmp, a lower directory, so the overlay copies the
/// directory up too.
const WRITTEN: &str = "tmp/hello";

#[derive(Debug, Clone, Copy)]
enum Approach {
    Overlay,
    Copy,
}

/// One line of the table.
struct Row {
    approach: Approach,
    containers: usize,
    median: Duration,
    disk_added: u64,
}

fn main() -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("overlay_vs_copy mounts overlays: run it as root (`sudo -E just bench`)");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("overlay_vs_copy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // Still single-threaded: unshare(CLONE_NEWNS) works, and from here on no mount of ours
    // reaches the host's namespace or outlives this process.
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private")?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("nutshell-bench-{}-", std::process::id()))
        .tempdir()
        .context("make the bench's temp dir")?;
    let (image, _) = ImageStore::new(tmp.path())
        .ensure_default(Source::Auto, Path::new("/"))
        .context("build the default image")?;
    let image_size = disk_usage(&image.rootfs)?;
    let mut rows = Vec::new();
    for approach in [Approach::Overlay, Approach::Copy] {
        for containers in COUNTS {
            let mut times = Vec::new();
            let mut disk_added = 0;
            for run in 0..RUNS {
                let (elapsed, added) = match approach {
                    Approach::Overlay => {
                        start_overlays(tmp.path(), &image.rootfs, containers, run)?
                    }
                    Approach::Copy => start_copies(tmp.path(), &image.rootfs, containers, run)?,
                };
                times.push(elapsed);
                disk_added = added;
            }
            times.sort();
            rows.push(Row {
                approach,
                containers,
                median: times[RUNS / 2],
                disk_added,
            });
        }
    }
    let header = format!(
        "date: {} (UTC)   kernel: {}\nimage: default ({}), {} on disk\n",
        today(),
        nix::sys::utsname::uname()
            .context("uname")?
            .release()
            .to_string_lossy(),
        image.manifest.source,
        human(image_size),
    );
    let mut table = header + &render(&rows);
    let per_container = |approach: &str| {
        rows.iter()
            .rev()
            .find(|row| row.approach.name() == approach)
            .map(|row| human(row.disk_added / row.containers as u64))
            .unwrap_or_default()
    };
    let _ = writeln!(
        table,
        "\nper container: overlay {:>9} (the lower is shared, never copied)\n               copy    {:>9} (the whole image, every time)",
        per_container("overlay"),
        per_container("copy"),
    );
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/ch07-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?).context("make book/src/generated")?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// Unmounts on drop: on the normal path and on every error path alike.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Start `n` overlay containers on `lower`: the time it took, and the disk they added.
fn start_overlays(data: &Path, lower: &Path, n: usize, run: usize) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let mut containers = Vec::new();
    for i in 0..n {
        let name = format!("nutshell-bench-{}-{run}-{i}", std::process::id());
        let dirs = ContainerDirs::create(data, &name, None)?;
        dirs.layers(vec![lower.to_path_buf()], false)
            .mount(dirs.merged())?;
        // The guard goes first in the tuple, so it is dropped (unmounted) before the dirs.
        let mounted = Mounted(dirs.merged().to_path_buf());
        let file = dirs.merged().join(WRITTEN);
        fs::write(&file, "hello\n").with_context(|| format!("write {}", file.display()))?;
        containers.push((mounted, dirs));
    }
    let elapsed = start.elapsed();
    let mut added = 0;
    for (mounted, mut dirs) in containers {
        drop(mounted);
        added += disk_usage(dirs.root())?;
        dirs.remove(false)?;
    }
    Ok((elapsed, added))
}

/// Start `n` containers on copies of `rootfs`: the time it took, and the disk they added.
fn start_copies(data: &Path, rootfs: &Path, n: usize, run: usize) -> Result<(Duration, u64)> {
    let copies = data.join("copies");
    let start = Instant::now();
    let mut made = Vec::new();
    for i in 0..n {
        let root = copies.join(format!("nutshell-bench-{}-{run}-{i}", std::process::id()));
        fs::create_dir_all(&copies).context("make the copies dir")?;
        made.push(root.clone());
        copy_tree(rootfs, &root, &mut HashSet::new())?;
        let file = root.join(WRITTEN);
        fs::write(&file, "hello\n").with_context(|| format!("write {}", file.display()))?;
    }
    let elapsed = start.elapsed();
    let mut added = 0;
    for root in &made {
        added += disk_usage(root)?;
    }
    fs::remove_dir_all(&copies).context("remove the copies")?;
    Ok((elapsed, added))
}

/// Copy `from` to `to` as `cp -a` does: modes, owners, symlinks as symlinks, hard links
/// as hard links (`seen` maps nothing yet: the default image has none, so a second link
/// to one inode is an error rather than a silent second copy).
fn copy_tree(from: &Path, to: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<()> {
    let meta = fs::symlink_metadata(from).with_context(|| format!("stat {}", from.display()))?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        fs::create_dir(to).with_context(|| format!("mkdir {}", to.display()))?;
        for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
            let entry = entry.with_context(|| format!("read {}", from.display()))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()), seen)?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .with_context(|| format!("chmod {}", to.display()))?;
    } else if file_type.is_symlink() {
        let target = fs::read_link(from).with_context(|| format!("readlink {}", from.display()))?;
        symlink(&target, to).with_context(|| format!("symlink {}", to.display()))?;
    } else if file_type.is_file() {
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            bail!(
                "{} is a second hard link: not handled by this copy",
                from.display()
            );
        }
        fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    } else {
        bail!(
            "{}: a special file, not expected in the default image",
            from.display()
        );
    }
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("chown {}", to.display()))?;
    Ok(())
}

/// The bytes allocated under `dir` (st_blocks × 512), each inode once, without crossing
/// into another filesystem.
fn disk_usage(dir: &Path) -> Result<u64> {
    fn walk(path: &Path, dev: u64, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
        let meta =
            fs::symlink_metadata(path).with_context(|| format!("stat {}", path.display()))?;
        if meta.dev() != dev || !seen.insert((meta.dev(), meta.ino())) {
            return Ok(0);
        }
        let mut total = meta.blocks() * 512;
        if meta.is_dir() {
            for entry in fs::read_dir(path).with_context(|| format!("read {}", path.display()))? {
                let entry = entry.with_context(|| format!("read {}", path.display()))?;
                total += walk(&entry.path(), dev, seen)?;
            }
        }
        Ok(total)
    }
    let dev = fs::symlink_metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .dev();
    walk(dir, dev, &mut HashSet::new())
}

impl Approach {
    fn name(self) -> &'static str {
        match self {
            Approach::Overlay => "overlay",
            Approach::Copy => "copy",
        }
    }
}

fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "each start: make the dirs, mount the overlay or copy the root, write one small file\n\
         wall time: median of {RUNS} runs\n\n\
         {:<9} {:>10} {:>11} {:>11}\n",
        "approach", "containers", "wall time", "disk added"
    );
    for row in rows {
        let approach = row.approach.name();
        let _ = writeln!(
            out,
            "{approach:<9} {:>10} {:>8.2} ms {:>11}",
            row.containers,
            row.median.as_secs_f64() * 1000.0,
            human(row.disk_added)
        );
    }
    out
}

/// Bytes in KiB or MiB, one decimal.
fn human(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes / 1024.0)
    }
}

/// Today's date, UTC, as YYYY-MM-DD (the library's RFC 3339 formatting, cut to the date).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    nutshell::image::pack::rfc3339(now)[..10].to_string()
}
