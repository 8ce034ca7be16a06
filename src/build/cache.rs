//! The build cache: a step whose inputs are the same as last time reuses last time's
//! layer instead of running again.
//!
//! A step's result depends on what it starts from, what it says, and what it reads. The
//! key is a digest of exactly those inputs:
//!
//! - the **parent**: the chain id of the image so far (chapter 9), which names every
//!   layer below by content, or `scratch`;
//! - the **run config in effect**: the environment, user, working directory and shell a
//!   `RUN` starts with (an `ENV A=2` above changes what `RUN echo $A > f` writes, without
//!   changing any layer);
//! - the **instruction text**, as written, continuations joined;
//! - the **build arguments in effect** (`ARG` values, from `--build-arg` or defaults);
//! - for `COPY` and `ADD`, a digest of the **copied files**: names, types, modes, sizes,
//!   contents (not mtimes: a fresh checkout must hit the cache), and for `--from` the
//!   other stage's chain id.
//!
//! Change any input and the key changes, and so does every key after it, since each
//! step's result is the next one's parent. So editing one copied file rebuilds from that
//! `COPY` on, and not before. Entries live in `<data>/build-cache/<key>.json`, each
//! naming the layer blob it made; an entry whose blob the store no longer has (pruned)
//! is a miss.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::digest::{Digest, Hasher};
use crate::image::oci::Descriptor;

/// The inputs of one step, hashed into its cache key.
#[derive(Debug, Clone, Serialize)]
pub struct StepInputs<'a> {
    /// The chain id of the image so far, `None` for an empty image.
    pub parent: Option<&'a Digest>,
    /// The environment, user, working directory and shell the step starts with.
    pub run_config: &'a str,
    /// The instruction as written.
    pub text: &'a str,
    /// The build arguments in effect, by name.
    pub args: &'a BTreeMap<String, String>,
    /// For COPY and ADD: the digest of the files it copies.
    pub sources: Option<&'a str>,
}

// ANCHOR: cache_key
/// The cache key of a step: a sha256 over its inputs, each one length-prefixed so that
/// no two different inputs can run together into the same bytes.
pub fn cache_key(inputs: &StepInputs<'_>) -> Digest {
    let mut hasher = Hasher::new();
    let mut field = |name: &str, value: &str| {
        for part in [name, value] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    };
    field("nutshell-build-cache", "1");
    field(
        "parent",
        &inputs
            .parent
            .map_or("scratch".to_string(), Digest::to_string),
    );
    field("run-config", inputs.run_config);
    field("instruction", inputs.text);
    for (name, value) in inputs.args {
        field("arg", name);
        field("value", value);
    }
    field("sources", inputs.sources.unwrap_or("-"));
    hasher.finish()
}
// ANCHOR_END: cache_key

/// What a cached step made: its layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedLayer {
    /// The layer blob.
    pub layer: Descriptor,
    /// Its uncompressed digest.
    pub diff_id: Digest,
}

/// The cache's directory.
#[derive(Debug, Clone)]
pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    /// The cache of the store at `data`: `<data>/build-cache`.
    pub fn new(data: &Path) -> BuildCache {
        BuildCache {
            dir: data.join("build-cache"),
        }
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The entry for `key`, if there is one whose blob `has_blob` says still exists. A
    /// damaged entry is a miss.
    pub fn get(&self, key: &Digest, has_blob: impl Fn(&Digest) -> bool) -> Option<CachedLayer> {
        let bytes = fs::read(self.path(key)).ok()?;
        let entry: CachedLayer = serde_json::from_slice(&bytes).ok()?;
        has_blob(&entry.layer.digest).then_some(entry)
    }

    /// Record that `key` made `entry` (written under a temporary name, then renamed, so
    /// a reader never sees half an entry).
    pub fn put(&self, key: &Digest, entry: &CachedLayer) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        fs::write(
            &partial,
            serde_json::to_vec(entry).map_err(io::Error::other)?,
        )?;
        fs::rename(&partial, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        parent: Option<&Digest>,
        text: &str,
        args: &[(&str, &str)],
        sources: Option<&str>,
    ) -> Digest {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cache_key(&StepInputs {
            parent,
            run_config: "env=PATH=/bin",
            text,
            args: &args,
            sources,
        })
    }

    #[test]
    fn every_input_changes_the_key() {
        let parent = Digest::of(b"layer");
        let base = key(Some(&parent), "RUN make", &[("V", "1")], None);
        assert_eq!(base, key(Some(&parent), "RUN make", &[("V", "1")], None));
        assert_ne!(base, key(None, "RUN make", &[("V", "1")], None));
        assert_ne!(
            base,
            key(Some(&parent), "RUN make test", &[("V", "1")], None)
        );
        assert_ne!(base, key(Some(&parent), "RUN make", &[("V", "2")], None));
        assert_ne!(base, key(Some(&parent), "RUN make", &[], None));
        assert_ne!(
            base,
            key(Some(&parent), "RUN make", &[("V", "1")], Some("abc"))
        );
    }

    #[test]
    fn fields_cannot_run_together() {
        let a = key(None, "RUN a", &[("A", "b=c")], None);
        let b = key(None, "RUN a", &[("A=b", "c")], None);
        assert_ne!(a, b);
    }

    #[test]
    fn an_entry_without_its_blob_is_a_miss() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = BuildCache::new(dir.path());
        let key = Digest::of(b"key");
        let entry = CachedLayer {
            layer: Descriptor {
                media_type: crate::image::oci::media::OCI_LAYER.to_string(),
                digest: Digest::of(b"blob"),
                size: 4,
                annotations: Default::default(),
                platform: None,
            },
            diff_id: Digest::of(b"blob"),
        };
        assert!(cache.get(&key, |_| true).is_none());
        cache.put(&key, &entry).expect("put");
        assert!(cache.get(&key, |_| true).is_some());
        assert!(cache.get(&key, |_| false).is_none());
        fs::write(
            dir.path()
                .join("build-cache")
                .join(format!("{}.json", key.hex())),
            "{",
        )
        .expect("write");
        assert!(
            cache.get(&key, |_| true).is_none(),
            "a damaged entry is a miss"
        );
    }
}
