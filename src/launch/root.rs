//! Planning the container's root: a directory as it is, a directory through an
//! idmapped mount, or an overlay of layers under an upper of its own.

use std::path::{Path, PathBuf};

use super::facts::HostFacts;
use super::id::ContainerId;
use super::plan::{Owned, PlanError};
use super::steps::ParentStep;
use crate::mounts::MountOp;
use crate::overlay::OverlayLayers;
use crate::spec::{ContainerSpec, EnterRoot, RootFs, Upper};
use crate::userns::MappingPlan;

/// The container's root as planned: where it is on the host, the host steps that make
/// it, and the mounts that put it together inside.
pub(super) struct RootPlan {
    pub(super) rootfs: PathBuf,
    pub(super) parent_steps: Vec<ParentStep>,
    pub(super) mounts: Vec<MountOp>,
    pub(super) overlay: Option<OverlayLayers>,
}

// ANCHOR: plan_root
/// Plan the root: a directory as it is, a directory through an idmapped mount, or an
/// overlay of layers (idmapped for root's containers) under an upper of its own.
pub(super) fn plan_root(
    id: &ContainerId,
    spec: &ContainerSpec,
    facts: &HostFacts,
    mapping: Option<&MappingPlan>,
    owned: &mut Owned,
) -> Result<RootPlan, PlanError> {
    let container_dir = facts.data_dir.join("containers").join(id.as_str());
    let idmap_needs = |idmap: bool| -> Result<(), PlanError> {
        if idmap && (mapping.is_none() || !facts.caller.privileged) {
            return Err(PlanError::Unsupported(
                "an idmapped root needs root and a new user namespace: only the host's root can make an idmapped mount".to_string(),
            ));
        }
        Ok(())
    };
    let absolute = |path: &Path| {
        if path.is_absolute() {
            Ok(())
        } else {
            Err(PlanError::Relative {
                what: "the root",
                path: path.to_path_buf(),
            })
        }
    };
    match &spec.root.fs {
        RootFs::Host => Ok(RootPlan {
            rootfs: PathBuf::from("/"),
            parent_steps: Vec::new(),
            mounts: Vec::new(),
            overlay: None,
        }),
        RootFs::Dir { path, idmap: false } => {
            absolute(path)?;
            let mounts = match spec.root.enter {
                EnterRoot::PivotRoot => vec![MountOp::BindSelf { path: path.clone() }],
                EnterRoot::Chroot => Vec::new(),
            };
            Ok(RootPlan {
                rootfs: path.clone(),
                parent_steps: Vec::new(),
                mounts,
                overlay: None,
            })
        }
        RootFs::Dir { path, idmap: true } => {
            absolute(path)?;
            idmap_needs(true)?;
            let point = container_dir.join("root");
            owned.container_dir = Some(container_dir.clone());
            Ok(RootPlan {
                rootfs: point.clone(),
                parent_steps: vec![
                    ParentStep::CreateContainerDirs {
                        dir: container_dir,
                        subdirs: vec!["root".to_string()],
                        owner: None,
                    },
                    ParentStep::IdmapTrees {
                        sources: vec![path.clone()],
                    },
                ],
                mounts: vec![MountOp::AttachTree {
                    tree: 0,
                    source: path.clone(),
                    target: point,
                }],
                overlay: None,
            })
        }
        // ANCHOR: plan_overlay
        RootFs::Overlay {
            lowers,
            upper,
            idmap,
        } => {
            for lower in lowers {
                absolute(lower)?;
            }
            idmap_needs(*idmap)?;
            let merged = container_dir.join("merged");
            let mut subdirs = Vec::new();
            let (upper_dir, work_dir) = match upper {
                Upper::Managed { keep } => {
                    subdirs.extend(["upper", "work"].map(String::from));
                    owned.keep_upper = *keep;
                    (
                        Some(container_dir.join("upper")),
                        Some(container_dir.join("work")),
                    )
                }
                Upper::Dirs { upper, work } => {
                    absolute(upper)?;
                    absolute(work)?;
                    (Some(upper.clone()), Some(work.clone()))
                }
                Upper::None => (None, None),
            };
            subdirs.push("merged".to_string());
            let points: Vec<PathBuf> = if *idmap {
                (1..=lowers.len())
                    .map(|n| container_dir.join(format!("lower{n}")))
                    .collect()
            } else {
                lowers.clone()
            };
            if *idmap {
                subdirs.extend((1..=lowers.len()).map(|n| format!("lower{n}")));
            }
            let layers = OverlayLayers {
                lowers: points.clone(),
                upper: upper_dir,
                work: work_dir,
                // The container's root mounts it, in its user namespace, where trusted.*
                // xattrs are the host root's alone.
                userxattr: mapping.is_some(),
            };
            let mut mounts: Vec<MountOp> = if *idmap {
                lowers
                    .iter()
                    .zip(&points)
                    .enumerate()
                    .map(|(tree, (source, target))| MountOp::AttachTree {
                        tree,
                        source: source.clone(),
                        target: target.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            mounts.push(layers.mount_op(&merged)?);
            // The container's root owns its upper, as the host knows it; a normal
            // user's own dirs are its container's root's already.
            let owner = mapping
                .and_then(|m| m.maps.host_root())
                .filter(|_| facts.caller.privileged);
            let mut parent_steps = vec![ParentStep::CreateContainerDirs {
                dir: container_dir.clone(),
                subdirs,
                owner,
            }];
            if *idmap {
                parent_steps.push(ParentStep::IdmapTrees {
                    sources: lowers.clone(),
                });
            }
            owned.container_dir = Some(container_dir);
            if !facts.caller.privileged
                && let Some(mapping) = mapping.filter(|m| m.maps.uid_count() > 1)
            {
                owned.remove_as = Some(mapping.clone());
            }
            Ok(RootPlan {
                rootfs: merged,
                parent_steps,
                mounts,
                overlay: Some(layers),
            })
        }
    }
}
// ANCHOR_END: plan_overlay
// ANCHOR_END: plan_root
