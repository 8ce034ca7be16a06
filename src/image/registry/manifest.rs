//! Manifests and indexes: fetched with the `Accept` types nutshell understands, checked
//! against their digest, and stored under a tag.

use std::io::Read;

use serde::Deserialize;
use ureq::http::{Method, StatusCode, header};

use super::request::{Call, Payload, check_names, header_value, pull_scope, push_scope};
use super::{Client, MANIFEST_MEDIA_TYPES, Op, RegistryError};
use crate::image::digest::Digest;

/// The largest manifest accepted: registries refuse larger ones (distribution's limit is
/// 4 MiB), and a real one is a few kilobytes.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its bytes, exactly: the digest is theirs, so they are kept as they came.
    pub bytes: Vec<u8>,
    /// Its media type (`Content-Type`, else the JSON's `mediaType`): one of
    /// [`MANIFEST_MEDIA_TYPES`] from any registry that honours `Accept`.
    pub media_type: String,
    /// The SHA-256 of `bytes`, checked against the digest asked for, if one was.
    pub digest: Digest,
}

impl Client {
    /// `GET /v2/REPOSITORY/manifests/REFERENCE` (a tag or a digest), accepting OCI and
    /// docker schema 2 manifests and indexes. A digest asked for is checked; a tag's is
    /// computed, and checked against the registry's `Docker-Content-Digest`.
    pub fn get_manifest(
        &mut self,
        repository: &str,
        reference: &str,
    ) -> Result<Fetched, RegistryError> {
        let op = Op::new(
            "pull manifest",
            manifest_target(&self.registry, repository, reference),
        );
        let pinned = check_names(&op, repository, reference)?;
        let call = Call::new(
            Method::GET,
            format!("/v2/{repository}/manifests/{reference}"),
            Some(pull_scope(repository)),
        )
        .header("accept", MANIFEST_MEDIA_TYPES.join(", "));
        let mut response = self.send(&op, call)?;
        if response.status() != StatusCode::OK {
            return Err(self.status_error(&op, response));
        }
        let content_type = header_value(&response, header::CONTENT_TYPE)
            .map(|value| value.split(';').next().unwrap_or("").trim().to_string())
            .filter(|value| !value.is_empty() && value != "application/json");
        let announced = header_value(&response, "docker-content-digest");
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| op.receive(source))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::TooLarge {
                operation: op.name,
                target: op.target,
                limit: MAX_MANIFEST,
            });
        }
        let digest = Digest::of(&bytes);
        if pinned.as_ref().is_some_and(|pinned| *pinned != digest) {
            return Err(op.mismatch(digest));
        }
        check_announced(&op, announced.as_deref(), &digest)?;
        let media_type = match content_type {
            Some(media_type) => media_type,
            None => json_media_type(&bytes).ok_or_else(|| {
                op.protocol("the manifest has neither a Content-Type nor a mediaType".into())
            })?,
        };
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// `PUT /v2/REPOSITORY/manifests/REFERENCE`: store `bytes` (of `media_type`) under a
    /// tag or its digest. The blobs it names must be pushed first. Returns its digest.
    pub fn put_manifest(
        &mut self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let op = Op::new(
            "push manifest",
            manifest_target(&self.registry, repository, reference),
        );
        let pinned = check_names(&op, repository, reference)?;
        let digest = Digest::of(bytes);
        if pinned.is_some_and(|pinned| pinned != digest) {
            return Err(op.mismatch(digest));
        }
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::TooLarge {
                operation: op.name,
                target: op.target,
                limit: MAX_MANIFEST,
            });
        }
        let call = Call::new(
            Method::PUT,
            format!("/v2/{repository}/manifests/{reference}"),
            Some(push_scope(repository)),
        )
        .header("content-type", media_type)
        .payload(Payload::Bytes(bytes));
        let response = self.send(&op, call)?;
        if !response.status().is_success() {
            return Err(self.status_error(&op, response));
        }
        check_announced(
            &op,
            header_value(&response, "docker-content-digest").as_deref(),
            &digest,
        )?;
        Ok(digest)
    }
}

/// `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@DIGEST`, for messages.
fn manifest_target(registry: &str, repository: &str, reference: &str) -> String {
    let separator = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    format!("{registry}/{repository}{separator}{reference}")
}

/// A sha256 `Docker-Content-Digest` must be the digest computed; other algorithms are
/// not ours to check.
fn check_announced(op: &Op, announced: Option<&str>, digest: &Digest) -> Result<(), RegistryError> {
    let Some(announced) = announced.filter(|a| a.starts_with("sha256:")) else {
        return Ok(());
    };
    match announced.parse::<Digest>() {
        Ok(announced) if announced == *digest => Ok(()),
        Ok(announced) => Err(op.protocol(format!(
            "the registry names it {announced}, but its bytes hash to {digest}"
        ))),
        Err(e) => Err(op.protocol(format!("its Docker-Content-Digest header: {e}"))),
    }
}

/// The `mediaType` field of a manifest's JSON.
fn json_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Typed>(bytes).ok()?.media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_whose_announced_digest_differs_is_refused() {
        let op = Op {
            name: "pull manifest",
            target: "r/x:v1".to_string(),
        };
        let digest = Digest::of(b"{}");
        assert!(check_announced(&op, Some(&digest.to_string()), &digest).is_ok());
        assert!(check_announced(&op, None, &digest).is_ok());
        assert!(check_announced(&op, Some("sha512:abc"), &digest).is_ok());
        let other = Digest::of(b"[]");
        let err = check_announced(&op, Some(&other.to_string()), &digest).expect_err("differs");
        assert!(
            err.to_string().contains(&format!("names it {other}")),
            "{err}"
        );
    }
}
