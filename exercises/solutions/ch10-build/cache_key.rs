//! # Reference solution: ch10-build, the build cache key of one step

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

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
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &str| {
        // FIX: the name and the value each get their own length, 8 bytes little-endian,
        // so that where one ends and the next begins is in the bytes: ("A", "b=c") and
        // ("A=b", "c") hash differently.
        for part in [name, value] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    };
    // FIX: a first field that says what this hash is, and which version of its format,
    // so that a key of another kind or an older format can never be taken for this one.
    field("nutshell-build-cache", "1");
    // FIX: the chain id names the whole image below by content; an empty image is
    // "scratch", which no chain id can be.
    field("parent", inputs.parent.unwrap_or("scratch"));
    // FIX: the run config too: `ENV A=2` changes what a RUN does, not any layer.
    field("run-config", inputs.run_config);
    field("instruction", inputs.text);
    // FIX: every argument, name and value as fields of their own. A BTreeMap iterates
    // in sorted order, so the order the arguments were given in cannot change the key.
    for (name, value) in inputs.args {
        field("arg", name);
        field("value", value);
    }
    // FIX: "-" when the step copies nothing, so that the field is always there.
    field("sources", inputs.sources.unwrap_or("-"));
    // FIX: written as a digest: "sha256:" and lowercase hex.
    format!("sha256:{:x}", hasher.finalize())
}

/// Given: where the cache keeps the entry of the step whose key is `key`:
/// `build-cache/<hex>.json`. `None` if the key is not `sha256:` and 64 lowercase hex
/// digits, so that no key can name a path outside `build-cache/`.
pub fn entry_file(key: &str) -> Option<String> {
    let hex = key.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| format!("build-cache/{hex}.json"))
}
