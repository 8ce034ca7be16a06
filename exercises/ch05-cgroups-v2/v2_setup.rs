//! # Exercise ch05-cgroups-v2: put a process in a cgroup v2 of its own
//!
//! On cgroup v2 a cgroup is a directory of one tree, and three writes make a container's
//! cgroup usable. Write `setup_v2`: given the cgroup2 mount `root` (a parameter, so the
//! tests can hand you a fake tree in a temp dir), a container `name` and a `pid`, do, in
//! this order:
//!
//! 1. make sure the parent `<root>/nutshell` exists (other containers may have made it
//!    already: that is fine);
//! 2. enable the controllers for the parent's children: write `+cpu +memory +pids`, in
//!    one write, to `<root>/nutshell/cgroup.subtree_control`;
//! 3. create the container's cgroup `<root>/nutshell/<name>`. If it exists already,
//!    fail with that error: it is someone else's cgroup, never adopt it;
//! 4. move the process in: write the pid to `<root>/nutshell/<name>/cgroup.procs`.
//!
//! Return the path of the new cgroup. If a step fails, return its error (do not panic).
//!
//! Why this order: a controller is available in a cgroup only if its parent lists it in
//! `cgroup.subtree_control`, and its files (`cpu.max`, `memory.max`, `pids.max`) appear
//! only then. Enabling first means the cgroup is born with them, ready for the limits
//! before any process is inside. And why one level below `nutshell`: v2's "no internal
//! processes" rule — a cgroup that hands controllers to its children holds no processes
//! itself — so the pid goes into the child, never into `nutshell`. Touch nothing in
//! `<root>` itself: that cgroup belongs to whoever booted the machine.
//!
//! Read book/src/ch05-cgroups.md first. Check your work with
//! `just exercise ch05-cgroups-v2` (no root needed: the tests use a fake tree).

use std::io;
use std::path::{Path, PathBuf};

/// The controllers a container's cgroup gets.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Create `<root>/nutshell/<name>` with [`CONTROLLERS`] enabled and move `pid` into it.
pub fn setup_v2(root: &Path, name: &str, pid: u32) -> io::Result<PathBuf> {
    // TODO: std::fs::create_dir_all(<root>/nutshell): the parent may exist already.
    // TODO: write "+cpu +memory +pids" to <root>/nutshell/cgroup.subtree_control
    //       (std::fs::write), BEFORE the child exists.
    // TODO: std::fs::create_dir(<root>/nutshell/<name>): create_dir, not create_dir_all,
    //       so that an existing cgroup is an error.
    // TODO: write the pid to <root>/nutshell/<name>/cgroup.procs; return the child's path.
    let _ = (root, name, pid, CONTROLLERS);
    todo!("setup_v2: parent, enable controllers, create the child, move the pid")
}
