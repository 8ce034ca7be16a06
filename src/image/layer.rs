//! One layer blob, from its compressed bytes to an unpacked, verified directory.
//!
//! A layer is checked twice on the way in. Its blob is named by the digest of its
//! compressed bytes, which the store checks when the blob arrives. Its *diff id*, in the
//! image's config, is the digest of the uncompressed tar, which only unpacking sees: so
//! the decompressed stream is hashed as the tar reader consumes it, and whatever the
//! reader leaves unread (the padding after the end-of-archive blocks is part of the tar)
//! is drained into the hash before the digest is compared. A mismatch removes the
//! partial directory: a layer is in the store whole and verified, or not at all.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashingReader};
use super::extract::{self, ExtractError, Limits, Privilege, Unpacked};
use super::oci::Compression;

/// Why a layer blob could not become a layer directory.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Opening or reading the blob failed.
    #[error("read layer blob {path}: {source}")]
    Read {
        /// The blob.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An entry was refused, or the tar could not be read.
    #[error("unpack layer {diff_id}: {source}")]
    Extract {
        /// The layer's diff id.
        diff_id: Digest,
        /// What went wrong.
        #[source]
        source: ExtractError,
    },
    /// The uncompressed tar is not the one the config names.
    #[error(
        "layer {blob}: its uncompressed digest is {actual}, but the image's config says {expected} (diff_ids): the layer or the config was changed"
    )]
    DiffIdMismatch {
        /// The blob's digest.
        blob: Digest,
        /// What the config says.
        expected: Digest,
        /// What the tar hashed to.
        actual: Digest,
    },
    /// The unpacked directory could not be made or removed.
    #[error("{operation} {path}: {source}")]
    Dir {
        /// What was being done.
        operation: &'static str,
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// A reader of the decompressed tar inside a blob, whatever its compression.
pub fn decompress<'a>(
    blob: impl Read + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(blob),
        // Multi: a gzip stream may be several members back to back (pigz, appended
        // layers); GzDecoder would stop silently after the first.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(blob)?),
    })
}

/// The compression of the blob at `path`, from its first bytes.
pub fn sniff_file(path: &Path) -> io::Result<Compression> {
    let mut head = [0u8; 4];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(Compression::sniff(&head[..filled]))
}

// ANCHOR: unpack_blob
/// Unpack the layer blob at `blob` (digest `blob_digest`) into `dest`, which must not
/// exist, and check that its tar is `diff_id`. On any error `dest` is removed again.
pub fn unpack_blob(
    blob: &Path,
    blob_digest: &Digest,
    diff_id: &Digest,
    dest: &Path,
    privilege: Privilege,
    limits: Limits,
) -> Result<Unpacked, LayerError> {
    let read_err = |source| LayerError::Read {
        path: blob.to_path_buf(),
        source,
    };
    let compression = sniff_file(blob).map_err(read_err)?;
    let file = File::open(blob).map_err(read_err)?;
    let tar = decompress(BufReader::with_capacity(1 << 20, file), compression).map_err(read_err)?;
    let mut hashing = HashingReader::new(tar);
    std::fs::create_dir(dest).map_err(|source| LayerError::Dir {
        operation: "make the layer directory",
        path: dest.to_path_buf(),
        source,
    })?;
    let result = (|| {
        let unpacked =
            extract::unpack(&mut hashing, dest, privilege, limits).map_err(|source| {
                LayerError::Extract {
                    diff_id: diff_id.clone(),
                    source,
                }
            })?;
        // The tar reader stops at the end-of-archive blocks; the diff id covers all of it.
        let (actual, _, _) = hashing.drain().map_err(|source| LayerError::Extract {
            diff_id: diff_id.clone(),
            source: ExtractError::Stream {
                after: " after its last entry".to_string(),
                source,
            },
        })?;
        if &actual != diff_id {
            return Err(LayerError::DiffIdMismatch {
                blob: blob_digest.clone(),
                expected: diff_id.clone(),
                actual,
            });
        }
        Ok(unpacked)
    })();
    if result.is_err() {
        remove_layer_dir(dest);
    }
    result
}
// ANCHOR_END: unpack_blob

/// Remove a layer directory, whiteouts, opaque dirs and read-only modes included. Best
/// effort: used on a path that failed, to leave nothing behind.
pub fn remove_layer_dir(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_err() {
        make_writable(dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Give the owner write and search permission on every directory under `dir`: an image
/// may hold directories of mode 0555, which even root's remove_dir_all gets through,
/// but a user's does not.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700),
    );
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        make_writable(&entry.path());
    }
}
