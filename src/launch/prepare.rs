//! What the host side checks and makes before the container's first process exists.

use std::path::{Path, PathBuf};

use super::LaunchError;
use super::facts::HostFacts;
use super::id::ContainerId;
use super::plan::LaunchPlan;
use super::steps::ChildStep;
use crate::overlay::ContainerDirs;
use crate::spec::{ContainerSpec, RootFs};

/// The mount points an image could point out of the root: refused up front with a clear
/// error if they are symlinks (the first process refuses them too, with ELOOP, should
/// the image change in between).
pub(super) fn check_mount_points(spec: &ContainerSpec) -> Result<(), LaunchError> {
    let layers: Vec<&Path> = match &spec.root.fs {
        RootFs::Host => return Ok(()),
        RootFs::Dir { path, .. } => vec![path],
        RootFs::Overlay { lowers, .. } => lowers.iter().map(PathBuf::as_path).collect(),
    };
    for mount in spec
        .mounts
        .iter()
        .filter(|m| !matches!(m.kind, crate::spec::MountKind::Bind { .. }))
    {
        let Ok(inside) = mount.destination.strip_prefix("/") else {
            continue;
        };
        let Some(first) = inside.components().next() else {
            continue;
        };
        // The top layer that has the entry is what the container sees.
        for layer in &layers {
            let path = layer.join(first);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(LaunchError::RootSymlink {
                        name: format!("/{}", Path::new(&first).display()),
                        target: std::fs::read_link(&path).unwrap_or_default(),
                    });
                }
                Ok(_) => break,
                Err(_) => continue,
            }
        }
    }
    Ok(())
}

/// The directories the container's root must walk through, as the host uid it is, checked
/// before anything is made: a 0700 parent (`mktemp -d` makes them) would stop it with a
/// bare EACCES in the middle of its mount steps.
pub(super) fn check_reachable(
    plan: &LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<(), LaunchError> {
    let Some(mapping) = &plan.mapping else {
        return Ok(());
    };
    let paths: Vec<&Path> = match &spec.root.fs {
        RootFs::Host => Vec::new(),
        RootFs::Dir { path, idmap: false } => vec![path],
        // Attached from fds the host side opened: only the mount points are walked to.
        RootFs::Dir { idmap: true, .. } | RootFs::Overlay { idmap: true, .. } => {
            vec![&facts.data_dir]
        }
        RootFs::Overlay { lowers, .. } => {
            let mut paths: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
            paths.push(&facts.data_dir);
            paths
        }
    };
    for path in paths {
        mapping.check_reachable(path)?;
    }
    Ok(())
}

/// Make `<data>/containers/<id>` and its `subdirs`: an overlay's upper, work and merged
/// (see [`ContainerDirs`]), owned by the container's root; mount points for idmapped
/// trees.
pub(super) fn make_container_dirs(
    data_dir: &Path,
    id: &ContainerId,
    subdirs: &[String],
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, LaunchError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { op, path, source }
    };
    let dir = if subdirs.iter().any(|d| d == "upper") {
        ContainerDirs::create(data_dir, id.as_str(), owner)?.keep()
    } else {
        let dir = data_dir.join("containers").join(id.as_str());
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        dir
    };
    for name in subdirs
        .iter()
        .filter(|d| !["upper", "work", "merged"].contains(&d.as_str()))
    {
        let path = dir.join(name);
        std::fs::create_dir(&path).map_err(io("create", &path))?;
        // The mount points of idmapped layers: the container's root owns them too, as
        // the plan says, though what is attached on them hides them.
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io("chown", &path))?;
        }
    }
    Ok(dir)
}

/// The root the first process resolves mount targets in: the rootfs, or the overlay's
/// (or idmapped tree's) mount point, as the mount plan names it before the pivot.
pub(super) fn rootfs_of(plan: &LaunchPlan) -> PathBuf {
    plan.child
        .iter()
        .find_map(|step| match step {
            ChildStep::Mount(crate::mounts::MountOp::PivotRoot { new_root })
            | ChildStep::Mount(crate::mounts::MountOp::Chroot { new_root }) => {
                Some(new_root.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}
