//! Chapter 9's layer unpacker against hostile layers, and the changeset rules it keeps.
//!
//! Part A is a corpus of attacks, each a tar built here byte by byte (the `tar` crate's
//! builder refuses most of them, so the headers are written raw). Each one is unpacked
//! into `<tmp>/layer`, beside an `outside/` area that must come out untouched: every path
//! under `<tmp>` but the layer is snapshotted (type, mode, owner, size, links, mtime,
//! ctime, contents, xattrs) before and after, and the host path the attack aimed at (a
//! name unique to the test in the temp dir's parent) must not exist. The error must name
//! the entry, as the tar has it.
//!
//! Part B is the rules themselves: files, modes, links, mtimes, whiteouts as 0/0 devices,
//! opaque directories, a whiteout beside the layer's own entry, and the same layer
//! through gzip (one member or several), zstd and plain blobs.
//!
//! Tests marked `needs root` check what only the host's root does (owners, setuid,
//! devices, `trusted.*` xattrs); everything else passes `Privilege` explicitly and runs
//! as any user.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nutshell::image::digest::Digest;
use nutshell::image::extract::{self, ExtractError, Limits, Privilege, Unpacked};
use nutshell::image::layer::{self, LayerError};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

/// The mtime of every entry these tests write, unless a test says otherwise.
const MTIME: u64 = 1_600_000_000;

// ---------------------------------------------------------------------------------------
// Tars, written block by block.

/// A tar stream under construction: raw 512-byte headers, data, padding.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn new() -> Tar {
        Tar::default()
    }

    /// Append `header` (its checksum computed here), then `data` padded to a block.
    fn entry(mut self, mut header: Header, data: &[u8]) -> Tar {
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.raw(data)
    }

    /// Append bytes as they are, padded to a block.
    fn raw(mut self, data: &[u8]) -> Tar {
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    fn file(self, name: impl AsRef<[u8]>, data: &[u8]) -> Tar {
        let header = header(EntryType::Regular, name.as_ref(), data.len() as u64);
        self.entry(header, data)
    }

    fn dir(self, name: impl AsRef<[u8]>) -> Tar {
        self.entry(header(EntryType::Directory, name.as_ref(), 0), b"")
    }

    fn symlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Tar {
        let mut header = header(EntryType::Symlink, name.as_ref(), 0);
        set_link(&mut header, target.as_ref());
        self.entry(header, b"")
    }

    fn hardlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Tar {
        let mut header = header(EntryType::Link, name.as_ref(), 0);
        set_link(&mut header, target.as_ref());
        self.entry(header, b"")
    }

    /// A PAX `x` header: its records describe the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Tar {
        let data: Vec<u8> = records
            .iter()
            .flat_map(|(key, value)| pax_record(key, value))
            .collect();
        let header = header(EntryType::XHeader, b"PaxHeaders/entry", data.len() as u64);
        self.entry(header, &data)
    }

    /// The archive with its two end-of-archive blocks.
    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }

    /// The archive as it is, with no end-of-archive blocks.
    fn unfinished(self) -> Vec<u8> {
        self.0
    }
}

/// A ustar header of type `kind` whose name field holds exactly `name`.
fn header(kind: EntryType, name: &[u8], size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    set_name(&mut header, name);
    header.set_size(size);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    // The caller's own ids: what Privilege::MappedRoot may give as any user.
    header.set_uid(nix::unistd::geteuid().as_raw().into());
    header.set_gid(nix::unistd::getegid().as_raw().into());
    header.set_mtime(MTIME);
    header
}

/// Write `name` into the name field as raw bytes: no check of `..`, `/` or NUL.
fn set_name(header: &mut Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    assert!(name.len() <= field.len(), "name too long for the field");
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

fn set_link(header: &mut Header, target: &[u8]) {
    let field = &mut header.as_old_mut().linkname;
    assert!(
        target.len() <= field.len(),
        "link target too long for the field"
    );
    field.fill(0);
    field[..target.len()].copy_from_slice(target);
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    assert_eq!(record.len(), len);
    record
}

/// Bytes that do not compress: a gzip of them cut in half stops mid-entry.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

// ---------------------------------------------------------------------------------------
// The sandbox: a layer directory beside an area that must stay untouched.

/// `<tmp>/layer` (the layer), `<tmp>/outside/` (a sentinel file and directory), and a
/// host path unique to the test in `<tmp>`'s parent that an attack may aim at; that
/// path is removed on drop if an attack made it after all.
struct Sandbox {
    tmp: tempfile::TempDir,
    unique: String,
}

impl Sandbox {
    /// A sandbox whose `layer/` exists, empty, as [`extract::unpack`] wants it.
    fn new(test: &str) -> Sandbox {
        let sandbox = Sandbox::for_blob(test);
        fs::create_dir(sandbox.layer()).expect("make the layer dir");
        sandbox
    }

    /// A sandbox without `layer/`, which [`layer::unpack_blob`] makes itself.
    fn for_blob(test: &str) -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("nutshell-ch09-")
            .tempdir()
            .expect("temp dir");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("dir")).expect("make outside/dir");
        fs::write(
            outside.join("sentinel"),
            b"the host's file: never touched\n",
        )
        .expect("write the sentinel");
        fs::write(outside.join("dir/inner"), b"inner\n").expect("write outside/dir/inner");
        let sandbox = Sandbox {
            tmp,
            unique: format!("nutshell-ch09-{test}-{}", std::process::id()),
        };
        assert!(
            fs::symlink_metadata(sandbox.host_target()).is_err(),
            "{} exists before the test",
            sandbox.host_target().display()
        );
        sandbox
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn layer(&self) -> PathBuf {
        self.path().join("layer")
    }

    fn outside(&self) -> PathBuf {
        self.path().join("outside")
    }

    /// The temp dir's own name, to climb out of the layer and back into the sandbox.
    fn tmp_name(&self) -> String {
        self.path()
            .file_name()
            .expect("temp dir name")
            .to_string_lossy()
            .into_owned()
    }

    /// `<tmp>/../<unique>`: the host path outside the sandbox that attacks aim at.
    fn host_target(&self) -> PathBuf {
        self.path()
            .parent()
            .expect("temp dir parent")
            .join(&self.unique)
    }

    /// Everything under `<tmp>` but `layer/`.
    fn outside_snapshot(&self) -> BTreeMap<PathBuf, Node> {
        let mut nodes = BTreeMap::new();
        walk(self.path(), Path::new(""), true, &mut nodes);
        nodes.retain(|path, _| !path.starts_with("layer"));
        nodes
    }

    fn assert_host_target_absent(&self) {
        assert!(
            fs::symlink_metadata(self.host_target()).is_err(),
            "the attack made {}",
            self.host_target().display()
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let target = self.host_target();
        if let Ok(meta) = fs::symlink_metadata(&target) {
            let _ = if meta.is_dir() {
                fs::remove_dir_all(&target)
            } else {
                fs::remove_file(&target)
            };
        }
        // Whatever modes the layer was left with, the temp dir goes.
        layer::remove_layer_dir(&self.layer());
    }
}

/// What a test compares of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    rdev: u64,
    mtime: (i64, i64),
    /// Only in the snapshots of what must stay untouched: it catches chmod, chown, link
    /// and xattr changes through any path.
    ctime: Option<(i64, i64)>,
    /// The SHA-256 of a file, the target of a symlink.
    content: Option<String>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn node(path: &Path, with_ctime: bool) -> Node {
    let meta = fs::symlink_metadata(path).expect("lstat");
    let file_type = meta.file_type();
    let (kind, content) = if file_type.is_symlink() {
        let target = fs::read_link(path).expect("readlink");
        ("symlink", Some(target.to_string_lossy().into_owned()))
    } else if file_type.is_file() {
        let hash = Sha256::digest(fs::read(path).expect("read"));
        let hex = hash.iter().map(|b| format!("{b:02x}")).collect();
        ("file", Some(hex))
    } else if file_type.is_dir() {
        ("dir", None)
    } else if file_type.is_char_device() {
        ("char", None)
    } else if file_type.is_block_device() {
        ("block", None)
    } else if file_type.is_fifo() {
        ("fifo", None)
    } else {
        ("other", None)
    };
    Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == "dir" { 0 } else { meta.size() },
        nlink: if kind == "dir" { 0 } else { meta.nlink() },
        rdev: meta.rdev(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: with_ctime.then(|| (meta.ctime(), meta.ctime_nsec())),
        content,
        xattrs: xattrs(path),
    }
}

/// Every path under `dir` (not `dir` itself), keyed by its path relative to the walk's
/// start.
fn walk(dir: &Path, rel: &Path, with_ctime: bool, nodes: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let node = node(&path, with_ctime);
        let is_dir = node.kind == "dir";
        nodes.insert(rel.clone(), node);
        if is_dir {
            walk(&path, &rel, with_ctime, nodes);
        }
    }
}

/// A layer directory as a tree: its root (at `""`) and everything in it, no ctimes.
fn layer_tree(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    nodes.insert(PathBuf::new(), node(dir, false));
    walk(dir, Path::new(""), false, &mut nodes);
    nodes
}

/// The xattrs of `path` itself (not of a symlink's target).
fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: the buffer outlives the call and its length is passed.
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let len = usize::try_from(len).unwrap_or_else(|_| {
        panic!(
            "llistxattr {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )
    });
    names[..len]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let value = common::xattr(path, &name).unwrap_or_default();
            (name, value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Checks.

/// Unpack `tar` into the sandbox's layer and check that it is refused, that the error
/// names `entry`, and that nothing outside the layer changed.
fn assert_refused(
    sandbox: &Sandbox,
    tar: &[u8],
    entry: impl AsRef<[u8]>,
    privilege: Privilege,
    limits: Limits,
) -> ExtractError {
    let before = sandbox.outside_snapshot();
    let result = extract::unpack(tar, &sandbox.layer(), privilege, limits);
    assert_untouched(sandbox, &before);
    let err = match result {
        Ok(unpacked) => panic!("the hostile layer was unpacked: {unpacked:?}"),
        Err(err) => err,
    };
    assert_names(&err.to_string(), entry.as_ref());
    err
}

/// Nothing outside the layer changed since `before`, the layer is still a directory,
/// and the host path the attack aimed at does not exist.
fn assert_untouched(sandbox: &Sandbox, before: &BTreeMap<PathBuf, Node>) {
    let after = sandbox.outside_snapshot();
    assert_eq!(before, &after, "something outside the layer changed");
    sandbox.assert_host_target_absent();
    if let Ok(meta) = fs::symlink_metadata(sandbox.layer()) {
        assert!(meta.is_dir(), "the layer's root is no longer a directory");
    }
}

/// The message names the entry as the tar has it (quoted, as `EntryName` shows it).
fn assert_names(message: &str, entry: &[u8]) {
    let shown = format!("{:?}", String::from_utf8_lossy(entry));
    let short: String = message.chars().take(500).collect();
    assert!(
        message.contains(&shown),
        "the error does not name the entry {shown}: {short}"
    );
}

fn refused_problem(err: &ExtractError) -> &str {
    match err {
        ExtractError::Refused { problem, .. } => problem,
        other => panic!("not a refusal: {other}"),
    }
}

fn user() -> Privilege {
    Privilege::User
}

fn limits() -> Limits {
    Limits::default()
}

fn unpack_ok(tar: &[u8], dest: &Path, privilege: Privilege) -> Unpacked {
    extract::unpack(tar, dest, privilege, limits()).unwrap_or_else(|e| panic!("unpack: {e}"))
}

// =======================================================================================
// A. The corpus of hostile layers.

#[test]
fn a_dotdot_path_is_refused() {
    let sandbox = Sandbox::new("dotdot");
    let name = format!("../../{}", sandbox.unique);
    let tar = Tar::new().file(&name, b"escaped\n").finish();
    let err = assert_refused(&sandbox, &tar, &name, user(), limits());
    assert!(refused_problem(&err).contains("`..`"), "{err}");
}

#[test]
fn a_dotdot_in_the_middle_of_a_path_is_refused() {
    let sandbox = Sandbox::new("dotdot-middle");
    let name = "usr/../../outside/sentinel";
    let tar = Tar::new().dir("usr/").file(name, b"overwritten\n").finish();
    let err = assert_refused(&sandbox, &tar, name, user(), limits());
    assert!(refused_problem(&err).contains("`..`"), "{err}");
}

#[test]
fn an_absolute_path_is_refused() {
    let sandbox = Sandbox::new("absolute");
    let name = sandbox.outside().join("planted").display().to_string();
    let tar = Tar::new().file(&name, b"planted\n").finish();
    let err = assert_refused(&sandbox, &tar, &name, user(), limits());
    assert!(refused_problem(&err).contains("absolute"), "{err}");
}

#[test]
fn an_absolute_path_to_the_host_is_refused() {
    let sandbox = Sandbox::new("absolute-host");
    let name = sandbox.host_target().display().to_string();
    let tar = Tar::new().file(&name, b"planted\n").finish();
    let err = assert_refused(&sandbox, &tar, &name, user(), limits());
    assert!(refused_problem(&err).contains("absolute"), "{err}");
}

#[test]
fn a_dotdot_in_the_ustar_prefix_field_is_refused() {
    let sandbox = Sandbox::new("ustar-prefix");
    let mut header = header(EntryType::Regular, sandbox.unique.as_bytes(), 8);
    let prefix = &mut header.as_ustar_mut().expect("ustar").prefix;
    prefix[..5].copy_from_slice(b"../..");
    let tar = Tar::new().entry(header, b"escaped\n").finish();
    let name = format!("../../{}", sandbox.unique);
    assert_refused(&sandbox, &tar, name, user(), limits());
}

#[test]
fn a_dotdot_in_a_gnu_long_name_is_refused() {
    let sandbox = Sandbox::new("gnu-longname");
    let name = format!("../../{}", sandbox.unique);
    let mut long = name.clone().into_bytes();
    long.push(0);
    let mut header_l = Header::new_gnu();
    header_l.set_entry_type(EntryType::GNULongName);
    set_name(&mut header_l, b"././@LongLink");
    header_l.set_size(long.len() as u64);
    header_l.set_mode(0o644);
    let tar = Tar::new()
        .entry(header_l, &long)
        .file("innocent", b"escaped\n")
        .finish();
    assert_refused(&sandbox, &tar, &name, user(), limits());
}

#[test]
fn an_absolute_pax_path_record_is_refused() {
    let sandbox = Sandbox::new("pax-path");
    let name = sandbox.host_target().display().to_string();
    let tar = Tar::new()
        .pax(&[("path", name.as_bytes())])
        .file("innocent", b"escaped\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, &name, user(), limits());
    assert!(refused_problem(&err).contains("absolute"), "{err}");
}

#[test]
fn a_write_through_a_relative_symlink_is_refused() {
    let sandbox = Sandbox::new("symlink-relative");
    let tar = Tar::new()
        .symlink("lib", "../outside")
        .file("lib/planted", b"planted\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "lib/planted", user(), limits());
    assert!(refused_problem(&err).contains("symlink"), "{err}");
}

#[test]
fn a_write_through_an_absolute_symlink_is_refused() {
    let sandbox = Sandbox::new("symlink-absolute");
    let outside = sandbox.outside().display().to_string();
    let tar = Tar::new()
        .symlink("lib", &outside)
        .file("lib/sentinel", b"overwritten\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "lib/sentinel", user(), limits());
    assert!(refused_problem(&err).contains("symlink"), "{err}");
}

#[test]
fn a_write_through_a_symlink_chain_is_refused() {
    let sandbox = Sandbox::new("symlink-chain");
    // a -> b -> ../.. : from the layer, the temp dir's parent.
    let into_sandbox = format!("a/{}/outside/planted", sandbox.tmp_name());
    let tar = Tar::new()
        .symlink("a", "b")
        .symlink("b", "../..")
        .file(&into_sandbox, b"planted\n")
        .finish();
    assert_refused(&sandbox, &tar, &into_sandbox, user(), limits());

    let sandbox = Sandbox::new("symlink-chain-host");
    let to_host = format!("a/{}", sandbox.unique);
    let tar = Tar::new()
        .symlink("a", "b")
        .symlink("b", "../..")
        .file(&to_host, b"planted\n")
        .finish();
    assert_refused(&sandbox, &tar, &to_host, user(), limits());
}

#[test]
fn a_symlink_that_replaces_an_implicit_parent_is_not_written_through() {
    let sandbox = Sandbox::new("symlink-over-parent");
    let tar = Tar::new()
        .file("etc/hostname", b"box\n")
        .symlink("etc", "../outside")
        .file("etc/planted", b"planted\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "etc/planted", user(), limits());
    assert!(refused_problem(&err).contains("symlink"), "{err}");
}

#[test]
fn a_whiteout_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new("whiteout-through-symlink");
    let tar = Tar::new()
        .symlink("s", "../outside")
        .file("s/.wh.planted", b"")
        .finish();
    assert_refused(&sandbox, &tar, "s/.wh.planted", user(), limits());
}

#[test]
fn an_opaque_marker_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new("opaque-through-symlink");
    // Would set user.overlay.opaque on outside/dir.
    let tar = Tar::new()
        .symlink("s", "../outside/dir")
        .file("s/.wh..wh..opq", b"")
        .finish();
    assert_refused(&sandbox, &tar, "s/.wh..wh..opq", user(), limits());
}

#[test]
fn a_hardlink_to_an_absolute_path_is_refused() {
    let sandbox = Sandbox::new("hardlink-absolute");
    let target = sandbox.outside().join("sentinel").display().to_string();
    let tar = Tar::new().hardlink("stolen", &target).finish();
    let err = assert_refused(&sandbox, &tar, "stolen", user(), limits());
    assert!(refused_problem(&err).contains("absolute"), "{err}");
    assert!(fs::symlink_metadata(sandbox.layer().join("stolen")).is_err());
}

#[test]
fn a_hardlink_to_a_dotdot_path_is_refused() {
    let sandbox = Sandbox::new("hardlink-dotdot");
    let tar = Tar::new()
        .hardlink("stolen", "../outside/sentinel")
        .finish();
    let err = assert_refused(&sandbox, &tar, "stolen", user(), limits());
    assert!(refused_problem(&err).contains("`..`"), "{err}");
}

#[test]
fn a_hardlink_to_a_path_not_in_the_layer_is_refused() {
    let sandbox = Sandbox::new("hardlink-missing");
    let tar = Tar::new().hardlink("shadow", "etc/shadow").finish();
    let err = assert_refused(&sandbox, &tar, "shadow", user(), limits());
    assert!(refused_problem(&err).contains("not in the layer"), "{err}");
}

#[test]
fn a_hardlink_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new("hardlink-through-symlink");
    let tar = Tar::new()
        .symlink("s", "../outside")
        .hardlink("stolen", "s/sentinel")
        .finish();
    let err = assert_refused(&sandbox, &tar, "stolen", user(), limits());
    assert!(refused_problem(&err).contains("symlink"), "{err}");
}

#[test]
fn a_hardlink_to_a_directory_is_refused() {
    let sandbox = Sandbox::new("hardlink-dir");
    let tar = Tar::new().dir("d/").hardlink("h", "d").finish();
    let err = assert_refused(&sandbox, &tar, "h", user(), limits());
    assert!(refused_problem(&err).contains("directory"), "{err}");
}

#[test]
fn a_file_named_dot_is_refused() {
    let sandbox = Sandbox::new("dot-file");
    let tar = Tar::new().file(".", b"not a directory\n").finish();
    let err = assert_refused(&sandbox, &tar, ".", user(), limits());
    assert!(refused_problem(&err).contains("layer's root"), "{err}");
}

#[test]
fn a_symlink_named_dot_slash_is_refused() {
    let sandbox = Sandbox::new("dot-symlink");
    let tar = Tar::new()
        .symlink("./", "../outside")
        .file("planted", b"planted\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "./", user(), limits());
    assert!(refused_problem(&err).contains("layer's root"), "{err}");
}

#[test]
fn an_entry_with_an_empty_name_is_refused() {
    let sandbox = Sandbox::new("empty-name");
    let tar = Tar::new().file("", b"nameless\n").finish();
    let err = assert_refused(&sandbox, &tar, "", user(), limits());
    assert!(refused_problem(&err).contains("layer's root"), "{err}");
}

#[test]
fn a_nul_in_a_pax_path_is_refused() {
    let sandbox = Sandbox::new("pax-nul");
    // A C string would end at the NUL, at `innocent`; the climb after it is refused too.
    let name = format!("innocent\0/../../{}", sandbox.unique);
    let tar = Tar::new()
        .pax(&[("path", name.as_bytes())])
        .file("innocent", b"escaped\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, &name, user(), limits());
    assert!(refused_problem(&err).contains("NUL"), "{err}");
}

#[test]
fn a_bare_whiteout_prefix_is_refused() {
    let sandbox = Sandbox::new("wh-bare");
    let tar = Tar::new().file("etc/.wh.", b"").finish();
    let err = assert_refused(&sandbox, &tar, "etc/.wh.", user(), limits());
    assert!(
        refused_problem(&err).contains("whiteout of nothing"),
        "{err}"
    );
}

#[test]
fn a_whiteout_of_dotdot_is_refused() {
    let sandbox = Sandbox::new("wh-dotdot");
    let tar = Tar::new().file("etc/.wh...", b"").finish();
    let err = assert_refused(&sandbox, &tar, "etc/.wh...", user(), limits());
    assert!(refused_problem(&err).contains("whiteout"), "{err}");
}

#[test]
fn a_whiteout_of_dot_is_refused() {
    let sandbox = Sandbox::new("wh-dot");
    let tar = Tar::new().file(".wh..", b"").finish();
    let err = assert_refused(&sandbox, &tar, ".wh..", user(), limits());
    assert!(refused_problem(&err).contains("whiteout"), "{err}");
}

#[test]
fn a_reserved_whiteout_name_is_refused() {
    let sandbox = Sandbox::new("wh-reserved");
    let tar = Tar::new().file("etc/.wh..wh.x", b"").finish();
    let err = assert_refused(&sandbox, &tar, "etc/.wh..wh.x", user(), limits());
    assert!(refused_problem(&err).contains("reserved"), "{err}");
}

#[test]
fn a_file_then_a_symlink_of_the_same_path_is_refused() {
    let sandbox = Sandbox::new("dup-file-symlink");
    let tar = Tar::new()
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .symlink("etc/passwd", "../../outside/sentinel")
        .finish();
    let err = assert_refused(&sandbox, &tar, "etc/passwd", user(), limits());
    assert!(refused_problem(&err).contains("duplicate"), "{err}");
}

#[test]
fn a_directory_then_a_file_of_the_same_path_is_refused() {
    let sandbox = Sandbox::new("dup-dir-file");
    let tar = Tar::new()
        .dir("etc/")
        .file("etc/hostname", b"box\n")
        .file("etc", b"now a file\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "etc", user(), limits());
    assert!(refused_problem(&err).contains("duplicate"), "{err}");
}

#[test]
fn a_symlink_then_a_directory_of_the_same_path_is_refused() {
    let sandbox = Sandbox::new("dup-symlink-dir");
    let tar = Tar::new()
        .symlink("d", "../outside")
        .dir("d/")
        .file("d/planted", b"planted\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "d/", user(), limits());
    assert!(refused_problem(&err).contains("duplicate"), "{err}");
}

#[test]
fn a_declared_size_of_a_terabyte_is_refused() {
    let sandbox = Sandbox::new("huge-size");
    let mut big = header(EntryType::Regular, b"big", 0);
    big.set_size(1 << 40);
    let tar = Tar::new().entry(big, b"only this\n").unfinished();
    let err = assert_refused(&sandbox, &tar, "big", user(), limits());
    assert!(
        refused_problem(&err).contains("1099511627776 bytes"),
        "{err}"
    );
}

#[test]
fn a_declared_size_longer_than_the_stream_is_an_error() {
    let sandbox = Sandbox::new("short-data");
    let mut short = header(EntryType::Regular, b"short", 0);
    short.set_size(1 << 20);
    let tar = Tar::new().entry(short, &[b'x'; 1000]).unfinished();
    let err = assert_refused(&sandbox, &tar, "short", user(), limits());
    assert!(
        matches!(err, ExtractError::Stream { .. }),
        "not a stream error: {err}"
    );
    assert!(err.to_string().contains("ended early"), "{err}");
}

#[test]
fn a_file_over_max_bytes_is_refused() {
    let sandbox = Sandbox::new("max-bytes");
    let tar = Tar::new().file("big", &[0; 8192]).finish();
    let small = Limits {
        max_bytes: 4096,
        max_entries: 100,
    };
    let err = assert_refused(&sandbox, &tar, "big", user(), small);
    assert!(
        refused_problem(&err).contains("limit of 4096 bytes"),
        "{err}"
    );
}

#[test]
fn a_tar_bomb_of_many_entries_is_refused_at_the_one_over_the_limit() {
    let sandbox = Sandbox::new("bomb-entries");
    let tar = (0..50)
        .fold(Tar::new(), |tar, i| tar.file(format!("f{i:02}"), b""))
        .finish();
    let small = Limits {
        max_bytes: 1 << 20,
        max_entries: 10,
    };
    let err = assert_refused(&sandbox, &tar, "f10", user(), small);
    assert!(
        refused_problem(&err).contains("more than 10 entries"),
        "{err}"
    );
    assert!(!sandbox.layer().join("f10").exists());
}

#[test]
fn a_tar_bomb_of_many_bytes_is_refused_at_the_file_that_crosses_the_limit() {
    let sandbox = Sandbox::new("bomb-bytes");
    let tar = (0..10)
        .fold(Tar::new(), |tar, i| tar.file(format!("f{i}"), &[b'a'; 300]))
        .finish();
    let small = Limits {
        max_bytes: 1000,
        max_entries: 100,
    };
    // 3 files are 900 bytes; the fourth would make 1200.
    let err = assert_refused(&sandbox, &tar, "f3", user(), small);
    assert!(
        refused_problem(&err).contains("limit of 1000 bytes"),
        "{err}"
    );
}

/// A PAX header of `len` bytes (one `comment` record) before a small file.
fn pax_bomb(len: usize) -> Vec<u8> {
    let comment = vec![b'a'; len];
    Tar::new()
        .file("first", b"fine\n")
        .pax(&[("comment", &comment)])
        .file("second", b"fine\n")
        .finish()
}

#[test]
fn a_pax_header_bigger_than_the_header_budget_is_refused() {
    // tar reads a PAX header whole into memory before the entry it describes: a small
    // gzip of a huge one must not get that far.
    let sandbox = Sandbox::new("bomb-pax");
    let tar = pax_bomb(4 << 20);
    let err = assert_refused(&sandbox, &tar, "first", user(), limits());
    assert!(
        matches!(err, ExtractError::Stream { .. }),
        "not a stream error: {err}"
    );
    assert!(err.to_string().contains("bytes of headers"), "{err}");
    assert!(!sandbox.layer().join("second").exists());
}

#[test]
fn a_gnu_long_name_bigger_than_the_header_budget_is_refused() {
    let sandbox = Sandbox::new("bomb-longname");
    let mut long = vec![b'n'; 4 << 20];
    long.push(0);
    let mut header_l = Header::new_gnu();
    header_l.set_entry_type(EntryType::GNULongName);
    set_name(&mut header_l, b"././@LongLink");
    header_l.set_size(long.len() as u64);
    header_l.set_mode(0o644);
    let tar = Tar::new()
        .file("first", b"fine\n")
        .entry(header_l, &long)
        .file("second", b"fine\n")
        .finish();
    let err = assert_refused(&sandbox, &tar, "first", user(), limits());
    assert!(err.to_string().contains("bytes of headers"), "{err}");
}

/// A tar whose `carrier` entry has a PAX `size` of `pax_size` and a ustar size of
/// `ustar_size`, followed by 1536 bytes that hold a complete entry named `smuggled`:
/// whichever reader believes the smaller size reads that entry as a header.
fn pax_desync(pax_size: u64, ustar_size: u64, smuggled: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let inner = Tar::new().file(smuggled, &[b'S'; 512]).unfinished();
    let mut hidden = inner;
    hidden.resize(1536, 0);
    let size = pax_size.to_string();
    let tar = Tar::new()
        .pax(&[("size", size.as_bytes())])
        .entry(header(EntryType::Regular, b"carrier", ustar_size), b"")
        .raw(&hidden)
        .finish();
    (tar, hidden)
}

#[test]
fn a_pax_size_longer_than_the_ustar_size_smuggles_no_entry() {
    let sandbox = Sandbox::new("pax-desync");
    let (tar, hidden) = pax_desync(1536, 0, b"smuggled");

    // A reader that ignores PAX (tar's raw mode) takes the ustar size, 0, and sees the
    // smuggled entry: the layer is crafted as it should be.
    let mut naive = tar::Archive::new(&tar[..]);
    let naive_names: Vec<Vec<u8>> = naive
        .entries()
        .expect("entries")
        .raw(true)
        .map(|entry| entry.expect("raw entry").path_bytes().into_owned())
        .collect();
    assert!(
        naive_names.contains(&b"smuggled".to_vec()),
        "{naive_names:?}"
    );

    // tar 0.4.46 takes the PAX size, as POSIX says: the 1536 bytes are the carrier's data.
    let before = sandbox.outside_snapshot();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), user());
    assert_untouched(&sandbox, &before);
    assert_eq!(unpacked.entries, 1, "{unpacked:?}");
    assert!(fs::symlink_metadata(sandbox.layer().join("smuggled")).is_err());
    assert_eq!(
        fs::read(sandbox.layer().join("carrier")).expect("carrier"),
        hidden
    );
}

#[test]
fn a_pax_size_shorter_than_the_ustar_size_leaves_the_smuggled_entry_to_the_same_checks() {
    let sandbox = Sandbox::new("pax-desync-short");
    let smuggled = format!("../../{}", sandbox.unique);
    let (tar, _) = pax_desync(0, 1536, smuggled.as_bytes());
    // Read with the PAX size, 0: the hidden header is an entry, and checked as one.
    let err = assert_refused(&sandbox, &tar, &smuggled, user(), limits());
    assert!(refused_problem(&err).contains("`..`"), "{err}");
}

#[test]
fn entries_after_the_end_of_archive_are_not_applied() {
    let sandbox = Sandbox::new("after-end");
    let mut tar = Tar::new().file("real", b"real\n").finish();
    tar.extend(Tar::new().file("hidden", b"hidden\n").finish());
    let before = sandbox.outside_snapshot();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), user());
    assert_untouched(&sandbox, &before);
    assert_eq!(unpacked.entries, 1);
    assert!(sandbox.layer().join("real").exists());
    assert!(!sandbox.layer().join("hidden").exists());
}

#[test]
fn an_overlay_redirect_xattr_is_refused() {
    for privilege in [Privilege::User, Privilege::MappedRoot] {
        let sandbox = Sandbox::new("xattr-redirect");
        let tar = Tar::new()
            .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
            .dir("d/")
            .finish();
        let err = assert_refused(&sandbox, &tar, "d/", privilege, limits());
        assert!(
            refused_problem(&err).contains("overlay's own xattr trusted.overlay.redirect"),
            "{err}"
        );
    }
}

#[test]
fn a_user_overlay_opaque_xattr_is_refused() {
    let sandbox = Sandbox::new("xattr-opaque");
    let tar = Tar::new()
        .dir("etc/")
        .pax(&[("SCHILY.xattr.user.overlay.opaque", b"y")])
        .dir("etc/ssl/")
        .finish();
    let err = assert_refused(&sandbox, &tar, "etc/ssl/", user(), limits());
    assert!(
        refused_problem(&err).contains("user.overlay.opaque"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all` (trusted.* xattrs are root's)"]
fn an_overlay_redirect_xattr_is_refused_to_root() {
    common::require_root();
    let sandbox = Sandbox::new("xattr-redirect-root");
    let tar = Tar::new()
        .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .dir("d/")
        .finish();
    let err = assert_refused(&sandbox, &tar, "d/", Privilege::Root, limits());
    assert!(
        refused_problem(&err).contains("trusted.overlay.redirect"),
        "{err}"
    );
    let d = sandbox.layer().join("d");
    assert_eq!(common::xattr(&d, "trusted.overlay.redirect"), None);
}

#[test]
fn an_unknown_entry_type_is_refused() {
    let sandbox = Sandbox::new("unknown-type");
    let tar = Tar::new()
        .entry(header(EntryType::new(b'Z'), b"odd", 0), b"")
        .finish();
    let err = assert_refused(&sandbox, &tar, "odd", user(), limits());
    assert!(refused_problem(&err).contains("entry type"), "{err}");
}

#[test]
fn a_symlink_with_no_target_is_refused() {
    let sandbox = Sandbox::new("symlink-empty");
    let tar = Tar::new().symlink("nowhere", "").finish();
    let err = assert_refused(&sandbox, &tar, "nowhere", user(), limits());
    assert!(refused_problem(&err).contains("no target"), "{err}");
}

#[test]
fn a_truncated_gzip_blob_is_an_error_and_leaves_no_directory() {
    let sandbox = Sandbox::for_blob("truncated-gzip");
    let tar = (0..4)
        .fold(Tar::new(), |tar, i| {
            tar.file(format!("part{i}"), &noise(64 * 1024, i + 1))
        })
        .finish();
    let full = gzip(&tar);
    let blob = sandbox.path().join("blob");
    fs::write(&blob, &full[..full.len() / 2]).expect("write the blob");
    let before = sandbox.outside_snapshot();
    let result = layer::unpack_blob(
        &blob,
        &Digest::of(&full[..full.len() / 2]),
        &Digest::of(&tar),
        &sandbox.layer(),
        user(),
        limits(),
    );
    assert_untouched(&sandbox, &before);
    let err = result.expect_err("a truncated blob unpacked");
    assert!(
        matches!(
            err,
            LayerError::Extract {
                source: ExtractError::Stream { .. },
                ..
            }
        ),
        "{err}"
    );
    // Cut in half, the stream stops inside the second of the four files.
    assert_names(&err.to_string(), b"part1");
    assert!(!sandbox.layer().exists(), "the partial layer was left");
}

#[test]
fn a_plain_tar_cut_at_an_entry_boundary_fails_its_diff_id() {
    // With no end-of-archive blocks, tar takes the end of the stream for the end of the
    // archive: only the diff id tells the layer is short.
    let sandbox = Sandbox::for_blob("truncated-plain");
    let whole = Tar::new()
        .file("first", b"first\n")
        .file("second", b"second\n")
        .finish();
    let cut = Tar::new().file("first", b"first\n").unfinished();
    let blob = sandbox.path().join("blob");
    fs::write(&blob, &cut).expect("write the blob");
    let before = sandbox.outside_snapshot();
    let result = layer::unpack_blob(
        &blob,
        &Digest::of(&cut),
        &Digest::of(&whole),
        &sandbox.layer(),
        user(),
        limits(),
    );
    assert_untouched(&sandbox, &before);
    let err = result.expect_err("a cut tar unpacked");
    assert!(
        matches!(&err, LayerError::DiffIdMismatch { expected, .. } if *expected == Digest::of(&whole)),
        "{err}"
    );
    assert!(!sandbox.layer().exists(), "the partial layer was left");
}

#[test]
fn a_wrong_diff_id_is_a_mismatch_and_leaves_no_directory() {
    let sandbox = Sandbox::for_blob("diff-id");
    let tar = Tar::new().file("etc/hostname", b"box\n").finish();
    let blob_bytes = gzip(&tar);
    let blob = sandbox.path().join("blob");
    fs::write(&blob, &blob_bytes).expect("write the blob");
    let blob_digest = Digest::of(&blob_bytes);
    let wrong = Digest::of(b"another layer");
    let before = sandbox.outside_snapshot();
    let result = layer::unpack_blob(
        &blob,
        &blob_digest,
        &wrong,
        &sandbox.layer(),
        user(),
        limits(),
    );
    assert_untouched(&sandbox, &before);
    let err = result.expect_err("a layer with the wrong diff id unpacked");
    match &err {
        LayerError::DiffIdMismatch {
            blob,
            expected,
            actual,
        } => {
            assert_eq!(blob, &blob_digest);
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &Digest::of(&tar));
        }
        other => panic!("not a diff id mismatch: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains(&blob_digest.to_string()), "{message}");
    assert!(message.contains(&wrong.to_string()), "{message}");
    assert!(!sandbox.layer().exists(), "the unverified layer was left");
}

#[test]
fn a_device_node_is_not_made_unprivileged() {
    for privilege in [Privilege::User, Privilege::MappedRoot] {
        let sandbox = Sandbox::new("device-user");
        let mut disk = header(EntryType::Block, b"dev/sda", 0);
        disk.set_device_major(8).expect("major");
        disk.set_device_minor(0).expect("minor");
        disk.set_mode(0o666);
        let tar = Tar::new().entry(disk, b"").finish();
        let before = sandbox.outside_snapshot();
        let unpacked = unpack_ok(&tar, &sandbox.layer(), privilege);
        assert_untouched(&sandbox, &before);
        assert_eq!(unpacked.skipped_devices, vec!["dev/sda".to_string()]);
        assert!(fs::symlink_metadata(sandbox.layer().join("dev/sda")).is_err());
    }
}

#[test]
#[ignore = "needs root: run `just test-all` (chown)"]
fn root_chowns_and_dates_a_symlink_not_its_target() {
    common::require_root();
    let sandbox = Sandbox::new("symlink-chown");
    let target = sandbox.outside().join("sentinel").display().to_string();
    let mut link = header(EntryType::Symlink, b"link", 0);
    set_link(&mut link, target.as_bytes());
    link.set_uid(1234);
    link.set_gid(1234);
    link.set_mtime(1000);
    let tar = Tar::new().entry(link, b"").finish();
    let before = sandbox.outside_snapshot();
    unpack_ok(&tar, &sandbox.layer(), Privilege::Root);
    assert_untouched(&sandbox, &before);
    let meta = fs::symlink_metadata(sandbox.layer().join("link")).expect("lstat");
    assert!(meta.file_type().is_symlink());
    assert_eq!((meta.uid(), meta.gid(), meta.mtime()), (1234, 1234, 1000));
}

// =======================================================================================
// B. The rules.

#[test]
fn files_dirs_and_modes_are_as_the_tar_says() {
    let sandbox = Sandbox::new("files");
    let mut script = header(EntryType::Regular, b"usr/bin/hello", 20);
    script.set_mode(0o755);
    let mut secret = header(EntryType::Regular, b"etc/secret", 4);
    secret.set_mode(0o640);
    let mut tmp = header(EntryType::Directory, b"tmp/", 0);
    tmp.set_mode(0o1777);
    let tar = Tar::new()
        .dir("usr/")
        .dir("usr/bin/")
        .entry(script, b"#!/bin/sh\necho hi\n\n\n")
        .entry(secret, b"shh\n")
        .entry(tmp, b"")
        .file("empty", b"")
        .finish();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), user());
    assert_eq!(unpacked.entries, 6);
    assert_eq!(unpacked.bytes, 24);
    let layer = sandbox.layer();
    assert_eq!(
        fs::read(layer.join("usr/bin/hello")).expect("read"),
        b"#!/bin/sh\necho hi\n\n\n"
    );
    let mode = |p: &str| fs::symlink_metadata(layer.join(p)).expect(p).mode() & 0o7777;
    assert_eq!(mode("usr/bin/hello"), 0o755);
    assert_eq!(mode("etc/secret"), 0o640);
    assert_eq!(mode("usr/bin"), 0o755);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(fs::read(layer.join("empty")).expect("read"), b"");
}

#[test]
fn a_read_only_directory_still_gets_its_entries() {
    // Fedora's /root is 0550: a plain user could not write into it once it had its mode.
    let sandbox = Sandbox::new("read-only-dir");
    let mut root = header(EntryType::Directory, b"root/", 0);
    root.set_mode(0o550);
    let mut etc = header(EntryType::Directory, b"etc/", 0);
    etc.set_mode(0o555);
    let mut readonly = header(EntryType::Regular, b"etc/readonly", 3);
    readonly.set_mode(0o444);
    let tar = Tar::new()
        .entry(root, b"")
        .file("root/.bashrc", b"# root's\n")
        .entry(etc, b"")
        .dir("etc/skel/")
        .file("etc/skel/.profile", b"# skel\n")
        .pax(&[("SCHILY.xattr.user.note", b"kept")])
        .entry(readonly, b"ro\n")
        .finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let layer = sandbox.layer();
    assert_eq!(
        fs::read(layer.join("root/.bashrc")).expect("read"),
        b"# root's\n"
    );
    assert!(layer.join("etc/skel/.profile").exists());
    let mode = |p: &str| fs::symlink_metadata(layer.join(p)).expect(p).mode() & 0o7777;
    assert_eq!((mode("root"), mode("etc")), (0o550, 0o555));
    assert_eq!(mode("etc/readonly"), 0o444);
    assert_eq!(
        common::xattr(&layer.join("etc/readonly"), "user.note"),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        fs::symlink_metadata(layer.join("root"))
            .expect("root")
            .mtime(),
        MTIME as i64
    );
}

#[test]
fn setuid_and_setgid_bits_are_dropped_for_a_plain_user() {
    let sandbox = Sandbox::new("setuid-user");
    let mut su = header(EntryType::Regular, b"su", 2);
    su.set_mode(0o6755);
    let tar = Tar::new().entry(su, b"su").finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let mode = fs::metadata(sandbox.layer().join("su")).expect("su").mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn symlinks_keep_their_target_verbatim_and_are_not_followed() {
    let sandbox = Sandbox::new("symlinks");
    let host = sandbox.host_target().display().to_string();
    let tar = Tar::new()
        .symlink("passwd", "/etc/passwd")
        .symlink("up", "../../..")
        .symlink("host", &host)
        .hardlink("host-link", "host")
        .finish();
    let before = sandbox.outside_snapshot();
    unpack_ok(&tar, &sandbox.layer(), user());
    assert_untouched(&sandbox, &before);
    let layer = sandbox.layer();
    assert_eq!(
        fs::read_link(layer.join("passwd")).expect("readlink"),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(layer.join("up")).expect("readlink"),
        Path::new("../../..")
    );
    // A hardlink to a symlink is a second name of the symlink, never of its target.
    let link = fs::symlink_metadata(layer.join("host-link")).expect("lstat");
    assert!(link.file_type().is_symlink());
    let symlink = fs::symlink_metadata(layer.join("host")).expect("lstat");
    assert_eq!(link.ino(), symlink.ino());
    assert_eq!(symlink.mtime(), MTIME as i64);
}

#[test]
fn hardlinks_share_the_inode() {
    let sandbox = Sandbox::new("hardlinks");
    let tar = Tar::new()
        .file("bin/busybox", b"one binary\n")
        .hardlink("bin/sh", "bin/busybox")
        .hardlink("bin/ls", "./bin/busybox")
        .finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let layer = sandbox.layer();
    let busybox = fs::metadata(layer.join("bin/busybox")).expect("busybox");
    for name in ["bin/sh", "bin/ls"] {
        assert_eq!(
            fs::metadata(layer.join(name)).expect(name).ino(),
            busybox.ino()
        );
    }
    assert_eq!(busybox.nlink(), 3);
}

#[test]
fn missing_parent_directories_are_made() {
    let sandbox = Sandbox::new("implicit-parents");
    let tar = Tar::new().file("a/b/c/file", b"deep\n").finish();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), user());
    assert_eq!(unpacked.entries, 1);
    for dir in ["a", "a/b", "a/b/c"] {
        let meta = fs::symlink_metadata(sandbox.layer().join(dir)).expect(dir);
        assert!(meta.is_dir(), "{dir}");
    }
    assert_eq!(
        fs::read(sandbox.layer().join("a/b/c/file")).expect("read"),
        b"deep\n"
    );
}

#[test]
fn mtimes_of_files_and_directories_are_kept() {
    let sandbox = Sandbox::new("mtimes");
    let mut root = header(EntryType::Directory, b"./", 0);
    root.set_mtime(1_000_000);
    let mut etc = header(EntryType::Directory, b"etc/", 0);
    etc.set_mtime(2_000_000);
    let mut hostname = header(EntryType::Regular, b"etc/hostname", 4);
    hostname.set_mtime(3_000_000);
    let tar = Tar::new()
        .entry(root, b"")
        .entry(etc, b"")
        .entry(hostname, b"box\n")
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let mtime = |p: &str| {
        fs::symlink_metadata(sandbox.layer().join(p))
            .expect(p)
            .mtime()
    };
    // The directories were written into after their entries: their mtimes are set last.
    assert_eq!(mtime(""), 1_000_000);
    assert_eq!(mtime("etc"), 2_000_000);
    assert_eq!(mtime("etc/hostname"), 3_000_000);
    assert_eq!(mtime("etc/hosts"), MTIME as i64);
}

#[test]
fn a_directory_listed_twice_takes_the_later_entrys_mode_and_mtime() {
    for privilege in [Privilege::User, Privilege::MappedRoot] {
        let sandbox = Sandbox::new("dir-twice");
        let mut first = header(EntryType::Directory, b"var/", 0);
        first.set_mode(0o700);
        first.set_mtime(1_000_000);
        let mut second = header(EntryType::Directory, b"var/", 0);
        second.set_mode(0o755);
        second.set_mtime(2_000_000);
        let tar = Tar::new()
            .entry(first, b"")
            .file("var/log", b"")
            .entry(second, b"")
            .finish();
        unpack_ok(&tar, &sandbox.layer(), privilege);
        let var = fs::symlink_metadata(sandbox.layer().join("var")).expect("var");
        assert_eq!(
            (var.mode() & 0o7777, var.mtime()),
            (0o755, 2_000_000),
            "{privilege:?}"
        );
    }
}

#[test]
fn a_whiteout_becomes_a_0_0_character_device() {
    let sandbox = Sandbox::new("whiteout");
    let tar = Tar::new()
        .dir("etc/")
        .file("etc/.wh.motd", b"")
        .file(".wh.opt", b"")
        .finish();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), user());
    assert_eq!(unpacked.whiteouts, 2);
    for path in ["etc/motd", "opt"] {
        let meta = fs::symlink_metadata(sandbox.layer().join(path)).expect(path);
        assert!(meta.file_type().is_char_device(), "{path}");
        assert_eq!(meta.rdev(), 0, "{path}");
    }
    assert!(!sandbox.layer().join("etc/.wh.motd").exists());
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes a directory for the nobody user)"]
fn a_plain_user_may_make_the_0_0_whiteout_device() {
    // Linux 5.8 lets anyone mknod a 0/0 character device, overlay's whiteout: what
    // Privilege::User relies on. Checked with mknod(1) as nobody.
    common::require_root();
    let sandbox = Sandbox::new("whiteout-nobody");
    let dir = sandbox.path().join("nobody");
    fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "mknod"])
        .arg(dir.join("whiteout"))
        .args(["c", "0", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mknod as nobody");
    let output = common::output_within(child, Duration::from_secs(30));
    assert!(output.status.success(), "{}", common::stderr(&output));
    let meta = fs::symlink_metadata(dir.join("whiteout")).expect("lstat");
    assert!(meta.file_type().is_char_device());
    assert_eq!((meta.rdev(), meta.uid()), (0, 65534));
    // A real device, though, stays root's.
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "mknod"])
        .arg(dir.join("null"))
        .args(["c", "1", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mknod as nobody");
    let output = common::output_within(child, Duration::from_secs(30));
    assert!(!output.status.success(), "nobody made a device node");
}

/// A directory `d/` with its own file, and the opaque marker before or after them.
fn opaque_layer(marker_first: bool) -> Vec<u8> {
    let marker = |tar: Tar| tar.file("d/.wh..wh..opq", b"");
    let tar = Tar::new();
    let tar = if marker_first { marker(tar) } else { tar };
    let tar = tar.dir("d/").file("d/own", b"this layer's\n");
    let tar = if marker_first { tar } else { marker(tar) };
    tar.finish()
}

#[test]
fn an_opaque_marker_sets_user_overlay_opaque_and_keeps_the_layers_own_entries() {
    for privilege in [Privilege::User, Privilege::MappedRoot] {
        for marker_first in [true, false] {
            let sandbox = Sandbox::new("opaque");
            let unpacked = unpack_ok(&opaque_layer(marker_first), &sandbox.layer(), privilege);
            let d = sandbox.layer().join("d");
            let case = format!("{privilege:?}, marker first: {marker_first}");
            assert_eq!(unpacked.whiteouts, 1, "{case}");
            assert_eq!(
                common::xattr(&d, "user.overlay.opaque"),
                Some(b"y".to_vec()),
                "{case}"
            );
            assert_eq!(common::xattr(&d, "trusted.overlay.opaque"), None, "{case}");
            assert_eq!(
                fs::read(d.join("own")).expect("own"),
                b"this layer's\n",
                "{case}"
            );
            assert!(!d.join(".wh..wh..opq").exists(), "{case}");
        }
    }
}

#[test]
fn a_whiteout_beside_the_layers_own_entry_keeps_the_entry_in_either_order() {
    let cases = [
        (
            "whiteout, then file",
            Tar::new().file(".wh.f", b"").file("f", b"own\n"),
        ),
        (
            "file, then whiteout",
            Tar::new().file("f", b"own\n").file(".wh.f", b""),
        ),
        (
            "whiteout, then dir",
            Tar::new()
                .file(".wh.d", b"")
                .dir("d/")
                .file("d/own", b"own\n"),
        ),
        (
            "dir, then whiteout",
            Tar::new()
                .dir("d/")
                .file("d/own", b"own\n")
                .file(".wh.d", b""),
        ),
    ];
    for (case, tar) in cases {
        let sandbox = Sandbox::new("whiteout-own");
        unpack_ok(&tar.finish(), &sandbox.layer(), user());
        let layer = sandbox.layer();
        if case.ends_with("file") || case.starts_with("file") {
            let meta = fs::symlink_metadata(layer.join("f")).expect(case);
            assert!(meta.is_file(), "{case}");
            assert_eq!(fs::read(layer.join("f")).expect(case), b"own\n", "{case}");
        } else {
            let d = layer.join("d");
            assert!(fs::symlink_metadata(&d).expect(case).is_dir(), "{case}");
            assert_eq!(fs::read(d.join("own")).expect(case), b"own\n", "{case}");
            // The layer's own directory replaces the one below: opaque.
            assert_eq!(
                common::xattr(&d, "user.overlay.opaque"),
                Some(b"y".to_vec()),
                "{case}"
            );
        }
        assert!(!layer.join(".wh.f").exists() && !layer.join(".wh.d").exists());
    }
}

#[test]
fn a_user_xattr_is_kept_for_a_plain_user_and_others_are_not_set() {
    let sandbox = Sandbox::new("xattr-user");
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.mime_type", b"text/plain"),
            ("SCHILY.xattr.trusted.other", b"x"),
        ])
        .file("note", b"hello\n")
        .finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let note = sandbox.layer().join("note");
    assert_eq!(
        common::xattr(&note, "user.mime_type"),
        Some(b"text/plain".to_vec())
    );
    assert_eq!(common::xattr(&note, "trusted.other"), None);
}

#[test]
fn a_fifo_is_made_unprivileged() {
    let sandbox = Sandbox::new("fifo");
    let mut fifo = header(EntryType::Fifo, b"run/pipe", 0);
    // Not what the umask would leave.
    fifo.set_mode(0o666);
    let tar = Tar::new().entry(fifo, b"").finish();
    unpack_ok(&tar, &sandbox.layer(), user());
    let meta = fs::symlink_metadata(sandbox.layer().join("run/pipe")).expect("fifo");
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o666);
}

/// A layer as a builder writes it (tar's `Builder`, GNU headers), with every kind of
/// entry a layer holds unprivileged.
fn built_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |kind: EntryType, path: &str, mode: u32, data: &[u8], link: Option<&str>| {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(MTIME);
        header.set_size(data.len() as u64);
        match link {
            Some(target) => builder
                .append_link(&mut header, path, target)
                .expect("append link"),
            None => builder
                .append_data(&mut header, path, data)
                .expect("append"),
        }
    };
    add(EntryType::Directory, "etc/", 0o755, b"", None);
    add(EntryType::Regular, "etc/hostname", 0o644, b"box\n", None);
    add(EntryType::Regular, "etc/.wh.motd", 0o644, b"", None);
    add(EntryType::Directory, "usr/", 0o755, b"", None);
    add(EntryType::Regular, "usr/.wh..wh..opq", 0o644, b"", None);
    add(
        EntryType::Regular,
        "usr/big",
        0o600,
        &noise(300_000, 7),
        None,
    );
    add(EntryType::Symlink, "usr/lib64", 0o777, b"", Some("/lib"));
    add(
        EntryType::Link,
        "usr/big-again",
        0o600,
        b"",
        Some("usr/big"),
    );
    builder.into_inner().expect("finish the tar")
}

#[test]
fn gzip_multi_member_gzip_zstd_and_plain_blobs_give_the_same_layer() {
    let tar = built_layer();
    let diff_id = Digest::of(&tar);
    let mut multi = gzip(&tar[..tar.len() / 3]);
    multi.extend(gzip(&tar[tar.len() / 3..]));
    let mut padded = tar.clone();
    // Padding after the end-of-archive blocks is part of the tar, and of its diff id.
    padded.extend_from_slice(&[0; 8192]);
    let blobs = [
        ("plain", tar.clone(), diff_id.clone()),
        ("gzip", gzip(&tar), diff_id.clone()),
        ("gzip, two members", multi, diff_id.clone()),
        (
            "zstd",
            zstd::encode_all(&tar[..], 3).expect("zstd"),
            diff_id.clone(),
        ),
        ("plain, padded", padded.clone(), Digest::of(&padded)),
    ];
    let mut trees = Vec::new();
    for (case, bytes, diff_id) in blobs {
        let sandbox = Sandbox::for_blob("blobs");
        let blob = sandbox.path().join("blob");
        fs::write(&blob, &bytes).expect("write the blob");
        let unpacked = layer::unpack_blob(
            &blob,
            &Digest::of(&bytes),
            &diff_id,
            &sandbox.layer(),
            user(),
            limits(),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(unpacked.entries, 8, "{case}");
        assert_eq!(unpacked.whiteouts, 2, "{case}");
        let tree = layer_tree(&sandbox.layer());
        assert_eq!(tree[Path::new("etc/motd")].kind, "char", "{case}");
        assert_eq!(tree[Path::new("usr/big")].nlink, 2, "{case}");
        assert_eq!(
            tree[Path::new("usr")].xattrs.get("user.overlay.opaque"),
            Some(&b"y".to_vec()),
            "{case}"
        );
        trees.push((case, tree));
    }
    let (first_case, first) = &trees[0];
    for (case, tree) in &trees[1..] {
        // The root is the directory unpack_blob made, and a whiteout a device made
        // there: their mtimes are the time of the unpacking, not the tar's.
        let strip = |t: &BTreeMap<PathBuf, Node>| {
            t.iter()
                .filter(|(path, _)| !path.as_os_str().is_empty())
                .map(|(path, node)| {
                    let mut node = node.clone();
                    if node.kind == "char" {
                        node.mtime = (0, 0);
                    }
                    (path.clone(), node)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(first), strip(tree), "{first_case} and {case} differ");
    }
}

#[test]
#[ignore = "needs root: run `just test-all` (owners, setuid, security.* xattrs)"]
fn root_keeps_owners_setuid_bits_and_xattrs() {
    common::require_root();
    let sandbox = Sandbox::new("root-owners");
    // A v2 file capability: cap_net_bind_service (bit 10), effective.
    let mut capability = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        capability.extend_from_slice(&word.to_le_bytes());
    }
    let mut ping = header(EntryType::Regular, b"bin/ping", 4);
    ping.set_uid(1234);
    ping.set_gid(2345);
    ping.set_mode(0o4755);
    let mut dir = header(EntryType::Directory, b"home/user/", 0);
    dir.set_uid(1234);
    dir.set_gid(1234);
    dir.set_mode(0o700);
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.security.capability", &capability),
            ("SCHILY.xattr.user.foo", b"bar"),
            ("SCHILY.xattr.trusted.note", b"root's"),
        ])
        .entry(ping, b"ping")
        .entry(dir, b"")
        .finish();
    unpack_ok(&tar, &sandbox.layer(), Privilege::Root);
    let layer = sandbox.layer();
    let ping = fs::symlink_metadata(layer.join("bin/ping")).expect("ping");
    assert_eq!((ping.uid(), ping.gid()), (1234, 2345));
    assert_eq!(ping.mode() & 0o7777, 0o4755);
    let xattrs = xattrs(&layer.join("bin/ping"));
    assert_eq!(xattrs.get("security.capability"), Some(&capability));
    assert_eq!(xattrs.get("user.foo"), Some(&b"bar".to_vec()));
    assert_eq!(xattrs.get("trusted.note"), Some(&b"root's".to_vec()));
    let home = fs::symlink_metadata(layer.join("home/user")).expect("home");
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1234, 1234, 0o700)
    );
}

#[test]
#[ignore = "needs root: run `just test-all` (mknod)"]
fn root_makes_device_nodes() {
    common::require_root();
    let sandbox = Sandbox::new("root-devices");
    let mut null = header(EntryType::Char, b"dev/null", 0);
    null.set_device_major(1).expect("major");
    null.set_device_minor(3).expect("minor");
    null.set_mode(0o666);
    let mut loop0 = header(EntryType::Block, b"dev/loop0", 0);
    loop0.set_device_major(7).expect("major");
    loop0.set_device_minor(0).expect("minor");
    loop0.set_mode(0o660);
    loop0.set_gid(6);
    let tar = Tar::new().entry(null, b"").entry(loop0, b"").finish();
    let unpacked = unpack_ok(&tar, &sandbox.layer(), Privilege::Root);
    assert!(unpacked.skipped_devices.is_empty(), "{unpacked:?}");
    let null = fs::symlink_metadata(sandbox.layer().join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let loop0 = fs::symlink_metadata(sandbox.layer().join("dev/loop0")).expect("loop0");
    assert!(loop0.file_type().is_block_device());
    assert_eq!(loop0.rdev(), libc::makedev(7, 0));
    assert_eq!(loop0.gid(), 6);
}

#[test]
#[ignore = "needs root: run `just test-all` (trusted.* xattrs)"]
fn root_marks_opaque_directories_for_both_kinds_of_overlay_mount() {
    common::require_root();
    for marker_first in [true, false] {
        let sandbox = Sandbox::new("root-opaque");
        unpack_ok(
            &opaque_layer(marker_first),
            &sandbox.layer(),
            Privilege::Root,
        );
        let d = sandbox.layer().join("d");
        assert_eq!(
            common::xattr(&d, "trusted.overlay.opaque"),
            Some(b"y".to_vec())
        );
        // Root's containers mount their overlay in a user namespace, with userxattr.
        assert_eq!(
            common::xattr(&d, "user.overlay.opaque"),
            Some(b"y".to_vec())
        );
        assert!(d.join("own").exists());
    }
}
