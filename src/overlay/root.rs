//! The lower layers of a container's overlay as its root will mount them: for root's
//! container, idmapped copies attached inside the container; for a rootless one, the
//! layers as they are. Chapter 7 introduces it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use super::{ContainerDirs, OverlayError};
use crate::mounts::{self, MountOp, MountPlan};
use crate::userns::{self, MappingPlan};

// ANCHOR: overlay_root
/// The lower layers as the container will mount them. Root's container has its root
/// mapped to an unprivileged host uid, to whom the image's files (the host root's) are
/// nobody's: so each lower is an idmapped copy, attached inside the container and
/// showing the image's files as its root's. A rootless container's user owns the image
/// and uses it as it is.
pub struct OverlayRoot {
    /// One detached idmapped tree per lower (root only), held open until the container
    /// has attached them.
    trees: Vec<OwnedFd>,
    /// The lowerdirs the overlay mount names, top first.
    lowers: Vec<PathBuf>,
    /// What each tree is a copy of.
    sources: Vec<PathBuf>,
}

impl OverlayRoot {
    /// The lowerdirs the overlay mount names, top first: the attach points for root,
    /// the layers themselves for a normal user.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// The plan of a container whose root is one lower itself, with no overlay
    /// (chapter 7's break-it): attached on its mount point for root, used as it is for a
    /// normal user.
    pub fn plain_root_plan(&self) -> MountPlan {
        let target = self.lowers.first().cloned().unwrap_or_default();
        let mut plan = MountPlan::for_rootfs(&target, None).in_user_namespace();
        plan.add_after_private(
            self.trees
                .iter()
                .zip(&self.sources)
                .map(|(tree, source)| MountOp::AttachTree {
                    fd: tree.as_raw_fd(),
                    source: source.clone(),
                    target: target.clone(),
                })
                .collect(),
        );
        plan
    }

    /// Prepare `lowers` (top first) for the container of `dirs`: for root (`privileged`),
    /// an idmapped tree of each through `mapping` and a mount point `lowerN` for it; for a
    /// normal user, the lowers as they are.
    pub fn prepare(
        dirs: &ContainerDirs,
        lowers: &[PathBuf],
        mapping: &MappingPlan,
        privileged: bool,
    ) -> Result<OverlayRoot, OverlayError> {
        if !privileged {
            return Ok(OverlayRoot {
                trees: Vec::new(),
                lowers: lowers.to_vec(),
                sources: lowers.to_vec(),
            });
        }
        let mut root = OverlayRoot {
            trees: Vec::new(),
            lowers: Vec::new(),
            sources: lowers.to_vec(),
        };
        for (i, lower) in lowers.iter().enumerate() {
            root.trees.push(userns::idmapped_tree(lower, mapping)?);
            // The mount point, made by the parent; the mount happens inside.
            let point = dirs.root().join(format!("lower{}", i + 1));
            std::fs::create_dir_all(&point).map_err(OverlayError::io("create", &point))?;
            root.lowers.push(point);
        }
        Ok(root)
    }

    /// Chapter 6's plan, on the merged dir, after attaching the lowers and mounting the
    /// overlay there. Always with `userxattr`: the container's root, in its user
    /// namespace, mounts it, and may not write `trusted.*` xattrs.
    pub fn mount_plan(
        &self,
        dirs: &ContainerDirs,
        mapping: &MappingPlan,
    ) -> Result<MountPlan, OverlayError> {
        let merged = dirs.merged();
        // The image is the bottom layer; its /etc/group names the tty group.
        let tty_gid = mounts::tty_gid(self.sources.last().map_or(merged, PathBuf::as_path))
            .filter(|&gid| mapping.maps.host_gid(gid).is_some());
        let mut plan = MountPlan::for_rootfs(merged, tty_gid).in_user_namespace();
        let mut ops: Vec<MountOp> = self
            .trees
            .iter()
            .zip(self.sources.iter().zip(&self.lowers))
            .map(|(tree, (source, target))| MountOp::AttachTree {
                fd: tree.as_raw_fd(),
                source: source.clone(),
                target: target.clone(),
            })
            .collect();
        ops.push(dirs.layers(self.lowers.clone(), true).mount_op(merged)?);
        plan.add_after_private(ops);
        // The overlay is a mount point already: no need to bind merged onto itself.
        plan.ops
            .retain(|op| !matches!(op, MountOp::BindSelf { .. }));
        Ok(plan)
    }
}
// ANCHOR_END: overlay_root
