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
//! module is split the way the work is:
//!
//! - [`layout`] finds the hierarchies from `/proc/self/mountinfo` (also used by
//!   `nutshell doctor`, which prints which of the three layouts the machine has);
//! - [`cpu`] is the arithmetic of CPU limits: `--cpus` to CFS quota and period, v1
//!   shares to v2 weight by both formulas runtimes have used;
//! - [`settings`] plans which file gets which value on this layout (`cpu.max` or
//!   `cpu.cfs_quota_us`, `memory.max` or `memory.limit_in_bytes`, `pids.max`);
//! - [`cgroup`] makes the cgroup under `<mount>/nutshell/`, writes the plan, moves
//!   processes in, reads the counters (usage, throttling, OOM kills, refused forks) and
//!   removes it.
//!
//! The first three are pure and tested on fixtures; [`cgroup`] takes every path from
//! the layout, so it is tested on a fake tree in a temp dir as well as for real.
//!
//! See also [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html),
//! [cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html) and
//! [sched-bwc.rst](https://docs.kernel.org/scheduler/sched-bwc.html).

pub mod cgroup;
mod cgroupfs;
pub mod cpu;
pub mod device_filter;
pub mod layout;
pub mod report;
pub mod settings;

pub use cgroup::{
    Cgroup, CgroupDir, CgroupError, CpuStats, MemoryEvents, PARENT, PidsStats, online_cpus,
    standard_controllers, swap_accounting, validate_path,
};
pub use cpu::{
    CpuError, CpuQuota, DEFAULT_PERIOD_US, MAX_PERIOD_US, MIN_QUOTA_US, quota_from_cpus,
    quota_from_parts, shares_to_weight, shares_to_weight_linear, validate_shares,
};
pub use layout::{CgroupLayout, CgroupMount, CgroupVersion, Layout, LayoutError, detect_host};
pub use settings::{
    DeviceRule, IoLimit, IoThrottle, MIN_MEMORY_BYTES, Resources, Setting, SettingsError,
    SwapPolicy, parse_size, plan, render_table,
};
