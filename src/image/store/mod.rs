//! The content-addressed image store: blobs by digest, layers unpacked once by chain id,
//! and names that point at manifests.
//!
//! ```text
//! <data>/blobs/sha256/<hex>      every manifest, config and layer blob, as it came
//! <data>/layers/<chain-id hex>/  each layer unpacked, once, shared by every image
//! <data>/images/tags.json        NAME:TAG -> manifest digest
//! ```
//!
//! A blob is written under a temporary name while it is hashed and renamed to its
//! digest only when the digest matches, so a file in `blobs/` is always what its name
//! says. A layer is unpacked into a `.partial` directory and renamed the same way.
//! Nothing is removed while a name points at it: `rmi` drops a name (refused while a
//! container runs on the image), and `image prune` removes the blobs and layers that no
//! name reaches any more. Changes to the store happen under the store's lock.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::digest::{Digest, HashingWriter};
use super::extract::{Limits, Privilege, Unpacked};
use super::layer::{LayerError, unpack_blob};
use super::oci::{Descriptor, ImageConfig, Manifest, media};
use crate::store::FileLock;

mod images;

/// The largest manifest, index or config nutshell reads: they are small JSON documents,
/// and a huge one is an attack on memory.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// How long a change to the store waits for another one.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A blob's bytes are not what its digest says.
    #[error(
        "blob {expected}: its bytes hash to {actual} ({size} bytes): it was corrupted or tampered with"
    )]
    DigestMismatch {
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
        /// Its length.
        size: u64,
    },
    /// A blob's length is not what its descriptor says.
    #[error("blob {digest}: {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
    /// A JSON document is malformed or of the wrong kind.
    #[error("{what} {digest}: {reason}")]
    BadDocument {
        /// Which document.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// No image of that name.
    #[error("no image named {name} in the store: see `nutshell images`")]
    NoSuchImage {
        /// The name.
        name: String,
    },
    /// A name that cannot be an image name.
    #[error("image name {name:?} is not valid: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The image is in use.
    #[error("image {name} is in use by container {container}: stop and remove it first")]
    InUse {
        /// The image.
        name: String,
        /// A container running on it.
        container: String,
    },
    /// A layer could not be unpacked.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Another process held the store's lock too long.
    #[error("the image store {dir} has been locked by another nutshell for {secs} s")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// How long this one waited.
        secs: u64,
    },
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        operation,
        path,
        source,
    }
}

/// An image in the store, read from its manifest and config.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The name it was found by (`NAME:TAG`).
    pub name: String,
    /// The manifest's digest: the image's identity.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's length in bytes.
    pub manifest_size: u64,
    /// The config's digest (docker's "image id").
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// The unpacked layers, bottom first (overlay wants them top first: reverse).
    pub layer_dirs: Vec<PathBuf>,
}

impl StoredImage {
    /// The sum of the blobs' sizes, as a registry would transfer them.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// Where blobs come from while an image is added: a layout on disk, an archive, a
/// registry. Writes the blob `descriptor` names into `out`; the store checks it.
pub trait BlobSource {
    /// Copy the blob into `out`.
    fn fetch(&mut self, descriptor: &Descriptor, out: &mut dyn Write) -> io::Result<()>;
}

/// Progress reports while an image is added: which step, and bytes done.
pub trait Progress {
    /// A step begins: `what` of `total` bytes (0 if unknown).
    fn begin(&mut self, what: &str, total: u64);
    /// `bytes` more done.
    fn advance(&mut self, bytes: u64);
    /// The step is done; `note` says how (`done`, `already present`).
    fn end(&mut self, note: &str);
}

/// A progress that reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn end(&mut self, _: &str) {}
}

/// How a layer is unpacked: in this process, or by a helper in a user namespace (a
/// rootless user's layers must belong to its subordinate ids).
pub trait Unpacker {
    /// Unpack `blob` into `dest` (which does not exist yet), checking `diff_id`.
    fn unpack(
        &self,
        blob: &Path,
        blob_digest: &Digest,
        diff_id: &Digest,
        dest: &Path,
    ) -> Result<Unpacked, StoreError>;
}

/// Unpack in this process, with its own privilege.
pub struct InProcess {
    /// Root, mapped root or a plain user.
    pub privilege: Privilege,
    /// The tar bomb limits.
    pub limits: Limits,
}

impl Unpacker for InProcess {
    fn unpack(
        &self,
        blob: &Path,
        blob_digest: &Digest,
        diff_id: &Digest,
        dest: &Path,
    ) -> Result<Unpacked, StoreError> {
        Ok(unpack_blob(
            blob,
            blob_digest,
            diff_id,
            dest,
            self.privilege,
            self.limits,
        )?)
    }
}

/// The image store under a data directory.
#[derive(Debug, Clone)]
pub struct OciStore {
    data: PathBuf,
}

impl OciStore {
    /// The store under `data_dir`.
    pub fn new(data_dir: &Path) -> OciStore {
        OciStore {
            data: data_dir.to_path_buf(),
        }
    }

    /// `<data>/blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.data.join("blobs/sha256").join(digest.hex())
    }

    /// `<data>/layers/<hex>`: where the layer with this chain id is unpacked.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.data.join("layers").join(chain_id.hex())
    }

    /// `<data>/tmp`: scratch space on the store's filesystem (an archive being imported).
    pub fn scratch_dir(&self) -> PathBuf {
        self.data.join("tmp")
    }

    /// Whether the store has the blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The store's lock, for a change: one process at a time adds or removes.
    pub fn lock(&self) -> Result<FileLock, StoreError> {
        fs::create_dir_all(&self.data).map_err(io_err("make", &self.data))?;
        let path = self.data.join(".store.lock");
        match FileLock::acquire(&path, LOCK_TIMEOUT) {
            Ok(Some(lock)) => Ok(lock),
            Ok(None) => Err(StoreError::Locked {
                dir: self.data.clone(),
                secs: LOCK_TIMEOUT.as_secs(),
            }),
            Err(source) => Err(StoreError::Io {
                operation: "lock",
                path,
                source,
            }),
        }
    }

    // ANCHOR: write_blob
    /// Write the blob `descriptor` names, from `fill`, unless the store has it: under a
    /// temporary name while it is hashed, renamed to its digest only if it matches.
    pub fn write_blob(
        &self,
        descriptor: &Descriptor,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<bool, StoreError> {
        let target = self.blob_path(&descriptor.digest);
        if target.is_file() {
            return Ok(false);
        }
        let (temp, actual, size) = self.receive(fill)?;
        if actual != descriptor.digest {
            return Err(StoreError::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
                size,
            });
        }
        if size != descriptor.size {
            return Err(StoreError::SizeMismatch {
                digest: actual,
                expected: descriptor.size,
                actual: size,
            });
        }
        persist(temp, &target)?;
        Ok(true)
    }
    // ANCHOR_END: write_blob

    /// Store what `fill` writes as a blob of a digest not known beforehand (a layer
    /// being packed), and return its descriptor.
    pub fn put_stream(
        &self,
        media_type: &str,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Descriptor, StoreError> {
        let (temp, digest, size) = self.receive(fill)?;
        persist(temp, &self.blob_path(&digest))?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        })
    }

    /// What `fill` writes, in a temporary file beside the blobs, with its digest and
    /// length: a temporary file is removed when dropped, so a refused blob leaves nothing.
    fn receive(
        &self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(tempfile::NamedTempFile, Digest, u64), StoreError> {
        let dir = self.data.join("blobs/sha256");
        fs::create_dir_all(&dir).map_err(io_err("make", &dir))?;
        let temp = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&dir)
            .map_err(io_err("make a temporary blob in", &dir))?;
        let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, temp));
        fill(&mut out).map_err(io_err("receive a blob in", &dir))?;
        let (digest, size, buffered) = out.finish();
        let temp = buffered.into_inner().map_err(|e| StoreError::Io {
            operation: "write a blob in",
            path: dir.clone(),
            source: e.into_error(),
        })?;
        Ok((temp, digest, size))
    }

    /// Store `bytes` as a blob and return its descriptor.
    pub fn put_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        let descriptor = Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        self.write_blob(&descriptor, |out| out.write_all(bytes))?;
        Ok(descriptor)
    }

    /// Read a small blob (a manifest, an index, a config) whole, checking its digest.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        read_document_at(&self.blob_path(digest), digest)
    }
}

/// Read the small blob at `path` (a manifest, an index, a config, wherever it is kept)
/// whole, refusing one over [`MAX_DOCUMENT`] or one that is not `digest`.
pub fn read_document_at(path: &Path, digest: &Digest) -> Result<Vec<u8>, StoreError> {
    let file = File::open(path).map_err(io_err("open blob", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read blob", path))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(StoreError::BadDocument {
            what: "document",
            digest: digest.clone(),
            reason: format!("larger than {MAX_DOCUMENT} bytes"),
        });
    }
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(StoreError::DigestMismatch {
            expected: digest.clone(),
            actual,
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Give a received blob its name. A blob is content, not a secret: readable by all, as
/// a saved layout must be.
fn persist(temp: tempfile::NamedTempFile, target: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err("set the mode of", target))?;
    temp.persist(target).map_err(|e| StoreError::Io {
        operation: "store blob",
        path: target.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Counts bytes into a [`Progress`] as they pass.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    progress: &'a mut dyn Progress,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An image name as the store keeps it: `NAME:TAG`, with `:latest` added when there is
/// no tag. A name is lowercase letters, digits and `._-/:`, as in a registry reference.
pub fn normalize_name(name: &str) -> Result<String, StoreError> {
    let bad = |reason| StoreError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("it must be 1 to 255 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c))
    {
        return Err(bad(
            "use lowercase letters, digits and . _ - / : (NAME[:TAG])",
        ));
    }
    if name.starts_with(['.', '/', '-', ':']) || name.ends_with(['/', ':']) || name.contains("//") {
        return Err(bad("it must start and end with a letter or digit"));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        Ok(name.to_string())
    } else {
        Ok(format!("{name}:latest"))
    }
}

/// Read a manifest, refusing an index or anything else.
pub fn parse_manifest(bytes: &[u8], digest: &Digest) -> Result<Manifest, StoreError> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| StoreError::BadDocument {
            what: "manifest",
            digest: digest.clone(),
            reason: e.to_string(),
        })?;
    if let Some(kind) = &manifest.media_type
        && !media::is_manifest(kind)
    {
        return Err(StoreError::BadDocument {
            what: "manifest",
            digest: digest.clone(),
            reason: format!("media type {kind} is not an image manifest"),
        });
    }
    Ok(manifest)
}

/// Read an image config.
pub fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ImageConfig, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::BadDocument {
        what: "config",
        digest: digest.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_latest_and_bad_ones_are_refused() {
        assert_eq!(normalize_name("webapp").expect("ok"), "webapp:latest");
        assert_eq!(
            normalize_name("localhost:5000/webapp").expect("ok"),
            "localhost:5000/webapp:latest"
        );
        assert_eq!(normalize_name("a/b:v1").expect("ok"), "a/b:v1");
        for bad in ["", "Upper", "../x", "/x", "a b", "x/", "a//b"] {
            assert!(normalize_name(bad).is_err(), "{bad}");
        }
    }
}
