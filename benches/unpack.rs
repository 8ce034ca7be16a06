//! Chapter 9's benchmark: unpacking one image layer, nutshell against GNU tar and umoci.
//!
//! It makes a layer of about 100 MiB from host files (`/usr/share` and `/usr/lib`,
//! walked in sorted order, following no symlink), as a plain tar and a gzip copy, puts
//! both in an OCI image layout, and then unpacks each, in one run, with:
//!
//! - nutshell's [`unpack_blob`], which also hashes the tar to check its diff id;
//! - GNU `tar -xf` / `tar -xzf`, which checks nothing;
//! - Debian's `umoci unpack`, which checks the blob digests and also writes a runtime
//!   bundle's `config.json` and an mtree manifest of the whole tree.
//!
//! Every run goes into a fresh directory on the same filesystem, with the page cache warm
//! (a first round is a warm-up, not counted), and is synced to disk before the next,
//! untimed; the outputs are removed at the end (see [`settle_deletions`] for why not
//! between runs). It prints the table and writes it to
//! `book/src/generated/ch09-bench.txt`, which the book page includes. Run it with
//! `just bench` (as root, as the other benches need); as a user it works too, and runs
//! `umoci unpack --rootless`. Everything it makes is in one temp dir under the target
//! directory, removed at the end, also on error.

mod common;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nutshell::image::digest::{Digest, HashingWriter};
use nutshell::image::extract::{Limits, Privilege};
use nutshell::image::layer::unpack_blob;
use nutshell::image::oci::{Platform, media};
use serde_json::json;

/// Timed runs per measurement, after one warm-up round; the table shows median and min.
const RUNS: usize = 5;
/// The file data the layer holds, at most: half from `/usr/share`, half from `/usr/lib`.
const LAYER_BUDGET: u64 = 100 << 20;
/// Bigger files are left out, so that no single blob (a compiler, a firmware image)
/// makes up much of the layer.
const MAX_FILE: u64 = 4 << 20;
/// How long one external unpack may take, in seconds, before `timeout` stops it.
const COMMAND_TIMEOUT: &str = "300";

/// What unpacks the layer, and from which blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Nutshell,
    GnuTar,
    Umoci,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blob {
    Plain,
    Gzip,
}

/// The layer as the bench made it: both blobs, in an OCI layout.
struct Layer {
    layout: PathBuf,
    plain: BlobFile,
    gzip: BlobFile,
    diff_id: Digest,
    files: u64,
    dirs: u64,
    symlinks: u64,
    data: u64,
}

struct BlobFile {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// One line of the table.
struct Row {
    tool: Tool,
    blob: Blob,
    median: Duration,
    min: Duration,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unpack bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("bench-unpack-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .context("make the bench's temp dir")?;
    let layer = make_layer(work.path()).context("make the layer")?;
    let umoci = common::version("umoci", &["--version"]);
    let tar = common::version("tar", &["--version"]);
    if tar.is_none() {
        bail!("GNU tar is not installed");
    }
    let mut tools = vec![Tool::Nutshell, Tool::GnuTar];
    if umoci.is_some() {
        tools.push(Tool::Umoci);
    } else {
        eprintln!("umoci is not installed (Debian: apt-get install umoci): its rows are left out");
    }
    let cases: Vec<(Tool, Blob)> = [Blob::Plain, Blob::Gzip]
        .into_iter()
        .flat_map(|blob| tools.iter().map(move |&tool| (tool, blob)))
        .collect();
    let runs = work.path().join("runs");
    fs::create_dir(&runs).context("make the runs dir")?;
    let needed = (RUNS as u64 + 1) * cases.len() as u64 * layer.plain.size * 11 / 10;
    let free = nix::sys::statvfs::statvfs(&runs).context("statvfs the runs dir")?;
    let free = free.blocks_available() * free.fragment_size();
    if free < needed {
        bail!(
            "the bench keeps every run's output until the end: it needs {:.1} GiB free in {}, there are {:.1} GiB",
            needed as f64 / f64::from(1 << 30),
            runs.display(),
            free as f64 / f64::from(1 << 30)
        );
    }
    settle_deletions(&runs)?;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    // Round 0 warms the page cache and checks every tool unpacked every entry; the rounds
    // interleave the tools, so that a slow moment of the machine hits them all alike.
    for round in 0..=RUNS {
        for (case, &(tool, blob)) in cases.iter().enumerate() {
            let dest = runs.join(format!("{}-{}-{round}", tool.name(), blob.name()));
            warm(&layer, blob)?;
            let (elapsed, tree) = unpack_once(&layer, tool, blob, &dest)?;
            if round == 0 {
                let found = count_entries(&tree)?;
                let expected = layer.files + layer.dirs + layer.symlinks;
                if found != expected {
                    bail!(
                        "{} ({}) unpacked {found} entries, the layer has {expected}",
                        tool.name(),
                        blob.name()
                    );
                }
            } else {
                times[case].push(elapsed);
            }
            // The next run should not pay for this one's writeback.
            nix::unistd::sync();
        }
    }
    let rows: Vec<Row> = cases
        .iter()
        .zip(&mut times)
        .map(|(&(tool, blob), times)| {
            times.sort();
            Row {
                tool,
                blob,
                median: times[times.len() / 2],
                min: times[0],
            }
        })
        .collect();
    // Best effort, like the TempDir's own removal after it, and also for read-only dirs.
    nutshell::image::layer::remove_layer_dir(&runs);
    let table = render(&layer, &rows, tar.as_deref(), umoci.as_deref())?;
    print!("{table}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated/ch09-bench.txt");
    fs::create_dir_all(out.parent().context("output dir")?).context("make book/src/generated")?;
    fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// Unpack the layer's `blob` with `tool` into `dest`, which does not exist yet: the time
/// it took, and the directory that holds the layer's tree.
fn unpack_once(layer: &Layer, tool: Tool, blob: Blob, dest: &Path) -> Result<(Duration, PathBuf)> {
    let file = match blob {
        Blob::Plain => &layer.plain,
        Blob::Gzip => &layer.gzip,
    };
    match tool {
        Tool::Nutshell => {
            let start = Instant::now();
            unpack_blob(
                &file.path,
                &file.digest,
                &layer.diff_id,
                dest,
                Privilege::of_this_process(),
                Limits::default(),
            )
            .with_context(|| format!("nutshell: unpack {}", file.path.display()))?;
            Ok((start.elapsed(), dest.to_path_buf()))
        }
        Tool::GnuTar => {
            fs::create_dir(dest).with_context(|| format!("mkdir {}", dest.display()))?;
            let flags = match blob {
                Blob::Plain => "-xf",
                Blob::Gzip => "-xzf",
            };
            let mut tar = Command::new("timeout");
            tar.args([COMMAND_TIMEOUT, "tar", flags])
                .arg(&file.path)
                .arg("-C")
                .arg(dest);
            let start = Instant::now();
            finish(tar)?;
            Ok((start.elapsed(), dest.to_path_buf()))
        }
        Tool::Umoci => {
            let image = format!("{}:{}", layer.layout.display(), blob.name());
            let mut umoci = Command::new("timeout");
            umoci.args([COMMAND_TIMEOUT, "umoci", "unpack"]);
            if !nix::unistd::geteuid().is_root() {
                umoci.arg("--rootless");
            }
            umoci.arg("--image").arg(&image).arg(dest);
            let start = Instant::now();
            finish(umoci)?;
            Ok((start.elapsed(), dest.join("rootfs")))
        }
    }
}

/// Read the blob once, untimed, so that it is in the page cache: a machine may reclaim
/// cold page cache between runs (DAMON's proactive reclaim does, on some VMs), and the
/// runs should time the unpacking, not the disk.
fn warm(layer: &Layer, blob: Blob) -> Result<()> {
    let path = match blob {
        Blob::Plain => &layer.plain.path,
        Blob::Gzip => &layer.gzip.path,
    };
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    io::copy(&mut file, &mut io::sink()).with_context(|| format!("read {}", path.display()))?;
    Ok(())
}

/// Run `command` (already under `timeout`), failing with its stderr if it fails.
fn finish(mut command: Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
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
    Ok(())
}

/// Outputs are kept until the end, not removed between runs, because on ext4 without a
/// journal a create skips every inode freed in the last minute (six while its inode
/// table block is not written back), looking each one up (`recently_deleted()` in the kernel's
/// fs/ext4/ialloc.c): after a removed run the next one would time that scan, which grows
/// with what was removed. So on such a filesystem, sync and let a minute pass first,
/// for what was removed before the bench started.
fn settle_deletions(dir: &Path) -> Result<()> {
    let fs_type = nix::sys::statfs::statfs(dir).context("statfs the runs dir")?;
    if fs_type.filesystem_type() != nix::sys::statfs::EXT4_SUPER_MAGIC || has_journal(dir) {
        return Ok(());
    }
    eprintln!(
        "{} is on ext4 without a journal, which skips recently freed inodes on every create: syncing, then waiting a minute",
        dir.display()
    );
    nix::unistd::sync();
    std::thread::sleep(Duration::from_secs(61));
    Ok(())
}

/// Whether the filesystem of `dir` has a jbd2 journal: its device's entry in
/// /proc/fs/jbd2 (`vda-8` for /dev/vda). False when that cannot be told.
fn has_journal(dir: &Path) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let dev = meta.dev();
    let uevent = format!(
        "/sys/dev/block/{}:{}/uevent",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let Some(name) = fs::read_to_string(uevent).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_string))
    }) else {
        return false;
    };
    fs::read_dir("/proc/fs/jbd2")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
}

/// One path the layer holds: where it is on the host, what it is.
struct Picked {
    host: PathBuf,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// Make the layer tar from host files, its gzip copy, and the OCI layout around both,
/// in `work`.
fn make_layer(work: &Path) -> Result<Layer> {
    let mut picked = vec![Picked {
        host: PathBuf::from("/usr"),
        kind: Kind::Dir,
    }];
    let mut data = 0;
    for root in ["/usr/share", "/usr/lib"] {
        let mut taken = 0;
        picked.push(Picked {
            host: PathBuf::from(root),
            kind: Kind::Dir,
        });
        pick(Path::new(root), LAYER_BUDGET / 2, &mut taken, &mut picked)?;
        data += taken;
    }
    let count = |kind| picked.iter().filter(|p| p.kind == kind).count() as u64;
    let (files, dirs, symlinks) = (count(Kind::File), count(Kind::Dir), count(Kind::Symlink));

    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("mkdir {}", blobs.display()))?;
    let tar_path = work.join("layer.tar");
    let out = File::create(&tar_path).with_context(|| format!("create {}", tar_path.display()))?;
    let mut builder = tar::Builder::new(HashingWriter::new(BufWriter::new(out)));
    builder.follow_symlinks(false);
    for p in &picked {
        let name = p
            .host
            .strip_prefix("/")
            .context("a host path that is not absolute")?;
        builder
            .append_path_with_name(&p.host, name)
            .with_context(|| format!("add {} to the layer", p.host.display()))?;
    }
    let (diff_id, size, out) = builder.into_inner().context("end the layer tar")?.finish();
    out.into_inner()
        .map_err(|e| e.into_error())
        .context("write the layer tar")?;
    let plain = into_blob(&tar_path, diff_id.clone(), size, &blobs)?;

    let gz_path = work.join("layer.tar.gz");
    let out = File::create(&gz_path).with_context(|| format!("create {}", gz_path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(
        HashingWriter::new(BufWriter::new(out)),
        flate2::Compression::default(),
    );
    let mut tar_file = File::open(&plain.path).context("open the layer tar")?;
    io::copy(&mut tar_file, &mut gz).context("gzip the layer")?;
    let (digest, size, out) = gz.finish().context("end the gzip stream")?.finish();
    out.into_inner()
        .map_err(|e| e.into_error())
        .context("write the gzip layer")?;
    let gzip = into_blob(&gz_path, digest, size, &blobs)?;

    // One image per blob, tagged `plain` and `gzip`, in one index: what umoci unpacks.
    let config = json!({
        "architecture": Platform::host().architecture,
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
    });
    let config = write_json_blob(&blobs, &config)?;
    let mut manifests = Vec::new();
    for (tag, blob, media_type) in [
        (Blob::Plain.name(), &plain, media::OCI_LAYER),
        (Blob::Gzip.name(), &gzip, media::OCI_LAYER_GZIP),
    ] {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": media::OCI_CONFIG, "digest": config.0.to_string(), "size": config.1 },
            "layers": [{ "mediaType": media_type, "digest": blob.digest.to_string(), "size": blob.size }],
        });
        let (digest, size) = write_json_blob(&blobs, &manifest)?;
        manifests.push(json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }));
    }
    let index =
        json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests });
    fs::write(layout.join("index.json"), index.to_string()).context("write index.json")?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .context("write oci-layout")?;
    Ok(Layer {
        layout,
        plain,
        gzip,
        diff_id,
        files,
        dirs,
        symlinks,
        data,
    })
}

/// Add the entries under `dir` to `picked`, in sorted order, until `budget` bytes of
/// file data are taken. Symlinks are kept as symlinks, never followed; what cannot be
/// read, and what is neither a file, a directory nor a symlink, is left out. True once
/// the budget is reached.
fn pick(dir: &Path, budget: u64, taken: &mut u64, picked: &mut Vec<Picked>) -> Result<bool> {
    let Ok(listing) = fs::read_dir(dir) else {
        return Ok(false);
    };
    let mut entries: Vec<PathBuf> = listing.flatten().map(|e| e.path()).collect();
    entries.sort();
    for host in entries {
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        let file_type = meta.file_type();
        if file_type.is_dir() {
            // A directory the walk cannot list would be an entry the tools could differ on.
            if fs::read_dir(&host).is_err() {
                continue;
            }
            picked.push(Picked {
                host: host.clone(),
                kind: Kind::Dir,
            });
            if pick(&host, budget, taken, picked)? {
                return Ok(true);
            }
        } else if file_type.is_symlink() {
            picked.push(Picked {
                host,
                kind: Kind::Symlink,
            });
        } else if file_type.is_file() {
            if meta.size() > MAX_FILE || File::open(&host).is_err() {
                continue;
            }
            if *taken + meta.size() > budget {
                return Ok(true);
            }
            *taken += meta.size();
            picked.push(Picked {
                host,
                kind: Kind::File,
            });
        }
    }
    Ok(false)
}

/// Move the finished blob at `from` to its content address in `blobs`.
fn into_blob(from: &Path, digest: Digest, size: u64, blobs: &Path) -> Result<BlobFile> {
    let path = blobs.join(digest.hex());
    fs::rename(from, &path).with_context(|| format!("move {} into the layout", from.display()))?;
    Ok(BlobFile { path, digest, size })
}

/// Write `value` as a blob of the layout: its digest and size.
fn write_json_blob(blobs: &Path, value: &serde_json::Value) -> Result<(Digest, u64)> {
    let bytes = value.to_string().into_bytes();
    let digest = Digest::of(&bytes);
    let path = blobs.join(digest.hex());
    fs::write(&path, &bytes).with_context(|| format!("write {}", path.display()))?;
    Ok((digest, bytes.len() as u64))
}

/// Everything under `dir` (not `dir` itself), without following symlinks.
fn count_entries(dir: &Path) -> Result<u64> {
    let mut count = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("read {}", dir.display()))?;
        count += 1;
        if entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?
            .is_dir()
        {
            count += count_entries(&entry.path())?;
        }
    }
    Ok(count)
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Nutshell => "nutshell",
            Tool::GnuTar => "gnu-tar",
            Tool::Umoci => "umoci",
        }
    }

    /// The row's label: the command, and what it does beyond unpacking.
    fn label(self, blob: Blob) -> &'static str {
        match (self, blob) {
            (Tool::Nutshell, _) => "nutshell unpack_blob   (hashes the tar: checks the diff id)",
            (Tool::GnuTar, Blob::Plain) => "tar -xf                (checks nothing)",
            (Tool::GnuTar, Blob::Gzip) => {
                "tar -xzf               (checks nothing; gzip -d in a 2nd process)"
            }
            (Tool::Umoci, _) => "umoci unpack           (checks digests; + config.json, mtree)",
        }
    }
}

impl Blob {
    fn name(self) -> &'static str {
        match self {
            Blob::Plain => "plain",
            Blob::Gzip => "gzip",
        }
    }
}

fn render(layer: &Layer, rows: &[Row], tar: Option<&str>, umoci: Option<&str>) -> Result<String> {
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "date: {} (UTC)   kernel: {}   cores: {cores}\n",
        today(),
        nix::sys::utsname::uname()
            .context("uname")?
            .release()
            .to_string_lossy(),
    );
    let _ = writeln!(
        out,
        "tools: {}; {}",
        tar.unwrap_or("tar ?"),
        umoci.unwrap_or("umoci not installed")
    );
    let _ = writeln!(
        out,
        "layer: from /usr/share and /usr/lib, {} files, {} dirs, {} symlinks, {:.1} MiB of data\n\
         \x20      tar {:.1} MiB, gzip (flate2 default level) {:.1} MiB",
        layer.files,
        layer.dirs,
        layer.symlinks,
        mib(layer.data),
        mib(layer.plain.size),
        mib(layer.gzip.size),
    );
    let _ = writeln!(
        out,
        "as {}: each run into a fresh directory on the same filesystem, page cache warm\n\
         (one warm-up round first), synced between runs, untimed, and kept to the end (on ext4
without a journal, a create skips recently freed inodes: a removal would slow the next run);\n\
         median and min of {RUNS} runs; MiB/s of the uncompressed tar, at the median\n",
        if nix::unistd::geteuid().is_root() {
            "root (owners kept; umoci unpack)"
        } else {
            "a user (umoci unpack --rootless)"
        },
    );
    let _ = writeln!(
        out,
        "{:<6} {:<64} {:>9} {:>9} {:>7}",
        "blob", "unpacked by", "median", "min", "MiB/s"
    );
    for row in rows {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let _ = writeln!(
            out,
            "{:<6} {:<64} {:>6.0} ms {:>6.0} ms {:>7.0}",
            row.blob.name(),
            row.tool.label(row.blob),
            ms(row.median),
            ms(row.min),
            mib(layer.plain.size) / row.median.as_secs_f64(),
        );
    }
    let median_of = |tool, blob| {
        rows.iter()
            .find(|r| r.tool == tool && r.blob == blob)
            .map(|r| r.median.as_secs_f64())
    };
    let ratio = |blob| match (
        median_of(Tool::Nutshell, blob),
        median_of(Tool::GnuTar, blob),
    ) {
        (Some(n), Some(t)) => format!("{:.2}", n / t),
        _ => "?".to_string(),
    };
    let _ = writeln!(
        out,
        "\nnutshell / GNU tar, median time (below 1: nutshell is faster): plain {}, gzip {}",
        ratio(Blob::Plain),
        ratio(Blob::Gzip),
    );
    Ok(out)
}

/// Today's date, UTC, as YYYY-MM-DD (the library's RFC 3339 formatting, cut to the date).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    nutshell::image::pack::rfc3339(now)[..10].to_string()
}
