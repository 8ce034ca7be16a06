//! Tests for exercise ch10-build. The statement is at the top of `cache_key.rs`.
//!
//! Pure hashing: no root, no build. The steps are made up: a `RUN make` on an empty
//! image, and a `COPY . /src` on chapter 9's layer "layer a" with two build arguments.
//! Each expected key is computed twice: here, by hashing the fields the statement lists,
//! and once by nutshell's own `build::cache::cache_key`, written out as a constant. When
//! a key is wrong, the failure says which of the usual mistakes gives the key you got.

#[cfg_attr(not(feature = "solution"), path = "cache_key.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch10-build/cache_key.rs")]
mod cache_key;

use std::collections::{BTreeMap, HashSet};

use cache_key::{StepInputs, cache_key, entry_file};
use sha2::{Digest, Sha256};

/// A parent: chapter 9's diff id of "layer a", which is also the chain id of an image of
/// that one layer.
const LAYER_A: &str = "sha256:8a74c5338f1ca6b4b751802e195c85cd48c6d54e5f38d19a4e5ea902baa60af7";
/// Another parent: chapter 9's chain id of "layer a" then "layer b".
const LAYER_AB: &str = "sha256:96097a2f877d2a7d46e93242c3e704909aa0d4486b8e4a03c8d91739d51f35c8";
/// The run config of both steps, as nutshell's build writes it.
const RUN_CONFIG: &str = r#"{"env":["PATH=/usr/local/bin:/usr/bin:/bin"],"shell":["/bin/sh","-c"],"user":null,"workdir":null}"#;
/// The run config after an `ENV A=2`.
const RUN_CONFIG_AFTER_ENV: &str = r#"{"env":["PATH=/usr/local/bin:/usr/bin:/bin","A=2"],"shell":["/bin/sh","-c"],"user":null,"workdir":null}"#;
/// The digest of the files the COPY copies: `printf '%s' context | sha256sum`.
const SOURCES: &str = "sha256:ea7792a26f405e2ae9c6f49ca93bbe6076ceac0a1fc53d83426c7d7f2d9377e4";

/// The key of `RUN make` on scratch, no arguments, as nutshell computes it.
const KEY_RUN: &str = "sha256:f175eac34cb7d6a1fec69927b077140fa47f68b006e0bb08767adf9c27685d43";
/// The key of `COPY . /src` on LAYER_A with VERSION=1.2 and DEBUG=0, as nutshell
/// computes it.
const KEY_COPY: &str = "sha256:ecd59fb5df5cc522bb51b581845f6ca8b2c52cf2ad85666dab4978c1296e1335";

/// One step's inputs, owned, so that a test can change one of them.
#[derive(Debug, Clone)]
struct Step {
    parent: Option<&'static str>,
    run_config: &'static str,
    text: &'static str,
    /// In the order given, which need not be sorted.
    args: Vec<(&'static str, &'static str)>,
    sources: Option<&'static str>,
}

/// `RUN make` on an empty image.
fn run_on_scratch() -> Step {
    Step {
        parent: None,
        run_config: RUN_CONFIG,
        text: "RUN make",
        args: vec![],
        sources: None,
    }
}

/// `COPY . /src` on LAYER_A, with two build arguments, given unsorted.
fn copy_on_layer_a() -> Step {
    Step {
        parent: Some(LAYER_A),
        run_config: RUN_CONFIG,
        text: "COPY . /src",
        args: vec![("VERSION", "1.2"), ("DEBUG", "0")],
        sources: Some(SOURCES),
    }
}

impl Step {
    /// The build arguments as the build hands them over: a sorted map.
    fn arg_map(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// Its key, as the learner's `cache_key` computes it.
    fn key(&self) -> String {
        let args = self.arg_map();
        cache_key(&StepInputs {
            parent: self.parent,
            run_config: self.run_config,
            text: self.text,
            args: &args,
            sources: self.sources,
        })
    }

    /// The fields the statement lists, in its order, computed here apart from the
    /// learner's code.
    fn fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            field("nutshell-build-cache", "1"),
            field("parent", self.parent.unwrap_or("scratch")),
            field("run-config", self.run_config),
            field("instruction", self.text),
        ];
        for (name, value) in self.arg_map() {
            fields.push(field("arg", &name));
            fields.push(field("value", &value));
        }
        fields.push(field("sources", self.sources.unwrap_or("-")));
        fields
    }
}

fn field(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// `sha256:` and the hex of the SHA-256 of `fields`, each name and each value written as
/// `length(its byte count)` and then its bytes.
fn hash_fields(fields: &[(String, String)], length: impl Fn(usize) -> Vec<u8>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in fields {
        for part in [name, value] {
            hasher.update(length(part.len()));
            hasher.update(part.as_bytes());
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The framing the statement asks for: 8 bytes, little-endian.
fn le_u64(n: usize) -> Vec<u8> {
    (n as u64).to_le_bytes().to_vec()
}

/// The key the statement defines for `step`, computed here.
fn expected_key(step: &Step) -> String {
    hash_fields(&step.fields(), le_u64)
}

/// Which of the usual mistakes gives `got` for `step`, as a sentence for a failure.
fn what_went_wrong(step: &Step, got: &str) -> String {
    let right = expected_key(step);
    if got == right.trim_start_matches("sha256:") {
        return "your key is the right hash without \"sha256:\" in front".to_string();
    }
    if got == right.to_uppercase() || got == format!("sha256:{}", right[7..].to_uppercase()) {
        return "your key is the right hash in uppercase hex: write it with {:x}".to_string();
    }
    let fields = step.fields();
    let without = |name: &str| -> Vec<(String, String)> {
        fields.iter().filter(|(n, _)| n != name).cloned().collect()
    };
    let replaced = |name: &str, value: &str| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| {
                if n == name {
                    field(n, value)
                } else {
                    field(n, v)
                }
            })
            .collect()
    };
    let mut joined_args = without("arg");
    joined_args.retain(|(n, _)| n != "value");
    let mut bare_args = joined_args.clone();
    // Before the last field, sources, in the map's order.
    let sources_at = joined_args.len() - 1;
    for (i, (name, value)) in step.arg_map().into_iter().enumerate() {
        joined_args.insert(sources_at + i, field("arg", &format!("{name}={value}")));
        bare_args.insert(sources_at + i, field(&name, &value));
    }
    let candidates: Vec<(&str, String)> = vec![
        (
            "the lengths are big-endian: use to_le_bytes, not to_be_bytes",
            hash_fields(&fields, |n| (n as u64).to_be_bytes().to_vec()),
        ),
        (
            "each length is 4 bytes (a u32): make it a u64, 8 bytes",
            hash_fields(&fields, |n| (n as u32).to_le_bytes().to_vec()),
        ),
        (
            "there are no lengths: write each name and each value's length before its bytes",
            hash_fields(&fields, |_| Vec::new()),
        ),
        (
            "the first field, (\"nutshell-build-cache\", \"1\"), is missing",
            hash_fields(&without("nutshell-build-cache"), le_u64),
        ),
        (
            "an empty image's parent is \"\": it is \"scratch\"",
            hash_fields(&replaced("parent", ""), le_u64),
        ),
        (
            "the run config is missing: it is the field (\"run-config\", run_config)",
            hash_fields(&without("run-config"), le_u64),
        ),
        (
            "no sources is \"\": it is \"-\"",
            hash_fields(&replaced("sources", ""), le_u64),
        ),
        (
            "the sources field is missing: with no sources it is (\"sources\", \"-\")",
            hash_fields(&without("sources"), le_u64),
        ),
        (
            "each argument is one field (\"arg\", \"NAME=VALUE\"): it is two, (\"arg\", NAME) \
             then (\"value\", VALUE)",
            hash_fields(&joined_args, le_u64),
        ),
        (
            "each argument is the field (NAME, VALUE): it is two, (\"arg\", NAME) then \
             (\"value\", VALUE)",
            hash_fields(&bare_args, le_u64),
        ),
    ];
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|(_, key)| *key != right && seen.insert(key.clone()))
        .find(|(_, key)| key == got)
        .map(|(mistake, _)| format!("your key is the one you get if {mistake}"))
        .unwrap_or_else(|| {
            "it is none of the usual mistakes: compare your fields, one by one and in order, \
             with the list in the statement (each name and each value: its length as 8 \
             bytes, little-endian, then its bytes)"
                .to_string()
        })
}

/// Fail unless `step`'s key is the one the statement defines and nutshell computes.
fn assert_key(step: &Step, nutshell: &str) {
    let got = step.key();
    let right = expected_key(step);
    assert_eq!(
        got,
        right,
        "the key of {step:?} is not the SHA-256 of the fields the statement lists: {}",
        what_went_wrong(step, &got)
    );
    assert_eq!(
        got, nutshell,
        "the key of {step:?} is not the one nutshell's build::cache::cache_key gives"
    );
}

#[test]
fn a_step_on_scratch_hashes_the_fields_the_statement_lists() {
    assert_key(&run_on_scratch(), KEY_RUN);
}

#[test]
fn a_copy_steps_key_covers_its_parent_its_arguments_and_its_sources() {
    assert_key(&copy_on_layer_a(), KEY_COPY);
}

#[test]
fn the_same_inputs_give_the_same_key() {
    let step = copy_on_layer_a();
    let (first, second) = (step.key(), step.key());
    assert_eq!(
        first, second,
        "the same step twice must get the same key, or the cache never hits"
    );
    assert!(
        entry_file(&first).is_some(),
        "{first:?} is not written as a digest: \"sha256:\" and the 64 hex digits of the \
         hash, in lowercase"
    );
}

#[test]
fn changing_any_one_input_changes_the_key() {
    let base = copy_on_layer_a();
    let changed = |what: &'static str, change: fn(&mut Step)| {
        let mut step = base.clone();
        change(&mut step);
        (what, step)
    };
    let steps = [
        ("nothing", base.clone()),
        changed("the parent, another image below", |s| {
            s.parent = Some(LAYER_AB)
        }),
        changed("the parent, none (FROM scratch)", |s| s.parent = None),
        changed("the run config (an ENV above)", |s| {
            s.run_config = RUN_CONFIG_AFTER_ENV
        }),
        changed("the instruction text", |s| s.text = "COPY . /app"),
        changed("one argument's value", |s| s.args[0].1 = "1.3"),
        changed("one more argument", |s| s.args.push(("CC", "gcc"))),
        changed("one more argument, with an empty value", |s| {
            s.args.push(("CC", ""))
        }),
        changed("one argument fewer", |s| {
            s.args.pop();
        }),
        changed("the files copied", |s| s.sources = Some(LAYER_AB)),
        changed("no files copied (not a COPY)", |s| s.sources = None),
    ];
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (what, step) in &steps {
        let key = step.key();
        if let Some((other, _)) = seen.iter().find(|(_, k)| *k == key) {
            panic!(
                "changing {what} did not change the key: it is the same as with {other} \
                 changed ({key}). A step with other inputs would reuse a layer it did not \
                 make: every input must go into the hash"
            );
        }
        seen.push((what, key));
    }
}

#[test]
fn fields_cannot_run_together() {
    let with = |change: fn(&mut Step)| {
        let mut step = run_on_scratch();
        change(&mut step);
        step
    };
    let pairs = [
        (
            "the argument A = \"b=c\" and the argument A=b = \"c\"",
            with(|s| s.args = vec![("A", "b=c")]),
            with(|s| s.args = vec![("A=b", "c")]),
        ),
        (
            "the argument Avalue = \"b\" and the argument A = \"valueb\"",
            with(|s| s.args = vec![("Avalue", "b")]),
            with(|s| s.args = vec![("A", "valueb")]),
        ),
        (
            "run config \"a\" with text \"instructionb\", and run config \"ainstruction\" \
             with text \"b\"",
            with(|s| (s.run_config, s.text) = ("a", "instructionb")),
            with(|s| (s.run_config, s.text) = ("ainstruction", "b")),
        ),
    ];
    for (what, one, other) in &pairs {
        assert_ne!(
            one.key(),
            other.key(),
            "{what} got the same key: their bytes run together into the same sequence. \
             Each argument is two fields, (\"arg\", NAME) then (\"value\", VALUE), and each \
             name and each value has its own length in front, so that where one ends is in \
             the bytes"
        );
    }
}

#[test]
fn the_order_the_build_arguments_are_given_in_does_not_matter() {
    let given = copy_on_layer_a();
    let mut reversed = given.clone();
    reversed.args.reverse();
    assert_eq!(
        given.key(),
        reversed.key(),
        "VERSION then DEBUG, or DEBUG then VERSION: the same arguments are the same build"
    );
    assert_eq!(
        reversed.key(),
        KEY_COPY,
        "the arguments go into the hash in the map's sorted order: DEBUG, then VERSION"
    );
}

#[test]
fn the_cache_keeps_each_entry_under_its_key() {
    assert_eq!(
        entry_file(&run_on_scratch().key()),
        Some(format!(
            "build-cache/{}.json",
            KEY_RUN.trim_start_matches("sha256:")
        )),
        "the entry of `RUN make` on scratch is build-cache/<hex of its key>.json"
    );
    assert_eq!(
        entry_file("sha256:../../etc"),
        None,
        "entry_file refuses a key that is not a digest (this part is given: do not change it)"
    );
}
