//! The sections a mount plan is assembled from, in the order the kernel needs them.

use std::path::{Path, PathBuf};

use super::plan::{DEV_SYMLINKS, MountOp};
use crate::cgroups::{CgroupLayout, CgroupVersion};
use crate::spec::{Atime, Device, EnterRoot, Mount, MountKind, MountOptions, Propagation};

/// What the sections need to know about the container besides its spec.
#[derive(Debug, Clone, Copy)]
pub struct MountContext<'a> {
    /// The root, as a host path: the rootfs, or the overlay's mount point.
    pub rootfs: &'a Path,
    /// The container has a user namespace of its own: no mknod, and sysfs only with a
    /// network namespace of its own too.
    pub user_namespace: bool,
    /// The container has a network namespace of its own.
    pub net_namespace: bool,
    /// The host's cgroup hierarchies, for a cgroup mount.
    pub cgroups: Option<&'a CgroupLayout>,
}

impl MountContext<'_> {
    /// `path` (absolute, inside the container) as the host sees it before the pivot.
    pub fn host(&self, path: &Path) -> PathBuf {
        self.rootfs.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// The container's `/sys` is the host's, bound with everything below it: in a user
    /// namespace, sysfs can be mounted only by the owner of a network namespace.
    fn binds_host_sys(&self) -> bool {
        self.user_namespace && !self.net_namespace
    }
}

// ANCHOR: sections
/// First: set the propagation of every mount, so that nothing mounted below reaches the
/// host (where `/` is shared, as systemd makes it, every mount would appear there too).
pub fn propagation_section(kind: Propagation) -> Vec<MountOp> {
    vec![MountOp::Propagation { kind }]
}

// ANCHOR: mounts_section
/// The spec's mounts, in order, each under the root. In a user namespace without a
/// network namespace of its own, sysfs cannot be mounted: the host's `/sys` is bound
/// read-only instead, everything below it included, as rootless podman does.
pub fn mounts_section(mounts: &[Mount], ctx: &MountContext) -> Vec<MountOp> {
    let mut ops = Vec::new();
    for mount in mounts {
        let target = ctx.host(&mount.destination);
        match &mount.kind {
            MountKind::Bind { source, recursive } => {
                ops.push(MountOp::Bind {
                    source: source.clone(),
                    target: target.clone(),
                    recursive: *recursive,
                    readonly: mount.options.readonly,
                });
                let o = &mount.options;
                if o.nosuid || o.nodev || o.noexec || o.nodiratime || o.atime != Atime::Relative {
                    ops.push(MountOp::SetAttributes {
                        target,
                        options: MountOptions {
                            readonly: false,
                            data: Vec::new(),
                            ..o.clone()
                        },
                        recursive: *recursive,
                    });
                }
            }
            MountKind::Sysfs if ctx.binds_host_sys() => ops.push(MountOp::Bind {
                source: PathBuf::from("/sys"),
                target,
                recursive: true,
                readonly: true,
            }),
            MountKind::Cgroup => ops.extend(cgroup_mounts(&target, &mount.options, ctx)),
            kind => ops.push(MountOp::Mount {
                fstype: kind.fstype().to_string(),
                target,
                options: mount.options.clone(),
            }),
        }
    }
    ops
}

// ANCHOR_END: mounts_section

// ANCHOR: devices_section
/// The device nodes and links of a fresh `/dev`. In a user namespace mknod(2) is refused
/// (it needs CAP_MKNOD in the host's user namespace, or any container could make a node
/// for the host's disk), so each node is a bind mount of the host's.
pub fn devices_section(devices: &[Device], with_pts: bool, ctx: &MountContext) -> Vec<MountOp> {
    let mut ops: Vec<MountOp> = devices
        .iter()
        .map(|device| {
            let path = ctx.host(&device.path);
            if ctx.user_namespace {
                MountOp::Bind {
                    source: device.path.clone(),
                    target: path,
                    recursive: false,
                    readonly: false,
                }
            } else {
                MountOp::Device {
                    path,
                    major: device.major,
                    minor: device.minor,
                    mode: device.mode,
                }
            }
        })
        .collect();
    let dev = ctx.host(Path::new("/dev"));
    ops.extend(
        DEV_SYMLINKS
            .iter()
            .filter(|(name, _)| with_pts || *name != "ptmx")
            .map(|&(name, target)| MountOp::Symlink {
                link: dev.join(name),
                target: PathBuf::from(target),
            }),
    );
    ops
}

// ANCHOR_END: devices_section

/// Into the root: pivot_root, which needs the root to be a mount point, or chroot.
pub fn enter_section(enter: EnterRoot, ctx: &MountContext) -> Vec<MountOp> {
    let new_root = ctx.rootfs.to_path_buf();
    match enter {
        EnterRoot::PivotRoot => vec![MountOp::PivotRoot { new_root }],
        EnterRoot::Chroot => vec![MountOp::Chroot { new_root }],
    }
}

/// After the root is entered: the masks bind the container's /dev/null, not the host's.
/// Then the read-only paths, and last the root itself, if it is to be read-only.
pub fn protect_section(
    masked: &[PathBuf],
    readonly: &[PathBuf],
    root_readonly: bool,
) -> Vec<MountOp> {
    let mut ops: Vec<MountOp> = masked
        .iter()
        .map(|path| MountOp::Mask { path: path.clone() })
        .collect();
    ops.extend(
        readonly
            .iter()
            .map(|path| MountOp::ReadOnly { path: path.clone() }),
    );
    if root_readonly {
        ops.push(MountOp::RemountReadOnly {
            path: PathBuf::from("/"),
            recursive: false,
        });
    }
    ops
}
// ANCHOR_END: sections

// ANCHOR: cgroup_mounts
/// The host's cgroup hierarchies at `target`, read-only, as the container's cgroup
/// namespace shows them: one cgroup2 mount on a pure v2 host; on v1 and hybrid hosts a
/// tmpfs holding one mount per hierarchy, where the host has them.
fn cgroup_mounts(target: &Path, options: &MountOptions, ctx: &MountContext) -> Vec<MountOp> {
    let Some(layout) = ctx.cgroups else {
        return Vec::new();
    };
    let tmpfs = MountOp::Mount {
        fstype: "tmpfs".to_string(),
        target: target.to_path_buf(),
        options: MountOptions::inert().with_data(&["mode=755", "size=64k"]),
    };
    let only_v2 = layout
        .mounts
        .iter()
        .all(|mount| mount.version == CgroupVersion::V2);
    if only_v2 {
        let cgroup2 = MountOp::Mount {
            fstype: "cgroup2".to_string(),
            target: target.to_path_buf(),
            options: options.clone(),
        };
        // A bound host /sys brings the host's cgroup2 mount along, right at `target`,
        // and the kernel refuses to mount a filesystem on the root of a mount of that
        // same filesystem (EBUSY): the tmpfs first gives the cgroup2 mount another
        // mount point. Ref: do_add_mount() in fs/namespace.c, "Refuse the same
        // filesystem on the same mount point".
        return if ctx.binds_host_sys() {
            vec![tmpfs, cgroup2]
        } else {
            vec![cgroup2]
        };
    }
    let mut ops = vec![tmpfs];
    for mount in &layout.mounts {
        let Ok(below) = mount.mount_point.strip_prefix("/sys/fs/cgroup") else {
            continue;
        };
        let (fstype, data) = match mount.version {
            CgroupVersion::V2 => ("cgroup2", Vec::new()),
            CgroupVersion::V1 => ("cgroup", mount.controllers.clone()),
        };
        let mut options = options.clone();
        options.data.extend(data);
        ops.push(MountOp::Mount {
            fstype: fstype.to_string(),
            target: target.join(below),
            options,
        });
    }
    ops.push(MountOp::RemountReadOnly {
        path: target.to_path_buf(),
        recursive: false,
    });
    ops
}
// ANCHOR_END: cgroup_mounts

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(user_namespace: bool) -> MountContext<'static> {
        MountContext {
            rootfs: Path::new("/rootfs"),
            user_namespace,
            net_namespace: false,
            cgroups: None,
        }
    }

    #[test]
    fn spec_mounts_land_under_the_root() {
        let ops = mounts_section(&[Mount::proc(), Mount::dev()], &ctx(false));
        assert_eq!(
            ops[0].to_string(),
            "mount proc on /rootfs/proc (nosuid,nodev,noexec)"
        );
        assert_eq!(
            ops[1].to_string(),
            "mount tmpfs on /rootfs/dev (nosuid,noexec,mode=755,size=64k)"
        );
    }

    #[test]
    fn in_a_user_namespace_devices_are_bound_from_the_host_not_made() {
        let ops = devices_section(&Device::defaults(), true, &ctx(true));
        assert!(!ops.iter().any(|op| matches!(op, MountOp::Device { .. })));
        assert!(
            ops.iter()
                .any(|op| op.to_string() == "bind /dev/null on /rootfs/dev/null")
        );
        let made = devices_section(&Device::defaults(), true, &ctx(false));
        assert!(
            made.iter()
                .any(|op| op.to_string() == "mknod /rootfs/dev/null c 1 3 (0666)")
        );
    }

    #[test]
    fn on_pure_v2_under_a_bound_host_sys_cgroup2_goes_on_a_tmpfs_of_its_own() {
        let v2 = crate::cgroups::layout::detect(
            include_str!("../../tests/fixtures/mountinfo/v2.txt"),
            |_| Ok("cpu memory pids".to_string()),
        )
        .expect("the v2 fixture");
        let cgroup = |user_namespace, net_namespace| {
            let ctx = MountContext {
                user_namespace,
                net_namespace,
                cgroups: Some(&v2),
                ..ctx(user_namespace)
            };
            mounts_section(&[Mount::cgroup()], &ctx)
                .iter()
                .map(|op| op.to_string())
                .collect::<Vec<_>>()
        };
        let cgroup2 = "mount cgroup2 on /rootfs/sys/fs/cgroup (ro,nosuid,nodev,noexec)";
        let tmpfs = "mount tmpfs on /rootfs/sys/fs/cgroup (nosuid,nodev,noexec,mode=755,size=64k)";
        assert_eq!(cgroup(true, false), [tmpfs, cgroup2]);
        assert_eq!(cgroup(true, true), [cgroup2]);
        assert_eq!(cgroup(false, false), [cgroup2]);
    }

    #[test]
    fn in_a_user_namespace_without_a_network_namespace_sys_is_the_hosts_read_only() {
        let ops = mounts_section(&[Mount::sysfs()], &ctx(true));
        assert_eq!(ops[0].to_string(), "rbind /sys on /rootfs/sys (ro)");
        let own_net = MountContext {
            net_namespace: true,
            ..ctx(true)
        };
        let ops = mounts_section(&[Mount::sysfs()], &own_net);
        assert_eq!(
            ops[0].to_string(),
            "mount sysfs on /rootfs/sys (ro,nosuid,nodev,noexec)"
        );
    }

    #[test]
    fn without_devpts_there_is_no_ptmx_link() {
        let ops = devices_section(&[Device::char("null", 1, 3)], false, &ctx(false));
        assert!(!ops.iter().any(|op| op.to_string().contains("ptmx")));
    }

    #[test]
    fn a_read_only_root_is_remounted_last() {
        let ops = protect_section(&[PathBuf::from("/proc/kcore")], &[], true);
        assert_eq!(
            ops.last().map(ToString::to_string).as_deref(),
            Some("make the mount at / read-only")
        );
    }
}
