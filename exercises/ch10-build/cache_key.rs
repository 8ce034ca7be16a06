//! # Exercise ch10-build: the build cache key of one step
//!
//! `nutshell build` runs a Containerfile one step at a time, and each `RUN`, `COPY` or
//! `ADD` makes a layer. Building the same file twice should not run `make` twice: a step
//! whose inputs are the same as last time reuses last time's layer. The cache finds that
//! layer by a **key**, a digest of exactly what the step's result depends on:
//!
//! - the **parent**: the chain id of the image so far (chapter 9), which names every
//!   layer below by content; `None` for a step on an empty image (`FROM scratch`);
//! - the **run config in effect**: the environment, user, working directory and shell a
//!   `RUN` starts with, as one string (an `ENV A=2` above changes what `RUN echo $A > f`
//!   writes without changing any layer, so it must change the key);
//! - the **instruction text**, as written;
//! - every **build argument in effect** (`ARG`), name and value;
//! - for `COPY` and `ADD`, the digest of the **copied files**; `None` for other steps.
//!
//! Change any one input and the key changes; so does every key after it, since each
//! step's result is the next one's parent. Keys live on disk, and nutshell's build writes
//! them with this same function, so the bytes hashed must be exactly these.
//!
//! Write `cache_key`. It is the SHA-256 of a sequence of **fields**, each a name and a
//! value. Each of the two, name first, is written as its length in bytes, as an 8-byte
//! **little-endian** `u64`, then its UTF-8 bytes. So the field ("parent", "scratch") is
//! the 8 bytes `06 00 00 00 00 00 00 00`, `parent`, the 8 bytes `07 00 … 00`, `scratch`.
//! The fields, in this order:
//!
//! 1. `("nutshell-build-cache", "1")`: what the key is, and the version of its format;
//! 2. `("parent", <the parent's chain id, "sha256:…" in full>)`, or `("parent", "scratch")`;
//! 3. `("run-config", <run_config>)`;
//! 4. `("instruction", <text>)`;
//! 5. for each build argument, in the map's (sorted) order, two fields:
//!    `("arg", <NAME>)` then `("value", <VALUE>)`; no arguments, no fields;
//! 6. `("sources", <the sources digest>)`, or `("sources", "-")` when there is none.
//!
//! The key is written as a digest: `sha256:` and the 64 hex digits of the hash, in
//! lowercase. Nothing else goes into the hash: no separators, no newlines.
//!
//! Why the lengths: without them, the argument `A` = `b=c` and the argument `A=b` = `c`
//! would both hash `Ab=c`, and two different builds would share a cached layer. With
//! them, no two different inputs can run together into the same bytes.
//!
//! The `sha2` crate is a dependency of the exercises: `sha2::Sha256::new()` makes a
//! hasher, `.update(bytes)` adds bytes, `.finalize()` gives the 32-byte hash (with
//! `use sha2::{Digest, Sha256};` in scope), and `format!("{:x}", hash)` writes it as 64
//! lowercase hex digits. `u64::to_le_bytes` gives a length's 8 bytes. `entry_file`, below,
//! is given: it is where the cache keeps the entry of the key you compute.
//!
//! Read book/src/ch10-build.md and src/build/cache.rs's module doc first. Check your
//! work with `just exercise ch10-build` (no root needed: it is only hashing).

use std::collections::BTreeMap;

/// Given: the inputs of one step, hashed into its cache key.
#[derive(Debug, Clone)]
pub struct StepInputs<'a> {
    /// The chain id of the image so far (`sha256:…`), `None` for an empty image.
    pub parent: Option<&'a str>,
    /// The environment, user, working directory and shell the step starts with.
    pub run_config: &'a str,
    /// The instruction as written.
    pub text: &'a str,
    /// The build arguments in effect, by name (a BTreeMap: always in sorted order).
    pub args: &'a BTreeMap<String, String>,
    /// For COPY and ADD: the digest of the files it copies.
    pub sources: Option<&'a str>,
}

/// The cache key of a step: `sha256:<hex>` of its inputs, each field's name and value
/// length-prefixed so that no two different inputs can run together into the same bytes.
pub fn cache_key(inputs: &StepInputs<'_>) -> String {
    // TODO: a SHA-256 hasher, and a way to add one field: for the name, then the value,
    //       the 8-byte little-endian length ((s.len() as u64).to_le_bytes()), then the bytes.
    // TODO: the fields in order: "nutshell-build-cache"/"1"; "parent"/the chain id or
    //       "scratch"; "run-config"; "instruction"; per argument "arg"/NAME then
    //       "value"/VALUE; "sources"/the digest or "-".
    // TODO: the key, written "sha256:" + 64 lowercase hex digits.
    // Every input is part of the key: naming them all here, without `..`, means none is
    // forgotten.
    let StepInputs {
        parent,
        run_config,
        text,
        args,
        sources,
    } = inputs;
    let _ = (parent, run_config, text, args, sources);
    todo!("cache_key: sha256 over the length-prefixed fields of the step's inputs")
}

/// Given: where the cache keeps the entry of the step whose key is `key`:
/// `build-cache/<hex>.json`. `None` if the key is not `sha256:` and 64 lowercase hex
/// digits, so that no key can name a path outside `build-cache/`.
pub fn entry_file(key: &str) -> Option<String> {
    let hex = key.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| format!("build-cache/{hex}.json"))
}
