//! # Reference solution: ch05-cgroups-v2, put a process in a cgroup v2 of its own

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The controllers a container's cgroup gets.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Create `<root>/nutshell/<name>` with [`CONTROLLERS`] enabled and move `pid` into it.
pub fn setup_v2(root: &Path, name: &str, pid: u32) -> io::Result<PathBuf> {
    let parent = root.join("nutshell");
    // FIX: create_dir_all: another container may have made the parent already.
    fs::create_dir_all(&parent)?;
    // FIX: enable the controllers in the PARENT, before the child exists, so that the
    // child is born with cpu.max, memory.max and pids.max. One write, space-separated.
    let enable: Vec<String> = CONTROLLERS.iter().map(|c| format!("+{c}")).collect();
    fs::write(parent.join("cgroup.subtree_control"), enable.join(" "))?;
    // FIX: create_dir, not create_dir_all: an existing cgroup is someone else's.
    let cgroup = parent.join(name);
    fs::create_dir(&cgroup)?;
    // FIX: the pid goes into the child; `nutshell` itself holds no processes.
    fs::write(cgroup.join("cgroup.procs"), pid.to_string())?;
    Ok(cgroup)
}
