//! kube-scheduler's filter plugins: the reasons a node cannot take a pod.
//!
//! A filter answers one yes-or-no question about one node. kube's default profile runs five
//! that matter here, in this order (`pkg/scheduler/apis/config/v1/default_plugins.go`):
//!
//! 1. **NodeUnschedulable**: a cordoned node takes no pod, unless the pod tolerates the
//!    `node.kubernetes.io/unschedulable:NoSchedule` taint that cordoning stands for;
//! 2. **TaintToleration**: every `NoSchedule` and `NoExecute` taint must be tolerated
//!    (`PreferNoSchedule` only lowers a score, so filters ignore it);
//! 3. **NodeAffinity**: every label of the pod's node selector must be on the node, with
//!    the same value;
//! 4. **NodePorts**: no host port (number and protocol) may already be taken;
//! 5. **NodeResourcesFit**: the node must have a pod slot left, and for each resource the
//!    pod requests, room for the request beside what is already requested there.
//!
//! kube's NodeName plugin, second in that list, is left out: pods here never name their
//! node.
//!
//! The framework stops at the first plugin that rejects a node, so a cordoned node that is
//! also full is reported as cordoned only. Within NodeResourcesFit every shortage is
//! reported, pods first, then cpu, then memory.
//!
//! When no node passes, the pod stays pending and kube explains why with a [`FitError`]:
//! the reasons counted over the nodes, each `"<count> <reason>"`, sorted as strings, so
//! `0/4 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 3 Insufficient cpu.`
//! The texts of [`Unfit`] are kube's, letter for letter, because that message is what users
//! paste into search engines.
//!
//! Filters run for every node for every pod, so the checks here allocate nothing on
//! success: [`fits`] answers the question without building reasons, and [`filter`] is
//! used to explain a failure.
//!
//! See also kube's [scheduling framework](https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use super::model::{NodeInfo, Pod, Resource, Taint, TaintEffect};

/// The taint a cordoned node stands for (kube's `v1.TaintNodeUnschedulable`).
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// Built once: checking a cordoned node must not allocate a taint per call.
static UNSCHEDULABLE_TAINT: LazyLock<Taint> = LazyLock::new(|| Taint {
    key: UNSCHEDULABLE_TAINT_KEY.to_string(),
    value: String::new(),
    effect: TaintEffect::NoSchedule,
});

/// Why a node cannot take a pod: one variant per filter reason, shown in kube's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unfit {
    /// The pod's request for this resource does not fit beside what is requested already.
    Insufficient(Resource),
    /// The node already runs its `max_pods`.
    TooManyPods,
    /// The node is cordoned and the pod does not tolerate that.
    Unschedulable,
    /// The first `NoSchedule` or `NoExecute` taint the pod does not tolerate.
    UntoleratedTaint(Taint),
    /// A label of the pod's node selector is missing or has another value.
    SelectorMismatch,
    /// A host port the pod asks for is taken.
    PortsInUse,
}

impl fmt::Display for Unfit {
    /// kube's reason strings, from noderesources/fit.go, nodeunschedulable,
    /// tainttoleration, nodeaffinity and nodeports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::Insufficient(resource) => write!(f, "Insufficient {resource}"),
            Unfit::TooManyPods => f.write_str("Too many pods"),
            Unfit::Unschedulable => f.write_str("node(s) were unschedulable"),
            Unfit::UntoleratedTaint(taint) => write!(
                f,
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key, taint.value
            ),
            Unfit::SelectorMismatch => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Unfit::PortsInUse => {
                f.write_str("node(s) didn't have free ports for the requested pod ports")
            }
        }
    }
}

/// NodeUnschedulable: a cordoned node fails unless the pod tolerates
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn node_unschedulable(pod: &Pod, node: &NodeInfo) -> Result<(), Unfit> {
    if !node.node.unschedulable {
        return Ok(());
    }
    let taint: &Taint = &UNSCHEDULABLE_TAINT;
    if pod.tolerations.iter().any(|tol| tol.tolerates(taint)) {
        Ok(())
    } else {
        Err(Unfit::Unschedulable)
    }
}

/// The first taint, in the node's order, that repels `pod` (kube's
/// `FindMatchingUntoleratedTaint` with `DoNotScheduleTaintsFilterFunc`).
fn first_untolerated<'n>(pod: &Pod, node: &'n NodeInfo) -> Option<&'n Taint> {
    node.node.taints.iter().find(|taint| {
        matches!(
            taint.effect,
            TaintEffect::NoSchedule | TaintEffect::NoExecute
        ) && !pod.tolerations.iter().any(|tol| tol.tolerates(taint))
    })
}

/// TaintToleration: fails on the first `NoSchedule` or `NoExecute` taint the pod does
/// not tolerate.
pub fn taint_toleration(pod: &Pod, node: &NodeInfo) -> Result<(), Unfit> {
    match first_untolerated(pod, node) {
        None => Ok(()),
        Some(taint) => Err(Unfit::UntoleratedTaint(taint.clone())),
    }
}

/// NodeAffinity, for the node selector: every selector label must be on the node with the
/// same value.
pub fn node_selector(pod: &Pod, node: &NodeInfo) -> Result<(), Unfit> {
    let labels = &node.node.labels;
    let matches = pod
        .node_selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value));
    if matches {
        Ok(())
    } else {
        Err(Unfit::SelectorMismatch)
    }
}

/// NodePorts: fails if any host port of the pod, same number and protocol, is in use.
///
/// kube also compares host IPs, with `0.0.0.0` matching all; the model has no host IPs,
/// so every port binds all addresses.
pub fn node_ports(pod: &Pod, node: &NodeInfo) -> Result<(), Unfit> {
    let taken = pod
        .host_ports
        .iter()
        .any(|port| node.used_ports.contains(port));
    if taken {
        Err(Unfit::PortsInUse)
    } else {
        Ok(())
    }
}

/// Whether the node already runs as many pods as it takes.
fn too_many_pods(node: &NodeInfo) -> bool {
    // kube's `len(pods)+1 > allowedPodNumber`, written so it cannot overflow.
    node.pods >= node.node.max_pods
}

/// Whether the pod's request for `resource` does not fit beside the node's requests.
fn short_of(pod: &Pod, node: &NodeInfo, resource: Resource) -> bool {
    let want = pod.requests.get(resource);
    // A zero request never fails, even on an overcommitted node (kube checks `> 0`).
    want > 0
        && node.requested.get(resource).saturating_add(want) > node.node.allocatable.get(resource)
}

/// NodeResourcesFit: the pod count against `max_pods`, then each resource the pod
/// requests against what is left of the node's allocatable; every shortage is reported,
/// in kube's order: pods, cpu, memory.
///
/// It compares real requests, not the non-zero ones scorers use: a pod that requests
/// nothing fits any node with a pod slot left.
pub fn resources_fit(pod: &Pod, node: &NodeInfo) -> Result<(), Vec<Unfit>> {
    if !too_many_pods(node) && !Resource::ALL.iter().any(|&r| short_of(pod, node, r)) {
        return Ok(());
    }
    let mut unfit = Vec::with_capacity(3);
    if too_many_pods(node) {
        unfit.push(Unfit::TooManyPods);
    }
    for resource in Resource::ALL {
        if short_of(pod, node, resource) {
            unfit.push(Unfit::Insufficient(resource));
        }
    }
    Err(unfit)
}

// ANCHOR: filter
/// The five filters in kube's order, stopping at the first that fails, as kube's
/// framework does: the node's reasons, or `Ok` if the pod may go there.
pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Vec<Unfit>> {
    node_unschedulable(pod, node).map_err(|unfit| vec![unfit])?;
    taint_toleration(pod, node).map_err(|unfit| vec![unfit])?;
    node_selector(pod, node).map_err(|unfit| vec![unfit])?;
    node_ports(pod, node).map_err(|unfit| vec![unfit])?;
    resources_fit(pod, node)
}

/// Whether [`filter`] would pass, without building any reason: the hot loop's check.
pub fn fits(pod: &Pod, node: &NodeInfo) -> bool {
    node_unschedulable(pod, node).is_ok()
        && first_untolerated(pod, node).is_none()
        && node_selector(pod, node).is_ok()
        && node_ports(pod, node).is_ok()
        && !too_many_pods(node)
        && !Resource::ALL.iter().any(|&r| short_of(pod, node, r))
}
// ANCHOR_END: filter

/// Why a pod fits no node: kube's `FitError`, the reasons counted over the nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes were tried.
    pub nodes: usize,
    /// Each reason's text and how many nodes gave it.
    pub reasons: BTreeMap<String, usize>,
}

impl FitError {
    /// No nodes tried yet.
    pub fn new() -> FitError {
        FitError::default()
    }

    /// Counts one more node that failed with `unfit`; a reason the node gives twice
    /// counts once.
    pub fn add_node(&mut self, unfit: &[Unfit]) {
        self.nodes += 1;
        let mut seen: Vec<String> = Vec::with_capacity(unfit.len());
        for reason in unfit {
            let text = reason.to_string();
            if !seen.contains(&text) {
                *self.reasons.entry(text.clone()).or_insert(0) += 1;
                seen.push(text);
            }
        }
    }

    /// The error for nodes that failed with these reasons, one slice per node.
    pub fn from_nodes<'a>(nodes: impl IntoIterator<Item = &'a [Unfit]>) -> FitError {
        let mut error = FitError::new();
        for unfit in nodes {
            error.add_node(unfit);
        }
        error
    }
}

impl fmt::Display for FitError {
    /// kube's `FitError.Error()`: `0/N nodes are available: ` and the `"<count> <reason>"`
    /// entries sorted as strings (so `10 …` sorts before `3 …`), joined with `, `, ending
    /// with `.`. With no nodes at all kube never builds a `FitError`; it reports
    /// `ErrNoNodesAvailable`, whose text this prints instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available:", self.nodes)?;
        let mut entries: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        entries.sort();
        write!(f, " {}.", entries.join(", "))
    }
}

impl std::error::Error for FitError {}

#[cfg(test)]
mod tests {
    //! Cases from kube's own tables: fit_test.go (TestEnoughRequests, TestNotEnoughRequests),
    //! taint_toleration_test.go (TestTaintTolerationFilter), node_ports_test.go
    //! (TestNodePorts) and node_unschedulable_test.go. kube's fit tables use a node with
    //! allocatable cpu 10m, memory 20 and 32 pods (1 pod in TestNotEnoughRequests).
    use super::*;
    use crate::sched::model::{Amounts, HostPort, Node, Protocol, Toleration, TolerationOperator};

    fn fit_node(max_pods: u32, existing: Amounts) -> NodeInfo {
        let mut node = Node::new("machine", Amounts::new(10, 20));
        node.max_pods = max_pods;
        let mut info = NodeInfo::new(node);
        info.add(&Pod::new("existing", existing));
        info
    }

    fn pod(cpu_milli: u64, memory: u64) -> Pod {
        Pod::new("p", Amounts::new(cpu_milli, memory))
    }

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn tainted(taints: Vec<Taint>) -> NodeInfo {
        let mut node = Node::new("nodeA", Amounts::new(4000, 8 << 30));
        node.taints = taints;
        NodeInfo::new(node)
    }

    fn tolerating(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            tolerations,
            ..pod(0, 0)
        }
    }

    fn toleration(key: &str, value: &str, effect: Option<TaintEffect>) -> Toleration {
        Toleration {
            key: key.into(),
            value: value.into(),
            effect,
            ..Toleration::default()
        }
    }

    fn exists(key: &str, effect: Option<TaintEffect>) -> Toleration {
        Toleration {
            operator: TolerationOperator::Exists,
            ..toleration(key, "", effect)
        }
    }

    fn check(pod: &Pod, node: &NodeInfo) -> Result<(), Vec<Unfit>> {
        let result = filter(pod, node);
        assert_eq!(
            fits(pod, node),
            result.is_ok(),
            "fits disagrees with filter"
        );
        result
    }

    #[test]
    fn reasons_read_exactly_as_kubes() {
        let texts: Vec<String> = [
            Unfit::Insufficient(Resource::Cpu),
            Unfit::Insufficient(Resource::Memory),
            Unfit::TooManyPods,
            Unfit::Unschedulable,
            Unfit::UntoleratedTaint(taint("gpu", "yes", TaintEffect::NoSchedule)),
            Unfit::SelectorMismatch,
            Unfit::PortsInUse,
        ]
        .iter()
        .map(Unfit::to_string)
        .collect();
        assert_eq!(
            texts,
            [
                "Insufficient cpu",
                "Insufficient memory",
                "Too many pods",
                "node(s) were unschedulable",
                "node(s) had untolerated taint {gpu: yes}",
                "node(s) didn't match Pod's node affinity/selector",
                "node(s) didn't have free ports for the requested pod ports",
            ]
        );
    }

    #[test]
    fn resources_fit_matches_kubes_enough_requests_table() {
        let full = Amounts::new(10, 20);
        // kube fit_test.go: "no resources requested always fits"
        assert_eq!(check(&pod(0, 0), &fit_node(32, full)), Ok(()));
        // kube fit_test.go: "too many resources fails"
        assert_eq!(
            check(&pod(1, 1), &fit_node(32, full)),
            Err(vec![
                Unfit::Insufficient(Resource::Cpu),
                Unfit::Insufficient(Resource::Memory)
            ])
        );
        // kube fit_test.go: "both resources fit"
        assert_eq!(check(&pod(1, 1), &fit_node(32, Amounts::new(5, 5))), Ok(()));
        // kube fit_test.go: "equal edge case"
        assert_eq!(
            check(&pod(5, 1), &fit_node(32, Amounts::new(5, 19))),
            Ok(())
        );
        // kube predicates_test.go (TestPodFitsResources): "one resources fits"
        assert_eq!(
            check(&pod(1, 2), &fit_node(32, Amounts::new(5, 19))),
            Err(vec![Unfit::Insufficient(Resource::Memory)])
        );
    }

    #[test]
    fn a_full_node_is_too_many_pods_even_for_a_pod_that_requests_nothing() {
        // kube fit_test.go: "even without specified resources, predicate fails when there's
        // no space for additional pod"
        assert_eq!(
            check(&pod(0, 0), &fit_node(1, Amounts::new(10, 20))),
            Err(vec![Unfit::TooManyPods])
        );
        // kube fit_test.go: "even if both resources fit, predicate fails when there's no
        // space for additional pod"
        assert_eq!(
            check(&pod(1, 1), &fit_node(1, Amounts::new(5, 5))),
            Err(vec![Unfit::TooManyPods])
        );
    }

    #[test]
    fn zero_request_fits_even_an_overcommitted_node() {
        let info = fit_node(32, Amounts::new(50, 5));
        assert_eq!(check(&pod(0, 1), &info), Ok(()));
        assert_eq!(
            check(&pod(1, 1), &info),
            Err(vec![Unfit::Insufficient(Resource::Cpu)])
        );
    }

    #[test]
    fn taint_toleration_matches_kubes_filter_table() {
        let dedicated = || vec![taint("dedicated", "user1", TaintEffect::NoSchedule)];
        let foo = || vec![taint("foo", "bar", TaintEffect::NoSchedule)];
        // kube taint_toleration_test.go: "A pod having no tolerations can't be scheduled
        // onto a node with nonempty taints"
        let got = check(&tolerating(vec![]), &tainted(dedicated())).map_err(|u| u[0].to_string());
        assert_eq!(
            got,
            Err("node(s) had untolerated taint {dedicated: user1}".into())
        );
        // kube: "A pod which can be scheduled on a dedicated node assigned to user1 with
        // effect NoSchedule"
        let user1 = toleration("dedicated", "user1", Some(TaintEffect::NoSchedule));
        assert_eq!(
            check(&tolerating(vec![user1]), &tainted(dedicated())),
            Ok(())
        );
        // kube: "A pod which can't be scheduled on a dedicated node assigned to user2 with
        // effect NoSchedule"
        let user2 = toleration("dedicated", "user2", Some(TaintEffect::NoSchedule));
        assert_eq!(
            check(&tolerating(vec![user2.clone()]), &tainted(dedicated())),
            Err(vec![Unfit::UntoleratedTaint(dedicated()[0].clone())])
        );
        // kube: "A pod can be scheduled onto the node, with a toleration uses operator
        // Exists that tolerates the taints on the node"
        let foo_exists = exists("foo", Some(TaintEffect::NoSchedule));
        assert_eq!(
            check(&tolerating(vec![foo_exists.clone()]), &tainted(foo())),
            Ok(())
        );
        // kube: "A pod has multiple tolerations, node has multiple taints, all the taints are
        // tolerated, pod can be scheduled onto the node"
        let both = tainted(vec![
            taint("dedicated", "user2", TaintEffect::NoSchedule),
            taint("foo", "bar", TaintEffect::NoSchedule),
        ]);
        assert_eq!(
            check(&tolerating(vec![user2.clone(), foo_exists]), &both),
            Ok(())
        );
        // kube: "A pod has a toleration that keys and values match the taint on the node,
        // but (non-empty) effect doesn't match, can't be scheduled onto the node"
        let prefer = toleration("foo", "bar", Some(TaintEffect::PreferNoSchedule));
        assert_eq!(
            check(&tolerating(vec![prefer]), &tainted(foo())),
            Err(vec![Unfit::UntoleratedTaint(foo()[0].clone())])
        );
        // kube: "The pod has a toleration that keys and values match the taint on the node,
        // the effect of toleration is empty, and the effect of taint is NoSchedule. Pod can
        // be scheduled onto the node"
        let any_effect = toleration("foo", "bar", None);
        assert_eq!(
            check(&tolerating(vec![any_effect]), &tainted(foo())),
            Ok(())
        );
        // kube: "The pod has a toleration that key and value don't match the taint on the
        // node, but the effect of taint on node is PreferNoSchedule. Pod can be scheduled
        // onto the node"
        let soft = || {
            tainted(vec![taint(
                "dedicated",
                "user1",
                TaintEffect::PreferNoSchedule,
            )])
        };
        assert_eq!(check(&tolerating(vec![user2]), &soft()), Ok(()));
        // kube: "The pod has no toleration, but the effect of taint on node is
        // PreferNoSchedule. Pod can be scheduled onto the node"
        assert_eq!(check(&tolerating(vec![]), &soft()), Ok(()));
    }

    #[test]
    fn the_first_untolerated_taint_in_node_order_is_reported() {
        let node = tainted(vec![
            taint("a", "1", TaintEffect::PreferNoSchedule),
            taint("b", "2", TaintEffect::NoExecute),
            taint("c", "3", TaintEffect::NoSchedule),
        ]);
        assert_eq!(
            taint_toleration(&tolerating(vec![]), &node),
            Err(Unfit::UntoleratedTaint(taint(
                "b",
                "2",
                TaintEffect::NoExecute
            )))
        );
    }

    #[test]
    fn cordoned_node_takes_only_pods_that_tolerate_unschedulable() {
        let mut node = Node::new("n", Amounts::new(1000, 1 << 30));
        node.unschedulable = true;
        let cordoned = NodeInfo::new(node);
        // kube node_unschedulable_test.go: "Does not schedule pod to unschedulable node
        // (node.Spec.Unschedulable==true)"
        assert_eq!(
            check(&tolerating(vec![]), &cordoned),
            Err(vec![Unfit::Unschedulable])
        );
        // kube: "Schedule pod to normal node"
        let normal = NodeInfo::new(Node::new("n", Amounts::new(1000, 1 << 30)));
        assert_eq!(check(&tolerating(vec![]), &normal), Ok(()));
        // kube: "Schedule pod with toleration to unschedulable node
        // (node.Spec.Unschedulable==true)"
        let tol = toleration(UNSCHEDULABLE_TAINT_KEY, "", Some(TaintEffect::NoSchedule));
        assert_eq!(check(&tolerating(vec![tol]), &cordoned), Ok(()));
    }

    #[test]
    fn node_selector_needs_every_label_with_the_same_value() {
        let mut node = Node::new("n", Amounts::new(1000, 1 << 30));
        node.labels.insert("disk".into(), "ssd".into());
        node.labels.insert("zone".into(), "a".into());
        let info = NodeInfo::new(node);
        let with = |pairs: &[(&str, &str)]| Pod {
            node_selector: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..pod(0, 0)
        };
        assert_eq!(check(&with(&[]), &info), Ok(()));
        assert_eq!(
            check(&with(&[("disk", "ssd"), ("zone", "a")]), &info),
            Ok(())
        );
        assert_eq!(
            check(&with(&[("disk", "hdd")]), &info),
            Err(vec![Unfit::SelectorMismatch])
        );
        assert_eq!(
            check(&with(&[("gpu", "yes")]), &info),
            Err(vec![Unfit::SelectorMismatch])
        );
    }

    #[test]
    fn node_ports_conflict_on_the_same_number_and_protocol() {
        let port = |port, protocol| HostPort { port, protocol };
        let node_with = |ports: Vec<HostPort>| {
            let mut info = NodeInfo::new(Node::new("m1", Amounts::new(1000, 1 << 30)));
            info.add(&Pod {
                host_ports: ports,
                ..pod(0, 0)
            });
            info
        };
        let asking = |ports: Vec<HostPort>| Pod {
            host_ports: ports,
            ..pod(0, 0)
        };
        let (tcp, udp) = (Protocol::Tcp, Protocol::Udp);
        // kube node_ports_test.go: "other port"
        let got = check(
            &asking(vec![port(8080, udp)]),
            &node_with(vec![port(9090, udp)]),
        );
        assert_eq!(got, Ok(()));
        // kube: "same udp port"
        let got = check(
            &asking(vec![port(8080, udp)]),
            &node_with(vec![port(8080, udp)]),
        );
        assert_eq!(got, Err(vec![Unfit::PortsInUse]));
        // kube: "same tcp port"
        let got = check(
            &asking(vec![port(8080, tcp)]),
            &node_with(vec![port(8080, tcp)]),
        );
        assert_eq!(got, Err(vec![Unfit::PortsInUse]));
        // kube: "different protocol"
        let got = check(
            &asking(vec![port(8080, udp)]),
            &node_with(vec![port(8080, tcp)]),
        );
        assert_eq!(got, Ok(()));
        // kube: "second udp port conflict"
        let pod_ports = vec![port(8000, udp), port(8080, udp)];
        let got = check(&asking(pod_ports), &node_with(vec![port(8080, udp)]));
        assert_eq!(got, Err(vec![Unfit::PortsInUse]));
        // kube: "first tcp port conflict"
        let pod_ports = vec![port(8001, tcp), port(8080, udp)];
        let got = check(
            &asking(pod_ports),
            &node_with(vec![port(8001, tcp), port(8081, udp)]),
        );
        assert_eq!(got, Err(vec![Unfit::PortsInUse]));
    }

    #[test]
    fn filter_stops_at_the_first_plugin_that_fails() {
        let mut node = Node::new("n", Amounts::new(10, 20));
        node.unschedulable = true;
        node.taints
            .push(taint("gpu", "yes", TaintEffect::NoSchedule));
        let info = NodeInfo::new(node);
        assert_eq!(
            check(&pod(100, 100), &info),
            Err(vec![Unfit::Unschedulable])
        );
    }

    #[test]
    fn fit_error_counts_reasons_and_sorts_them_as_kube_prints_them() {
        let gpu = Unfit::UntoleratedTaint(taint("gpu", "yes", TaintEffect::NoSchedule));
        let cpu = Unfit::Insufficient(Resource::Cpu);
        let nodes: Vec<Vec<Unfit>> = vec![
            vec![gpu],
            vec![cpu.clone()],
            vec![cpu.clone(), cpu.clone()],
            vec![cpu],
        ];
        let error = FitError::from_nodes(nodes.iter().map(Vec::as_slice));
        assert_eq!(
            error.to_string(),
            "0/4 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 3 Insufficient cpu."
        );
    }

    #[test]
    fn fit_error_sorts_counts_as_text_like_kube() {
        let mut error = FitError::new();
        for _ in 0..10 {
            error.add_node(&[Unfit::TooManyPods]);
        }
        for _ in 0..3 {
            error.add_node(&[
                Unfit::Insufficient(Resource::Cpu),
                Unfit::Insufficient(Resource::Memory),
            ]);
        }
        assert_eq!(
            error.to_string(),
            "0/13 nodes are available: 10 Too many pods, 3 Insufficient cpu, 3 Insufficient memory."
        );
    }

    #[test]
    fn fit_error_over_no_nodes_is_kubes_no_nodes_available() {
        assert_eq!(
            FitError::new().to_string(),
            "no nodes available to schedule pods"
        );
    }
}
