//! The mount plan: every mount, device node and link a container's root gets, computed as
//! data from the rootfs path alone. Nothing here touches the system, so the plan can be
//! printed, tested and snapshotted anywhere; [`super::apply`] performs it.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

// ANCHOR: masked_paths
/// Paths hidden from the container, as in runc's default spec: kernel memory
/// (`/proc/kcore`), the kernel keyring (`/proc/keys`), timing and scheduler internals that
/// help side-channel attacks (`/proc/timer_list`, `/proc/sched_debug`,
/// `/proc/latency_stats`), hardware control (`/proc/acpi`, `/proc/scsi`, `/sys/firmware`,
/// the power-capping interface whose energy counters leak what other processes do).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write, as in runc's default spec: the kernel's
/// tunables (`/proc/sys`), the magic SysRq key (`/proc/sysrq-trigger`: one byte reboots
/// the host), interrupt routing (`/proc/irq`), buses (`/proc/bus`) and filesystem
/// settings (`/proc/fs`). procfs is not namespaced for these: they are the host's.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
// ANCHOR_END: masked_paths

/// One operation of a [`MountPlan`]. Paths before [`MountOp::PivotRoot`] are host paths
/// under the rootfs; paths after it are the container's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// Make every mount in this namespace private, recursively: no mount event propagates
    /// to or from the host's namespace any more.
    MakePrivate,
    /// Bind a directory onto itself, recursively, so that it is a mount point.
    BindSelf {
        /// The directory.
        path: PathBuf,
    },
    /// mount(2) a filesystem.
    Mount {
        /// The filesystem type, which is also the source name (`proc`, `tmpfs`, ...).
        fstype: &'static str,
        /// Where.
        target: PathBuf,
        /// The mount flags (`MS_NOSUID`, `MS_RDONLY`, ...).
        flags: MsFlags,
        /// Filesystem-specific options, as mount(8)'s `-o` takes them.
        data: Option<String>,
    },
    /// mkdir(2), for a mount point inside a fresh tmpfs.
    MakeDir {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// An empty file, as a mount point for a bind-mounted file, inside a fresh tmpfs.
    MakeFile {
        /// The file.
        path: PathBuf,
    },
    /// Bind `source` at `target` (which must exist), optionally with everything mounted
    /// under it, optionally read-only.
    Bind {
        /// What to bind: a host path.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// With the mounts below `source` too (MS_REC).
        recursive: bool,
        /// Remount the bind read-only.
        read_only: bool,
    },
    /// Attach a detached mount tree (an idmapped copy of a directory, see
    /// [`crate::userns::idmapped_tree`]) at `target` with move_mount(2).
    AttachTree {
        /// The tree's file descriptor, open in the process that applies the plan.
        fd: i32,
        /// What the tree is a copy of, for the reader.
        source: PathBuf,
        /// Where.
        target: PathBuf,
    },
    /// mknod(2) a character device.
    Device {
        /// The node's path.
        path: PathBuf,
        /// The device's major number.
        major: u64,
        /// The device's minor number.
        minor: u64,
        /// Its permissions (set exactly: the umask does not apply).
        mode: u32,
    },
    /// symlink(2).
    Symlink {
        /// The link.
        link: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// Make `new_root` the root mount of this namespace and detach the old root; see
    /// [`super::pivot_root_into`].
    PivotRoot {
        /// The new root, already a mount point.
        new_root: PathBuf,
    },
    /// Hide a path: bind `/dev/null` over a file, mount an empty read-only tmpfs over a
    /// directory, skip a path this kernel does not have.
    Mask {
        /// The path, inside the container.
        path: PathBuf,
    },
    /// Make a path read-only: bind it onto itself, then remount the bind read-only.
    /// Skipped when the kernel does not have it.
    ReadOnly {
        /// The path, inside the container.
        path: PathBuf,
    },
}

/// A character device every container's /dev has: name, major, minor.
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The links every /dev has, from the name in /dev to its target.
const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Everything that makes a rootfs a container's root, in the order it must happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The operations, in order.
    pub ops: Vec<MountOp>,
}

impl MountPlan {
    // ANCHOR: for_rootfs
    /// The plan for `rootfs` (an absolute host path). `tty_gid` is the gid of the `tty`
    /// group in the rootfs's /etc/group, if it has one ([`super::tty_gid`]): new terminals
    /// belong to it, so that `write` and `wall` work.
    pub fn for_rootfs(rootfs: &Path, tty_gid: Option<u32>) -> MountPlan {
        let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let dev = rootfs.join("dev");
        let mut ops = vec![
            // First: where / is shared (systemd makes it so) every mount below would
            // also appear on the host.
            MountOp::MakePrivate,
            MountOp::BindSelf {
                path: rootfs.to_path_buf(),
            },
            // A proc for this PID namespace; nothing in it is a program or a device.
            MountOp::Mount {
                fstype: "proc",
                target: rootfs.join("proc"),
                flags: nosuid_nodev_noexec,
                data: None,
            },
            // /dev holds device nodes, so not nodev; nothing in it runs.
            MountOp::Mount {
                fstype: "tmpfs",
                target: dev.clone(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: Some("mode=755,size=64k".to_string()),
            },
        ];
        ops.extend(DEVICES.iter().map(|&(name, major, minor)| MountOp::Device {
            path: dev.join(name),
            major,
            minor,
            mode: 0o666,
        }));
        ops.extend(DEV_SYMLINKS.iter().map(|&(name, target)| MountOp::Symlink {
            link: dev.join(name),
            target: PathBuf::from(target),
        }));
        // newinstance: this container's own pty numbering, not the host's /dev/pts.
        let mut devpts = "newinstance,ptmxmode=0666,mode=0620".to_string();
        if let Some(gid) = tty_gid {
            devpts.push_str(&format!(",gid={gid}"));
        }
        ops.extend([
            MountOp::MakeDir {
                path: dev.join("pts"),
                mode: 0o755,
            },
            MountOp::Mount {
                fstype: "devpts",
                target: dev.join("pts"),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: Some(devpts),
            },
            MountOp::MakeDir {
                path: dev.join("shm"),
                mode: 0o1777,
            },
            MountOp::Mount {
                fstype: "tmpfs",
                target: dev.join("shm"),
                flags: nosuid_nodev_noexec,
                data: Some("mode=1777,size=64m".to_string()),
            },
            // Read-only: sysfs is not namespaced, its writable files are the host's.
            MountOp::Mount {
                fstype: "sysfs",
                target: rootfs.join("sys"),
                flags: nosuid_nodev_noexec | MsFlags::MS_RDONLY,
                data: None,
            },
            MountOp::PivotRoot {
                new_root: rootfs.to_path_buf(),
            },
        ]);
        // After the pivot: the masks bind the container's /dev/null, not the host's.
        ops.extend(MASKED_PATHS.iter().map(|path| MountOp::Mask {
            path: PathBuf::from(path),
        }));
        ops.extend(READONLY_PATHS.iter().map(|path| MountOp::ReadOnly {
            path: PathBuf::from(path),
        }));
        MountPlan { ops }
    }
    // ANCHOR_END: for_rootfs

    // ANCHOR: in_user_namespace
    /// The same plan for a container in its own user namespace. Two things root can do
    /// and root in a user namespace cannot: make device nodes (mknod(2) needs
    /// CAP_MKNOD in the host's namespace, or any container could make a node for the
    /// host's disk), and mount sysfs (it needs a network namespace of the container's
    /// own, which comes in chapter 8). So each device node becomes a bind mount of the
    /// host's node onto an empty file, and /sys a read-only bind of the host's /sys, as
    /// rootless podman does.
    pub fn in_user_namespace(self) -> MountPlan {
        let ops = self
            .ops
            .into_iter()
            .flat_map(|op| match op {
                MountOp::Device { path, .. } => {
                    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
                    vec![
                        MountOp::MakeFile { path: path.clone() },
                        MountOp::Bind {
                            source: Path::new("/dev").join(name),
                            target: path,
                            recursive: false,
                            read_only: false,
                        },
                    ]
                }
                MountOp::Mount {
                    fstype: "sysfs",
                    target,
                    ..
                } => vec![MountOp::Bind {
                    source: PathBuf::from("/sys"),
                    target,
                    recursive: true,
                    read_only: true,
                }],
                op => vec![op],
            })
            .collect();
        MountPlan { ops }
    }
    // ANCHOR_END: in_user_namespace

    /// Insert `ops` right after the first operation, which makes every mount private:
    /// how a chapter mounts the container's root itself (chapter 7's overlay) before the
    /// plan binds it.
    pub fn add_after_private(&mut self, ops: Vec<MountOp>) {
        let at = usize::from(self.ops.first() == Some(&MountOp::MakePrivate));
        self.ops.splice(at..at, ops);
    }

    /// Insert `op` just before the pivot_root, where paths are still the host's: how a
    /// chapter adds a bind mount of a host path.
    pub fn add_before_pivot(&mut self, op: MountOp) {
        let at = self
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .unwrap_or(self.ops.len());
        self.ops.insert(at, op);
    }
}

/// Mount flags as mount(8) prints them: `ro,nosuid,nodev,noexec`.
pub fn flag_names(flags: MsFlags) -> Vec<&'static str> {
    [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect()
}

impl fmt::Display for MountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountOp::MakePrivate => write!(
                f,
                "make every mount private, recursively (MS_REC|MS_PRIVATE on /)"
            ),
            MountOp::BindSelf { path } => write!(
                f,
                "bind {} onto itself (pivot_root needs a mount point)",
                path.display()
            ),
            MountOp::Mount {
                fstype,
                target,
                flags,
                data,
            } => {
                let mut options = flag_names(*flags);
                options.extend(data.as_deref());
                write!(f, "mount {fstype} on {}", target.display())?;
                if !options.is_empty() {
                    write!(f, " ({})", options.join(","))?;
                }
                Ok(())
            }
            MountOp::MakeDir { path, mode } => write!(f, "mkdir {} ({mode:04o})", path.display()),
            MountOp::MakeFile { path } => write!(f, "create {} (a mount point)", path.display()),
            MountOp::AttachTree { fd, source, target } => write!(
                f,
                "attach the idmapped copy of {} (fd {fd}) on {}",
                source.display(),
                target.display()
            ),
            MountOp::Bind {
                source,
                target,
                recursive,
                read_only,
            } => {
                let what = if *recursive { "rbind" } else { "bind" };
                write!(f, "{what} {} on {}", source.display(), target.display())?;
                if *read_only {
                    write!(f, " (ro)")?;
                }
                Ok(())
            }
            MountOp::Device {
                path,
                major,
                minor,
                mode,
            } => write!(f, "mknod {} c {major} {minor} ({mode:04o})", path.display()),
            MountOp::Symlink { link, target } => {
                write!(f, "symlink {} -> {}", link.display(), target.display())
            }
            MountOp::PivotRoot { new_root } => write!(
                f,
                "pivot_root into {}, then detach the old root",
                new_root.display()
            ),
            MountOp::Mask { path } => write!(f, "mask {}", path.display()),
            MountOp::ReadOnly { path } => write!(f, "make {} read-only", path.display()),
        }
    }
}

impl fmt::Display for MountPlan {
    /// The plan as a numbered checklist, one operation a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (number, op) in self.ops.iter().enumerate() {
            writeln!(f, "{:>2}. {op}", number + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MountPlan {
        MountPlan::for_rootfs(Path::new("/rootfs"), None)
    }

    #[test]
    fn propagation_is_cut_before_anything_is_mounted() {
        assert_eq!(plan().ops[0], MountOp::MakePrivate);
    }

    #[test]
    fn the_rootfs_is_a_mount_point_before_the_pivot() {
        let ops = plan().ops;
        let bind = ops
            .iter()
            .position(|op| matches!(op, MountOp::BindSelf { .. }));
        let pivot = ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }));
        assert!(bind < pivot && bind.is_some());
    }

    #[test]
    fn masks_and_read_only_paths_come_after_the_pivot() {
        let ops = plan().ops;
        let pivot = ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .expect("a pivot");
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, MountOp::Mask { .. } | MountOp::ReadOnly { .. }) {
                assert!(i > pivot, "{op} before the pivot");
            }
        }
    }

    #[test]
    fn every_path_before_the_pivot_is_under_the_rootfs() {
        for op in plan().ops {
            let path = match &op {
                MountOp::BindSelf { path }
                | MountOp::MakeDir { path, .. }
                | MountOp::MakeFile { path }
                | MountOp::Device { path, .. } => path,
                MountOp::Mount { target, .. }
                | MountOp::Bind { target, .. }
                | MountOp::AttachTree { target, .. } => target,
                MountOp::Symlink { link, .. } => link,
                _ => continue,
            };
            assert!(path.starts_with("/rootfs"), "{op}");
        }
    }

    #[test]
    fn devpts_gets_the_tty_gid_only_when_the_rootfs_has_one() {
        let devpts = |plan: MountPlan| {
            plan.ops
                .into_iter()
                .find_map(|op| match op {
                    MountOp::Mount {
                        fstype: "devpts",
                        data,
                        ..
                    } => data,
                    _ => None,
                })
                .expect("a devpts mount")
        };
        assert!(!devpts(plan()).contains("gid="));
        let with_tty = MountPlan::for_rootfs(Path::new("/rootfs"), Some(5));
        assert!(devpts(with_tty).ends_with(",gid=5"));
    }

    #[test]
    fn in_a_user_namespace_devices_are_bound_from_the_host_not_made() {
        let ops = plan().in_user_namespace().ops;
        assert!(!ops.iter().any(|op| matches!(op, MountOp::Device { .. })));
        let null = ops
            .iter()
            .position(|op| op.to_string() == "bind /dev/null on /rootfs/dev/null")
            .expect("a bind of the host's /dev/null");
        assert_eq!(
            ops[null - 1],
            MountOp::MakeFile {
                path: PathBuf::from("/rootfs/dev/null")
            }
        );
        assert!(
            ops.iter()
                .any(|op| op.to_string() == "rbind /sys on /rootfs/sys (ro)")
        );
        assert!(
            !ops.iter()
                .any(|op| op.to_string().starts_with("mount sysfs"))
        );
    }

    #[test]
    fn a_bind_added_before_the_pivot_comes_right_before_it() {
        let mut plan = plan();
        let bind = MountOp::Bind {
            source: PathBuf::from("/etc"),
            target: PathBuf::from("/rootfs/etc"),
            recursive: false,
            read_only: false,
        };
        plan.add_before_pivot(bind.clone());
        let pivot = plan
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .expect("a pivot");
        assert_eq!(plan.ops[pivot - 1], bind);
    }

    #[test]
    fn sysfs_is_read_only() {
        let op = plan()
            .ops
            .into_iter()
            .find(|op| {
                matches!(
                    op,
                    MountOp::Mount {
                        fstype: "sysfs",
                        ..
                    }
                )
            })
            .expect("sysfs");
        assert_eq!(
            op.to_string(),
            "mount sysfs on /rootfs/sys (ro,nosuid,nodev,noexec)"
        );
    }
}
