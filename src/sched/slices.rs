//! Nodes made real: each node is a cgroup on this machine, and its pods' containers run
//! in cgroups nested inside it.
//!
//! A Kubernetes node is a machine whose kubelet puts every pod under one cgroup,
//! `kubepods`, limited to the node's allocatable CPU and memory, and each pod in a
//! cgroup of its own below that. Chapter 12 does the same on one machine: node
//! `node-2` is the cgroup `nutshell/nodes/node-2`, with a CPU quota and a memory limit
//! equal to its allocatable amounts, and a pod placed on it runs in
//! `nutshell/nodes/node-2/<pod>`. The kernel then enforces both levels: a pod cannot use
//! more than its own limit, and all of a node's pods together cannot use more than the
//! node has, however their limits add up.
//!
//! A pod's cgroup gets what the kubelet would give it: its CPU *request* becomes its
//! share of the node's CPU when the node is busy (`cpu.shares` or `cpu.weight`), its CPU
//! *limit* a CFS quota, and its memory limit `memory.max`.
//!
//! See also [cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html)
//! ("Top-down constraint") and kube's
//! [node allocatable](https://kubernetes.io/docs/tasks/administer-cluster/reserve-compute-resources/).

use crate::cgroups::{
    self, Cgroup, CgroupError, CgroupLayout, CpuError, CpuQuota, DEFAULT_PERIOD_US, Resources,
    SettingsError, standard_controllers,
};

use std::path::Path;

use crate::spec::{CgroupSpec, ContainerSpec, Program, chapters};

use super::model::{Node, Pod};

/// Where every node's cgroup lives, below each hierarchy's root.
pub const NODES_PATH: &str = "nutshell/nodes";

/// Why a node's or a pod's cgroup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    /// The cgroup itself.
    #[error("node {node}: {source}")]
    Cgroup {
        /// The node.
        node: String,
        /// What failed.
        #[source]
        source: CgroupError,
    },
    /// Its limits could not be planned on this host.
    #[error("node {node}: {source}")]
    Settings {
        /// The node.
        node: String,
        /// What failed.
        #[source]
        source: SettingsError,
    },
    /// A CPU amount has no quota the kernel accepts.
    #[error("{what}: {source}")]
    Cpu {
        /// The node or pod, and which amount.
        what: String,
        /// What failed.
        #[source]
        source: CpuError,
    },
}

/// A node as a cgroup with its capacity as limits. Dropping it removes the cgroup, so
/// drop every pod's container first (a cgroup with children cannot be removed).
#[derive(Debug)]
pub struct NodeSlice {
    node: Node,
    cgroup: Cgroup,
}

/// The cgroup path of the node named `node`: `nutshell/nodes/<node>`.
pub fn node_path(node: &str) -> String {
    format!("{NODES_PATH}/{node}")
}

/// The CFS quota that gives `milli` millicores over the default 100 ms period (kube's
/// `milliCPUToQuota`): 500m is 50 ms of CPU time in every 100 ms.
pub fn quota_for_milli(milli: u64) -> Result<CpuQuota, CpuError> {
    cgroups::quota_from_parts(milli * DEFAULT_PERIOD_US / 1000, DEFAULT_PERIOD_US)
}

/// The v1 CPU shares a CPU request becomes (kube's `MilliCPUToShares`): 1024 per CPU,
/// at least 2.
pub fn shares_for_milli(milli: u64) -> u64 {
    (milli * 1024 / 1000).clamp(cgroups::cpu::MIN_SHARES, cgroups::cpu::MAX_SHARES)
}

/// The limits of the cgroup `node` becomes: its allocatable CPU as a quota, its
/// allocatable memory as the memory limit.
pub fn node_resources(node: &Node) -> Result<Resources, SliceError> {
    let quota = quota_for_milli(node.allocatable.cpu_milli).map_err(|source| SliceError::Cpu {
        what: format!("node {} allocatable cpu", node.name),
        source,
    })?;
    Ok(Resources {
        cpu_quota: Some(quota),
        memory_bytes: Some(node.allocatable.memory),
        ..Resources::default()
    })
}

/// The limits of `pod`'s own cgroup: shares from its CPU request, and a quota and a
/// memory limit from its limits where it has them.
pub fn pod_resources(pod: &Pod) -> Result<Resources, SliceError> {
    let mut resources = Resources {
        cpu_shares: Some(shares_for_milli(pod.requests.cpu_milli)),
        ..Resources::default()
    };
    if let Some(limits) = pod.limits {
        if limits.cpu_milli > 0 {
            let quota = quota_for_milli(limits.cpu_milli).map_err(|source| SliceError::Cpu {
                what: format!("pod {} cpu limit", pod.name),
                source,
            })?;
            resources.cpu_quota = Some(quota);
        }
        if limits.memory > 0 {
            resources.memory_bytes = Some(limits.memory);
        }
    }
    Ok(resources)
}

impl NodeSlice {
    // ANCHOR: create
    /// Makes `node`'s cgroup, `nutshell/nodes/<name>`, and writes its capacity as its
    /// limits. On failure nothing is left.
    pub fn create(
        layout: &CgroupLayout,
        swap_accounting: bool,
        node: &Node,
    ) -> Result<NodeSlice, SliceError> {
        let settings =
            cgroups::plan(&node_resources(node)?, layout, swap_accounting).map_err(|source| {
                SliceError::Settings {
                    node: node.name.clone(),
                    source,
                }
            })?;
        let cgroup = Cgroup::create(
            layout,
            &node_path(&node.name),
            &standard_controllers(layout),
        )
        .map_err(|source| SliceError::Cgroup {
            node: node.name.clone(),
            source,
        })?;
        // On error `cgroup` is dropped, which removes it.
        cgroup
            .apply(&settings)
            .map_err(|source| SliceError::Cgroup {
                node: node.name.clone(),
                source,
            })?;
        Ok(NodeSlice {
            node: node.clone(),
            cgroup,
        })
    }
    // ANCHOR_END: create

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Its cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The cgroup path for `pod` on this node: `nutshell/nodes/<node>/<pod>`.
    pub fn pod_path(&self, pod: &str) -> String {
        format!("{}/{pod}", node_path(&self.node.name))
    }

    // ANCHOR: pod_spec
    /// The container `pod` runs as on this node: chapter 5's container (its own
    /// namespaces, a pivot_root into `rootfs`, a cgroup) running `program`, in a cgroup
    /// nested in the node's, with the pod's own shares, quota and memory limit.
    pub fn pod_spec(
        &self,
        pod: &Pod,
        rootfs: &Path,
        program: Program,
    ) -> Result<ContainerSpec, SliceError> {
        let mut spec = chapters::for_chapter(5, rootfs, program);
        spec.cgroup = Some(CgroupSpec {
            path: Some(self.pod_path(&pod.name)),
            resources: pod_resources(pod)?,
            ..CgroupSpec::default()
        });
        Ok(spec)
    }
    // ANCHOR_END: pod_spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::model::Amounts;

    #[test]
    fn half_a_cpu_is_a_50_ms_quota_per_100_ms() {
        let quota = quota_for_milli(500).expect("valid");
        assert_eq!((quota.quota_us, quota.period_us), (50_000, 100_000));
    }

    #[test]
    fn cpu_requests_become_shares_as_the_kubelet_makes_them() {
        assert_eq!(shares_for_milli(1000), 1024);
        assert_eq!(shares_for_milli(250), 256);
        assert_eq!(shares_for_milli(0), 2);
    }

    #[test]
    fn a_node_is_limited_to_its_allocatable_amounts() {
        let node = Node::new("node-1", Amounts::new(750, 256 << 20));
        let resources = node_resources(&node).expect("valid");
        assert_eq!(resources.cpu_quota.map(|q| q.quota_us), Some(75_000));
        assert_eq!(resources.memory_bytes, Some(256 << 20));
    }

    #[test]
    fn a_pod_without_limits_gets_only_shares() {
        let pod = Pod::new("web", Amounts::new(250, 64 << 20));
        let resources = pod_resources(&pod).expect("valid");
        assert_eq!(resources.cpu_shares, Some(256));
        assert_eq!((resources.cpu_quota, resources.memory_bytes), (None, None));
    }

    #[test]
    fn a_cpu_too_small_for_a_quota_is_refused_naming_the_pod() {
        let mut pod = Pod::new("tiny", Amounts::new(1, 0));
        pod.limits = Some(Amounts::new(1, 0));
        let err = pod_resources(&pod).expect_err("1m is a 100 µs quota, below the minimum");
        assert!(err.to_string().starts_with("pod tiny cpu limit: "), "{err}");
    }
}
