//! The container as chapters 1 to 6 assemble it: a user namespace that owns new UTS,
//! IPC, mount, PID, time and cgroup namespaces, a cgroup for root, and a mount plan that
//! ends in pivot_root. Chapter 6 introduces it; chapter 7 runs it on an overlay root.
//! Chapter 11's runtime builds the same from an OCI bundle.

use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::cgroups::Cgroup;
use crate::cli::NamespaceArgs;
use crate::mounts::{self, MountPlan};
use crate::namespaces::Namespace;
use crate::process::{self, Child, ParentStep, ProcessError, Step};
use crate::userns::{self, MapWriter, MappingPlan, ProcIds};
use crate::uts::hostname_step;

// ANCHOR: start_container
/// Clone the container's first process into a new user namespace and, owned by it, new
/// UTS, IPC, mount and PID namespaces. The child waits while the parent writes its id
/// maps (only the parent can: they speak of host ids) and moves it into its cgroup (a
/// host file the container's root may not write). Then the child becomes root of its
/// namespace, enters its cgroup and time namespaces, sets the hostname, performs the
/// mount plan and runs `body`.
pub fn start_container(
    mapping: &MappingPlan,
    cgroup: Option<&Cgroup>,
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    body: impl FnOnce() -> i32,
) -> anyhow::Result<Child> {
    let isolation = namespaces.isolation(&[
        Namespace::User,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
    ]);
    let mut parent_steps = vec![ParentStep::new("write uid_map and gid_map", |pid| {
        userns::write_id_maps(pid, mapping, Path::new("/proc"))
    })];
    if let Some(cgroup) = cgroup {
        parent_steps.push(ParentStep::new(
            format!("move the container into cgroup {}", cgroup.name()),
            |pid| cgroup.add_pid(pid),
        ));
    }
    let mut steps = vec![
        userns::become_root_step(mapping),
        Step::new("unshare the cgroup namespace", || {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        }),
        hostname_step(&namespaces.hostname),
    ];
    steps.extend(mounts::steps(plan));
    process::spawn_fn_after(&isolation, parent_steps, steps, body).map_err(|err| {
        let privileged = nix::unistd::geteuid().is_root();
        match &err {
            ProcessError::Clone { source, .. } => match userns_refused(*source, privileged) {
                Some(why) => anyhow::anyhow!("{err} ({why})"),
                None => err.into(),
            },
            _ => err.into(),
        }
    })
}

/// Why clone(2) with CLONE_NEWUSER most likely failed with `errno`, for a normal user
/// when `privileged` is false: the machine's policy, not a bug.
pub fn userns_refused(errno: Errno, privileged: bool) -> Option<&'static str> {
    match errno {
        Errno::ENOSPC => Some(
            "no user namespace may be made: user.max_user_namespaces is 0 or used up (sysctl user.max_user_namespaces)",
        ),
        Errno::EPERM | Errno::EACCES if !privileged => Some(
            "this machine does not let a normal user make user namespaces: see sysctl kernel.unprivileged_userns_clone (Debian's older kernels) or kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+); run as root, or ask for them to be allowed",
        ),
        _ => None,
    }
}
// ANCHOR_END: start_container

/// The maps, one line each, and who writes them.
pub fn describe_mapping(mapping: &MappingPlan) -> String {
    let mut text = String::new();
    for (kind, maps) in [("uid", &mapping.maps.uids), ("gid", &mapping.maps.gids)] {
        for map in maps.iter() {
            let meaning = if map.count == 1 {
                format!(
                    "container {kind} {} is host {kind} {}",
                    map.inside, map.outside
                )
            } else {
                format!(
                    "container {kind}s {}-{} are host {kind}s {}-{}",
                    map.inside,
                    u64::from(map.inside) + u64::from(map.count) - 1,
                    map.outside,
                    u64::from(map.outside) + u64::from(map.count) - 1,
                )
            };
            text.push_str(&format!(
                "{kind} map: {:>5} {:>10} {:>6}   ({meaning})\n",
                map.inside, map.outside, map.count
            ));
        }
    }
    let writer = match (&mapping.writer, mapping.deny_setgroups) {
        (MapWriter::Kernel, false) => "nutshell, to /proc/PID/uid_map and gid_map (root may map any host ids)".to_string(),
        (MapWriter::Kernel, true) => "nutshell, to /proc/PID/uid_map and gid_map, after \"deny\" to /proc/PID/setgroups (a normal user may map only their own ids)".to_string(),
        (MapWriter::Helpers { newuidmap, newgidmap }, _) => format!(
            "{} and {}, which check /etc/subuid and /etc/subgid",
            newuidmap.display(),
            newgidmap.display()
        ),
    };
    text.push_str(&format!("written by: {writer}\n"));
    for note in &mapping.notes {
        text.push_str(&format!("note:    {note}\n"));
    }
    text
}

/// What the host sees of the container's PID 1: its ids and capabilities from
/// /proc/PID/status, and which user namespace it is in.
pub fn host_view(pid: i32) -> anyhow::Result<Vec<String>> {
    let proc_dir = Path::new("/proc");
    let ids: ProcIds = userns::read_status_ids(proc_dir, &pid.to_string())
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let ns = |pid: &str| {
        std::fs::read_link(proc_dir.join(pid).join("ns/user"))
            .map(|link| link.display().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    Ok(vec![
        format!("the same process, seen from the host's /proc/PID/status:"),
        format!("  {}", userns::describe_ids(&ids)),
        format!(
            "  in user namespace {}; the host's is {}",
            ns(&pid.to_string()),
            ns("self")
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_user_namespace_is_explained_for_a_normal_user() {
        let why = userns_refused(Errno::EPERM, false).expect("explained");
        assert!(why.starts_with("this machine does not let a normal user make user namespaces"));
        assert!(userns_refused(Errno::EPERM, true).is_none());
        assert!(userns_refused(Errno::ENOSPC, true).is_some());
        assert!(userns_refused(Errno::EINVAL, false).is_none());
    }
}
