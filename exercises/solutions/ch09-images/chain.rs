//! # Reference solution: ch09-images, name each layer of an image by its chain id

use sha2::{Digest, Sha256};

/// The chain id of every layer of a stack, from the diff ids of its layers, bottom first:
/// each `sha256:<hex>`, in the same order.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            // FIX: the bottom layer has nothing below it: its chain id is its diff id,
            // unhashed. (And no layers give no chain ids: the loop never runs.)
            None => diff_id.clone(),
            // FIX: hash the chain id below, not its diff id, so that the name covers the
            // whole stack; the two full digests, "sha256:" included, joined by one space.
            Some(below) => {
                let hash = Sha256::digest(format!("{below} {diff_id}").as_bytes());
                // FIX: write it as a digest again: "sha256:" and lowercase hex.
                format!("sha256:{hash:x}")
            }
        };
        chain.push(next);
    }
    chain
}

/// Given: where a store keeps the layer whose chain id is `chain_id`, unpacked:
/// `layers/<hex>`. `None` if it is not `sha256:` and 64 lowercase hex digits, so that no
/// id can name a path outside `layers/` (such as `sha256:../../etc`).
pub fn layer_dir(chain_id: &str) -> Option<String> {
    let hex = chain_id.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| format!("layers/{hex}"))
}
