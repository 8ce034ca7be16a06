//! The scheduling cycle: filter the nodes, score the ones left, bind the pod to the best.
//!
//! kube-scheduler runs each pending pod through a pipeline of plugins at fixed
//! *extension points*; this module keeps the two that decide where a pod goes:
//!
//! | kube's extension point | here |
//! |---|---|
//! | PreFilter, Filter | [`filters::fits`], then [`filters::filter`] to explain a failure |
//! | PostFilter (preemption) | none: a pod that fits nowhere stays pending, with a [`FitError`] |
//! | PreScore, Score, NormalizeScore | [`Policy::score`] on each node that passed |
//! | Reserve, Bind | [`Cluster::bind`]: the node's requested amounts grow by the pod's |
//!
//! Pods are placed one at a time in arrival order ([`Cluster::place_all`]), as kube places
//! them, or as a batch at once ([`Cluster::place_batch`]): bin-centric, one node filled
//! with the pods that fit it best before the next is opened. Seeing the whole batch lets
//! it put the large pods first and match pods that complement each other.
//!
//! A cluster can be fixed (the nodes there are) or *growing*, as one with kube's cluster
//! autoscaler: a pod that fits no node opens a new, empty one. The nodes a growing
//! cluster ends with are the number a policy needs, to compare with the lower bounds.

use super::filters::{self, FitError};
use super::model::{Amounts, Load, Node, NodeInfo, Pod};
use super::packers;
use super::scorers::{self, Shape, Weights};

/// How nodes that pass the filters are ranked.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// kube's default profile: LeastAllocated and BalancedAllocation, weight 1 each.
    KubeDefault,
    /// kube's LeastAllocated: the emptiest node. Spreads pods out.
    LeastAllocated,
    /// kube's MostAllocated: the fullest node. Packs them in.
    MostAllocated,
    /// kube's BalancedAllocation: the node whose CPU and memory end equally used.
    BalancedAllocation,
    /// kube's RequestedToCapacityRatio: a score for each utilisation, from a shape.
    RequestedToCapacityRatio(Shape),
    /// Best fit by the L2 norm of the free amounts left ([`packers::best_fit_l2`]).
    BestFitL2,
    /// The dot product of the demand and the free amounts ([`packers::dot_product`]):
    /// Tetris's alignment. It favours roomier nodes, so online it spreads; batch mode
    /// uses it to choose which pod fills the node at hand.
    DotProduct,
}

impl Policy {
    /// A short name for tables: `kube-default`, `most-allocated`, `best-fit-l2`.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::KubeDefault => "kube-default",
            Policy::LeastAllocated => "least-allocated",
            Policy::MostAllocated => "most-allocated",
            Policy::BalancedAllocation => "balanced-allocation",
            Policy::RequestedToCapacityRatio(_) => "requested-to-capacity-ratio",
            Policy::BestFitL2 => "best-fit-l2",
            Policy::DotProduct => "dot-product",
        }
    }

    // ANCHOR: score
    /// The score of a node with `load` for `pod`, which passed the filters there: the
    /// higher, the better. kube's scorers give their integers from 0 to 100.
    pub fn score(&self, pod: &Pod, load: &Load) -> f64 {
        let allocatable = load.allocatable;
        let weights = Weights::default();
        // kube scores with each zero request counted as a small default, so that pods
        // without requests still spread; BalancedAllocation and the packers use the real
        // requests.
        let non_zero = scorers::requested_with(pod, load, true);
        let real = scorers::requested_with(pod, load, false);
        let score = match self {
            Policy::KubeDefault => {
                scorers::least_allocated(non_zero, allocatable, &weights)
                    + balanced(pod, real, allocatable)
            }
            Policy::LeastAllocated => scorers::least_allocated(non_zero, allocatable, &weights),
            Policy::MostAllocated => scorers::most_allocated(non_zero, allocatable, &weights),
            Policy::BalancedAllocation => balanced(pod, real, allocatable),
            Policy::RequestedToCapacityRatio(shape) => {
                scorers::requested_to_capacity_ratio(non_zero, allocatable, shape, &weights)
            }
            Policy::BestFitL2 => {
                return packers::best_fit_l2(allocatable.minus(real), allocatable);
            }
            Policy::DotProduct => {
                let free = allocatable.minus(load.requested);
                return packers::dot_product(pod.requests, free, allocatable);
            }
        };
        score as f64
    }
    // ANCHOR_END: score
}

/// BalancedAllocation's score, 0 for a pod that requests nothing: kube skips the plugin
/// for such a pod, which is the same as adding 0 on every node.
fn balanced(pod: &Pod, requested: Amounts, allocatable: Amounts) -> i64 {
    if scorers::is_best_effort(pod) {
        0
    } else {
        scorers::balanced_allocation(requested, allocatable)
    }
}

/// For a pod without a selector or host ports on a plain node: whether the resource
/// filter passes ([`filters::resources_fit`]'s rules, on the packed record).
fn fits_plain(load: &Load, pod: &Pod) -> bool {
    let short = |want: u64, requested: u64, allocatable: u64| {
        want > 0 && requested.saturating_add(want) > allocatable
    };
    load.pods < load.max_pods
        && !short(
            pod.requests.cpu_milli,
            load.requested.cpu_milli,
            load.allocatable.cpu_milli,
        )
        && !short(
            pod.requests.memory,
            load.requested.memory,
            load.allocatable.memory,
        )
}

/// How a list of pods is placed: one at a time by a policy, as kube places them, or
/// as one batch ([`Cluster::place_batch`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Placing {
    /// One pod at a time, in the list's order, by this policy.
    Online(Policy),
    /// All at once, bin-centric.
    Batch,
}

impl Placing {
    /// The policy's name, or `batch`.
    pub fn name(&self) -> &'static str {
        match self {
            Placing::Online(policy) => policy.name(),
            Placing::Batch => "batch",
        }
    }
}

/// Where each pod of a list went.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// For each pod, in the list's order, the index of its node, or `None`: pending.
    pub nodes: Vec<Option<usize>>,
    /// The pods left pending, by index, and why.
    pub pending: Vec<(usize, FitError)>,
}

/// The nodes, with what is placed on them.
#[derive(Debug, Clone)]
pub struct Cluster {
    nodes: Vec<NodeInfo>,
    /// Each node's [`Load`], kept beside it for the scheduling loop.
    loads: Vec<Load>,
    /// For a growing cluster: the node a pod that fits nowhere opens.
    template: Option<Node>,
}

impl Cluster {
    /// A fixed cluster of `nodes`, all empty.
    pub fn new(nodes: Vec<Node>) -> Cluster {
        let nodes: Vec<NodeInfo> = nodes.into_iter().map(NodeInfo::new).collect();
        Cluster {
            loads: nodes.iter().map(NodeInfo::load).collect(),
            nodes,
            template: None,
        }
    }

    /// A growing cluster, empty at first: each node it opens is a copy of `template`,
    /// named `node-1`, `node-2`, and so on.
    pub fn growing(template: Node) -> Cluster {
        Cluster {
            nodes: Vec::new(),
            loads: Vec::new(),
            template: Some(template),
        }
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many nodes have at least one pod.
    pub fn used(&self) -> usize {
        self.nodes.iter().filter(|n| n.pods > 0).count()
    }

    // ANCHOR: schedule
    /// The node `pod` would go to: the best-scoring one among those that pass the
    /// filters, the first of them on a tie (kube picks one of the tied at random; the
    /// first keeps every run the same). `Err`: none passes, and why each failed.
    pub fn schedule(&self, pod: &Pod, policy: &Policy) -> Result<usize, FitError> {
        let mut best: Option<(usize, f64)> = None;
        let plain_pod = pod.node_selector.is_empty() && pod.host_ports.is_empty();
        for (index, load) in self.loads.iter().enumerate() {
            let fits = if plain_pod && load.plain {
                fits_plain(load, pod)
            } else {
                filters::fits(pod, &self.nodes[index])
            };
            if !fits {
                continue;
            }
            let score = policy.score(pod, load);
            if best.is_none_or(|(_, top)| score > top) {
                best = Some((index, score));
            }
        }
        best.map(|(index, _)| index)
            .ok_or_else(|| self.explain(pod))
    }
    // ANCHOR_END: schedule

    /// Why `pod` fits no node: each node's reasons, counted the way kube counts them.
    pub fn explain(&self, pod: &Pod) -> FitError {
        let mut error = FitError::new();
        for node in &self.nodes {
            error.add_node(&filters::filter(pod, node).err().unwrap_or_default());
        }
        error
    }

    /// Records `pod` as placed on node `node`.
    pub fn bind(&mut self, pod: &Pod, node: usize) {
        self.nodes[node].add(pod);
        self.loads[node] = self.nodes[node].load();
    }

    /// Schedules `pod` and binds it; in a growing cluster, a pod that fits no node opens
    /// a new one, if it fits an empty node at all.
    pub fn place(&mut self, pod: &Pod, policy: &Policy) -> Result<usize, FitError> {
        match self.schedule(pod, policy) {
            Ok(node) => {
                self.bind(pod, node);
                Ok(node)
            }
            Err(error) => {
                let node = self.open_for(pod).ok_or(error)?;
                self.bind(pod, node);
                Ok(node)
            }
        }
    }

    /// Places `pods` one at a time, in order.
    pub fn place_all(&mut self, pods: &[Pod], policy: &Policy) -> Placement {
        let mut placement = Placement {
            nodes: Vec::with_capacity(pods.len()),
            pending: Vec::new(),
        };
        for (index, pod) in pods.iter().enumerate() {
            match self.place(pod, policy) {
                Ok(node) => placement.nodes.push(Some(node)),
                Err(error) => {
                    placement.nodes.push(None);
                    placement.pending.push((index, error));
                }
            }
        }
        placement
    }

    /// Places `pods` the way `placing` says.
    pub fn place_by(&mut self, pods: &[Pod], placing: &Placing) -> Placement {
        match placing {
            Placing::Online(policy) => self.place_all(pods, policy),
            Placing::Batch => self.place_batch(pods),
        }
    }

    // ANCHOR: batch
    /// Places `pods` as one batch, bin-centric: takes the nodes in order (opening new
    /// ones in a growing cluster) and fills each before the next. Into the node at hand
    /// goes, again and again, the pending pod that fits it and whose demand best matches
    /// what the node has left (the largest dot product), until none fits.
    pub fn place_batch(&mut self, pods: &[Pod]) -> Placement {
        let mut nodes = vec![None; pods.len()];
        // Largest first, so that ties in the dot product go to the pod harder to place.
        let capacity = self
            .template
            .as_ref()
            .map(|t| t.allocatable)
            .or_else(|| self.nodes.first().map(|n| n.node.allocatable))
            .unwrap_or_default();
        let mut pending: Vec<usize> = (0..pods.len()).collect();
        pending.sort_by(|&a, &b| {
            let size = |i: usize| packers::size(pods[i].requests, capacity);
            size(b).total_cmp(&size(a))
        });
        let mut node = 0;
        while !pending.is_empty() {
            if node == self.nodes.len() {
                // Out of nodes: a growing cluster opens one if a pending pod fits it.
                if !pending.iter().any(|&i| self.open_for(&pods[i]).is_some()) {
                    break;
                }
            }
            loop {
                let info = &self.nodes[node];
                let free = info.free();
                let best = pending
                    .iter()
                    .enumerate()
                    .filter(|&(_, &i)| filters::fits(&pods[i], info))
                    .map(|(at, &i)| {
                        let fit =
                            packers::dot_product(pods[i].requests, free, info.node.allocatable);
                        (at, fit)
                    })
                    .fold(None, |best: Option<(usize, f64)>, (at, fit)| match best {
                        Some((_, top)) if top >= fit => best,
                        _ => Some((at, fit)),
                    });
                let Some((at, _)) = best else { break };
                let pod = pending.remove(at);
                self.bind(&pods[pod], node);
                nodes[pod] = Some(node);
            }
            node += 1;
        }
        let pending = pending
            .into_iter()
            .map(|i| (i, self.explain(&pods[i])))
            .collect();
        Placement { nodes, pending }
    }
    // ANCHOR_END: batch

    /// In a growing cluster, opens a node for `pod` if it fits an empty one, and
    /// returns its index.
    fn open_for(&mut self, pod: &Pod) -> Option<usize> {
        let template = self.template.as_ref()?;
        let mut node = template.clone();
        node.name = format!("node-{}", self.nodes.len() + 1);
        let info = NodeInfo::new(node);
        if !filters::fits(pod, &info) {
            return None;
        }
        self.loads.push(info.load());
        self.nodes.push(info);
        Some(self.nodes.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::model::{Amounts, Taint, TaintEffect};

    const GI: u64 = 1 << 30;

    fn two_nodes_one_half_full() -> Cluster {
        let mut cluster = Cluster::new(vec![
            Node::new("empty", Amounts::new(4000, 8 * GI)),
            Node::new("half", Amounts::new(4000, 8 * GI)),
        ]);
        cluster.bind(&Pod::new("old", Amounts::new(2000, 4 * GI)), 1);
        cluster
    }

    #[test]
    fn least_allocated_spreads_to_the_emptiest_node() {
        let pod = Pod::new("new", Amounts::new(1000, GI));
        let cluster = two_nodes_one_half_full();
        assert_eq!(cluster.schedule(&pod, &Policy::LeastAllocated), Ok(0));
        assert_eq!(cluster.schedule(&pod, &Policy::KubeDefault), Ok(0));
    }

    #[test]
    fn most_allocated_and_the_packers_pack_into_the_fullest_node() {
        let pod = Pod::new("new", Amounts::new(1000, GI));
        let cluster = two_nodes_one_half_full();
        for policy in [Policy::MostAllocated, Policy::BestFitL2] {
            assert_eq!(cluster.schedule(&pod, &policy), Ok(1), "{}", policy.name());
        }
        // The dot product aligns the demand with what is free, and more is free on the
        // empty node: on its own it spreads. It packs in batch mode, choosing which pod
        // goes into the node at hand.
        assert_eq!(cluster.schedule(&pod, &Policy::DotProduct), Ok(0));
    }

    #[test]
    fn a_pod_that_fits_nowhere_gets_kubes_reason_for_every_node() {
        let mut nodes: Vec<Node> = (1..=4)
            .map(|n| Node::new(format!("node-{n}"), Amounts::new(500, GI)))
            .collect();
        nodes[3].taints.push(Taint {
            key: "gpu".into(),
            value: "yes".into(),
            effect: TaintEffect::NoSchedule,
        });
        let cluster = Cluster::new(nodes);
        let error = cluster
            .schedule(&Pod::new("huge", Amounts::new(750, 0)), &Policy::BestFitL2)
            .expect_err("750m fits no 500m node");
        assert_eq!(
            error.to_string(),
            "0/4 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 3 Insufficient cpu."
        );
    }

    #[test]
    fn a_growing_cluster_opens_a_node_only_when_no_node_fits() {
        let mut cluster = Cluster::growing(Node::new("node", Amounts::new(1000, GI)));
        let pods: Vec<Pod> = (0..5)
            .map(|i| Pod::new(format!("p{i}"), Amounts::new(400, 0)))
            .collect();
        let placement = cluster.place_all(&pods, &Policy::BestFitL2);
        assert_eq!(
            placement.nodes,
            [Some(0), Some(0), Some(1), Some(1), Some(2)]
        );
        assert_eq!(cluster.nodes()[2].node.name, "node-3");
        assert!(placement.pending.is_empty());
        let too_big = Pod::new("big", Amounts::new(2000, 0));
        let error = cluster
            .place(&too_big, &Policy::BestFitL2)
            .expect_err("fits no node");
        assert_eq!(error.nodes, 3, "no node opened for it: {error}");
    }

    #[test]
    fn batch_mode_matches_pods_that_fill_a_node_together() {
        // One at a time, best fit puts 500m and 400m together and needs three nodes for
        // 500m, 400m, 600m, 500m; seeing the batch, 600m goes with 400m and 500m with
        // 500m: two nodes.
        let pods: Vec<Pod> = [500, 400, 600, 500]
            .iter()
            .enumerate()
            .map(|(i, &cpu)| Pod::new(format!("p{i}"), Amounts::new(cpu, 0)))
            .collect();
        let node = Node::new("node", Amounts::new(1000, GI));
        let mut online = Cluster::growing(node.clone());
        online.place_all(&pods, &Policy::BestFitL2);
        let mut batch = Cluster::growing(node);
        let placement = batch.place_batch(&pods);
        assert_eq!(online.used(), 3);
        assert_eq!(batch.used(), 2);
        assert!(placement.nodes.iter().all(Option::is_some));
    }
}
