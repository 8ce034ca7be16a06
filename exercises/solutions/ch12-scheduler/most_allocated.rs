//! # Reference solution: ch12-scheduler, kube-scheduler's MostAllocated score

use crate::resources::{Amounts, MAX_NODE_SCORE, Weights};

/// One resource's score, 0 to [`MAX_NODE_SCORE`]: how much of `capacity` is `requested`.
pub fn most_requested_score(requested: u64, capacity: u64) -> i64 {
    // FIX: a node without the resource scores 0 for it, before anything divides by 0.
    if capacity == 0 {
        return 0;
    }
    // FIX: cap at the capacity: pods without requests count as 100m and 200Mi when scored,
    // so the sum can pass a capacity the filters found room in. Uncapped, a resource
    // could score over 100 and outweigh the other.
    let requested = requested.min(capacity);
    // FIX: multiply first, then divide, in integers, as kube's int64 arithmetic does:
    // requested / capacity first is 0 for anything short of full.
    (requested * MAX_NODE_SCORE as u64 / capacity) as i64
}

/// A node's MostAllocated score, 0 to [`MAX_NODE_SCORE`]: the weighted mean of its CPU
/// and memory scores.
pub fn most_allocated(requested: Amounts, capacity: Amounts, weights: &Weights) -> i64 {
    let cpu = most_requested_score(requested.cpu_milli, capacity.cpu_milli);
    let memory = most_requested_score(requested.memory, capacity.memory);
    // FIX: each score times its weight, over the sum of the weights, not over the number
    // of resources: with a memory weight of 2, memory counts twice.
    let weight_sum = weights.cpu + weights.memory;
    if weight_sum == 0 {
        return 0;
    }
    // FIX: integer division, rounding down: (75 + 50) / 2 is 62, as kube scores it, not
    // the 63 that rounding 62.5 gives.
    (cpu * weights.cpu + memory * weights.memory) / weight_sum
}
