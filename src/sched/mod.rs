//! A tiny scheduler: which node a container runs on.
//!
//! A cluster scheduler such as kube-scheduler places each pending pod in two passes over
//! the nodes. *Filters* drop the nodes the pod cannot run on: too little free CPU or
//! memory, a taint the pod does not tolerate, a label its node selector asks for and the
//! node lacks, a host port already taken. *Scorers* rank the nodes that are left, each
//! with a score from 0 to 100, and the pod goes to the best one. When no node passes, the
//! pod stays pending with a reason that counts why each node failed: `0/4 nodes are
//! available: 1 node(s) had untolerated taint {gpu: yes}, 3 Insufficient cpu.`
//!
//! How the scorer ranks decides how many nodes a workload needs. kube's default,
//! LeastAllocated, prefers the emptiest node and spreads pods out; MostAllocated and the
//! packers here prefer the fullest node that still fits and pack them in. Packing is
//! vector bin packing, NP-hard, so [`bounds`] gives lower bounds on the nodes any
//! placement needs, and [`exact`] solves small instances to the optimum, to measure a
//! policy against.
//!
//! Chapter `ch12-scheduler` introduces it. The module is split the way the work is:
//!
//! - [`model`]: nodes, pods, their resources, labels, taints and tolerations, as data;
//! - [`filters`] and [`scorers`]: kube-scheduler's plugins, with its integer formulas;
//! - [`packers`]: best fit by the L2 norm of what is left, and the dot product;
//! - [`cluster`]: the filter/score pipeline over a cluster's nodes, one pod at a time or
//!   a batch at once, and the reason a pod stays pending;
//! - [`bounds`] and [`exact`]: how few nodes a workload could possibly use;
//! - [`workloads`]: pod lists read from a file, and seeded generators;
//! - [`slices`]: nodes made real, as nested cgroups on this machine.
//!
//! See also kube-scheduler's
//! [scheduling framework](https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/)
//! and [resource bin packing](https://kubernetes.io/docs/concepts/scheduling-eviction/resource-bin-packing/).

pub mod bounds;
pub mod cluster;
pub mod demo;
pub mod exact;
pub mod filters;
pub mod model;
pub mod packers;
pub mod report;
pub mod scorers;
pub mod slices;
pub mod workloads;

pub use model::{
    Amounts, HostPort, Load, Node, NodeInfo, Pod, Protocol, Resource, Taint, TaintEffect,
    Toleration, TolerationOperator,
};
