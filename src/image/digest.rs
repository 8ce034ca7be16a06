//! Content addresses: `sha256:<hex>` digests, checked while the bytes stream past, and
//! the chain ids that name a stack of layers.
//!
//! Everything in an OCI image is named by the SHA-256 of its bytes: the manifest names
//! the config and the layer blobs by digest, an index names manifests the same way, and
//! a registry serves a blob by its digest. So a reader checks what it got by hashing it,
//! and a store keeps a blob under its digest: two images that share a layer share the
//! file. The config names each layer a second time, by the digest of its *uncompressed*
//! tar (its `diff_id`), which stays the same however the blob is compressed.
//!
//! A layer's contents depend on the layers below it (a whiteout deletes something of
//! theirs), so an unpacked layer is named by its **chain id**, which hashes the whole
//! stack up to it:
//!
//! ```text
//! ChainID(L0)      = DiffID(L0)
//! ChainID(L0..Ln)  = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))
//! ```
//!
//! See also the [OCI image spec: descriptors](https://github.com/opencontainers/image-spec/blob/main/descriptor.md)
//! and [layer chain ids](https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid).

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` digest: the only algorithm nutshell accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// A string that is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)")]
pub struct BadDigest {
    /// What was given.
    pub value: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Sha256::digest(bytes).into())
    }

    /// The digest with this 32-byte SHA-256 value.
    pub fn from_hash(hash: [u8; 32]) -> Digest {
        Digest {
            hex: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The digest whose hex part is `hex` (64 lowercase hex digits).
    pub fn from_hex(hex: &str) -> Result<Digest, BadDigest> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(BadDigest {
                value: hex.to_string(),
            })
        }
    }

    /// The 64 hex digits, as in a blob's file name `blobs/sha256/<hex>`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows an id.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(value: &str) -> Result<Digest, BadDigest> {
        let bad = || BadDigest {
            value: value.to_string(),
        };
        let hex = value.strip_prefix("sha256:").ok_or_else(bad)?;
        Digest::from_hex(hex).map_err(|_| bad())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

// ANCHOR: chain_ids
/// The chain id of every prefix of a layer stack, bottom first: the names under which
/// each layer, unpacked on top of those below it, is kept.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}
// ANCHOR_END: chain_ids

/// A running SHA-256 and byte count over everything written to it.
#[derive(Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// An empty one.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Add `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes went in.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing went in.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything that went in.
    pub fn finish(self) -> Digest {
        Digest::from_hash(self.sha.finalize().into())
    }
}

/// A reader that hashes what passes through it: wrap a download or a decompressor, and
/// ask for the digest at the end.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Hash what is read from `inner`.
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// Read `inner` to its end, so that the digest covers every byte even when the
    /// consumer stopped early (a tar reader stops at the end-of-archive blocks, and the
    /// padding after them is part of the blob), then return the digest and the length.
    pub fn drain(mut self) -> io::Result<(Digest, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.hasher.len();
        Ok((self.hasher.finish(), len, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Hash what is written to `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The digest and length of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let len = self.hasher.len();
        (self.hasher.finish(), len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_nothing_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digests_are_parsed_strictly() {
        let good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(good.parse::<Digest>().expect("valid").to_string(), good);
        for bad in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
            "sha256:",
        ] {
            let err = bad.parse::<Digest>().expect_err(bad);
            assert!(err.to_string().contains("is not a sha256 digest"), "{err}");
        }
    }

    #[test]
    fn the_chain_id_of_one_layer_is_its_diff_id_and_each_next_hashes_the_one_below() {
        let a = Digest::of(b"layer a");
        let b = Digest::of(b"layer b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn a_drained_reader_hashes_what_the_consumer_left() {
        let mut reader = HashingReader::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).expect("read");
        let (digest, len, _) = reader.drain().expect("drain");
        assert_eq!(len, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
    }
}
