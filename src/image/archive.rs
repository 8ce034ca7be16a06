//! Images on disk, in and out: the OCI image layout (a directory or a tar of one), and
//! docker's archives, legacy and Docker ≥ 25.
//!
//! - An **OCI layout** is `oci-layout`, `index.json` and `blobs/sha256/<hex>`: the store's
//!   own shape. Its index names manifests, tagged by the annotation
//!   `org.opencontainers.image.ref.name`.
//! - An **OCI archive** is a tar of a layout (`skopeo copy … oci-archive:`).
//! - A **docker archive** (`docker save`) has a `manifest.json` listing, per image, its
//!   config file, its layer tars and its `RepoTags`. Before Docker 25 the layers are
//!   `<id>/layer.tar`; from 25 on the archive is an OCI layout as well, and
//!   `manifest.json` names the blobs.
//!
//! An archive is unpacked first, with the same safe extraction as a layer (it comes from
//! someone else too), into a temporary directory that goes when the import ends.
//! `save` writes a layout, or an archive that is both an OCI archive and a Docker ≥ 25
//! archive, so that `podman load`, `skopeo` and `docker load` all read it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::extract::{self, Limits, Privilege};
use super::oci::{self, Descriptor, Index, Manifest, Platform, media};
use super::store::{
    BlobSource, MAX_DOCUMENT, OciStore, Progress, StoreError, StoredImage, Unpacker,
    normalize_name, read_document_at,
};

/// The annotation that tags a manifest in a layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker ≥ 25's) annotation with the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Errors reading or writing image archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The path is not an image layout or archive nutshell knows.
    #[error("{path}: {reason}")]
    NotAnImage {
        /// The path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive itself could not be unpacked.
    #[error("unpack the archive {path}: {source}")]
    Unpack {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: extract::ExtractError,
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

fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io {
        operation,
        path,
        source,
    }
}

/// One entry of a docker archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Blobs read from files of an unpacked layout or archive: by digest under
/// `blobs/sha256`, or by the paths a docker archive's manifest names.
struct FileBlobs {
    dir: PathBuf,
    paths: BTreeMap<Digest, PathBuf>,
}

impl BlobSource for FileBlobs {
    fn fetch(&mut self, descriptor: &Descriptor, out: &mut dyn Write) -> io::Result<()> {
        let path = match self.paths.get(&descriptor.digest) {
            Some(path) => path.clone(),
            None => self.dir.join("blobs/sha256").join(descriptor.digest.hex()),
        };
        let mut file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // Never more than the descriptor says: the store then sees the wrong size.
        io::copy(&mut (&mut file).take(descriptor.size + 1), out)?;
        Ok(())
    }
}

// ANCHOR: import
/// Import every image in the layout, OCI archive or docker archive at `path` into
/// `store`. `name` names the image (when the archive holds one), overriding its own
/// tags. Returns the images added.
pub fn import(
    store: &OciStore,
    path: &Path,
    name: Option<&str>,
    unpacker: &dyn Unpacker,
    progress: &mut dyn Progress,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let meta = fs::metadata(path).map_err(io_err("open", path))?;
    let _unpacked;
    let dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        // An archive: unpack it like a layer (safely) into a temporary dir in the store.
        let temp = tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(store_dir(store)?)
            .map_err(io_err("make a temporary directory for", path))?;
        let file = File::open(path).map_err(io_err("open", path))?;
        let compression = super::layer::sniff_file(path).map_err(io_err("read", path))?;
        let tar = super::layer::decompress(BufReader::with_capacity(1 << 20, file), compression)
            .map_err(io_err("read", path))?;
        extract::unpack(tar, temp.path(), Privilege::User, Limits::default()).map_err(
            |source| ArchiveError::Unpack {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let dir = temp.path().to_path_buf();
        _unpacked = temp;
        dir
    };
    let fallback = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "imported".to_string());
    if dir.join("index.json").is_file() {
        import_layout(store, &dir, path, name, &fallback, unpacker, progress)
    } else if dir.join("manifest.json").is_file() {
        import_docker(store, &dir, path, name, unpacker, progress)
    } else {
        Err(ArchiveError::NotAnImage {
            path: path.to_path_buf(),
            reason: "neither an OCI layout (index.json) nor a docker archive (manifest.json)"
                .to_string(),
        })
    }
}
// ANCHOR_END: import

/// Where an archive is unpacked for its import: the store's scratch directory, on the
/// same filesystem, and outside `blobs/` and `layers/`, which `prune` sweeps.
fn store_dir(store: &OciStore) -> Result<PathBuf, ArchiveError> {
    let dir = store.scratch_dir();
    fs::create_dir_all(&dir).map_err(io_err("make", &dir))?;
    Ok(dir)
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    origin: &Path,
) -> Result<(T, Vec<u8>), ArchiveError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(ArchiveError::NotAnImage {
            path: origin.to_path_buf(),
            reason: format!("{} is larger than {MAX_DOCUMENT} bytes", path.display()),
        });
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::NotAnImage {
        path: origin.to_path_buf(),
        reason: format!("{}: {e}", path.display()),
    })?;
    Ok((value, bytes))
}

/// The manifests an OCI layout's index leads to, for this host's platform, with the
/// name each is tagged with.
fn import_layout(
    store: &OciStore,
    dir: &Path,
    origin: &Path,
    name: Option<&str>,
    fallback: &str,
    unpacker: &dyn Unpacker,
    progress: &mut dyn Progress,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let (index, _): (Index, _) = read_json(&dir.join("index.json"), origin)?;
    let mut blobs = FileBlobs {
        dir: dir.to_path_buf(),
        paths: BTreeMap::new(),
    };
    let platform = Platform::host();
    // Every name first, so that a clash is refused before anything is imported.
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let mut named = std::collections::BTreeSet::new();
    for descriptor in &index.manifests {
        let tag = descriptor
            .annotations
            .get(CONTAINERD_NAME)
            .or_else(|| descriptor.annotations.get(REF_NAME))
            .cloned();
        let manifest_bytes = resolve_manifest(dir, origin, descriptor, &platform)?;
        let Some(manifest_bytes) = manifest_bytes else {
            continue;
        };
        let image_name = match (name, tag) {
            (Some(name), _) => name.to_string(),
            // A bare tag (`latest`), as skopeo's oci:DIR:TAG writes it: name it after
            // the layout.
            (None, Some(tag)) if !tag.contains('/') && !tag.contains(':') => {
                format!("{fallback}:{tag}")
            }
            (None, Some(tag)) => tag,
            (None, None) => fallback.to_string(),
        };
        if !named.insert(normalize_name(&image_name)?) {
            return Err(ArchiveError::NotAnImage {
                path: origin.to_path_buf(),
                reason: format!(
                    "two images in its index are both named {image_name}: nutshell would keep only one"
                ),
            });
        }
        found.push((image_name, manifest_bytes));
    }
    if found.is_empty() {
        return Err(ArchiveError::NotAnImage {
            path: origin.to_path_buf(),
            reason: format!(
                "no image for {}/{} in its index",
                platform.os, platform.architecture
            ),
        });
    }
    found
        .iter()
        .map(|(image_name, manifest_bytes)| {
            Ok(store.add_image(image_name, manifest_bytes, &mut blobs, unpacker, progress)?)
        })
        .collect()
}

/// The manifest a layout's index entry leads to for `platform` (through a nested
/// index), read and checked against its digest; `None` if it is for another platform.
fn resolve_manifest(
    dir: &Path,
    origin: &Path,
    descriptor: &Descriptor,
    platform: &Platform,
) -> Result<Option<Vec<u8>>, ArchiveError> {
    if let Some(p) = &descriptor.platform
        && (p.os != platform.os || p.architecture != platform.architecture)
    {
        return Ok(None);
    }
    let bytes = read_blob_file(dir, origin, &descriptor.digest)?;
    if media::is_index(&descriptor.media_type) {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::NotAnImage {
                path: origin.to_path_buf(),
                reason: format!("index {}: {e}", descriptor.digest),
            })?;
        return match oci::select_manifest(&index, platform) {
            Some(inner) => resolve_manifest(dir, origin, inner, platform),
            None => Ok(None),
        };
    }
    Ok(Some(bytes))
}

/// A small blob of an unpacked layout, checked against its digest.
fn read_blob_file(dir: &Path, origin: &Path, digest: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let path = dir.join("blobs/sha256").join(digest.hex());
    read_document_at(&path, digest).map_err(|e| ArchiveError::NotAnImage {
        path: origin.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A docker archive: a manifest of our own per entry, from its config and layer files.
fn import_docker(
    store: &OciStore,
    dir: &Path,
    origin: &Path,
    name: Option<&str>,
    unpacker: &dyn Unpacker,
    progress: &mut dyn Progress,
) -> Result<Vec<StoredImage>, ArchiveError> {
    let (entries, _): (Vec<DockerEntry>, _) = read_json(&dir.join("manifest.json"), origin)?;
    let mut images = Vec::new();
    for entry in &entries {
        let mut blobs = FileBlobs {
            dir: dir.to_path_buf(),
            paths: BTreeMap::new(),
        };
        let config_path = inside(dir, origin, &entry.config)?;
        let (config_digest, config_size) = hash_file(&config_path)?;
        blobs.paths.insert(config_digest.clone(), config_path);
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let path = inside(dir, origin, layer)?;
            let (digest, size) = hash_file(&path)?;
            let compression = super::layer::sniff_file(&path).map_err(io_err("read", &path))?;
            let media_type = match compression {
                oci::Compression::None => media::OCI_LAYER,
                oci::Compression::Gzip => media::OCI_LAYER_GZIP,
                oci::Compression::Zstd => media::OCI_LAYER_ZSTD,
            };
            blobs.paths.insert(digest.clone(), path);
            layers.push(Descriptor {
                media_type: media_type.to_string(),
                digest,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: media::OCI_CONFIG.to_string(),
                digest: config_digest.clone(),
                size: config_size,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers,
            annotations: BTreeMap::new(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| ArchiveError::Io {
            operation: "encode a manifest for",
            path: origin.to_path_buf(),
            source: io::Error::other(e),
        })?;
        let tags: Vec<String> = match name {
            Some(name) => vec![name.to_string()],
            None => entry.repo_tags.clone().unwrap_or_default(),
        };
        let tags = if tags.is_empty() {
            vec![format!("imported-{}", config_digest.short())]
        } else {
            tags
        };
        let first = store.add_image(&tags[0], &manifest_bytes, &mut blobs, unpacker, progress)?;
        for tag in &tags[1..] {
            store.tag(&first.name, tag)?;
        }
        images.push(first);
    }
    Ok(images)
}

/// A path an archive names, which must stay inside it.
fn inside(dir: &Path, origin: &Path, relative: &str) -> Result<PathBuf, ArchiveError> {
    let path = Path::new(relative);
    let escapes = path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if escapes {
        return Err(ArchiveError::NotAnImage {
            path: origin.to_path_buf(),
            reason: format!("manifest.json names {relative:?}, outside the archive"),
        });
    }
    let full = dir.join(path);
    // The unpacking refused symlinks out of the archive's dir, but a symlink inside it
    // could still name a file the manifest did not mean: read only plain files.
    match fs::symlink_metadata(&full) {
        Ok(meta) if meta.is_file() => Ok(full),
        _ => Err(ArchiveError::NotAnImage {
            path: origin.to_path_buf(),
            reason: format!("manifest.json names {relative:?}, which is not a file in it"),
        }),
    }
}

fn hash_file(path: &Path) -> Result<(Digest, u64), ArchiveError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let (digest, size, _) = HashingReader::new(BufReader::with_capacity(1 << 20, file))
        .drain()
        .map_err(io_err("read", path))?;
    Ok((digest, size))
}

/// How `save` writes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// An OCI layout directory.
    Layout,
    /// A tar: an OCI archive that is a Docker ≥ 25 archive too.
    Archive,
}

impl SaveFormat {
    /// A path ending in `.tar` (or `.tar.gz`…) is an archive, anything else a directory.
    pub fn for_path(path: &Path) -> SaveFormat {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".tar") || name.contains(".tar.") {
            SaveFormat::Archive
        } else {
            SaveFormat::Layout
        }
    }
}

// ANCHOR: save
/// Write `image` from `store` to `out` as a layout directory (which must not exist or
/// be empty) or an archive file (which must not exist).
pub fn save(
    store: &OciStore,
    image: &StoredImage,
    out: &Path,
    format: SaveFormat,
) -> Result<(), ArchiveError> {
    let index_json = layout_index(image)?;
    let docker_json = docker_manifest(image)?;
    let mut blobs = vec![image.manifest_digest.clone(), image.config_digest.clone()];
    blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
    match format {
        SaveFormat::Layout => {
            if out.exists()
                && fs::read_dir(out)
                    .map_err(io_err("read", out))?
                    .next()
                    .is_some()
            {
                return Err(ArchiveError::NotAnImage {
                    path: out.to_path_buf(),
                    reason: "exists and is not empty: save into a new directory".to_string(),
                });
            }
            let result = (|| {
                let blob_dir = out.join("blobs/sha256");
                fs::create_dir_all(&blob_dir).map_err(io_err("make", &blob_dir))?;
                fs::write(out.join("oci-layout"), OCI_LAYOUT).map_err(io_err("write", out))?;
                fs::write(out.join("index.json"), &index_json).map_err(io_err("write", out))?;
                for digest in &blobs {
                    let target = blob_dir.join(digest.hex());
                    if !target.exists() {
                        fs::copy(store.blob_path(digest), &target)
                            .map_err(io_err("copy blob to", &target))?;
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                let _ = fs::remove_dir_all(out);
            }
            result
        }
        SaveFormat::Archive => {
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .map_err(io_err("create", out))?;
            let result = (|| {
                let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
                let mut add = |path: &str, bytes: &[u8]| {
                    let mut header = tar::Header::new_ustar();
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    header.set_mtime(super::pack::DEFAULT_EPOCH);
                    header.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(&mut header, path, bytes)
                };
                add("oci-layout", OCI_LAYOUT.as_bytes()).map_err(io_err("write", out))?;
                add("index.json", &index_json).map_err(io_err("write", out))?;
                add("manifest.json", &docker_json).map_err(io_err("write", out))?;
                for digest in &blobs {
                    let path = store.blob_path(digest);
                    let mut file = File::open(&path).map_err(io_err("open", &path))?;
                    let size = file.metadata().map_err(io_err("read", &path))?.len();
                    let mut header = tar::Header::new_ustar();
                    header.set_size(size);
                    header.set_mode(0o644);
                    header.set_mtime(super::pack::DEFAULT_EPOCH);
                    header.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(
                        &mut header,
                        format!("blobs/sha256/{}", digest.hex()),
                        &mut file,
                    )
                    .map_err(io_err("write", out))?;
                }
                tar.into_inner()
                    .and_then(|mut w| w.flush())
                    .map_err(io_err("write", out))
            })();
            if result.is_err() {
                let _ = fs::remove_file(out);
            }
            result
        }
    }
}
// ANCHOR_END: save

const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// The index of a saved layout: the one manifest, tagged with its tag (as skopeo's
/// `oci:DIR:TAG` reads it) and its full name (as containerd and Docker read it).
fn layout_index(image: &StoredImage) -> Result<Vec<u8>, ArchiveError> {
    let tag = image.name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let mut annotations = BTreeMap::new();
    annotations.insert(REF_NAME.to_string(), tag.to_string());
    annotations.insert(CONTAINERD_NAME.to_string(), image.name.clone());
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: vec![Descriptor {
            media_type: image
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
            digest: image.manifest_digest.clone(),
            size: image.manifest_size,
            platform: Some(Platform {
                architecture: image.config.architecture.clone(),
                os: image.config.os.clone(),
                variant: None,
            }),
            annotations,
        }],
    };
    serde_json::to_vec(&index).map_err(|e| ArchiveError::Io {
        operation: "encode index.json for",
        path: PathBuf::from(&image.name),
        source: io::Error::other(e),
    })
}

/// Docker ≥ 25's `manifest.json`, naming the layout's blobs.
fn docker_manifest(image: &StoredImage) -> Result<Vec<u8>, ArchiveError> {
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let entry = DockerEntry {
        config: blob(&image.config_digest),
        repo_tags: Some(vec![normalize_name(&image.name)?]),
        layers: image
            .manifest
            .layers
            .iter()
            .map(|l| blob(&l.digest))
            .collect(),
    };
    serde_json::to_vec(&[entry]).map_err(|e| ArchiveError::Io {
        operation: "encode manifest.json for",
        path: PathBuf::from(&image.name),
        source: io::Error::other(e),
    })
}
