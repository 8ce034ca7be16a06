//! # nutshell: containers in a nutshell
//!
//! A container runtime built one kernel feature at a time. Each chapter of the book adds
//! one module here and one binary in `chapters/`; the binary is a thin walk through the
//! library calls the chapter explains.
//!
//! | module | what it holds | introduced by |
//! |---|---|---|
//! | [`rootfs`] | checking a root filesystem, chroot, the chroot escape | ch01-chroot |
//! | [`process`] | clone into new namespaces, named preparation steps, exec, exit status | ch01-chroot (ch02: namespaces) |
//! | [`image`] | the image store and the default image, built offline | ch01-chroot |
//! | [`store`] | where nutshell writes: the data directory | ch01-chroot |
//! | [`cli`] | the flags and error printing every chapter binary shares | ch01-chroot |
//! | [`namespaces`] | the eight namespace kinds, unshare, the time namespace's offsets | `nutshell doctor`; ch02-namespaces |
//! | [`uts`] | the hostname, validated and set | ch02-namespaces |
//! | [`ipc`] | System V and POSIX message queues: make, find, remove | ch02-namespaces |
//! | [`init`] | the container's PID 1: start the command, forward signals, reap zombies | ch03-pid |
//! | [`mounts`] | the mount plan: propagation, pivot_root, /proc /dev /sys, masked and read-only paths | ch04-mount |
//! | [`capabilities`] | the five capability sets: names, Docker's default, dropped and set before exec | ch04-mount |
//! | [`cgroups`] | layout detection, CPU quota math, the settings plan, a cgroup over v1/v2/hybrid | `nutshell doctor`; ch05-cgroups |
//! | [`userns`] | the user namespace: id maps planned and written, root inside, ids seen from the host | ch06-user |
//! | [`overlay`] | overlayfs roots: mount options, lowers as the container mounts them (idmapped for root), per-container upper/work dirs, the upper's changes, tree digests | ch07-overlayfs |
//! | [`container`] | the container so far: a user namespace owning the rest, its cgroup, its mounts | ch06-user |
//! | [`workloads`] | what a container runs to meet its limits: busy threads, a memory hog, a fork bomb | ch05-cgroups |
//! | [`chapters`] | the chapter map and what each chapter needs | `nutshell doctor` |
//! | [`doctor`] | probing what this machine can do | `nutshell doctor` |

#![warn(missing_docs)]

pub mod capabilities;
pub mod cgroups;
pub mod chapters;
pub mod cli;
pub mod container;
pub mod doctor;
pub mod image;
pub mod init;
pub mod ipc;
pub mod mounts;
pub mod namespaces;
pub mod overlay;
pub mod process;
pub mod rootfs;
pub mod store;
pub mod userns;
pub mod uts;
pub mod workloads;
