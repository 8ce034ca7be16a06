//! Given, for exercise ch12-scheduler: the amounts a node is scored by, the weights of
//! the scoring strategy, and the top of the score's range. Read them, but do not change
//! them: the tests build these types and compare your score with kube's.

use std::fmt;

/// The highest score a node can get (kube's `framework.MaxNodeScore`); 0 is the lowest.
pub const MAX_NODE_SCORE: i64 = 100;

/// An amount of each resource kube scores by: what a node holds, or what is requested
/// of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    /// CPU in millicores: 1000 is one CPU.
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory: u64,
}

impl fmt::Display for Amounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu {}m, memory {}", self.cpu_milli, self.memory)
    }
}

/// How much each resource's score counts in the node's: the `weight` of each resource in
/// the `scoringStrategy.resources` of kube's NodeResourcesFit arguments. kube accepts
/// weights from 1 to 100; its default is 1 for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// The weight of the CPU score.
    pub cpu: i64,
    /// The weight of the memory score.
    pub memory: i64,
}

impl Weights {
    /// kube's default: CPU and memory count the same.
    pub const DEFAULT: Weights = Weights { cpu: 1, memory: 1 };
}
