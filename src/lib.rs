//! # nutshell: containers in a nutshell
//!
//! A container runtime built one kernel feature at a time. Each chapter of the book adds
//! one module here and one binary in `chapters/`; the binary is a thin walk through the
//! library calls the chapter explains.
//!
//! | module | what it holds | introduced by |
//! |---|---|---|
//! | [`rootfs`] | checking a root filesystem, chroot, the chroot escape | ch01-chroot |
//! | [`process`] | how a container's process ended, in the shell's terms | ch01-chroot |
//! | [`image`] | the default image, built offline; OCI images: digests, safe extraction, the layer store, archives, a registry client | ch01-chroot; ch09-images |
//! | [`build`] | Containerfiles: parsed into instructions (more in chapter 10) | ch10-build |
//! | [`store`] | where nutshell writes: the data and state directories, file locks | ch01-chroot |
//! | [`cli`] | the flags and error printing every chapter binary shares | ch01-chroot |
//! | [`namespaces`] | the eight namespace kinds, unshare, the time namespace's offsets | `nutshell doctor`; ch02-namespaces |
//! | [`uts`] | the hostname, validated and set | ch02-namespaces |
//! | [`ipc`] | System V and POSIX message queues: make, find, remove | ch02-namespaces |
//! | [`spec`] | the container spec: everything about one container, as plain data | ch03-pid (in hindsight, ch01 and ch02 too) |
//! | [`launch`] | the one pipeline: spec → plan → a created, then started container that tears itself down; the state directory; sweeping what killed owners left | ch03-pid |
//! | [`init`] | the container's PID 1: start the command, forward signals, reap zombies | ch03-pid |
//! | [`mounts`] | the mount plan: propagation, pivot_root, /proc /dev /sys, masked and read-only paths | ch04-mount |
//! | [`capabilities`] | the five capability sets: names, Docker's default, dropped and set before exec | ch04-mount |
//! | [`cgroups`] | layout detection, CPU quota math, the settings plan, a cgroup over v1/v2/hybrid; v2's eBPF device filter | `nutshell doctor`; ch05-cgroups; ch11-runtime |
//! | [`userns`] | the user namespace: id maps planned and written, root inside, ids seen from the host | ch06-user |
//! | [`overlay`] | overlayfs roots: mount options, lowers as the container mounts them (idmapped for root), per-container upper/work dirs, the upper's changes, tree digests | ch07-overlayfs |
//! | [`net`] | the network namespace connected: veth to a bridge, host-local leases, nftables NAT and published ports, the name files; pasta for the rootless | ch08-network |
//! | [`oci`] | the OCI runtime: `config.json` → spec, runc's command line, state JSON | ch11-runtime |
//! | [`hooks`] | OCI hooks: programs run at points of the lifecycle, the state on their stdin, with a timeout | ch11-runtime |
//! | [`seccomp`] | seccomp profiles compiled to BPF: the filter a container's process runs under | ch11-runtime |
//! | [`containers`] | docker's workflow: `run IMAGE`, `ps`, `logs`, `exec`, `stop`, `rm`; records, json-file logs, the per-container monitor | *Putting it together* |
//! | [`sched`] | a tiny scheduler: nodes and pods, kube's filters and scorers, packers, lower bounds and the exact optimum, nodes as cgroup slices | ch12-scheduler |
//! | [`workloads`] | nutshell's own programs a container can run: the chapters' demos | ch01-chroot; ch05-cgroups |
//! | [`chapters`] | the chapter map and what each chapter needs | `nutshell doctor` |
//! | [`doctor`] | probing what this machine can do | `nutshell doctor` |

#![warn(missing_docs)]

pub mod build;
pub mod capabilities;
pub mod cgroups;
pub mod chapters;
pub mod cli;
pub mod containers;
pub mod doctor;
pub mod hooks;
pub mod image;
pub mod init;
pub mod ipc;
pub mod launch;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod oci;
pub mod overlay;
pub mod process;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod spec;
pub mod store;
pub mod userns;
pub mod uts;
pub mod workloads;
