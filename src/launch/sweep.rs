//! Removing what containers left when their owner was killed, and a container's
//! directories in general.

use std::path::{Path, PathBuf};

use super::LaunchError;
use super::facts::HostFacts;
use super::plan::Owned;
use super::state::{self, StateDir};
use crate::cgroups::{Cgroup, CgroupDir, CgroupLayout};
use crate::process::Exit;
use crate::spec::{ContainerSpec, EnterRoot, Namespaces, Process, Program, Root, RootFs};
use crate::userns::IdMaps;
use crate::workloads::Builtin;

/// How long a killed container's first process may take to die before its dirs are
/// removed anyway.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

// ANCHOR: sweep_stale
/// Remove every container under `state_root` whose owner is gone (its lock can be
/// taken): kill its processes, remove its cgroup, its directories and its state. Returns
/// one line per container removed. A live container is never touched.
pub fn sweep_stale(state_root: &Path, facts: &HostFacts) -> Result<Vec<String>, LaunchError> {
    let mut removed = Vec::new();
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { op, path, source }
    };
    for dir in state::sweep_unfinished(state_root).map_err(io("remove", state_root))? {
        removed.push(format!("unfinished state {}", dir.display()));
    }
    for dir in state::list(state_root).map_err(io("read", state_root))? {
        let Some(taken) =
            StateDir::take_over_when_orphaned(&dir, KILL_WAIT).map_err(io("lock", &dir))?
        else {
            continue;
        };
        if taken
            .read()
            .is_some_and(|state| state.detached && state.status != super::Status::Creating)
        {
            // Let go by `nutshell create` on purpose: `nutshell delete` removes it.
            continue;
        }
        removed.push(remove_left(taken, facts)?);
    }
    // Leases and ports of containers that left no state at all, and networks no one uses.
    let live = |id: &str| state_root.join(id).exists();
    for left in crate::net::remove_unused(&facts.data_dir, live)? {
        removed.push(format!("network: {left}"));
    }
    Ok(removed)
}
// ANCHOR_END: sweep_stale

/// Remove the container whose state dir `taken` is, with its lock held: kill its first
/// process, remove its cgroup, its directories, its network and its state. Returns one
/// line that says what was removed.
pub(super) fn remove_left(taken: StateDir, facts: &HostFacts) -> Result<String, LaunchError> {
    let dir = taken.path().to_path_buf();
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { op, path, source }
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut what = Vec::new();
    if let Some(state) = taken.read() {
        if let Some(init) = state.init.filter(|init| init.alive()) {
            // A process of ours, named by pid and start time: not a reused pid.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            // Its mounts (an overlay on the container's dirs) go with its mount
            // namespace, once it is dead: wait for that, a moment, before removing.
            let deadline = std::time::Instant::now() + KILL_WAIT;
            while init.alive() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            what.push(format!("process {}", init.pid));
        }
        if let (Some((path, controllers)), Some(layout)) = (&state.owned.cgroup, &facts.cgroups) {
            let dirs = cgroup_dirs(layout, path, controllers);
            if dirs.iter().any(|d| d.path.exists()) {
                let mut cgroup = Cgroup::left_behind(path, dirs)?;
                cgroup.kill_all()?;
                cgroup.remove()?;
                what.push(format!("cgroup {path}"));
            }
        }
        if let Some(container_dir) = &state.owned.container_dir
            && container_dir.exists()
        {
            remove_container_dir(container_dir, &state.owned, facts)?;
            what.push(container_dir.display().to_string());
        }
        if let Some(network) = &state.owned.network {
            what.extend(crate::net::teardown(&name, network)?);
        }
    }
    taken.remove().map_err(io("remove", &dir))?;
    what.push(format!("state {}", dir.display()));
    Ok(format!("{name}: {}", what.join(", ")))
}

/// The directories a cgroup at `path` with `controllers` has on this layout.
pub(super) fn cgroup_dirs(
    layout: &CgroupLayout,
    path: &str,
    controllers: &[String],
) -> Vec<CgroupDir> {
    let mut dirs: Vec<CgroupDir> = Vec::new();
    for controller in controllers {
        let Some(mount) = layout.mount_for(controller) else {
            continue;
        };
        match dirs.iter_mut().find(|d| d.mount_point == mount.mount_point) {
            Some(dir) => dir.controllers.push(controller.clone()),
            None => dirs.push(CgroupDir {
                version: mount.version,
                controllers: vec![controller.clone()],
                path: mount.mount_point.join(path),
                mount_point: mount.mount_point.clone(),
            }),
        }
    }
    dirs
}

/// Remove a container's directory, all of it but `upper` when `owned.keep_upper`. For a
/// rootless container whose subordinate ids own files in it, as its root, in a user
/// namespace with the same maps: from outside its user may not even enter them.
pub(super) fn remove_container_dir(
    dir: &Path,
    owned: &Owned,
    facts: &HostFacts,
) -> Result<(), LaunchError> {
    if !dir.exists() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = if owned.keep_upper {
        std::fs::read_dir(dir)
            .map_err(|source| LaunchError::Io {
                op: "read",
                path: dir.to_path_buf(),
                source,
            })?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| !path.ends_with("upper"))
            .collect()
    } else {
        vec![dir.to_path_buf()]
    };
    match &owned.remove_as {
        Some(mapping) => remove_as_mapped_root(&mapping.maps, paths, facts),
        None => remove_trees(&paths),
    }
}

/// Remove `paths` as the root of a user namespace with `maps`, which owns what the
/// caller's subordinate ids own.
fn remove_as_mapped_root(
    maps: &IdMaps,
    paths: Vec<PathBuf>,
    facts: &HostFacts,
) -> Result<(), LaunchError> {
    let exit = super::run_as_mapped_root(maps, Builtin::RemoveTrees { paths }, facts)?;
    if exit != Exit::Code(0) {
        return Err(LaunchError::ChildGone {
            status: exit.to_string(),
            stage: "done removing the files as their owners' root",
        });
    }
    Ok(())
}

/// Remove `paths` directly, never following a symlink out of them.
fn remove_trees(paths: &[PathBuf]) -> Result<(), LaunchError> {
    for path in paths {
        crate::overlay::remove_tree(path)?;
    }
    Ok(())
}

/// Remove everything nutshell keeps for the caller: its data dir (images, containers'
/// directories) and its state dir, after sweeping what killed owners left. Refused while
/// a container runs. A normal user's containers may have given files to its
/// subordinate ids, which it cannot remove from outside: those go as the root of a user
/// namespace with the caller's default maps, which owns them. Returns what was removed.
pub fn remove_everything(facts: &HostFacts) -> Result<Vec<PathBuf>, LaunchError> {
    sweep_stale(&facts.state_root, facts)?;
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { op, path, source }
    };
    let running = state::list(&facts.state_root).map_err(io("read", &facts.state_root))?;
    if !running.is_empty() {
        let names: Vec<String> = running
            .iter()
            .filter_map(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        return Err(LaunchError::StillRunning {
            names: names.join(", "),
        });
    }
    let (data, state) = (&facts.data_dir, &facts.state_root);
    let mut removed = Vec::new();
    if data.exists() {
        // Everything in the data dir but the state dir (tests keep it there): the helper
        // that removes it keeps its own state in the state dir while it runs.
        let entries: Vec<PathBuf> = std::fs::read_dir(data)
            .map_err(io("read", data))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path != state)
            .collect();
        remove_trees_as_owner(entries, facts)?;
    }
    for dir in [state, data] {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => removed.push(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io("remove", dir)(source)),
        }
    }
    Ok(removed)
}

/// Remove `paths`: directly as root, or as the root of the caller's default user
/// namespace when it maps more than its own id.
pub(crate) fn remove_trees_as_owner(
    paths: Vec<PathBuf>,
    facts: &HostFacts,
) -> Result<(), LaunchError> {
    if paths.is_empty() {
        return Ok(());
    }
    let mapping = crate::userns::plan_mapping(
        &facts.caller,
        &[],
        &[],
        facts.subuids.as_deref().unwrap_or_default(),
        facts.subgids.as_deref().unwrap_or_default(),
        facts.id_map_helpers.clone(),
    )?;
    if facts.caller.privileged || mapping.maps.uid_count() == 1 {
        return remove_trees(&paths);
    }
    remove_as_mapped_root(&mapping.maps, paths, facts)
}

// ANCHOR: userns_helper
/// A process in a user namespace with `maps`, on the host's root, running `builtin`
/// (or, if never started, nothing): what lends its maps to an idmapped mount, and what
/// removes a rootless container's files as the container's root.
pub(super) fn userns_helper(maps: &IdMaps, builtin: Option<Builtin>) -> ContainerSpec {
    let program = match builtin {
        Some(builtin) => Program::Builtin(builtin),
        None => Program::Args(vec!["true".to_string()]),
    };
    let root = Root {
        fs: RootFs::Host,
        readonly: false,
        enter: EnterRoot::Chroot,
    };
    let mut spec = ContainerSpec::new(
        root,
        Process {
            env: Vec::new(),
            ..Process::new(program)
        },
    );
    spec.namespaces = Namespaces::new_for(&[crate::namespaces::Namespace::User]);
    spec.uid_maps = maps.uids.clone();
    spec.gid_maps = maps.gids.clone();
    spec
}
// ANCHOR_END: userns_helper
