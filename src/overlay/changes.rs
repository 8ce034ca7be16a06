//! What a container changed, read from its upper dir: every entry there is an addition, a
//! copied-up lower file, a whiteout, an opaque directory, or a directory that holds some
//! of these.

use std::ffi::CString;
use std::fmt;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::OverlayError;

/// The xattrs overlayfs marks an opaque directory with: `trusted.*` when mounted by the
/// host's root, `user.*` under the `userxattr` option.
const OPAQUE_XATTRS: &[&str] = &["trusted.overlay.opaque", "user.overlay.opaque"];

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO or socket.
    Special,
}

impl EntryKind {
    fn of(meta: &Metadata) -> Self {
        let file_type = meta.file_type();
        if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Special
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Special => "special file",
        })
    }
}

/// How one upper entry changes the merged view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// New: no lower layer has this path (or it is inside an opaque directory).
    Added {
        /// What it is.
        kind: EntryKind,
        /// Its size in bytes.
        size: u64,
    },
    /// A lower layer has this path too: writing to it (or chmod, chown) copied the whole
    /// file up.
    CopiedUp {
        /// What it is.
        kind: EntryKind,
        /// Its size in bytes: the full copy, however small the write.
        size: u64,
    },
    /// A character device 0/0: the path was deleted, and the lower one is hidden.
    Whiteout,
    /// A directory marked opaque: it replaced the lower one, whose entries are hidden.
    OpaqueDir,
    /// A directory the lowers have too, here because something below it changed.
    Directory,
}

/// One entry of an upper dir and what it does to the merged view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path, relative to the upper dir (and to the container's root).
    pub path: PathBuf,
    /// What it does.
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    /// One line: the kind, the path, and what it means, e.g.
    /// `whiteout   etc/group   (character device 0/0: deleted from the lower)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (label, note) = match &self.kind {
            ChangeKind::Added { kind, size } => ("added", format!("new {kind}, {size} bytes")),
            ChangeKind::CopiedUp { kind, size } => (
                "copied up",
                format!("full copy of the lower {kind}, {size} bytes"),
            ),
            ChangeKind::Whiteout => (
                "whiteout",
                "character device 0/0: deleted from the lower".to_string(),
            ),
            ChangeKind::OpaqueDir => (
                "opaque",
                "directory marked opaque: replaces the lower one".to_string(),
            ),
            ChangeKind::Directory => (
                "directory",
                "merged with the lower one; holds changes".to_string(),
            ),
        };
        write!(f, "{label:<10} {}   ({note})", self.path.display())
    }
}

// ANCHOR: upper_changes
/// Every entry of `upper`, sorted by path, classified against `lowers` (top first). Never
/// follows a symlink in the upper.
pub fn upper_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, OverlayError> {
    let mut changes = Vec::new();
    walk(upper, Path::new(""), lowers, false, &mut changes)?;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

fn walk(
    upper: &Path,
    relative: &Path,
    lowers: &[PathBuf],
    under_opaque: bool,
    changes: &mut Vec<Change>,
) -> Result<(), OverlayError> {
    let dir = upper.join(relative);
    for entry in fs::read_dir(&dir).map_err(OverlayError::io("read", &dir))? {
        let entry = entry.map_err(OverlayError::io("read", &dir))?;
        let path = relative.join(entry.file_name());
        let full = upper.join(&path);
        let meta = fs::symlink_metadata(&full).map_err(OverlayError::io("stat", &full))?;
        // Below an opaque directory the lowers are hidden: everything there is new.
        let in_lower = !under_opaque && in_any_lower(lowers, &path);
        let kind = if is_whiteout(&meta) {
            ChangeKind::Whiteout
        } else if meta.is_dir() {
            let opaque = is_opaque(&full)?;
            walk(upper, &path, lowers, under_opaque || opaque, changes)?;
            match (opaque, in_lower) {
                (true, _) => ChangeKind::OpaqueDir,
                (false, true) => ChangeKind::Directory,
                (false, false) => ChangeKind::Added {
                    kind: EntryKind::Directory,
                    size: meta.len(),
                },
            }
        } else if in_lower {
            ChangeKind::CopiedUp {
                kind: EntryKind::of(&meta),
                size: meta.len(),
            }
        } else {
            ChangeKind::Added {
                kind: EntryKind::of(&meta),
                size: meta.len(),
            }
        };
        changes.push(Change { path, kind });
    }
    Ok(())
}
// ANCHOR_END: upper_changes

/// A whiteout: a character device with device number 0/0.
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether some lower layer has `relative` (a whiteout in a lower does not count).
fn in_any_lower(lowers: &[PathBuf], relative: &Path) -> bool {
    lowers.iter().any(|lower| {
        fs::symlink_metadata(lower.join(relative)).is_ok_and(|meta| !is_whiteout(&meta))
    })
}

/// Whether `dir` carries overlayfs's opaque mark (`y`) in either xattr namespace.
pub(crate) fn is_opaque(dir: &Path) -> Result<bool, OverlayError> {
    for name in OPAQUE_XATTRS {
        if read_xattr(dir, name)?.is_some_and(|value| value == b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The value of xattr `name` on `path` itself (lgetxattr(2): a symlink is not followed),
/// or `None` when it has none, the filesystem has no xattrs, or (for `trusted.*`) this
/// process may not read it.
fn read_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, OverlayError> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| OverlayError::Io {
        op: "read xattr of",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let c_name = CString::new(name).map_err(|e| OverlayError::Io {
        op: "read xattr of",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    // overlayfs's marks are one or a few bytes; a longer value is not a mark.
    let mut value = [0u8; 64];
    // SAFETY: both strings are NUL-terminated, and the buffer's length is passed with it.
    let len = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len >= 0 {
        return Ok(Some(value[..len as usize].to_vec()));
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENODATA | libc::ENOTSUP | libc::EPERM | libc::ERANGE) => Ok(None),
        _ => Err(OverlayError::Io {
            op: "read xattr of",
            path: path.to_path_buf(),
            source: error,
        }),
    }
}
