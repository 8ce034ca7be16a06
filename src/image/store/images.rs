//! The store's images: adding one (its blobs fetched and checked, its layers unpacked
//! once), naming, listing, untagging and pruning. `tags.json` holds the names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    BlobSource, CountingWriter, OciStore, Progress, Quiet, StoreError, StoredImage, Unpacker,
    io_err, normalize_name, parse_config, parse_manifest,
};
use crate::image::digest::{Digest, chain_ids};
use crate::image::layer::remove_layer_dir;
use crate::image::oci::{Descriptor, ImageConfig, Manifest, RunConfig, media};

/// `tags.json`: each name and the manifest it points at.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tags {
    images: BTreeMap<String, TagEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TagEntry {
    manifest: Digest,
    /// When the name was set, seconds since the epoch.
    added: u64,
}

/// The source of an image whose blobs are all in the store already.
struct AllPresent;

impl BlobSource for AllPresent {
    fn fetch(&mut self, descriptor: &Descriptor, _: &mut dyn Write) -> io::Result<()> {
        Err(io::Error::other(format!(
            "blob {} should be in the store already",
            descriptor.digest
        )))
    }
}

impl OciStore {
    // ANCHOR: add_tree
    /// Make the directory `tree` a one-layer image named `name`: pack it into a layer
    /// blob (reproducibly, owned by root, mtimes clamped to `epoch`), write its config
    /// and manifest, and add the image as any other, its layer unpacked from the blob
    /// by `unpacker`. `tree` stays as it is. Returns the image.
    pub fn add_tree(
        &self,
        name: &str,
        tree: &Path,
        run: RunConfig,
        created_by: &str,
        epoch: u64,
        unpacker: &dyn Unpacker,
    ) -> Result<StoredImage, StoreError> {
        crate::image::pack::clamp_mtimes(tree, epoch)
            .map_err(io_err("clamp the mtimes in", tree))?;
        let layer = self.put_stream(media::OCI_LAYER, |out| {
            crate::image::pack::pack_dir(tree, out, epoch, true).map(|_| ())
        })?;
        let created = crate::image::pack::rfc3339(epoch);
        let platform = crate::image::oci::Platform::host();
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: platform.architecture,
            os: platform.os,
            config: Some(run),
            rootfs: crate::image::oci::RootFsConfig {
                kind: "layers".to_string(),
                diff_ids: vec![layer.digest.clone()],
            },
            history: vec![crate::image::oci::History {
                created: Some(created),
                created_by: Some(created_by.to_string()),
                ..Default::default()
            }],
        };
        let config_json = serde_json::to_vec(&config).map_err(|e| StoreError::Io {
            operation: "encode the config of",
            path: tree.to_path_buf(),
            source: io::Error::other(e),
        })?;
        let config_descriptor = self.put_bytes(media::OCI_CONFIG, &config_json)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: config_descriptor,
            layers: vec![layer.clone()],
            annotations: BTreeMap::new(),
        };
        let manifest_json = serde_json::to_vec(&manifest).map_err(|e| StoreError::Io {
            operation: "encode the manifest of",
            path: tree.to_path_buf(),
            source: io::Error::other(e),
        })?;
        // Every blob is in the store now: adding it fetches nothing, and unpacks the layer
        // from its blob the way an imported one is, which checks the packing too.
        self.add_local(name, &manifest_json, unpacker)
    }
    // ANCHOR_END: add_tree

    // ANCHOR: add_image
    /// Add the image whose manifest is `manifest_bytes`: fetch its config and layer blobs
    /// from `source` (those the store lacks), unpack each layer the store has not
    /// unpacked yet, and name it `name`. Returns the image as stored.
    pub fn add_image(
        &self,
        name: &str,
        manifest_bytes: &[u8],
        source: &mut dyn BlobSource,
        unpacker: &dyn Unpacker,
        progress: &mut dyn Progress,
    ) -> Result<StoredImage, StoreError> {
        let name = normalize_name(name)?;
        let manifest_digest = Digest::of(manifest_bytes);
        let manifest = parse_manifest(manifest_bytes, &manifest_digest)?;
        let _lock = self.lock()?;
        let config_bytes = {
            self.fetch(&manifest.config, source, progress, "config")?;
            self.read_document(&manifest.config.digest)?
        };
        let config = parse_config(&config_bytes, &manifest.config.digest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::BadDocument {
                what: "config",
                digest: manifest.config.digest.clone(),
                reason: format!(
                    "it names {} layers (rootfs.diff_ids), the manifest {}",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let chains = chain_ids(&config.rootfs.diff_ids);
        for (i, layer) in manifest.layers.iter().enumerate() {
            self.fetch(layer, source, progress, &format!("layer {}", i + 1))?;
            self.unpack_locked(
                layer,
                &config.rootfs.diff_ids[i],
                &chains[i],
                unpacker,
                progress,
            )?;
        }
        self.put_bytes(
            manifest
                .media_type
                .as_deref()
                .unwrap_or(media::OCI_MANIFEST),
            manifest_bytes,
        )?;
        self.set_tag(&name, &manifest_digest)?;
        self.image_from(&name, &manifest_digest)
    }
    // ANCHOR_END: add_image

    /// Add the image whose manifest is `manifest_bytes` and whose blobs are all in the
    /// store already (a build wrote them): its layers are unpacked if they are not yet.
    pub fn add_local(
        &self,
        name: &str,
        manifest_bytes: &[u8],
        unpacker: &dyn Unpacker,
    ) -> Result<StoredImage, StoreError> {
        self.add_image(name, manifest_bytes, &mut AllPresent, unpacker, &mut Quiet)
    }

    /// Unpack the layer blob `layer` (uncompressed digest `diff_id`) as the layer whose
    /// chain id is `chain`, unless the store has it already; returns its directory. The
    /// blob must be in the store.
    pub fn ensure_layer(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        unpacker: &dyn Unpacker,
    ) -> Result<PathBuf, StoreError> {
        let _lock = self.lock()?;
        self.unpack_locked(layer, diff_id, chain, unpacker, &mut Quiet)
    }

    // ANCHOR: unpack_layer
    /// [`OciStore::ensure_layer`], with the store's lock held.
    fn unpack_locked(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        unpacker: &dyn Unpacker,
        progress: &mut dyn Progress,
    ) -> Result<PathBuf, StoreError> {
        let dest = self.layer_dir(chain);
        progress.begin(&format!("unpack {}", layer.digest.short()), 0);
        if dest.is_dir() {
            progress.end("already unpacked");
            return Ok(dest);
        }
        let parent = self.data.join("layers");
        fs::create_dir_all(&parent).map_err(io_err("make", &parent))?;
        let partial = parent.join(format!(".{}.partial-{}", chain.hex(), std::process::id()));
        remove_layer_dir(&partial);
        let unpacked = unpacker.unpack(
            &self.blob_path(&layer.digest),
            &layer.digest,
            diff_id,
            &partial,
        )?;
        fs::rename(&partial, &dest).map_err(|source| {
            remove_layer_dir(&partial);
            StoreError::Io {
                operation: "move the unpacked layer to",
                path: dest.clone(),
                source,
            }
        })?;
        progress.end(&format!(
            "{} entries, {} bytes{}",
            unpacked.entries,
            unpacked.bytes,
            if unpacked.skipped_devices.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} device nodes left out (only root makes them)",
                    unpacked.skipped_devices.len()
                )
            }
        ));
        Ok(dest)
    }
    // ANCHOR_END: unpack_layer

    /// Fetch one blob from `source` unless the store has it.
    fn fetch(
        &self,
        descriptor: &Descriptor,
        source: &mut dyn BlobSource,
        progress: &mut dyn Progress,
        what: &str,
    ) -> Result<(), StoreError> {
        progress.begin(
            &format!("{what} {}", descriptor.digest.short()),
            descriptor.size,
        );
        let wrote = self.write_blob(descriptor, |out| {
            let mut counting = CountingWriter {
                inner: out,
                progress: &mut *progress,
            };
            source.fetch(descriptor, &mut counting)
        })?;
        progress.end(if wrote { "verified" } else { "already present" });
        Ok(())
    }

    /// The image named `name`, if there is one.
    pub fn open(&self, name: &str) -> Result<Option<StoredImage>, StoreError> {
        let name = normalize_name(name)?;
        let tags = self.read_tags()?;
        match tags.images.get(&name) {
            None => Ok(None),
            Some(entry) => self.image_from(&name, &entry.manifest).map(Some),
        }
    }

    /// The image named `name`, which must exist.
    pub fn get(&self, name: &str) -> Result<StoredImage, StoreError> {
        self.open(name)?.ok_or_else(|| StoreError::NoSuchImage {
            name: name.to_string(),
        })
    }

    /// Every named image, by name.
    pub fn list(&self) -> Result<Vec<StoredImage>, StoreError> {
        let tags = self.read_tags()?;
        tags.images
            .iter()
            .map(|(name, entry)| self.image_from(name, &entry.manifest))
            .collect()
    }

    /// When the name was given, in seconds since the epoch.
    pub fn added(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let name = normalize_name(name)?;
        Ok(self.read_tags()?.images.get(&name).map(|e| e.added))
    }

    fn image_from(&self, name: &str, manifest_digest: &Digest) -> Result<StoredImage, StoreError> {
        let manifest_bytes = self.read_document(manifest_digest)?;
        let manifest = parse_manifest(&manifest_bytes, manifest_digest)?;
        let config = parse_config(
            &self.read_document(&manifest.config.digest)?,
            &manifest.config.digest,
        )?;
        let layer_dirs = chain_ids(&config.rootfs.diff_ids)
            .iter()
            .map(|chain| self.layer_dir(chain))
            .collect();
        Ok(StoredImage {
            name: name.to_string(),
            manifest_digest: manifest_digest.clone(),
            config_digest: manifest.config.digest.clone(),
            manifest,
            manifest_size: manifest_bytes.len() as u64,
            config,
            layer_dirs,
        })
    }

    /// Give the image `source` a second name `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<StoredImage, StoreError> {
        let image = self.get(source)?;
        let target = normalize_name(target)?;
        let _lock = self.lock()?;
        self.set_tag(&target, &image.manifest_digest)?;
        self.image_from(&target, &image.manifest_digest)
    }

    /// Remove the name `name`; refused while `in_use` says a container runs on one of
    /// its layers. The blobs and layers stay until `prune`.
    pub fn untag(
        &self,
        name: &str,
        in_use: &dyn Fn(&[PathBuf]) -> Option<String>,
    ) -> Result<StoredImage, StoreError> {
        let image = self.get(name)?;
        if let Some(container) = in_use(&image.layer_dirs) {
            return Err(StoreError::InUse {
                name: image.name.clone(),
                container,
            });
        }
        let _lock = self.lock()?;
        let mut tags = self.read_tags()?;
        tags.images.remove(&image.name);
        self.write_tags(&tags)?;
        Ok(image)
    }

    // ANCHOR: prune
    /// Remove every blob and layer that no name reaches, and that no running container
    /// uses. Returns what was removed.
    pub fn prune(
        &self,
        in_use: &dyn Fn(&[PathBuf]) -> Option<String>,
        remove_tree: &dyn Fn(&Path) -> io::Result<()>,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let _lock = self.lock()?;
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for image in self.list()? {
            keep_blobs.insert(image.manifest_digest.hex().to_string());
            keep_blobs.insert(image.config_digest.hex().to_string());
            for layer in &image.manifest.layers {
                keep_blobs.insert(layer.digest.hex().to_string());
            }
            for dir in &image.layer_dirs {
                keep_layers.insert(dir.clone());
            }
        }
        let mut removed = Vec::new();
        let layers = self.data.join("layers");
        for entry in fs::read_dir(&layers).into_iter().flatten().flatten() {
            let path = entry.path();
            if keep_layers.contains(&path) || in_use(std::slice::from_ref(&path)).is_some() {
                continue;
            }
            remove_tree(&path).map_err(io_err("remove layer", &path))?;
            removed.push(path);
        }
        let blobs = self.data.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only files are blobs (and temporary ones of killed writers).
            if keep_blobs.contains(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("remove blob", &path))?;
            removed.push(path);
        }
        Ok(removed)
    }
    // ANCHOR_END: prune

    fn tags_path(&self) -> PathBuf {
        self.data.join("images/tags.json")
    }

    fn read_tags(&self) -> Result<Tags, StoreError> {
        let path = self.tags_path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Io {
                operation: "parse",
                path,
                source: io::Error::other(e),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Tags::default()),
            Err(source) => Err(StoreError::Io {
                operation: "read",
                path,
                source,
            }),
        }
    }

    /// Write `tags.json` whole under a temporary name, then rename: a reader never sees
    /// half of it. Called with the lock held.
    fn write_tags(&self, tags: &Tags) -> Result<(), StoreError> {
        let path = self.tags_path();
        let dir = self.data.join("images");
        fs::create_dir_all(&dir).map_err(io_err("make", &dir))?;
        let text = serde_json::to_string_pretty(tags).map_err(|e| StoreError::Io {
            operation: "encode",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        let mut temp = tempfile::Builder::new()
            .prefix(".tags-")
            .tempfile_in(&dir)
            .map_err(io_err("write", &dir))?;
        temp.write_all(text.as_bytes())
            .map_err(io_err("write", &path))?;
        temp.persist(&path).map_err(|e| StoreError::Io {
            operation: "write",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    fn set_tag(&self, name: &str, manifest: &Digest) -> Result<(), StoreError> {
        let mut tags = self.read_tags()?;
        tags.images.insert(
            name.to_string(),
            TagEntry {
                manifest: manifest.clone(),
                added: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
        );
        self.write_tags(&tags)
    }
}
