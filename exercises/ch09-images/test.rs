//! Tests for exercise ch09-images. The statement is at the top of `chain.rs`.
//!
//! Pure hashing: no root, no image. The layers are three made-up diff ids, the SHA-256 of
//! the strings "layer a", "layer b" and "layer c". Each expected chain id is computed
//! twice: here, by hashing the string the spec defines, and once by hand with
//! `printf '%s' "sha256:... sha256:..." | sha256sum`, written out as a constant.

#[cfg_attr(not(feature = "solution"), path = "chain.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch09-images/chain.rs")]
mod chain;

use chain::{chain_ids, layer_dir};
use sha2::{Digest, Sha256};

/// The diff id of the bottom layer: `printf '%s' 'layer a' | sha256sum`.
const A: &str = "sha256:8a74c5338f1ca6b4b751802e195c85cd48c6d54e5f38d19a4e5ea902baa60af7";
/// The diff id of the layer above it: `printf '%s' 'layer b' | sha256sum`.
const B: &str = "sha256:4660645c73f48eb8f67e661ea54842f9fabb1ae261238e0538d1b952b00863f9";
/// The diff id of the top layer: `printf '%s' 'layer c' | sha256sum`.
const C: &str = "sha256:63faee8dfdaa1586f6f474a3e8b27d8aeb7ebde13392b7af762889d51793799a";

/// The chain id of A then B: `printf '%s' "$A $B" | sha256sum`.
const CHAIN_AB: &str = "sha256:96097a2f877d2a7d46e93242c3e704909aa0d4486b8e4a03c8d91739d51f35c8";
/// The chain id of A, B then C: `printf '%s' "$CHAIN_AB $C" | sha256sum`.
const CHAIN_ABC: &str = "sha256:eb60e3bb7bee074fb571fcbd9d3494f1ab5477da651e899915c6ee6bfb985b4f";
/// The chain id of B then A: `printf '%s' "$B $A" | sha256sum`.
const CHAIN_BA: &str = "sha256:749f5136d5b36457a08ad976a4abd8ad097167b1479eac09939d7c22b9a66eb3";

/// `sha256:` and the hex of the SHA-256 of `text`, computed here, apart from the
/// learner's code.
fn sha256_of(text: &str) -> String {
    let hex: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The chain ids of the stack `diff_ids`, bottom first, as `chain_ids` computes them.
fn chain_of(diff_ids: &[&str]) -> Vec<String> {
    let diff_ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    chain_ids(&diff_ids)
}

/// Fail unless every id in `chain` is written as a digest: `sha256:` and 64 lowercase
/// hex digits.
fn assert_digests(chain: &[String]) {
    for id in chain {
        assert!(
            layer_dir(id).is_some(),
            "{id:?} is not written as a digest: \"sha256:\" and the 64 hex digits of the \
             hash, in lowercase"
        );
    }
}

#[test]
fn one_layers_chain_id_is_its_diff_id() {
    assert_eq!(
        chain_of(&[A]),
        [A],
        "a stack of one layer has one chain id, the layer's diff id itself: the bottom \
         layer has nothing below it, so it is not hashed"
    );
}

#[test]
fn the_next_chain_id_hashes_the_one_below_a_space_and_the_diff_id() {
    let chain = chain_of(&[A, B]);
    assert_eq!(chain.len(), 2, "two layers, two chain ids: got {chain:?}");
    assert_digests(&chain);
    assert_eq!(
        chain,
        [A.to_string(), sha256_of(&format!("{A} {B}"))],
        "the chain id of the second layer is the SHA-256 of the string \"{A} {B}\": the \
         full chain id below, \"sha256:\" included, one space, the full diff id, nothing \
         else (no newline)"
    );
    assert_eq!(
        chain[1], CHAIN_AB,
        "the second chain id is not the one `printf '%s' \"{A} {B}\" | sha256sum` gives"
    );
}

#[test]
fn each_chain_id_hashes_the_chain_id_below_not_the_diff_id_below() {
    let chain = chain_of(&[A, B, C]);
    assert_eq!(
        chain.len(),
        3,
        "three layers, three chain ids: got {chain:?}"
    );
    assert_digests(&chain);
    let below = sha256_of(&format!("{A} {B}"));
    assert_eq!(
        chain,
        [
            A.to_string(),
            below.clone(),
            sha256_of(&format!("{below} {C}"))
        ],
        "the third chain id is the SHA-256 of \"<the second CHAIN id> {C}\", not of \
         \"{B} {C}\": each one hashes the chain id just computed, so that it names the \
         whole stack below"
    );
    assert_eq!(
        chain,
        [A, CHAIN_AB, CHAIN_ABC],
        "these are the chain ids sha256sum gives for the three layers"
    );
}

#[test]
fn no_layers_give_no_chain_ids() {
    assert_eq!(
        chain_of(&[]),
        Vec::<String>::new(),
        "an empty stack has no chain ids (and must not panic)"
    );
}

#[test]
fn the_order_of_the_layers_matters() {
    let (ab, ba) = (chain_of(&[A, B]), chain_of(&[B, A]));
    assert_eq!(
        ba,
        [B, CHAIN_BA],
        "with B at the bottom, B's diff id is the first chain id, and the second is the \
         SHA-256 of \"{B} {A}\""
    );
    assert_ne!(
        ab.last(),
        ba.last(),
        "the same two layers stacked the other way round are another filesystem: the top \
         chain ids must differ"
    );
}

#[test]
fn the_same_layer_on_another_base_gets_another_chain_id() {
    let (on_a, on_b) = (chain_of(&[A, C]), chain_of(&[B, C]));
    assert_eq!(on_a.len(), 2, "two layers, two chain ids: got {on_a:?}");
    assert_eq!(on_b.len(), 2, "two layers, two chain ids: got {on_b:?}");
    assert_ne!(
        on_a[1], on_b[1],
        "layer C on A and layer C on B have the same diff id but are not the same \
         unpacked layer: their chain ids must differ (each next chain id hashes the chain id \
         below it with its own diff id)"
    );
    assert_eq!(
        (on_a[1].as_str(), on_b[1].as_str()),
        (
            sha256_of(&format!("{A} {C}")).as_str(),
            sha256_of(&format!("{B} {C}")).as_str()
        ),
        "the chain id of C on a base of one layer is the SHA-256 of \"<base> {C}\""
    );
}

#[test]
fn a_store_keeps_each_unpacked_layer_under_its_chain_id() {
    let dirs: Vec<Option<String>> = chain_of(&[A, B, C])
        .iter()
        .map(|id| layer_dir(id))
        .collect();
    let expected = [A, CHAIN_AB, CHAIN_ABC]
        .map(|id| Some(format!("layers/{}", id.trim_start_matches("sha256:"))));
    assert_eq!(
        dirs, expected,
        "the three layers unpack into layers/<hex of each chain id>, bottom first"
    );
    assert_eq!(
        layer_dir("sha256:../../etc"),
        None,
        "layer_dir refuses an id that is not a digest (this part is given: do not change it)"
    );
}
