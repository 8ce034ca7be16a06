//! The stage graph: a Containerfile split at each `FROM` into stages, and the stages a
//! target needs.
//!
//! ```text
//! ARG GO=1.22             ← global: usable in FROM lines only (re-declare inside)
//! FROM golang:$GO AS build    stage 0 "build"
//! RUN make
//! FROM nutshell-default       stage 1
//! COPY --from=build /out /    ← stage 1 needs stage 0
//! ```
//!
//! A stage depends on the stage its `FROM` names and on every stage a `COPY --from=`
//! names; only earlier stages can be named, so the graph has no cycles and the file's
//! order is a valid build order. Building a target builds its stage and what it needs,
//! and skips the rest, as BuildKit does: `--target build` never runs stage 1.

use std::collections::BTreeSet;

use super::parse::{Containerfile, Instruction, Located};

/// One stage: its `FROM` line and the instructions after it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its position, from 0.
    pub index: usize,
    /// Its `AS` name, lower-cased.
    pub name: Option<String>,
    /// The image (or stage) its `FROM` names, as written.
    pub base: String,
    /// The `FROM` line.
    pub from: Located,
    /// The instructions after `FROM`, up to the next one.
    pub steps: Vec<Located>,
}

impl Stage {
    /// How the build output names it: its own name, else `stage-N`.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// A Containerfile's global `ARG`s and its stages.
#[derive(Debug, Clone)]
pub struct StageGraph {
    /// The `ARG`s before the first `FROM`.
    pub global_args: Vec<Located>,
    /// Every stage, in order.
    pub stages: Vec<Stage>,
}

/// A target that names no stage.
#[derive(Debug, thiserror::Error)]
#[error("--target {0}: no stage of that name (stages are named with FROM ... AS NAME)")]
pub struct UnknownTarget(pub String);

// ANCHOR: stage_graph
impl StageGraph {
    /// Split `file` into its stages.
    pub fn new(file: &Containerfile) -> StageGraph {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for located in &file.instructions {
            match (&located.instruction, stages.last_mut()) {
                (Instruction::From { image, alias }, _) => stages.push(Stage {
                    index: stages.len(),
                    name: alias.clone(),
                    base: image.clone(),
                    from: located.clone(),
                    steps: Vec::new(),
                }),
                (_, Some(stage)) => stage.steps.push(located.clone()),
                (_, None) => global_args.push(located.clone()),
            }
        }
        StageGraph {
            global_args,
            stages,
        }
    }

    /// The stage called `name` (a name or an index) before stage `before`, if any.
    pub fn find(&self, name: &str, before: usize) -> Option<usize> {
        let name = name.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(name.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    }

    /// The stages `stage` names directly: its base, and `COPY --from` sources. Names are
    /// as written (unexpanded), which is how docker resolves them too.
    pub fn dependencies(&self, stage: usize) -> BTreeSet<usize> {
        let this = &self.stages[stage];
        let mut deps = BTreeSet::new();
        deps.extend(self.find(&this.base, stage));
        for step in &this.steps {
            if let Instruction::Copy(spec) = &step.instruction
                && let Some(from) = &spec.from
            {
                deps.extend(self.find(from, stage));
            }
        }
        deps
    }

    /// The target's stage (the last one without a target) and every stage it needs,
    /// in build order.
    pub fn needed(&self, target: Option<&str>) -> Result<Vec<usize>, UnknownTarget> {
        let last = self.stages.len().saturating_sub(1);
        let goal = match target {
            None => last,
            Some(name) => self
                .find(name, self.stages.len())
                .ok_or_else(|| UnknownTarget(name.to_string()))?,
        };
        let mut needed = BTreeSet::from([goal]);
        let mut pending = vec![goal];
        while let Some(stage) = pending.pop() {
            for dep in self.dependencies(stage) {
                if needed.insert(dep) {
                    pending.push(dep);
                }
            }
        }
        Ok(needed.into_iter().collect())
    }
}
// ANCHOR_END: stage_graph

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn graph(text: &str) -> StageGraph {
        StageGraph::new(&crate::build::parse(text, Path::new("Containerfile")).expect("parse"))
    }

    const MULTI: &str = "ARG BASE=nutshell-default\n\
        FROM $BASE AS build\nRUN echo built > /out\n\
        FROM $BASE AS test\nRUN false\n\
        FROM build AS more\nRUN true\n\
        FROM $BASE\nCOPY --from=more /out /out\n";

    #[test]
    fn stages_split_at_from() {
        let g = graph(MULTI);
        assert_eq!(g.global_args.len(), 1);
        assert_eq!(g.stages.len(), 4);
        assert_eq!(g.stages[0].label(), "build");
        assert_eq!(g.stages[3].label(), "stage-3");
        assert_eq!(g.stages[2].base, "build");
        assert_eq!(g.stages[1].steps.len(), 1);
    }

    #[test]
    fn the_target_builds_only_what_it_needs() {
        let g = graph(MULTI);
        assert_eq!(
            g.needed(None).expect("needed"),
            [0, 2, 3],
            "stage test is skipped"
        );
        assert_eq!(g.needed(Some("test")).expect("needed"), [1]);
        assert_eq!(g.needed(Some("MORE")).expect("needed"), [0, 2]);
        assert!(g.needed(Some("nope")).is_err());
    }

    #[test]
    fn stages_by_index_and_only_earlier_ones() {
        let g = graph("FROM a\nFROM b\nCOPY --from=0 /x /x\nCOPY --from=2 /y /y\n");
        assert_eq!(
            g.dependencies(1),
            BTreeSet::from([0]),
            "--from=2 is an image"
        );
        assert_eq!(g.find("0", 0), None);
    }
}
