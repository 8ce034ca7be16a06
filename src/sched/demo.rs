//! Chapter 12's demo cluster: a few small nodes with labels and a taint, and the pods of
//! `examples/scheduler/pods.toml` to place on them.

use super::cluster::{Cluster, Placing};
use super::model::{Amounts, Node, Pod, Taint, TaintEffect};

/// The pods the chapter places unless given a file of its own.
pub const DEMO_PODS: &str = include_str!("../../examples/scheduler/pods.toml");

/// The path of [`DEMO_PODS`], for messages.
pub const DEMO_PODS_PATH: &str = "examples/scheduler/pods.toml";

// ANCHOR: nodes
/// `count` nodes `node-1` … `node-<count>`, each offering `allocatable`. The first two
/// are labelled `disk=ssd`; with three or more, the last is the GPU node: labelled
/// `gpu=yes` and tainted `gpu=yes:NoSchedule`, so that only pods that tolerate it land
/// there.
pub fn demo_nodes(count: usize, allocatable: Amounts) -> Vec<Node> {
    (1..=count)
        .map(|n| {
            let mut node = Node::new(format!("node-{n}"), allocatable);
            if n <= 2 {
                node.labels.insert("disk".into(), "ssd".into());
            }
            if count >= 3 && n == count {
                node.labels.insert("gpu".into(), "yes".into());
                node.taints.push(Taint {
                    key: "gpu".into(),
                    value: "yes".into(),
                    effect: TaintEffect::NoSchedule,
                });
            }
            node
        })
        .collect()
}
// ANCHOR_END: nodes

/// One policy's result on a workload: the nodes it needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    /// How the pods were placed, as [`Placing::name`] gives it.
    pub policy: &'static str,
    /// Nodes with at least one pod at the end.
    pub nodes_used: usize,
    /// Pods left pending.
    pub pending: usize,
}

/// Places `pods` on a growing cluster of `template` nodes in each of the `ways`: how
/// many nodes each one needs.
pub fn compare_policies(pods: &[Pod], template: &Node, ways: &[Placing]) -> Vec<PolicyResult> {
    ways.iter()
        .map(|placing| {
            let mut cluster = Cluster::growing(template.clone());
            let placement = cluster.place_by(pods, placing);
            PolicyResult {
                policy: placing.name(),
                nodes_used: cluster.used(),
                pending: placement.pending.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_of_three_or_more_nodes_is_the_tainted_gpu_node() {
        let nodes = demo_nodes(4, Amounts::new(500, 256 << 20));
        assert_eq!(nodes[0].labels.get("disk").map(String::as_str), Some("ssd"));
        assert!(nodes[1].taints.is_empty() && nodes[2].taints.is_empty());
        assert_eq!(nodes[3].taints.len(), 1);
        assert!(
            demo_nodes(2, Amounts::new(500, 256 << 20))
                .iter()
                .all(|n| n.taints.is_empty())
        );
    }
}
