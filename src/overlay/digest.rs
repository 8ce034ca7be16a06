//! A SHA-256 digest of a whole directory tree, to show that a lower layer is byte-for-byte
//! the same after a container wrote all over its merged view.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::OverlayError;

// ANCHOR: tree_digest
/// The SHA-256 (hex) of the tree at `dir`: for every entry in a sorted walk, its relative
/// path, file type, permission bits, uid and gid, then a file's bytes, a symlink's target
/// or a device's number. Each variable-length field is preceded by its length, so no two
/// different trees hash the same bytes. Symlinks are never followed; times and xattrs are
/// left out (reading a file changes its atime). Nor is a mount inside the tree entered:
/// overlayfs does not see through one either, it shows the directory beneath.
pub fn tree_digest(dir: &Path) -> Result<String, OverlayError> {
    let mut hasher = Sha256::new();
    let device = fs::symlink_metadata(dir)
        .map_err(OverlayError::io("stat", dir))?
        .dev();
    hash_entry(dir, device, Path::new("."), &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn hash_entry(
    root: &Path,
    device: u64,
    relative: &Path,
    hasher: &mut Sha256,
) -> Result<(), OverlayError> {
    let path = root.join(relative);
    let meta = fs::symlink_metadata(&path).map_err(OverlayError::io("stat", &path))?;
    if meta.dev() != device {
        // A mount point: another filesystem's root, not part of this tree.
        hash_field(hasher, relative.as_os_str().as_bytes());
        hasher.update([b'm']);
        return Ok(());
    }
    let file_type = meta.file_type();
    let type_tag: u8 = match () {
        _ if file_type.is_dir() => b'd',
        _ if file_type.is_file() => b'f',
        _ if file_type.is_symlink() => b'l',
        _ if file_type.is_char_device() => b'c',
        _ if file_type.is_block_device() => b'b',
        _ if file_type.is_fifo() => b'p',
        _ => b's',
    };
    hash_field(hasher, relative.as_os_str().as_bytes());
    hasher.update([type_tag]);
    hasher.update((meta.mode() & 0o7777).to_le_bytes());
    hasher.update(meta.uid().to_le_bytes());
    hasher.update(meta.gid().to_le_bytes());
    match type_tag {
        b'f' => {
            hasher.update(meta.len().to_le_bytes());
            let mut file = File::open(&path).map_err(OverlayError::io("open", &path))?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = file
                    .read(&mut buffer)
                    .map_err(OverlayError::io("read", &path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
        }
        b'l' => {
            let target = fs::read_link(&path).map_err(OverlayError::io("read link", &path))?;
            hash_field(hasher, target.as_os_str().as_bytes());
        }
        b'c' | b'b' => hasher.update(meta.rdev().to_le_bytes()),
        b'd' => {
            let mut names = fs::read_dir(&path)
                .map_err(OverlayError::io("read", &path))?
                .map(|entry| entry.map(|entry| entry.file_name()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(OverlayError::io("read", &path))?;
            names.sort();
            hasher.update((names.len() as u64).to_le_bytes());
            for name in names {
                hash_entry(root, device, &relative.join(name), hasher)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A length, then the bytes.
fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}
// ANCHOR_END: tree_digest
