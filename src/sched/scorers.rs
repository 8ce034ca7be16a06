//! kube-scheduler's resource scorers: how full each node would be with the pod, as a
//! score from 0 to [`MAX_NODE_SCORE`].
//!
//! Every scorer looks at the same two vectors for a node: what it can give
//! (`allocatable`) and what would be requested there once the pod is added
//! (`requested`). They differ in what they reward:
//!
//! - [`least_allocated`], kube's default: the free share of each resource, so pods spread
//!   out over the emptiest nodes;
//! - [`most_allocated`]: the used share, so pods pack onto the fullest nodes that fit;
//! - [`balanced_allocation`]: how close the cpu and memory shares are to each other, so a
//!   node does not run out of one while the other sits idle;
//! - [`requested_to_capacity_ratio`]: any curve over utilization, given as a [`Shape`].
//!
//! The arithmetic is kube's, integer division included, so a score here equals the score
//! kube gives (`pkg/scheduler/framework/plugins/noderesources`). A resource the node has
//! none of (allocatable 0) is left out of the average, as kube leaves it out.
//!
//! **Which requests.** The first three use kube's `NodeResourcesFit` scoring, which counts a
//! request of zero as 100m cpu and 200 MiB memory ([`Amounts::non_zero`]), so that pods
//! without requests still spread out. BalancedAllocation counts the real requests. Build
//! `requested` with [`requested_with`]: `non_zero: true` for least, most and
//! requested-to-capacity, `false` for balanced. kube also skips BalancedAllocation for a
//! pod that requests nothing at all ([`is_best_effort`]).
//!
//! See also [resource bin packing](https://kubernetes.io/docs/concepts/scheduling-eviction/resource-bin-packing/).

use super::model::{Amounts, Load, Pod, Resource};

/// The best score a node can get (kube's `framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// The best score a [`Shape`] point may give (kube's `MaxCustomPriorityScore`); shapes are
/// scaled by `MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE`.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// Utilization in a [`Shape`] runs from 0 to this (kube's `maxUtilization`).
pub const MAX_UTILIZATION: i64 = 100;

/// How much each resource counts in the average of per-resource scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// The weight of the cpu score.
    pub cpu: i64,
    /// The weight of the memory score.
    pub memory: i64,
}

impl Weights {
    /// The weight of `resource`.
    pub fn get(&self, resource: Resource) -> i64 {
        match resource {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
        }
    }
}

impl Default for Weights {
    /// kube's default: cpu and memory, weight 1 each.
    fn default() -> Weights {
        Weights { cpu: 1, memory: 1 }
    }
}

/// What `node` would have requested with `pod` on it: the non-zero sums
/// ([`Amounts::non_zero`]) when `non_zero`, for least, most and requested-to-capacity; the
/// real sums otherwise, for balanced allocation.
pub fn requested_with(pod: &Pod, node: &Load, non_zero: bool) -> Amounts {
    if non_zero {
        node.non_zero_requested.plus(pod.requests.non_zero())
    } else {
        node.requested.plus(pod.requests)
    }
}

/// Whether `pod` requests neither cpu nor memory; kube's BalancedAllocation skips such a
/// pod (its PreScore returns Skip), or every one of them would crowd onto the same node.
pub fn is_best_effort(pod: &Pod) -> bool {
    pod.requests == Amounts::default()
}

/// `sum(score * weight) / sum(weight)` over the resources the node has, integer
/// division, 0 when no weight is left: kube's scorer loop.
fn weighted_mean(
    requested: Amounts,
    allocatable: Amounts,
    weights: &Weights,
    score: impl Fn(u64, u64) -> i64,
) -> i64 {
    // i128: weights come from the user, and a large one must not overflow the sum.
    let (mut total, mut weight_sum) = (0i128, 0i128);
    for resource in Resource::ALL {
        let capacity = allocatable.get(resource);
        if capacity == 0 {
            continue;
        }
        let weight = i128::from(weights.get(resource));
        total += i128::from(score(requested.get(resource), capacity)) * weight;
        weight_sum += weight;
    }
    if weight_sum == 0 {
        return 0;
    }
    (total / weight_sum).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `value * MAX / capacity` for `value <= capacity`, exact: at most [`MAX_NODE_SCORE`].
fn share(value: u64, capacity: u64) -> i64 {
    // u128: memory in bytes times 100 can pass u64 on large nodes; kube's int64 would wrap.
    (u128::from(value) * MAX_NODE_SCORE as u128 / u128::from(capacity)) as i64
}

// ANCHOR: per_resource
/// kube's `leastRequestedScore`: the free share on 0..=100; 0 when over capacity.
fn least_requested_score(requested: u64, capacity: u64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    share(capacity - requested, capacity)
}

/// kube's `mostRequestedScore`: the used share on 0..=100, with requested capped at
/// capacity (non-zero requests can pass it).
fn most_requested_score(requested: u64, capacity: u64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    share(requested.min(capacity), capacity)
}
// ANCHOR_END: per_resource

/// LeastAllocated, kube's default: the weighted mean of each resource's free share,
/// `(capacity - requested) * 100 / capacity`, 0 for a resource over capacity.
///
/// `requested` is the node's non-zero requests plus the pod's
/// ([`requested_with`]`(pod, node, true)`).
pub fn least_allocated(requested: Amounts, allocatable: Amounts, weights: &Weights) -> i64 {
    weighted_mean(requested, allocatable, weights, least_requested_score)
}

/// MostAllocated: the weighted mean of each resource's used share,
/// `min(requested, capacity) * 100 / capacity`.
///
/// `requested` is the node's non-zero requests plus the pod's
/// ([`requested_with`]`(pod, node, true)`).
pub fn most_allocated(requested: Amounts, allocatable: Amounts, weights: &Weights) -> i64 {
    weighted_mean(requested, allocatable, weights, most_requested_score)
}

// ANCHOR: balanced
/// BalancedAllocation: `(1 - std) * 100`, truncated, where `std` is the standard
/// deviation of the requested shares (each capped at 1) of the resources the node has;
/// with two resources, `|cpu share - memory share| / 2`.
///
/// `requested` is the node's real requests plus the pod's
/// ([`requested_with`]`(pod, node, false)`); kube skips this scorer for a pod that
/// requests nothing ([`is_best_effort`]).
pub fn balanced_allocation(requested: Amounts, allocatable: Amounts) -> i64 {
    let mut fractions = [0.0f64; 2];
    let mut count = 0;
    for resource in Resource::ALL {
        let capacity = allocatable.get(resource);
        if capacity == 0 {
            continue;
        }
        let fraction = requested.get(resource) as f64 / capacity as f64;
        fractions[count] = fraction.min(1.0);
        count += 1;
    }
    // kube's float operations in kube's order, so rounding lands where kube's does.
    let std = if count == 2 {
        ((fractions[0] - fractions[1]) / 2.0).abs()
    } else {
        0.0
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}
// ANCHOR_END: balanced

/// One point of a [`Shape`]: at this utilization, this score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapePoint {
    /// Percent used, 0..=[`MAX_UTILIZATION`].
    pub utilization: i64,
    /// The score there, 0..=[`MAX_CUSTOM_PRIORITY_SCORE`].
    pub score: i64,
}

/// Why a list of points is not a [`Shape`]: kube's `validateFunctionShape` rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// No points at all.
    #[error("a scoring shape needs at least one point")]
    Empty,
    /// A point's utilization is not above the one before it.
    #[error(
        "shape point {index}: utilization {utilization} is not above the previous point's \
         {previous}; list the points in increasing utilization"
    )]
    NotIncreasing {
        /// The point's position in the list.
        index: usize,
        /// The previous point's utilization.
        previous: i64,
        /// This point's utilization.
        utilization: i64,
    },
    /// A utilization outside 0..=100.
    #[error("shape point {index}: utilization {utilization} is outside 0..=100")]
    UtilizationOutOfRange {
        /// The point's position in the list.
        index: usize,
        /// Its utilization.
        utilization: i64,
    },
    /// A score outside 0..=10.
    #[error("shape point {index}: score {score} is outside 0..=10")]
    ScoreOutOfRange {
        /// The point's position in the list.
        index: usize,
        /// Its score.
        score: i64,
    },
}

/// The curve RequestedToCapacityRatio scores by: points of (utilization, score), joined by
/// straight lines, flat before the first point and after the last.
///
/// `[(0, 10), (100, 0)]` behaves like LeastAllocated; `[(0, 0), (100, 10)]` packs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    points: Vec<ShapePoint>,
}

impl Shape {
    /// A shape through `points`, given as (utilization, score), checked as kube checks
    /// them: at least one point, utilizations strictly increasing and in 0..=100, scores in
    /// 0..=10.
    pub fn new(points: &[(i64, i64)]) -> Result<Shape, ShapeError> {
        if points.is_empty() {
            return Err(ShapeError::Empty);
        }
        for (index, pair) in points.windows(2).enumerate() {
            if pair[0].0 >= pair[1].0 {
                return Err(ShapeError::NotIncreasing {
                    index: index + 1,
                    previous: pair[0].0,
                    utilization: pair[1].0,
                });
            }
        }
        for (index, &(utilization, score)) in points.iter().enumerate() {
            if !(0..=MAX_UTILIZATION).contains(&utilization) {
                return Err(ShapeError::UtilizationOutOfRange { index, utilization });
            }
            if !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&score) {
                return Err(ShapeError::ScoreOutOfRange { index, score });
            }
        }
        let points = points
            .iter()
            .map(|&(utilization, score)| ShapePoint { utilization, score })
            .collect();
        Ok(Shape { points })
    }

    /// Its points, in increasing utilization.
    pub fn points(&self) -> &[ShapePoint] {
        &self.points
    }
}

/// kube's `BuildBrokenLinearFunction` with each score multiplied by `scale`: the first
/// score up to the first point, the last after the last, and in between the line through
/// the two neighbours, in integer arithmetic that truncates toward zero like Go's.
fn broken_linear(points: &[ShapePoint], scale: i64, utilization: i64) -> i64 {
    let mut previous: Option<&ShapePoint> = None;
    for point in points {
        if utilization <= point.utilization {
            return match previous {
                None => point.score * scale,
                Some(prev) => {
                    let (low, high) = (prev.score * scale, point.score * scale);
                    low + (high - low) * (utilization - prev.utilization)
                        / (point.utilization - prev.utilization)
                }
            };
        }
        previous = Some(point);
    }
    points.last().map_or(0, |last| last.score * scale)
}

/// kube's `scaledUtilization`: `requested * 100 / capacity`, integer, 100 at or over
/// capacity.
fn utilization(requested: u64, capacity: u64) -> i64 {
    if requested >= capacity {
        return MAX_UTILIZATION;
    }
    (u128::from(requested) * MAX_UTILIZATION as u128 / u128::from(capacity)) as i64
}

/// RequestedToCapacityRatio: each resource's utilization looked up on `shape` (scores
/// scaled to 0..=100), then the weighted mean, rounded to the nearest integer, of the
/// resources that scored above zero.
///
/// kube leaves a resource scoring 0 out of the mean, weight and all, so a node where one
/// resource scores 0 gets the other's score rather than half of it. `requested` is the
/// node's non-zero requests plus the pod's ([`requested_with`]`(pod, node, true)`).
pub fn requested_to_capacity_ratio(
    requested: Amounts,
    allocatable: Amounts,
    shape: &Shape,
    weights: &Weights,
) -> i64 {
    let scale = MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE;
    let (mut total, mut weight_sum) = (0i128, 0i128);
    for resource in Resource::ALL {
        let capacity = allocatable.get(resource);
        if capacity == 0 {
            continue;
        }
        let at = utilization(requested.get(resource), capacity);
        let score = broken_linear(&shape.points, scale, at);
        if score > 0 {
            let weight = i128::from(weights.get(resource));
            total += i128::from(score) * weight;
            weight_sum += weight;
        }
    }
    if weight_sum == 0 {
        return 0;
    }
    // kube: int64(math.Round(float64(nodeScore) / float64(weightSum))); Rust's round, like
    // Go's, rounds halves away from zero.
    (total as f64 / weight_sum as f64).round() as i64
}

#[cfg(test)]
mod tests {
    //! Cases from kube's own tables (least_allocated_test.go, most_allocated_test.go,
    //! balanced_allocation_test.go, requested_to_capacity_ratio_test.go), with the totals
    //! each case's pods add up to. kube's tables give cpu in whole cores ("4000") and
    //! memory in bytes; the numbers are used here as they are, which keeps every ratio,
    //! and so every score, the same. kube's test pods without containers request nothing
    //! even in non-zero terms, so those cases pass zero totals.
    use super::*;
    use crate::sched::model::{Node, NodeInfo};

    fn amounts(cpu_milli: u64, memory: u64) -> Amounts {
        Amounts::new(cpu_milli, memory)
    }

    fn least(requested: (u64, u64), allocatable: (u64, u64)) -> i64 {
        let (r, a) = (
            amounts(requested.0, requested.1),
            amounts(allocatable.0, allocatable.1),
        );
        least_allocated(r, a, &Weights::default())
    }

    fn most(requested: (u64, u64), allocatable: (u64, u64)) -> i64 {
        let (r, a) = (
            amounts(requested.0, requested.1),
            amounts(allocatable.0, allocatable.1),
        );
        most_allocated(r, a, &Weights::default())
    }

    fn balanced(requested: (u64, u64), allocatable: (u64, u64)) -> i64 {
        balanced_allocation(
            amounts(requested.0, requested.1),
            amounts(allocatable.0, allocatable.1),
        )
    }

    #[test]
    fn least_allocated_matches_kubes_table() {
        // kube least_allocated_test.go: "nothing scheduled, nothing requested"
        assert_eq!(least((0, 0), (4000, 10000)), 100);
        // kube: "nothing scheduled, resources requested, differently sized nodes"
        assert_eq!(least((3000, 5000), (4000, 10000)), 37);
        assert_eq!(least((3000, 5000), (6000, 10000)), 50);
        // kube: "no resources requested, pods scheduled with resources"
        assert_eq!(least((6000, 0), (10000, 20000)), 70);
        assert_eq!(least((6000, 5000), (10000, 20000)), 57);
        // kube: "resources requested, pods scheduled with resources"
        assert_eq!(least((6000, 5000), (10000, 20000)), 57);
        assert_eq!(least((6000, 10000), (10000, 20000)), 45);
        // kube: "resources requested, pods scheduled with resources, differently sized nodes"
        assert_eq!(least((6000, 10000), (10000, 50000)), 60);
        // kube: "requested resources exceed node capacity"
        assert_eq!(least((6000, 0), (4000, 10000)), 50);
        assert_eq!(least((6000, 5000), (4000, 10000)), 25);
        // kube: "zero node resources, pods scheduled with resources"
        assert_eq!(least((3000, 5000), (0, 0)), 0);
    }

    #[test]
    fn least_allocated_weighs_each_resource() {
        // kube least_allocated_test.go: "nothing scheduled, resources requested with
        // different weight on CPU and memory, differently sized nodes"
        let weights = Weights { cpu: 1, memory: 2 };
        let requested = amounts(3000, 5000);
        assert_eq!(
            least_allocated(requested, amounts(4000, 10000), &weights),
            41
        );
        assert_eq!(
            least_allocated(requested, amounts(6000, 10000), &weights),
            50
        );
    }

    #[test]
    fn most_allocated_matches_kubes_table() {
        // kube most_allocated_test.go: "nothing scheduled, nothing requested"
        assert_eq!(most((0, 0), (4000, 10000)), 0);
        // kube: "nothing scheduled, resources requested, differently sized nodes"
        assert_eq!(most((3000, 5000), (4000, 10000)), 62);
        assert_eq!(most((3000, 5000), (6000, 10000)), 50);
        // kube: "no resources requested, pods scheduled with resources"
        assert_eq!(most((6000, 0), (10000, 20000)), 30);
        assert_eq!(most((6000, 5000), (10000, 20000)), 42);
        // kube: "resources requested, pods scheduled with resources"
        assert_eq!(most((6000, 5000), (10000, 20000)), 42);
        assert_eq!(most((6000, 10000), (10000, 20000)), 55);
        // kube: "resources requested equal node capacity"
        assert_eq!(most((5000, 9000), (5000, 10000)), 95);
        assert_eq!(most((5000, 9000), (10000, 9000)), 75);
        // kube: "nothing scheduled, resources requested, differently sized nodes", with
        // memory weight 2 and cpu weight 1
        let weights = Weights { cpu: 1, memory: 2 };
        assert_eq!(
            most_allocated(amounts(3000, 5000), amounts(4000, 10000), &weights),
            58
        );
        assert_eq!(
            most_allocated(amounts(3000, 5000), amounts(6000, 10000), &weights),
            50
        );
    }

    #[test]
    fn most_allocated_counts_pods_without_requests_as_non_zero() {
        // kube most_allocated_test.go: "no resources requested, pods scheduled, nonzero
        // request for resource": nodes of 250m and 1000Mi, node1 runs two pods without
        // requests, and the new pod has none either.
        let node = || Node::new("node", amounts(250, 1000 << 20));
        let mut node1 = NodeInfo::new(node());
        node1.add(&Pod::new("a", Amounts::default()));
        node1.add(&Pod::new("b", Amounts::default()));
        let node2 = NodeInfo::new(node());
        let pod = Pod::new("p", Amounts::default());
        let score = |info: &NodeInfo| {
            let requested = requested_with(&pod, &info.load(), true);
            most_allocated(requested, info.node.allocatable, &Weights::default())
        };
        assert_eq!(score(&node1), 80);
        assert_eq!(score(&node2), 30);
    }

    #[test]
    fn balanced_allocation_matches_kubes_table() {
        // kube balanced_allocation_test.go: "nothing scheduled, resources requested,
        // differently sized nodes"
        assert_eq!(balanced((3000, 5000), (4000, 10000)), 87);
        assert_eq!(balanced((3000, 5000), (6000, 10000)), 100);
        // kube: "resources requested, pods scheduled with resources"
        assert_eq!(balanced((6000, 5000), (10000, 20000)), 82);
        assert_eq!(balanced((6000, 10000), (10000, 20000)), 95);
        // kube: "resources requested, pods scheduled with resources, differently sized nodes"
        assert_eq!(balanced((6000, 10000), (10000, 50000)), 80);
        // kube: "requested resources at node capacity"
        assert_eq!(balanced((6000, 0), (6000, 10000)), 50);
        assert_eq!(balanced((6000, 5000), (6000, 10000)), 75);
        // kube: "node without the scalar resource should skip the scalar resource"
        assert_eq!(balanced((3000, 5000), (3500, 40000)), 63);
    }

    #[test]
    fn balanced_allocation_uses_real_requests_and_skips_best_effort_pods() {
        // A zero memory request stays zero: 6000/6000 cpu against 0 memory is 50, as in
        // kube's "requested resources at node capacity"; non-zero memory would say 100.
        let mut info = NodeInfo::new(Node::new("node1", amounts(6000, 10000)));
        info.add(&Pod::new("cpu-only", amounts(3000, 0)));
        let pod = Pod::new("cpu-only", amounts(3000, 0));
        let requested = requested_with(&pod, &info.load(), false);
        assert_eq!(balanced_allocation(requested, info.node.allocatable), 50);
        assert!(!is_best_effort(&pod));
        // kube: "nothing scheduled, nothing requested, skip in PreScore"
        assert!(is_best_effort(&Pod::new("empty", Amounts::default())));
    }

    fn shape(points: &[(i64, i64)]) -> Shape {
        match Shape::new(points) {
            Ok(shape) => shape,
            Err(error) => panic!("test shape {points:?}: {error}"),
        }
    }

    #[test]
    fn requested_to_capacity_ratio_matches_kubes_table() {
        let spread = shape(&[(0, 10), (100, 0)]);
        let score = |requested: (u64, u64), allocatable: (u64, u64)| {
            let (r, a) = (
                amounts(requested.0, requested.1),
                amounts(allocatable.0, allocatable.1),
            );
            requested_to_capacity_ratio(r, a, &spread, &Weights::default())
        };
        // kube requested_to_capacity_ratio_test.go: "nothing scheduled, nothing requested
        // (default - least requested nodes have priority)"
        assert_eq!(score((0, 0), (4000, 10000)), 100);
        // kube: "nothing scheduled, resources requested, differently sized nodes (default -
        // least requested nodes have priority)"; (25 + 50) / 2 rounds to 38
        assert_eq!(score((3000, 5000), (4000, 10000)), 38);
        assert_eq!(score((3000, 5000), (6000, 10000)), 50);
        // kube: "no resources requested, pods scheduled with resources (default - least
        // requested nodes have priority)"
        assert_eq!(score((3000, 5000), (4000, 10000)), 38);
        assert_eq!(score((3000, 5000), (6000, 10000)), 50);
    }

    #[test]
    fn requested_to_capacity_ratio_packs_with_a_rising_shape() {
        // kube TestResourceBinPackingSingleExtended, shape (0, 0), (100, 1), with its
        // extended resource played by cpu and no memory on the node (left out of the mean).
        let pack = shape(&[(0, 0), (100, 1)]);
        let score = |requested, capacity| {
            requested_to_capacity_ratio(
                amounts(requested, 0),
                amounts(capacity, 0),
                &pack,
                &Weights::default(),
            )
        };
        // "resources requested, pods scheduled with less resources"
        assert_eq!(score(2, 8), 2);
        assert_eq!(score(2, 4), 5);
        // "resources requested, pods scheduled with resources, on node with existing pod
        // running"
        assert_eq!(score(4, 4), 10);
        // "nothing scheduled, nothing requested": a score of 0 leaves no weight, so 0
        assert_eq!(score(0, 8), 0);
    }

    #[test]
    fn broken_linear_function_matches_kubes_table() {
        let points = |pairs: &[(i64, i64)]| shape(pairs).points().to_vec();
        // kube TestBrokenLinearFunction, case 0
        let line = points(&[(10, 1), (90, 9)]);
        let cases = [(-10, 1), (0, 1), (9, 1), (10, 1), (15, 1), (19, 1), (20, 2)];
        let more = [(89, 8), (90, 9), (99, 9), (100, 9), (110, 9)];
        for (p, want) in cases.into_iter().chain(more) {
            assert_eq!(broken_linear(&line, 1, p), want, "case 0 at {p}");
        }
        // case 1
        let peak = points(&[(0, 2), (40, 10), (100, 0)]);
        let cases = [
            (-10, 2),
            (0, 2),
            (20, 6),
            (30, 8),
            (40, 10),
            (70, 5),
            (100, 0),
            (110, 0),
        ];
        for (p, want) in cases {
            assert_eq!(broken_linear(&peak, 1, p), want, "case 1 at {p}");
        }
        // case 2
        let flat = points(&[(0, 2), (40, 2), (100, 2)]);
        for p in [-10, 0, 20, 30, 40, 70, 100, 110] {
            assert_eq!(broken_linear(&flat, 1, p), 2, "case 2 at {p}");
        }
    }

    #[test]
    fn shapes_are_checked_as_kube_checks_them() {
        assert_eq!(Shape::new(&[]), Err(ShapeError::Empty));
        assert_eq!(
            Shape::new(&[(0, 1), (50, 2), (50, 3)]),
            Err(ShapeError::NotIncreasing {
                index: 2,
                previous: 50,
                utilization: 50
            })
        );
        assert_eq!(
            Shape::new(&[(0, 1), (101, 2)]),
            Err(ShapeError::UtilizationOutOfRange {
                index: 1,
                utilization: 101
            })
        );
        assert_eq!(
            Shape::new(&[(0, 11)]),
            Err(ShapeError::ScoreOutOfRange {
                index: 0,
                score: 11
            })
        );
        let error = Shape::new(&[(10, 1), (5, 2)])
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err(
                "shape point 1: utilization 5 is not above the previous point's 10; \
                 list the points in increasing utilization"
                    .into()
            )
        );
    }

    #[test]
    fn scores_stay_exact_on_nodes_with_petabytes_of_memory() {
        let huge = 1u64 << 62;
        assert_eq!(least((0, huge / 2), (1000, huge)), 75);
        assert_eq!(most((0, huge / 2), (1000, huge)), 25);
    }

    #[test]
    fn requested_with_adds_the_pod_to_the_chosen_sums() {
        let mut info = NodeInfo::new(Node::new("n", amounts(4000, 8 << 30)));
        info.add(&Pod::new("a", amounts(0, 1 << 30)));
        let pod = Pod::new("p", amounts(500, 0));
        assert_eq!(
            requested_with(&pod, &info.load(), false),
            amounts(500, 1 << 30)
        );
        assert_eq!(
            requested_with(&pod, &info.load(), true),
            amounts(600, (1 << 30) + (200 << 20))
        );
    }
}
