//! Lower bounds: how few nodes any placement of a workload could possibly use.
//!
//! Packing pods onto identical nodes is *2-dimensional vector bin packing*: each pod is a
//! vector (CPU, memory), each node a bin of capacity `C = (C_cpu, C_mem)`, and a bin's
//! pods must fit in both dimensions at once. Finding the fewest bins is NP-hard, so a
//! packer's result is judged against a *lower bound*: a number of nodes that no placement
//! can beat. When a packer reaches the bound, it is optimal; when it does not, the gap is
//! at most what it could still gain.
//!
//! Three bounds, each cheap and each provably valid:
//!
//! - **Volume** ([`volume_bound`]): the nodes must hold all the CPU and all the memory,
//!   so at least `max_d ⌈Σ r_d / C_d⌉` of them are needed.
//! - **Martello–Toth L2** ([`martello_toth_l2`]), per dimension: the volume bound ignores
//!   that a pod bigger than half a node leaves a gap no other big pod can use. L2 counts
//!   those pods a bin each, then asks how much of the gaps they leave the medium pods
//!   could fill at best. Any 2-D packing is also a packing of each dimension alone, so
//!   the larger of the two L2 values is a bound for the 2-D problem too.
//! - **Pairwise conflicts** ([`conflict_bound`]): two pods that together exceed a node in
//!   some dimension can never share one. A set of pods that pairwise conflict (a
//!   *clique* of the conflict graph) needs a node each. This is where two dimensions
//!   bite: a pod with much CPU and little memory and one with the opposite can each be
//!   "small" by volume, yet pods large in CPU conflict with each other, and so may pods
//!   large in memory with pods large in CPU when their sum overflows either resource.
//!
//! - **Cardinality** ([`cardinality_bound`]): if even the `k + 1` smallest items overflow
//!   a node, no node holds more than `k` items, so `⌈n / k⌉` nodes are needed. Counted in
//!   each resource and in their sum (each item's two shares of a node added up, which a
//!   node holds at most 2 of): pods that are each medium in CPU or in memory, but never
//!   small in both, go at most two to a node even when neither resource alone says so.
//!
//! [`lower_bounds`] reports all of them and their maximum. The bounds here are the
//! simple members of the family Caprara and Toth analyse in "Lower bounds and algorithms
//! for the 2-dimensional vector packing problem" (Discrete Applied Mathematics 111,
//! 2001); their stronger bounds combine the dimensions inside one L2-like count.
//!
//! See also S. Martello and P. Toth, *Knapsack Problems: Algorithms and Computer
//! Implementations* (Wiley, 1990), §8.3.1, where L2 is defined.

use thiserror::Error;

use super::model::{Amounts, Resource};

/// Why no bound can be given: no placement exists at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoundsError {
    /// An item asks for more of a resource than a whole node has.
    #[error(
        "item {item} asks for {size} {resource}, more than a node's {capacity}: no node can take it"
    )]
    ItemTooLarge {
        /// The item's index in the list given.
        item: usize,
        /// The resource it overflows.
        resource: Resource,
        /// What it asks for.
        size: u64,
        /// What a node has.
        capacity: u64,
    },
}

/// The lower bounds for one workload, each on the number of nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `max_d ⌈Σ r_d / C_d⌉`: the nodes must hold all of each resource.
    pub volume: usize,
    /// The larger of the Martello–Toth L2 bounds of CPU alone and memory alone.
    pub l2: usize,
    /// The size of a set of items found to conflict pairwise (a clique).
    pub conflicts: usize,
    /// `⌈n / k⌉`, with `k` the most items a node can hold.
    pub cardinality: usize,
    /// The largest of the above, and at least one node for a non-empty workload.
    pub best: usize,
}

/// Checks that every item fits an empty node; the bounds mean nothing otherwise.
pub fn check_fits(sizes: &[Amounts], capacity: Amounts) -> Result<(), BoundsError> {
    for (item, size) in sizes.iter().enumerate() {
        for resource in Resource::ALL {
            if size.get(resource) > capacity.get(resource) {
                return Err(BoundsError::ItemTooLarge {
                    item,
                    resource,
                    size: size.get(resource),
                    capacity: capacity.get(resource),
                });
            }
        }
    }
    Ok(())
}

/// `⌈total / capacity⌉`, with a zero capacity holding only zeros.
fn bins_for(total: u128, capacity: u64) -> usize {
    if capacity == 0 {
        return usize::from(total > 0);
    }
    usize::try_from(total.div_ceil(u128::from(capacity))).unwrap_or(usize::MAX)
}

// ANCHOR: volume
/// The volume bound `max over cpu, memory of ⌈Σ size_d / C_d⌉`.
///
/// Valid because the nodes used must hold each resource's total between them. Items
/// larger than the capacity are not checked here; [`lower_bounds`] refuses them.
pub fn volume_bound(sizes: &[Amounts], capacity: Amounts) -> usize {
    Resource::ALL
        .iter()
        .map(|&resource| {
            let total: u128 = sizes.iter().map(|s| u128::from(s.get(resource))).sum();
            bins_for(total, capacity.get(resource))
        })
        .max()
        .unwrap_or(0)
}
// ANCHOR_END: volume

/// The Martello–Toth bound L2 for 1-dimensional bin packing of `sizes` into bins of
/// `capacity`.
///
/// For each threshold `K` with `0 ≤ K ≤ C/2`, split the items into
/// `J1 = {w > C−K}`, `J2 = {C−K ≥ w > C/2}` and `J3 = {C/2 ≥ w ≥ K}`. Items of `J1` and
/// `J2` are over half a bin, so each takes a bin of its own; no item of `J3` fits beside
/// a `J1` item (each is at least `K`, and less than `K` is left there); so the `J3` items
/// go into the `J2` bins' free space, `|J2|·C − Σ_{J2} w` in all, or into new bins:
///
/// `L(K) = |J1| + |J2| + max(0, ⌈(Σ_{J3} w − (|J2|·C − Σ_{J2} w)) / C⌉)`
///
/// and `L2 = max_K L(K)`. `L(K)` changes only where `K` passes an item's size, so only
/// `K = 0` and the distinct sizes up to `C/2` are tried: `O(n log n)` for the sort. `L(0)`
/// is already the volume bound `⌈Σ w / C⌉` (or `|J2|` if larger), so `L2` is never
/// below it. An item larger than `C` counts as a bin of its own (it is in `J1` for every
/// `K`); a zero capacity counts a bin per non-zero item.
pub fn martello_toth_l2(sizes: &[u64], capacity: u64) -> usize {
    if capacity == 0 {
        return sizes.iter().filter(|&&w| w > 0).count();
    }
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    // prefix[i]: the sum of the i smallest sizes.
    let mut prefix = Vec::with_capacity(sorted.len() + 1);
    prefix.push(0u128);
    for &w in &sorted {
        let last = prefix.last().copied().unwrap_or(0);
        prefix.push(last + u128::from(w));
    }
    let c = u128::from(capacity);
    let sum = |from: usize, to: usize| prefix[to] - prefix[from];
    // Index of the first item with size > limit (sizes ascending).
    let above = |limit: u128| sorted.partition_point(|&w| u128::from(w) <= limit);
    // Items over C/2 are those with 2w > C: the first index where 2w > C.
    let half = sorted.partition_point(|&w| 2 * u128::from(w) <= c);

    let mut thresholds: Vec<u64> = sorted[..half].to_vec();
    thresholds.dedup();
    thresholds.push(0);

    let mut best = 0usize;
    for k in thresholds {
        let k = u128::from(k);
        let j3_from = sorted.partition_point(|&w| u128::from(w) < k);
        let j1_from = above(c - k);
        let j2 = j1_from - half;
        let j1 = sorted.len() - j1_from;
        let j3_sum = sum(j3_from, half);
        let j2_free = (j2 as u128) * c - sum(half, j1_from);
        let extra = bins_for(j3_sum.saturating_sub(j2_free), capacity);
        best = best.max(j1 + j2 + extra);
    }
    best
}

/// Whether items `a` and `b` together overflow a node in some resource: they can never
/// share one.
fn conflict(a: Amounts, b: Amounts, capacity: Amounts) -> bool {
    Resource::ALL.iter().any(|&resource| {
        u128::from(a.get(resource)) + u128::from(b.get(resource))
            > u128::from(capacity.get(resource))
    })
}

/// The size of a set of items that pairwise conflict, found greedily: a lower bound,
/// since each needs a node of its own.
///
/// Finding the largest such set (a maximum clique) is NP-hard itself, but any set found
/// is valid. Two items no larger than half a node in both resources never conflict, so
/// the set holds at most one of those; the rest are items over half a node in some
/// resource, tried largest first in CPU, then largest first in memory. The first order
/// already takes every item over half the CPU (they conflict pairwise), and the second
/// every item over half the memory, so the result is at least the count of either.
pub fn conflict_bound(sizes: &[Amounts], capacity: Amounts) -> usize {
    let large = |s: &Amounts| {
        Resource::ALL
            .iter()
            .any(|&r| 2 * u128::from(s.get(r)) > u128::from(capacity.get(r)))
    };
    let (mut big, small): (Vec<Amounts>, Vec<Amounts>) = sizes.iter().partition(|s| large(s));
    // The one small item most likely to conflict with the set: the largest by share.
    let share = |s: &Amounts| {
        Resource::ALL
            .iter()
            .map(|&r| s.get(r) as f64 / capacity.get(r).max(1) as f64)
            .fold(0.0, f64::max)
    };
    let biggest_small = small
        .iter()
        .copied()
        .max_by(|a, b| share(a).total_cmp(&share(b)));

    let mut best = usize::from(!sizes.is_empty());
    for resource in Resource::ALL {
        big.sort_by_key(|s| std::cmp::Reverse(s.get(resource)));
        let mut clique: Vec<Amounts> = Vec::new();
        for &item in &big {
            if clique.iter().all(|&other| conflict(item, other, capacity)) {
                clique.push(item);
            }
        }
        if let Some(item) = biggest_small
            && clique.iter().all(|&other| conflict(item, other, capacity))
        {
            clique.push(item);
        }
        best = best.max(clique.len());
    }
    best
}

/// `⌈n / k⌉`, where `k` is the most items any node can hold: in CPU, in memory, or in
/// their shares of a node added up, the `k` smallest items fit and the `k + 1` smallest
/// do not.
///
/// The third measure is valid because a node's items fit in both resources, so their
/// shares `r_cpu/C_cpu + r_mem/C_mem` add up to at most 2; it is computed exactly, as
/// `r_cpu·C_mem + r_mem·C_cpu ≤ 2·C_cpu·C_mem`.
pub fn cardinality_bound(sizes: &[Amounts], capacity: Amounts) -> usize {
    let (c1, c2) = (u128::from(capacity.cpu_milli), u128::from(capacity.memory));
    let measures: [(Vec<u128>, u128); 3] = [
        (sizes.iter().map(|s| u128::from(s.cpu_milli)).collect(), c1),
        (sizes.iter().map(|s| u128::from(s.memory)).collect(), c2),
        (
            sizes
                .iter()
                .map(|s| u128::from(s.cpu_milli) * c2 + u128::from(s.memory) * c1)
                .collect(),
            2 * c1 * c2,
        ),
    ];
    let mut best = 0;
    for (mut values, room) in measures {
        values.sort_unstable();
        let mut total = 0u128;
        let most = values
            .iter()
            .take_while(|&&v| {
                total += v;
                total <= room
            })
            .count();
        if most > 0 {
            best = best.max(sizes.len().div_ceil(most));
        }
    }
    best
}

/// All the lower bounds for packing items of `sizes` into nodes of `capacity`.
///
/// Refuses an item larger than a node in some resource: no placement exists, and a
/// number would only hide that.
pub fn lower_bounds(sizes: &[Amounts], capacity: Amounts) -> Result<Bounds, BoundsError> {
    check_fits(sizes, capacity)?;
    let volume = volume_bound(sizes, capacity);
    let l2 = Resource::ALL
        .iter()
        .map(|&resource| {
            let dim: Vec<u64> = sizes.iter().map(|s| s.get(resource)).collect();
            martello_toth_l2(&dim, capacity.get(resource))
        })
        .max()
        .unwrap_or(0);
    let conflicts = if sizes.is_empty() {
        0
    } else {
        conflict_bound(sizes, capacity)
    };
    let cardinality = cardinality_bound(sizes, capacity);
    let best = volume
        .max(l2)
        .max(conflicts)
        .max(cardinality)
        .max(usize::from(!sizes.is_empty()));
    Ok(Bounds {
        volume,
        l2,
        conflicts,
        cardinality,
        best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::exact::{MAX_EXACT_ITEMS, optimum};
    use crate::sched::workloads::{Rng, caprara_toth};

    #[test]
    fn volume_bound_takes_the_tighter_resource() {
        let sizes = [Amounts::new(600, 100), Amounts::new(600, 100)];
        assert_eq!(volume_bound(&sizes, Amounts::new(1000, 1000)), 2);
        let sizes = [Amounts::new(100, 600), Amounts::new(100, 500)];
        assert_eq!(volume_bound(&sizes, Amounts::new(1000, 1000)), 2);
        assert_eq!(volume_bound(&[], Amounts::new(1000, 1000)), 0);
    }

    #[test]
    fn l2_counts_items_over_half_a_bin_one_each() {
        // Volume says 2 (sum 18 of capacity 10), but the three 6s need a bin each.
        assert_eq!(martello_toth_l2(&[6, 6, 6], 10), 3);
    }

    #[test]
    fn l2_adds_bins_for_what_the_big_items_gaps_cannot_hold() {
        // C = 10: two 6s leave 4 + 4 free; the 4, 4, 4 of J3 (K = 4) need 12, so 8 fit
        // and 4 need one more bin: 2 + 1 = 3. Volume: ⌈24/10⌉ = 3 as well.
        assert_eq!(martello_toth_l2(&[6, 6, 4, 4, 4], 10), 3);
        // 7s leave 3 each; with K = 4 the 4s cannot use those gaps at all (J1 = the 7s),
        // so 4, 4 need ⌈8/10⌉ = 1 more: 3. Volume: ⌈22/10⌉ = 3.
        assert_eq!(martello_toth_l2(&[7, 7, 4, 4], 10), 3);
        // 7, 7, 4, 4, 4, 4 with C = 10: volume ⌈30/10⌉ = 3, but no 4 fits beside a 7, and
        // the four 4s need two bins: L(4) = 2 + ⌈16/10⌉ = 4, the optimum.
        assert_eq!(martello_toth_l2(&[7, 7, 4, 4, 4, 4], 10), 4);
    }

    #[test]
    fn l2_is_never_below_the_volume_bound() {
        assert_eq!(martello_toth_l2(&[3, 3, 3, 3], 10), 2);
        assert_eq!(martello_toth_l2(&[], 10), 0);
        assert_eq!(martello_toth_l2(&[5, 5], 10), 1);
    }

    #[test]
    fn l2_with_odd_capacity_treats_half_exactly() {
        // C = 9: a 5 is over half (2·5 > 9), a 4 is not.
        assert_eq!(martello_toth_l2(&[5, 5], 9), 2);
        assert_eq!(martello_toth_l2(&[4, 4], 9), 1);
    }

    #[test]
    fn items_large_in_different_resources_conflict_when_the_sum_overflows() {
        let capacity = Amounts::new(100, 100);
        // Each pair overflows one resource; volume says 2 (sums 150, 150).
        let sizes = [
            Amounts::new(60, 10),
            Amounts::new(45, 60),
            Amounts::new(45, 80),
        ];
        let bounds = lower_bounds(&sizes, capacity).expect("items fit");
        assert_eq!(bounds.volume, 2);
        assert_eq!(bounds.conflicts, 3);
        assert_eq!(bounds.best, 3);
    }

    #[test]
    fn items_medium_in_one_resource_or_the_other_go_at_most_two_to_a_node() {
        // Each item's shares add up to 0.8: three are 2.4 > 2, so two to a node at most,
        // although the volume bound says 2 and no pair conflicts.
        let capacity = Amounts::new(150, 150);
        let sizes = [
            Amounts::new(20, 100),
            Amounts::new(100, 20),
            Amounts::new(60, 60),
            Amounts::new(30, 90),
            Amounts::new(90, 30),
        ];
        let bounds = lower_bounds(&sizes, capacity).expect("items fit");
        assert_eq!(bounds.volume, 2);
        assert_eq!(bounds.cardinality, 3);
        assert_eq!(bounds.best, 3);
    }

    #[test]
    fn an_item_larger_than_a_node_is_refused_with_its_index() {
        let err = lower_bounds(
            &[Amounts::new(10, 10), Amounts::new(10, 2000)],
            Amounts::new(100, 1000),
        )
        .expect_err("item 1 overflows memory");
        assert_eq!(
            err.to_string(),
            "item 1 asks for 2000 memory, more than a node's 1000: no node can take it"
        );
    }

    #[test]
    fn every_bound_is_at_most_the_exact_optimum_on_random_small_instances() {
        let mut rng = Rng::new(7);
        for round in 0..300 {
            let n = rng.range(1, MAX_EXACT_ITEMS.min(10) as u64) as usize;
            let capacity = Amounts::new(rng.range(10, 40), rng.range(10, 40));
            let sizes: Vec<Amounts> = (0..n)
                .map(|_| {
                    Amounts::new(
                        rng.range(0, capacity.cpu_milli),
                        rng.range(0, capacity.memory),
                    )
                })
                .collect();
            let bounds = lower_bounds(&sizes, capacity).expect("items fit");
            let opt = optimum(&sizes, capacity).expect("small instance solves");
            assert!(
                bounds.best <= opt.nodes,
                "round {round}: {bounds:?} above optimum {} for {sizes:?} in {capacity:?}",
                opt.nodes
            );
        }
    }

    #[test]
    fn every_bound_is_at_most_the_exact_optimum_on_caprara_toth_instances() {
        for class in 1..=9 {
            for seed in 0..4 {
                let instance = caprara_toth(class, 12, seed).expect("class exists");
                let sizes: Vec<Amounts> = instance.pods.iter().map(|p| p.requests).collect();
                let bounds = lower_bounds(&sizes, instance.capacity).expect("items fit");
                let opt = optimum(&sizes, instance.capacity).expect("small instance solves");
                assert!(
                    bounds.best <= opt.nodes,
                    "class {class} seed {seed}: {bounds:?} above optimum {}",
                    opt.nodes
                );
            }
        }
    }

    #[test]
    fn every_bound_is_at_most_the_exact_optimum_with_items_of_a_quarter_node() {
        // Items between an eighth and a half of a node: where the bounds fall short of
        // first fit decreasing, and the solver has to decide.
        let mut rng = Rng::new(13);
        for round in 0..200 {
            let n = rng.range(4, 12) as usize;
            let capacity = Amounts::new(rng.range(40, 100), rng.range(40, 100));
            let sizes: Vec<Amounts> = (0..n)
                .map(|_| {
                    Amounts::new(
                        rng.range(capacity.cpu_milli / 8, capacity.cpu_milli / 2),
                        rng.range(capacity.memory / 8, capacity.memory / 2),
                    )
                })
                .collect();
            let bounds = lower_bounds(&sizes, capacity).expect("items fit");
            let opt = optimum(&sizes, capacity).expect("small instance solves");
            assert!(
                bounds.best <= opt.nodes,
                "round {round}: {bounds:?} above optimum {} for {sizes:?} in {capacity:?}",
                opt.nodes
            );
        }
    }

    #[test]
    fn l2_is_at_most_the_optimum_of_one_dimension() {
        // 1-D instances as 2-D ones with no memory: the exact optimum is 1-D's.
        let mut rng = Rng::new(11);
        for _ in 0..100 {
            let n = rng.range(1, 9) as usize;
            let c = rng.range(5, 30);
            let sizes: Vec<u64> = (0..n).map(|_| rng.range(1, c)).collect();
            let items: Vec<Amounts> = sizes.iter().map(|&w| Amounts::new(w, 0)).collect();
            let opt = optimum(&items, Amounts::new(c, 0)).expect("small instance solves");
            assert!(martello_toth_l2(&sizes, c) <= opt.nodes, "{sizes:?} in {c}");
        }
    }
}
