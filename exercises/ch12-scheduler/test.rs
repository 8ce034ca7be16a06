//! Tests for exercise ch12-scheduler. The statement is at the top of `most_allocated.rs`.
//!
//! Pure arithmetic: no root, no node. Each case is one of kube-scheduler's own, from
//! `TestMostAllocatedScoringStrategy` in
//! pkg/scheduler/framework/plugins/noderesources/most_allocated_test.go, named by its
//! `name` there, with kube's expected score copied as it is. kube's table gives nodes,
//! the pods already on them and the pod to place; here they are added up into the
//! `requested` and `capacity` the scorer sees, with kube's non-zero defaults for
//! containers that request nothing. Left out: the cases that test kube's configuration
//! (no resources, weights of -1, 0 or 101 are refused before anything is scored), and
//! "honor extended resource if the pod request", which scores a third resource.
//!
//! When a score is wrong, the failure says which of the usual mistakes gives the score
//! you got.

#[cfg_attr(not(feature = "solution"), path = "most_allocated.rs")]
#[cfg_attr(
    feature = "solution",
    path = "../solutions/ch12-scheduler/most_allocated.rs"
)]
mod most_allocated;
mod resources;

use most_allocated::{most_allocated, most_requested_score};
use resources::{Amounts, Weights};

/// CPU a container without a CPU request counts as when scored (kube's
/// `DefaultMilliCPURequest`).
const NON_ZERO_CPU_MILLI: u64 = 100;
/// Memory a container without a memory request counts as when scored (kube's
/// `DefaultMemoryRequest`).
const NON_ZERO_MEMORY: u64 = mi(200);

/// `n` whole CPUs, in millicores. kube's table writes most CPU amounts as bare
/// quantities: its `"cpu": "4000"` is 4000 CPUs, 4000000m.
const fn cpus(n: u64) -> u64 {
    n * 1000
}

/// `n` MiB, in bytes: kube's `"1000Mi"`.
const fn mi(n: u64) -> u64 {
    n << 20
}

/// `cpu_milli` millicores and `memory` bytes.
const fn amounts(cpu_milli: u64, memory: u64) -> Amounts {
    Amounts { cpu_milli, memory }
}

/// The weights kube's table calls `defaultResources`: CPU 1, memory 1.
const DEFAULT: Weights = Weights::DEFAULT;

/// One node of one of kube's cases.
struct Case {
    /// The case's `name` in most_allocated_test.go.
    kube: &'static str,
    /// The node, as kube's table names it.
    node: &'static str,
    /// What the pods on the node and the new pod request, added up.
    requested: Amounts,
    /// The node's allocatable CPU and memory.
    capacity: Amounts,
    /// The weights of the case's `resources`.
    weights: Weights,
    /// kube's expected score.
    score: i64,
    /// kube's working, from the comment above its case.
    working: &'static str,
}

/// One resource's score as kube computes it, and as each usual mistake does.
fn resource_score(requested: u64, capacity: u64, mistake: Option<Mistake>) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    let capped = requested.min(capacity);
    match mistake {
        Some(Mistake::Float) => capped as f64 * 100.0 / capacity as f64,
        Some(Mistake::NoCap) => (requested * 100 / capacity) as f64,
        Some(Mistake::DivideFirst) => (capped / capacity * 100) as f64,
        _ => (capped * 100 / capacity) as f64,
    }
}

/// The mistakes a failure looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mistake {
    Float,
    NoCap,
    DivideFirst,
    NoWeights,
    OverResourceCount,
    SwappedWeights,
    NoDivision,
}

impl Mistake {
    const ALL: [Mistake; 7] = [
        Mistake::Float,
        Mistake::NoCap,
        Mistake::DivideFirst,
        Mistake::NoWeights,
        Mistake::OverResourceCount,
        Mistake::SwappedWeights,
        Mistake::NoDivision,
    ];

    /// What was done wrong, as the end of "your score is the one you get if ...".
    fn words(self) -> &'static str {
        match self {
            Mistake::Float => {
                "you compute in f64 and round: kube computes in int64, and its divisions \
                 round down"
            }
            Mistake::NoCap => {
                "you forget the cap: a requested amount above the capacity counts as the \
                 capacity, so no resource scores over 100"
            }
            Mistake::DivideFirst => {
                "you divide before you multiply: in integers, requested / capacity is 0 \
                 until the node is full; multiply by 100 first"
            }
            Mistake::NoWeights => {
                "you forget the weights: the node's score is the weighted mean of the \
                 resource scores, not their plain mean"
            }
            Mistake::OverResourceCount => {
                "you divide by the number of resources, 2: divide by the sum of the weights"
            }
            Mistake::SwappedWeights => {
                "you swap the weights: the CPU weight goes with the CPU score, the memory \
                 weight with the memory score"
            }
            Mistake::NoDivision => {
                "you do not divide the weighted sum: divide it by the sum of the weights"
            }
        }
    }
}

impl Case {
    /// The node's score as kube computes it, or as `mistake` does.
    fn score_with(&self, mistake: Option<Mistake>) -> i64 {
        let cpu = resource_score(self.requested.cpu_milli, self.capacity.cpu_milli, mistake);
        let memory = resource_score(self.requested.memory, self.capacity.memory, mistake);
        let (wc, wm) = (self.weights.cpu as f64, self.weights.memory as f64);
        let score = match mistake {
            Some(Mistake::Float) => return ((cpu * wc + memory * wm) / (wc + wm)).round() as i64,
            Some(Mistake::NoWeights) => (cpu + memory) / 2.0,
            Some(Mistake::OverResourceCount) => (cpu * wc + memory * wm) / 2.0,
            Some(Mistake::SwappedWeights) => (cpu * wm + memory * wc) / (wc + wm),
            Some(Mistake::NoDivision) => cpu * wc + memory * wm,
            _ => (cpu * wc + memory * wm) / (wc + wm),
        };
        // Every term is a whole number here: this is int64 division, rounding down.
        score.floor() as i64
    }

    /// Which of the usual mistakes gives `got`, as a sentence for a failure.
    fn what_went_wrong(&self, got: i64) -> String {
        Mistake::ALL
            .into_iter()
            .map(|mistake| (mistake, self.score_with(Some(mistake))))
            .filter(|(_, score)| *score != self.score)
            .find(|(_, score)| *score == got)
            .map(|(mistake, _)| format!("your score is the one you get if {}", mistake.words()))
            .unwrap_or_else(|| {
                "it is none of the usual mistakes: work out each resource's score, then \
                 their weighted mean, by hand as kube's working does"
                    .to_string()
            })
    }
}

/// Fail unless each node of `cases` gets kube's score.
fn check(cases: &[Case]) {
    for case in cases {
        assert_eq!(
            case.score_with(None),
            case.score,
            "the test's own arithmetic for {} disagrees with kube's",
            case.node
        );
        let got = most_allocated(case.requested, case.capacity, &case.weights);
        assert_eq!(
            got,
            case.score,
            "kube case \"{}\", {}: requested {} of {}, weights cpu {} and memory {}: kube \
             scores it {} ({}), yours gave {got}: {}",
            case.kube,
            case.node,
            case.requested,
            case.capacity,
            case.weights.cpu,
            case.weights.memory,
            case.score,
            case.working,
            case.what_went_wrong(got)
        );
    }
}

#[test]
fn a_node_with_nothing_requested_of_it_scores_0() {
    // kube: "nothing scheduled, nothing requested". No pod on either node, and the new
    // pod has no containers at all: nothing to count, not even the non-zero defaults.
    let kube = "nothing scheduled, nothing requested";
    let working = "cpu 0 * 100 / 4000 = 0, memory 0 * 100 / 10000 = 0, (0 + 0) / 2 = 0";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(0, 0),
            capacity: amounts(cpus(4000), 10_000),
            weights: DEFAULT,
            score: 0,
            working,
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(0, 0),
            capacity: amounts(cpus(4000), 10_000),
            weights: DEFAULT,
            score: 0,
            working,
        },
    ]);
}

#[test]
fn of_two_nodes_the_one_the_pod_fills_more_scores_higher_rounded_down() {
    // kube: "nothing scheduled, resources requested, differently sized nodes" (its first
    // case of that name, with the default weights). Empty nodes; the pod's two containers
    // request 1000 + 2000 CPUs and 2000 + 3000 bytes.
    let kube = "nothing scheduled, resources requested, differently sized nodes";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(cpus(3000), 5000),
            capacity: amounts(cpus(4000), 10_000),
            weights: DEFAULT,
            score: 62,
            working: "cpu 3000 * 100 / 4000 = 75, memory 5000 * 100 / 10000 = 50, \
                      (75 + 50) / 2 = 62",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(cpus(3000), 5000),
            capacity: amounts(cpus(6000), 10_000),
            weights: DEFAULT,
            score: 50,
            working: "cpu 3000 * 100 / 6000 = 50, memory 5000 * 100 / 10000 = 50, \
                      (50 + 50) / 2 = 50",
        },
    ]);
}

#[test]
fn the_pods_already_on_a_node_count_toward_its_score() {
    // kube: "no resources requested, pods scheduled with resources". The new pod has no
    // containers. On node1, two pods of 3000 CPUs and memory "0" (set to zero, so no
    // default: only a request that is not there at all gets one); on node2, one of 3000
    // CPUs and "0", one of 3000 CPUs and 5000 bytes.
    let kube = "no resources requested, pods scheduled with resources";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(cpus(3000 + 3000), 0),
            capacity: amounts(cpus(10_000), 20_000),
            weights: DEFAULT,
            score: 30,
            working: "cpu 6000 * 100 / 10000 = 60, memory 0 * 100 / 20000 = 0, \
                      (60 + 0) / 2 = 30",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(cpus(3000 + 3000), 5000),
            capacity: amounts(cpus(10_000), 20_000),
            weights: DEFAULT,
            score: 42,
            working: "cpu 6000 * 100 / 10000 = 60, memory 5000 * 100 / 20000 = 25, \
                      (60 + 25) / 2 = 42",
        },
    ]);
}

#[test]
fn the_new_pods_requests_add_to_those_of_the_pods_on_the_node() {
    // kube: "resources requested, pods scheduled with resources". The new pod requests
    // 1000 + 2000 CPUs and 2000 + 3000 bytes. On node1, a pod of 3000 CPUs and memory
    // "0"; on node2, a pod of 3000 CPUs and 5000 bytes.
    let kube = "resources requested, pods scheduled with resources";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(cpus(3000 + 3000), 5000),
            capacity: amounts(cpus(10_000), 20_000),
            weights: DEFAULT,
            score: 42,
            working: "cpu 6000 * 100 / 10000 = 60, memory 5000 * 100 / 20000 = 25, \
                      (60 + 25) / 2 = 42",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(cpus(3000 + 3000), 5000 + 5000),
            capacity: amounts(cpus(10_000), 20_000),
            weights: DEFAULT,
            score: 55,
            working: "cpu 6000 * 100 / 10000 = 60, memory 10000 * 100 / 20000 = 50, \
                      (60 + 50) / 2 = 55",
        },
    ]);
}

#[test]
fn a_resource_requested_to_its_full_capacity_scores_100() {
    // kube: "resources requested equal node capacity". Empty nodes; the pod requests
    // 2000 + 3000 CPUs and 4000 + 5000 bytes.
    let kube = "resources requested equal node capacity";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(cpus(5000), 9000),
            capacity: amounts(cpus(5000), 10_000),
            weights: DEFAULT,
            score: 95,
            working: "cpu 5000 * 100 / 5000 = 100, memory 9000 * 100 / 10000 = 90, \
                      (100 + 90) / 2 = 95",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(cpus(5000), 9000),
            capacity: amounts(cpus(10_000), 9000),
            weights: DEFAULT,
            score: 75,
            working: "cpu 5000 * 100 / 10000 = 50, memory 9000 * 100 / 9000 = 100, \
                      (50 + 100) / 2 = 75",
        },
    ]);
}

#[test]
fn a_memory_weight_of_2_counts_the_memory_score_twice() {
    // kube: "nothing scheduled, resources requested, differently sized nodes" (its second
    // case of that name, with resources memory weight 2 and cpu weight 1). The pod and
    // nodes of the first one.
    let kube = "nothing scheduled, resources requested, differently sized nodes";
    let weights = Weights { cpu: 1, memory: 2 };
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(cpus(3000), 5000),
            capacity: amounts(cpus(4000), 10_000),
            weights,
            score: 58,
            working: "cpu 3000 * 100 / 4000 = 75, memory 5000 * 100 / 10000 = 50, \
                      (75 * 1 + 50 * 2) / (1 + 2) = 58",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(cpus(3000), 5000),
            capacity: amounts(cpus(6000), 10_000),
            weights,
            score: 50,
            working: "cpu 3000 * 100 / 6000 = 50, memory 5000 * 100 / 10000 = 50, \
                      (50 * 1 + 50 * 2) / (1 + 2) = 50",
        },
    ]);
}

#[test]
fn containers_without_requests_count_as_100m_and_200mi_capped_at_the_capacity() {
    // kube: "no resources requested, pods scheduled, nonzero request for resource". Every
    // pod has one container that requests nothing: each counts as 100m and 200Mi. Two
    // such pods on node1, none on node2, and the new pod: 300m on node1's 250m, more than
    // it has, so CPU counts as 250m of 250m.
    let kube = "no resources requested, pods scheduled, nonzero request for resource";
    check(&[
        Case {
            kube,
            node: "node1",
            requested: amounts(3 * NON_ZERO_CPU_MILLI, 3 * NON_ZERO_MEMORY),
            capacity: amounts(250, mi(1000)),
            weights: DEFAULT,
            score: 80,
            working: "cpu 300m of 250m capped: 100, memory 600Mi * 100 / 1000Mi = 60, \
                      (100 + 60) / 2 = 80",
        },
        Case {
            kube,
            node: "node2",
            requested: amounts(NON_ZERO_CPU_MILLI, NON_ZERO_MEMORY),
            capacity: amounts(250, mi(1000)),
            weights: DEFAULT,
            score: 30,
            working: "cpu 100m * 100 / 250m = 40, memory 200Mi * 100 / 1000Mi = 20, \
                      (40 + 20) / 2 = 30",
        },
    ]);
}

#[test]
fn an_extended_resource_the_pod_does_not_request_leaves_cpu_and_memory_to_decide() {
    // kube: "bypass extended resource if the pod does not request" (weights cpu 1, memory
    // 1 and the extended resource 1) and "if the node doesn't have a resource" (weights
    // cpu 1, memory 1 and the extended resource 2). The pod requests no extended
    // resource, so kube leaves it out of the sums, weight and all: what is left is CPU and
    // memory, weighted 1 and 1, whether the node has the extended resource or not.
    let bypass = "bypass extended resource if the pod does not request";
    let missing = "if the node doesn't have a resource";
    let bypass_working = "cpu 3000 * 100 / 6000 = 50, memory 5000 * 100 / 10000 = 50, \
                          (50 + 50) / 2 = 50";
    let missing_working = "cpu 3000 * 100 / 6000 = 50, memory 4000 * 100 / 10000 = 40, \
                           (50 * 1 + 40 * 1) / (1 + 1) = 45";
    check(&[
        Case {
            kube: bypass,
            node: "node1",
            requested: amounts(cpus(1000 + 2000), 2000 + 3000),
            capacity: amounts(cpus(6000), 10_000),
            weights: DEFAULT,
            score: 50,
            working: bypass_working,
        },
        Case {
            kube: bypass,
            node: "node2 (with 4 of the extended resource)",
            requested: amounts(cpus(1000 + 2000), 2000 + 3000),
            capacity: amounts(cpus(6000), 10_000),
            weights: DEFAULT,
            score: 50,
            working: bypass_working,
        },
        Case {
            kube: missing,
            node: "node1",
            requested: amounts(cpus(3000), 4000),
            capacity: amounts(cpus(6000), 10_000),
            weights: DEFAULT,
            score: 45,
            working: missing_working,
        },
        Case {
            kube: missing,
            node: "node2 (with 4 of the extended resource)",
            requested: amounts(cpus(3000), 4000),
            capacity: amounts(cpus(6000), 10_000),
            weights: DEFAULT,
            score: 45,
            working: missing_working,
        },
    ]);
}

/// Fail unless one resource's score is kube's, saying which usual mistake gives the one
/// that came back.
fn check_resource(requested: u64, capacity: u64, score: i64, why: &str) {
    let got = most_requested_score(requested, capacity);
    let mistake = [Mistake::Float, Mistake::NoCap, Mistake::DivideFirst]
        .into_iter()
        .map(|mistake| (mistake, resource_score(requested, capacity, Some(mistake))))
        .map(|(mistake, score)| (mistake, score.round() as i64))
        .filter(|(_, wrong)| *wrong != score)
        .find(|(_, wrong)| *wrong == got)
        .map(|(mistake, _)| format!(": that is what you get if {}", mistake.words()))
        .unwrap_or_default();
    assert_eq!(
        got, score,
        "most_requested_score({requested}, {capacity}) should be {score} ({why}), but it is \
         {got}{mistake}"
    );
}

#[test]
fn one_resource_scores_requested_times_100_over_capacity() {
    // The resource scores in the working of kube's cases above.
    for (requested, capacity, score) in [
        (cpus(3000), cpus(4000), 75),
        (5000, 10_000, 50),
        (cpus(3000), cpus(6000), 50),
        (5000, 20_000, 25),
        (9000, 10_000, 90),
        (0, 20_000, 0),
        (mi(600), mi(1000), 60),
        (NON_ZERO_CPU_MILLI, 250, 40),
    ] {
        check_resource(requested, capacity, score, "requested * 100 / capacity");
    }
}

#[test]
fn one_resource_requested_to_or_past_its_capacity_scores_100() {
    // kube: "resources requested equal node capacity" (node1's CPU), and "no resources
    // requested, pods scheduled, nonzero request for resource" (node1's CPU: three pods
    // of 100m on 250m).
    check_resource(cpus(5000), cpus(5000), 100, "all of it");
    check_resource(
        3 * NON_ZERO_CPU_MILLI,
        250,
        100,
        "more than all of it counts as all of it",
    );
}

#[test]
fn a_resource_the_node_has_none_of_scores_0() {
    // Not a case of kube's table: the first check in kube's mostRequestedScore
    // (most_allocated.go), `if capacity == 0 { return 0 }`.
    check_resource(0, 0, 0, "a capacity of 0 scores 0");
    check_resource(
        NON_ZERO_MEMORY,
        0,
        0,
        "a capacity of 0 scores 0, before anything divides by it",
    );
}

#[test]
fn weights_that_add_up_to_0_score_0() {
    // Not a case of kube's table: the check in kube's mostResourceScorer
    // (most_allocated.go), `if weightSum == 0 { return 0 }`.
    let got = most_allocated(
        amounts(cpus(3000), 5000),
        amounts(cpus(4000), 10_000),
        &Weights { cpu: 0, memory: 0 },
    );
    assert_eq!(
        got, 0,
        "weights that add up to 0 should score 0, before anything divides by their sum"
    );
}
