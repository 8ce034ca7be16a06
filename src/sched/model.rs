//! Nodes and pods as a scheduler sees them: what each node offers, what each pod asks
//! for, and the labels, taints and tolerations that say which may go where.
//!
//! The names and meanings are Kubernetes': a node's *allocatable* CPU and memory, a pod's
//! *requests* (what the scheduler reserves) and *limits* (what the cgroup enforces), node
//! *labels* matched by a pod's *node selector*, node *taints* that repel every pod without
//! a matching *toleration*, and *cordon* (`unschedulable`). CPU is counted in millicores
//! (`500m` is half a CPU) and memory in bytes, as kube counts them.
//!
//! See also kube's [taints and tolerations](https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/)
//! and [resource management](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// CPU a pod without a CPU request counts as when nodes are scored (kube's
/// `DefaultMilliCPURequest`), so that such pods still spread out. Filters use the real
/// request, zero.
pub const NON_ZERO_CPU_MILLI: u64 = 100;
/// Memory a pod without a memory request counts as when scored (kube's
/// `DefaultMemoryRequest`, 200 MiB).
pub const NON_ZERO_MEMORY: u64 = 200 * 1024 * 1024;
/// The pods a node takes when its `max_pods` is not given (kubelet's `--max-pods`).
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The two resources kube schedules by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// CPU, in millicores.
    Cpu,
    /// Memory, in bytes.
    Memory,
}

impl Resource {
    /// Both, in the order kube lists them.
    pub const ALL: [Resource; 2] = [Resource::Cpu, Resource::Memory];

    /// kube's name for it: `cpu`, `memory`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An amount of each resource: a node's capacity, a pod's request, a sum of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amounts {
    /// CPU in millicores: 1000 is one CPU.
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory: u64,
}

impl Amounts {
    /// `cpu_milli` millicores and `memory` bytes.
    pub const fn new(cpu_milli: u64, memory: u64) -> Amounts {
        Amounts { cpu_milli, memory }
    }

    /// The amount of `resource`.
    pub fn get(&self, resource: Resource) -> u64 {
        match resource {
            Resource::Cpu => self.cpu_milli,
            Resource::Memory => self.memory,
        }
    }

    /// Both amounts added, saturating.
    pub fn plus(&self, other: Amounts) -> Amounts {
        Amounts {
            cpu_milli: self.cpu_milli.saturating_add(other.cpu_milli),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    /// Both amounts less `other`, never below zero.
    pub fn minus(&self, other: Amounts) -> Amounts {
        Amounts {
            cpu_milli: self.cpu_milli.saturating_sub(other.cpu_milli),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    /// Whether each amount is at most `capacity`'s.
    pub fn fits_in(&self, capacity: Amounts) -> bool {
        self.cpu_milli <= capacity.cpu_milli && self.memory <= capacity.memory
    }

    /// The amounts kube scores by: a zero request counts as [`NON_ZERO_CPU_MILLI`] and
    /// [`NON_ZERO_MEMORY`].
    pub fn non_zero(&self) -> Amounts {
        Amounts {
            cpu_milli: if self.cpu_milli == 0 {
                NON_ZERO_CPU_MILLI
            } else {
                self.cpu_milli
            },
            memory: if self.memory == 0 {
                NON_ZERO_MEMORY
            } else {
                self.memory
            },
        }
    }
}

impl fmt::Display for Amounts {
    /// kube's notation: `1500m` CPU, memory in the largest binary unit that divides it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {}m, memory {}",
            self.cpu_milli,
            memory_text(self.memory)
        )
    }
}

/// Memory in kube's binary suffixes where one divides it exactly: `256Mi`, `4Gi`, `1000`.
pub fn memory_text(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// No new pod is placed on the node.
    NoSchedule,
    /// The scheduler avoids the node but may still use it; filters ignore it.
    PreferNoSchedule,
    /// No new pod is placed, and running ones are evicted.
    NoExecute,
}

/// A node's taint: `key=value:effect`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Taint {
    /// The taint's key, such as `gpu`.
    pub key: String,
    /// Its value; may be empty.
    #[serde(default)]
    pub value: String,
    /// What it does.
    pub effect: TaintEffect,
}

/// How a toleration compares values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// The taint's value must equal the toleration's.
    #[default]
    Equal,
    /// Any value; with no key, any taint at all.
    Exists,
}

/// A pod's toleration of the taints it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Toleration {
    /// The taint key it matches; empty (with `Exists`): every key.
    #[serde(default)]
    pub key: String,
    /// How values are compared.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// The value `Equal` compares with.
    #[serde(default)]
    pub value: String,
    /// The effect it matches; `None`: every effect.
    #[serde(default)]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Whether it tolerates `taint`, by kube's rule (`ToleratesTaint`): the effect
    /// matches or is empty, the key matches or is empty, and the value is equal or the
    /// operator is `Exists`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|effect| effect != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// The protocol of a host port.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Protocol {
    /// TCP.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

/// A port a pod publishes on its node's address: two pods cannot both have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPort {
    /// The port number.
    pub port: u16,
    /// TCP or UDP.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A node: a machine, here a cgroup slice, with what it offers pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its name, such as `node-1`.
    pub name: String,
    /// The CPU and memory pods may request in all.
    pub allocatable: Amounts,
    /// The most pods it takes.
    pub max_pods: u32,
    /// Its labels, matched by node selectors.
    pub labels: BTreeMap<String, String>,
    /// Its taints.
    pub taints: Vec<Taint>,
    /// Cordoned: it takes no new pods.
    pub unschedulable: bool,
}

impl Node {
    /// A node named `name` offering `allocatable`, with kube's default pod limit, no
    /// labels and no taints.
    pub fn new(name: impl Into<String>, allocatable: Amounts) -> Node {
        Node {
            name: name.into(),
            allocatable,
            max_pods: DEFAULT_MAX_PODS,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
        }
    }
}

/// A pod: one container to place, with what it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// Its name.
    pub name: String,
    /// What the scheduler reserves for it on its node.
    pub requests: Amounts,
    /// What its cgroup enforces; `None`: no limit beyond its node's.
    pub limits: Option<Amounts>,
    /// Labels its node must have, each with this value.
    pub node_selector: BTreeMap<String, String>,
    /// The taints it tolerates.
    pub tolerations: Vec<Toleration>,
    /// The host ports it publishes.
    pub host_ports: Vec<HostPort>,
}

impl Pod {
    /// A pod named `name` requesting `requests`, with nothing else.
    pub fn new(name: impl Into<String>, requests: Amounts) -> Pod {
        Pod {
            name: name.into(),
            requests,
            ..Pod::default()
        }
    }
}

/// A node with what is placed on it so far (kube's `NodeInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node.
    pub node: Node,
    /// The sum of its pods' requests.
    pub requested: Amounts,
    /// The same sum with each zero request counted as [`Amounts::non_zero`] does.
    pub non_zero_requested: Amounts,
    /// How many pods it has.
    pub pods: u32,
    /// The host ports its pods publish.
    pub used_ports: Vec<HostPort>,
}

impl NodeInfo {
    /// `node`, empty.
    pub fn new(node: Node) -> NodeInfo {
        NodeInfo {
            node,
            requested: Amounts::default(),
            non_zero_requested: Amounts::default(),
            pods: 0,
            used_ports: Vec::new(),
        }
    }

    /// Records `pod` as placed here.
    pub fn add(&mut self, pod: &Pod) {
        self.requested = self.requested.plus(pod.requests);
        self.non_zero_requested = self.non_zero_requested.plus(pod.requests.non_zero());
        self.pods += 1;
        self.used_ports.extend_from_slice(&pod.host_ports);
    }

    /// What is left of its allocatable amounts.
    pub fn free(&self) -> Amounts {
        self.node.allocatable.minus(self.requested)
    }

    /// Its [`Load`]: what the scheduling loop reads of it.
    pub fn load(&self) -> Load {
        Load {
            requested: self.requested,
            non_zero_requested: self.non_zero_requested,
            allocatable: self.node.allocatable,
            pods: self.pods,
            max_pods: self.node.max_pods,
            plain: !self.node.unschedulable
                && self
                    .node
                    .taints
                    .iter()
                    .all(|t| t.effect == TaintEffect::PreferNoSchedule),
        }
    }
}

/// What the scheduling loop reads of a node, packed into one cache line: its amounts,
/// its pod count, and whether it is *plain*, neither cordoned nor tainted against new
/// pods. For a pod without a node selector or host ports, a plain node passes the
/// filters exactly when its resources fit, and the loop over 5000 nodes reads these
/// 64-byte records instead of whole `NodeInfo`s, with their names, labels and lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// The sum of its pods' requests.
    pub requested: Amounts,
    /// The same with zero requests counted as kube's defaults.
    pub non_zero_requested: Amounts,
    /// What it offers pods.
    pub allocatable: Amounts,
    /// Its pods.
    pub pods: u32,
    /// The most pods it takes.
    pub max_pods: u32,
    /// Neither cordoned nor tainted `NoSchedule` or `NoExecute`.
    pub plain: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    #[test]
    fn toleration_with_no_key_and_exists_tolerates_every_taint() {
        let all = Toleration {
            operator: TolerationOperator::Exists,
            ..Toleration::default()
        };
        assert!(all.tolerates(&taint("gpu", "yes", TaintEffect::NoSchedule)));
        assert!(all.tolerates(&taint("x", "", TaintEffect::NoExecute)));
    }

    #[test]
    fn toleration_equal_needs_the_same_value_and_effect() {
        let tol = Toleration {
            key: "gpu".into(),
            value: "yes".into(),
            effect: Some(TaintEffect::NoSchedule),
            ..Toleration::default()
        };
        assert!(tol.tolerates(&taint("gpu", "yes", TaintEffect::NoSchedule)));
        assert!(!tol.tolerates(&taint("gpu", "no", TaintEffect::NoSchedule)));
        assert!(!tol.tolerates(&taint("gpu", "yes", TaintEffect::NoExecute)));
        assert!(!tol.tolerates(&taint("ssd", "yes", TaintEffect::NoSchedule)));
    }

    #[test]
    fn zero_requests_count_as_kubes_defaults_when_scored() {
        let mut info = NodeInfo::new(Node::new("n", Amounts::new(4000, 8 << 30)));
        info.add(&Pod::new("p", Amounts::new(0, 0)));
        assert_eq!(info.requested, Amounts::default());
        assert_eq!(info.non_zero_requested, Amounts::new(100, 200 << 20));
    }

    #[test]
    fn memory_is_shown_in_the_largest_exact_binary_unit() {
        assert_eq!(memory_text(256 << 20), "256Mi");
        assert_eq!(memory_text(4 << 30), "4Gi");
        assert_eq!(memory_text(1000), "1000");
    }
}
