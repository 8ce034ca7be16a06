//! # Exercise ch12-scheduler: kube-scheduler's MostAllocated score
//!
//! After its filters have dropped the nodes a pod cannot run on, kube-scheduler scores
//! each node that is left from 0 to 100, and the pod goes to the best. Its
//! NodeResourcesFit plugin scores by how full the node would be. With the default
//! strategy, LeastAllocated, the emptiest node wins and pods spread out; with
//! **MostAllocated**, the fullest node that still fits wins, and pods pack onto as few
//! nodes as they can (the rest can be scaled down). Write MostAllocated's score, as kube
//! computes it, in `int64` arithmetic.
//!
//! 1. `most_requested_score(requested, capacity)`: one resource's score,
//!    `requested * 100 / capacity` in integer arithmetic: multiply first, then divide,
//!    rounding down as Go's integer division does (3000m of 4000m is 75; 1m of 3m is 33).
//!    Two edge cases come first, as in kube's `mostRequestedScore`:
//!    - `capacity` 0 scores 0: the node has none of that resource to fill (and there is
//!      nothing to divide by);
//!    - `requested` above `capacity` counts as `capacity`, so the score is at most 100.
//!      The filters let the pod in, so how can it be over? Scoring counts each container
//!      that requests no CPU as 100m, and one that requests no memory as 200Mi (kube's
//!      *non-zero* defaults: otherwise pods that ask for nothing would all pile onto the
//!      same node), while the filters count them as 0.
//!
//! 2. `most_allocated(requested, capacity, weights)`: the node's score, the weighted
//!    mean of its two resource scores, in integer division again:
//!
//!    ```text
//!    (cpu_score * weights.cpu + memory_score * weights.memory) / (weights.cpu + weights.memory)
//!    ```
//!
//!    and 0 if the weights add up to 0 (kube's guard; its configuration refuses weights
//!    below 1 anyway). With kube's default weights, 1 and 1, a node scoring 75 for CPU
//!    and 50 for memory scores 62: not 62.5, and not 63.
//!
//! `requested` is already everything the node would hold with the pod: the non-zero
//! requests of the pods on it plus the new pod's, for each resource. `capacity` is the
//! node's allocatable CPU and memory.
//!
//! The types are given in `resources.rs`, next to this file: `Amounts`, `Weights` and
//! `MAX_NODE_SCORE`. Do not change that file.
//!
//! Read book/src/ch12-scheduler.md ("kube's scorers, to the integer") and
//! src/sched/scorers.rs for where scoring fits, and kube's own
//! pkg/scheduler/framework/plugins/noderesources/most_allocated.go. Check your work with
//! `just exercise ch12-scheduler` (no root needed: no node is made). The tests are cases
//! from kube's own table, most_allocated_test.go.

use crate::resources::{Amounts, MAX_NODE_SCORE, Weights};

/// One resource's score, 0 to [`MAX_NODE_SCORE`]: how much of `capacity` is `requested`.
pub fn most_requested_score(requested: u64, capacity: u64) -> i64 {
    // TODO: capacity 0 → 0. Then requested above capacity counts as capacity.
    // TODO: requested * MAX_NODE_SCORE / capacity, multiplying first, in integers (no f64).
    let _ = (requested, capacity, MAX_NODE_SCORE);
    todo!("most_requested_score: requested * 100 / capacity, capped at 100")
}

/// A node's MostAllocated score, 0 to [`MAX_NODE_SCORE`]: the weighted mean of its CPU
/// and memory scores.
pub fn most_allocated(requested: Amounts, capacity: Amounts, weights: &Weights) -> i64 {
    // TODO: score CPU and memory each with most_requested_score.
    // TODO: multiply each score by its weight, add them, and divide by the sum of the
    //       weights (integer division; 0 when the weights add up to 0).
    let _ = (requested, capacity, weights);
    todo!("most_allocated: the weighted mean of the CPU and memory scores")
}
