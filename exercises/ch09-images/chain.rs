//! # Exercise ch09-images: name each layer of an image by its chain id
//!
//! An OCI image is a stack of layers, each a tar of the files it adds, changes or
//! deletes. The image's config names each layer by its **diff id**: the SHA-256 of its
//! uncompressed tar, written `sha256:<64 lowercase hex digits>`. A runtime unpacks each
//! layer once and keeps the result, so that two images that share it share the directory.
//!
//! But the diff id is not a good name for an unpacked layer: what the layer means depends
//! on the layers below it. A whiteout `.wh.motd` deletes the `motd` of a layer below; a
//! file the layer changes replaces one below it. The same tar on another base is another
//! filesystem. So the unpacked layer is named by its **chain id**, a digest of the whole
//! stack up to and including it, as the OCI image spec defines:
//!
//! ```text
//! ChainID(L0)     = DiffID(L0)
//! ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))
//! ```
//!
//! Write `chain_ids`: given the diff ids of a stack, bottom layer first (the order of
//! `rootfs.diff_ids` in the config), return the chain id of every layer, in the same
//! order. That is:
//!
//! - the bottom layer's chain id is its diff id itself, not a hash of it;
//! - each next one is the SHA-256 of one string: the chain id of the layer below it, one
//!   space, and its own diff id, both in full, `sha256:` included, as in
//!   `"sha256:8a74… sha256:4660…"` (UTF-8 bytes; no newline at the end);
//! - a digest is written `sha256:` and the 64 hex digits of the hash, in lowercase;
//! - no layers, no chain ids.
//!
//! You can check one by hand: `printf '%s' "sha256:… sha256:…" | sha256sum`.
//!
//! The `sha2` crate is a dependency of the exercises: `sha2::Sha256::digest(bytes)` is
//! the 32-byte hash (with `use sha2::Digest;` in scope), and `format!("{:x}", hash)`
//! writes it as 64 lowercase hex digits. `layer_dir`, below, is given: it is where a
//! store keeps each unpacked layer, by the chain id you compute.
//!
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid>.
//! Read book/src/ch09-images.md first. Check your work with `just exercise ch09-images`
//! (no root needed: it is only hashing).

/// The chain id of every layer of a stack, from the diff ids of its layers, bottom first:
/// each `sha256:<hex>`, in the same order.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    // TODO: the first chain id is diff_ids[0] itself (no hashing); none for no layers.
    // TODO: each next one: the SHA-256 of format!("{below} {diff_id}"), where `below` is
    //       the chain id just computed, written "sha256:" + 64 lowercase hex digits.
    let _ = diff_ids;
    todo!("chain_ids: the diff id, then sha256(chain id below + \" \" + diff id)")
}

/// Given: where a store keeps the layer whose chain id is `chain_id`, unpacked:
/// `layers/<hex>`. `None` if it is not `sha256:` and 64 lowercase hex digits, so that no
/// id can name a path outside `layers/` (such as `sha256:../../etc`).
pub fn layer_dir(chain_id: &str) -> Option<String> {
    let hex = chain_id.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| format!("layers/{hex}"))
}
