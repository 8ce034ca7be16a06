//! Control groups: how the kernel limits and accounts for the resources of a group of
//! processes.
//!
//! A *cgroup* is a directory in a special filesystem. Writing a PID into its
//! `cgroup.procs` file moves that process (and its future children) into the group, and
//! the files beside it belong to *controllers*: `cpu` caps CPU time, `memory` sets a limit
//! that ends in the OOM killer, `pids` stops a fork bomb. A container runtime makes one
//! cgroup per container and writes the limits the user asked for.
//!
//! The kernel offers two versions, and a host can mount them in three ways:
//!
//! - **cgroup v1** (filesystem type `cgroup`): each controller, or a handful combined
//!   (`cpu,cpuacct`), has its own hierarchy mounted at its own directory, usually
//!   `/sys/fs/cgroup/<controller>`. Named hierarchies such as `name=systemd` hold no
//!   controller at all; systemd uses one only to track its services.
//! - **cgroup v2** (filesystem type `cgroup2`, the "unified" hierarchy): a single tree
//!   for every controller, usually mounted at `/sys/fs/cgroup`. Current Ubuntu, Fedora
//!   and Debian boot this way.
//! - **hybrid**: v1 hierarchies for the controllers, plus a cgroup2 tree (systemd mounts
//!   it at `/sys/fs/cgroup/unified`) that holds only the controllers no v1 hierarchy
//!   claimed. A controller lives in one hierarchy at a time, so the runtime has to ask
//!   where each one is.
//!
//! Chapter `ch05-cgroups` introduces cgroups and puts containers under limits. The
//! [`layout`] detection comes first and is already used by `nutshell doctor`, which
//! prints which of the three layouts the machine has.
//!
//! See also [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html).

pub mod layout;

pub use layout::{CgroupLayout, CgroupMount, CgroupVersion, Layout, LayoutError};
