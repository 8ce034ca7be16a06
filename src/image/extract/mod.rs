//! Unpacking one layer's tar into a directory of its own, safely, with its whiteouts in
//! overlay's form.
//!
//! A layer is a tar stream from someone else: every path in it is an attack until proven
//! otherwise. The classic ones are `../../etc/cron.d/x` and `/etc/passwd`; the subtle
//! ones plant a symlink (`lib -> /`) and then write *through* it (`lib/etc/shadow`), or a
//! hardlink to a host file (CVE-2014-6407, CVE-2021-32760), or race a path check against
//! its use. So nothing here joins strings into host paths: every entry is applied
//! relative to a directory fd of the layer, the parent is opened with
//! [openat2(2)](https://man7.org/linux/man-pages/man2/openat2.2.html) and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS` (the kernel treats the layer as `/` and refuses
//! to follow any symlink on the way), and the last component is created with `O_EXCL`
//! and `O_NOFOLLOW`, so that no existing link is ever followed either.
//!
//! # The changeset rules, for one layer on its own
//!
//! Each layer gets a fresh directory, and overlayfs stacks them later (chapter 7), so
//! the rules of the OCI changeset format come out as:
//!
//! - `.wh.NAME` hides NAME **of the layers below**: it becomes overlay's whiteout (a 0/0
//!   character device), unless this layer has its own NAME, which it keeps (a directory
//!   of its own becomes opaque instead, since the lower one is gone).
//! - `.wh..wh..opq` hides everything below in its directory, wherever in the stream it
//!   comes: it becomes the `overlay.opaque` xattr, which leaves this layer's own entries
//!   alone however they are ordered around it.
//! - A non-directory replaces what this layer had at its path (a whiteout, a directory
//!   made for a parent); a directory over a directory keeps it.
//!
//! Root unpacks with owners and devices as the tar says, and marks opaque directories
//! with `trusted.overlay.opaque` and, for the overlays its containers mount inside their
//! user namespaces, `user.overlay.opaque` as well;
//! the root of a user namespace (rootless) with the `user.overlay.*` forms that
//! overlay's `userxattr` option reads, and owners within its maps.
//!
//! # Security
//!
//! Refused, each with an error that names the entry: absolute paths and `..`; an entry
//! that would change the type of the layer's root; a write through a symlink; a hardlink
//! to anything outside the layer or not yet in it; whiteouts of `.`, `..` or nothing;
//! overlay's own xattrs (`trusted.overlay.redirect` would make overlay look elsewhere);
//! duplicate entries (no builder writes one, and they are how type-changing tricks are
//! staged); more data or entries than [`Limits`] allow, or more than
//! [`MAX_HEADER_BYTES`] of headers before an entry. Device nodes are made only by the
//! host's root, and a container never sees the image's `/dev`: the runtime mounts its
//! own there (chapter 4).

mod apply;
mod at;

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use apply::Layer;
use at::open_dir_path;

/// How much a layer may hold before it is refused as a tar bomb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The bytes of file data, all entries together.
    pub max_bytes: u64,
    /// The number of entries.
    pub max_entries: u64,
}

impl Default for Limits {
    /// 64 GiB and two million entries: more than any real image layer.
    fn default() -> Limits {
        Limits {
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// Who is unpacking, which decides owners, devices and the whiteout xattrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// The host's root: owners and device nodes as the tar says, `trusted.overlay.*` and
    /// `user.overlay.*`.
    Root,
    /// The root of a user namespace: owners within its maps, no device nodes,
    /// `user.overlay.*` (overlay's `userxattr`).
    MappedRoot,
    /// A plain user: every file is the user's, no device nodes, `user.overlay.*`.
    User,
}

impl Privilege {
    /// The privilege of this process: root in the initial user namespace, root of
    /// another one, or neither.
    pub fn of_this_process() -> Privilege {
        if !nix::unistd::geteuid().is_root() {
            return Privilege::User;
        }
        let initial = std::fs::read_to_string("/proc/self/uid_map")
            .map(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
            .unwrap_or(true);
        if initial {
            Privilege::Root
        } else {
            Privilege::MappedRoot
        }
    }

    /// The xattr prefixes of the overlay marks this unpacking writes. Overlay reads
    /// `trusted.overlay.*` when the host's root mounts it, and `user.overlay.*` under its
    /// `userxattr` option, which a mount from inside a user namespace needs — and root's
    /// containers mount their overlay in theirs (chapter 7). So root writes both, and the
    /// layer works under either mount; a user can write only the `user.` one.
    pub fn overlay_xattr_prefixes(self) -> &'static [&'static str] {
        match self {
            Privilege::Root => &["trusted.overlay.", "user.overlay."],
            Privilege::MappedRoot | Privilege::User => &["user.overlay."],
        }
    }
}

/// What unpacking a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Whiteouts made.
    pub whiteouts: u64,
    /// Device nodes not made, because only the host's root makes them.
    pub skipped_devices: Vec<String>,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The entry itself is refused.
    #[error("layer entry {entry}: {problem}")]
    Refused {
        /// The entry's path as the tar has it.
        entry: EntryName,
        /// What is wrong with it.
        problem: String,
    },
    /// Applying an entry failed.
    #[error("layer entry {entry}: {operation}: {source}")]
    Apply {
        /// The entry's path.
        entry: EntryName,
        /// What was being done.
        operation: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The tar stream could not be read (a truncated or corrupt archive).
    #[error("read the layer's tar stream{after}: {source}")]
    Stream {
        /// ` after entry X`, or nothing before the first entry.
        after: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The directory to unpack into could not be opened.
    #[error("open the layer directory {path}: {source}")]
    Open {
        /// The directory.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// An entry's path as it was in the tar, shown quoted with non-UTF-8 bytes escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName(pub Vec<u8>);

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// A path inside the layer: its components, none of them empty, `.` or `..`.
type Components = Vec<Vec<u8>>;

/// The xattr name prefix of PAX records that carry extended attributes.
const PAX_XATTR: &str = "SCHILY.xattr.";

/// The most bytes the tar reader may read between two entries: their PAX records and
/// GNU long names, which it holds in memory whole, and the skipped rest of the entry
/// before. Real layers need a few KiB; a gzip of zeros could declare terabytes.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

// ANCHOR: unpack
/// Unpack the tar stream `tar` into `dest`, an empty directory that becomes the layer.
/// On an error, `dest` holds part of the layer: the caller removes it.
pub fn unpack(
    tar: impl Read,
    dest: &Path,
    privilege: Privilege,
    limits: Limits,
) -> Result<Unpacked, ExtractError> {
    let root = open_dir_path(dest).map_err(|source| ExtractError::Open {
        path: dest.to_path_buf(),
        source,
    })?;
    let mut layer = Layer {
        root,
        privilege,
        limits,
        seen: HashMap::new(),
        dirs: Vec::new(),
        done: Unpacked::default(),
        buffer: vec![0; 1 << 20],
        parents: Vec::new(),
    };
    let budget = Rc::new(Cell::new(MAX_HEADER_BYTES));
    let mut archive = tar::Archive::new(Metered {
        inner: tar,
        budget: Rc::clone(&budget),
    });
    let mut last = String::new();
    let entries = archive.entries().map_err(|source| ExtractError::Stream {
        after: String::new(),
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ExtractError::Stream {
            after: last.clone(),
            source,
        })?;
        let name = EntryName(entry.path_bytes().into_owned());
        // The entry's own data is bounded by its size, which apply checks.
        budget.set(u64::MAX);
        layer.apply(&mut entry, &name)?;
        budget.set(MAX_HEADER_BYTES.saturating_add(entry.size().next_multiple_of(512)));
        last = format!(" after entry {name}");
    }
    layer.finish_dirs()?;
    Ok(layer.done)
}
// ANCHOR_END: unpack

/// The layer's stream, read at most `budget` bytes at a time (see [`MAX_HEADER_BYTES`]).
struct Metered<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.get();
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::other(format!(
                "more than {MAX_HEADER_BYTES} bytes of headers (PAX records, long names) before the next entry: refused as a tar bomb"
            )));
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.budget.set(left - n as u64);
        Ok(n)
    }
}
/// The components of a tar path, checked: no absolute paths, no `..`; `.` and empty
/// components dropped.
fn components(path: &[u8]) -> Result<Components, String> {
    if path.starts_with(b"/") {
        return Err("an absolute path: layer paths are relative to the layer's root".to_string());
    }
    if path.contains(&0) {
        return Err("a NUL byte in the path".to_string());
    }
    let mut out = Vec::new();
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("`..` in the path climbs out of the layer".to_string()),
            _ => out.push(component.to_vec()),
        }
    }
    Ok(out)
}

fn owner<R: Read>(entry: &tar::Entry<'_, R>, name: &EntryName) -> Result<(u32, u32), ExtractError> {
    let header = entry.header();
    let uid = header.uid().map_err(apply(name, "read its owner"))?;
    let gid = header.gid().map_err(apply(name, "read its group"))?;
    let bad = || ExtractError::Refused {
        entry: name.clone(),
        problem: format!("its owner {uid}:{gid} is not a 32-bit id"),
    };
    Ok((
        u32::try_from(uid).map_err(|_| bad())?,
        u32::try_from(gid).map_err(|_| bad())?,
    ))
}

fn mtime<R: Read>(entry: &tar::Entry<'_, R>) -> i64 {
    entry
        .header()
        .mtime()
        .ok()
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or(0)
}

fn apply(name: &EntryName, operation: &'static str) -> impl Fn(io::Error) -> ExtractError {
    let name = name.clone();
    move |source| ExtractError::Apply {
        entry: name.clone(),
        operation,
        source,
    }
}

fn cstring(bytes: &[u8], name: &EntryName) -> Result<CString, ExtractError> {
    CString::new(bytes).map_err(|_| ExtractError::Refused {
        entry: name.clone(),
        problem: "a NUL byte in a name".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_checked() {
        assert_eq!(
            components(b"./etc//passwd").expect("fine"),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert!(components(b"./").expect("root").is_empty());
        assert!(
            components(b"/etc/passwd")
                .expect_err("absolute")
                .contains("absolute")
        );
        assert!(components(b"a/../../x").expect_err("dotdot").contains(".."));
    }
}
