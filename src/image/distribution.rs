//! `pull` and `push`: the store and the registry client together.
//!
//! A pull resolves the reference to a manifest (through an index, for this host's
//! platform), then hands the store a [`BlobSource`] that downloads each blob the store
//! lacks: the store hashes it on the way to disk, as it does for an archive, so a
//! registry is trusted no more than a file. A push is the reverse: each blob the
//! registry lacks (a HEAD first) is uploaded, the config and layers before the manifest
//! that names them, as the distribution spec requires.
//!
//! See also the [OCI distribution spec](https://github.com/opencontainers/distribution-spec/blob/main/spec.md).

use std::fs::File;
use std::io::{self, BufReader, Write};

use super::digest::Digest;
use super::oci::{self, Descriptor, Index, Platform, media};
use super::reference::{BadReference, Reference};
use super::registry::{Client, RegistryError, RegistryOptions};
use super::store::{BlobSource, OciStore, Progress, StoreError, StoredImage, Unpacker};

/// Errors of pull and push.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The reference is malformed.
    #[error(transparent)]
    Reference(#[from] BadReference),
    /// The registry refused or could not be reached.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry's documents are not what was asked for.
    #[error("pull {reference}: {reason}")]
    Bad {
        /// The reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
}

/// Blobs downloaded from a registry as the store asks for them.
struct RegistryBlobs<'a> {
    client: &'a mut Client,
    repository: String,
}

impl BlobSource for RegistryBlobs<'_> {
    fn fetch(&mut self, descriptor: &Descriptor, out: &mut dyn Write) -> io::Result<()> {
        self.client
            .get_blob(&self.repository, &descriptor.digest, out, &mut |_| {})
            .map(|_| ())
            .map_err(io::Error::other)
    }
}

// ANCHOR: pull
/// Pull `reference` into `store`, named by its canonical form.
pub fn pull(
    store: &OciStore,
    reference: &str,
    options: &RegistryOptions,
    unpacker: &dyn Unpacker,
    progress: &mut dyn Progress,
) -> Result<StoredImage, DistributionError> {
    let parsed: Reference = reference.parse()?;
    let mut client = Client::new(&parsed.registry, options)?;
    client.ping()?;
    let mut fetched = client.get_manifest(&parsed.repository, &parsed.manifest_reference())?;
    if media::is_index(&fetched.media_type) {
        let index: Index =
            serde_json::from_slice(&fetched.bytes).map_err(|e| DistributionError::Bad {
                reference: parsed.to_string(),
                reason: format!("its index does not parse: {e}"),
            })?;
        let platform = Platform::host();
        let chosen =
            oci::select_manifest(&index, &platform).ok_or_else(|| DistributionError::Bad {
                reference: parsed.to_string(),
                reason: format!(
                    "no manifest for {}/{} in its index",
                    platform.os, platform.architecture
                ),
            })?;
        fetched = client.get_manifest(&parsed.repository, &chosen.digest.to_string())?;
    }
    if !media::is_manifest(&fetched.media_type) {
        return Err(DistributionError::Bad {
            reference: parsed.to_string(),
            reason: format!("media type {} is not an image manifest", fetched.media_type),
        });
    }
    let mut blobs = RegistryBlobs {
        client: &mut client,
        repository: parsed.repository.clone(),
    };
    let name = match (&parsed.tag, &parsed.digest) {
        (Some(tag), _) => format!("{}/{}:{tag}", parsed.registry, parsed.repository),
        (None, Some(digest)) => format!(
            "{}/{}:{}",
            parsed.registry,
            parsed.repository,
            &digest.hex()[..12]
        ),
        (None, None) => format!("{}/{}:latest", parsed.registry, parsed.repository),
    };
    Ok(store.add_image(&name, &fetched.bytes, &mut blobs, unpacker, progress)?)
}
// ANCHOR_END: pull

// ANCHOR: push
/// Push the image `name` from `store` to `reference`. Returns the manifest's digest.
pub fn push(
    store: &OciStore,
    name: &str,
    reference: &str,
    options: &RegistryOptions,
    progress: &mut dyn Progress,
) -> Result<Digest, DistributionError> {
    let image = store.get(name)?;
    let parsed: Reference = reference.parse()?;
    let mut client = Client::new(&parsed.registry, options)?;
    client.ping()?;
    let mut blobs: Vec<&Descriptor> = image.manifest.layers.iter().collect();
    blobs.push(&image.manifest.config);
    for blob in blobs {
        progress.begin(&format!("push {}", blob.digest.short()), blob.size);
        if client.has_blob(&parsed.repository, &blob.digest)? {
            progress.end("already in the registry");
            continue;
        }
        let path = store.blob_path(&blob.digest);
        let file = File::open(&path).map_err(|source| StoreError::Io {
            operation: "open blob",
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut sent = 0;
        client.put_blob(
            &parsed.repository,
            &blob.digest,
            blob.size,
            &mut reader,
            &mut |so_far| {
                progress.advance(so_far.saturating_sub(sent));
                sent = so_far;
            },
        )?;
        progress.end("pushed");
    }
    let manifest = store.read_document(&image.manifest_digest)?;
    let media_type = image
        .manifest
        .media_type
        .as_deref()
        .unwrap_or(media::OCI_MANIFEST);
    let tag = parsed.tag.clone().unwrap_or_else(|| "latest".to_string());
    Ok(client.put_manifest(&parsed.repository, &tag, media_type, &manifest)?)
}
// ANCHOR_END: push
