//! The mount plan: every mount, device node and link a container's root gets, computed
//! as data. Nothing here touches the system, so the plan can be printed, tested and
//! snapshotted anywhere; [`super::Applier`] performs it.
//!
//! A plan is assembled from sections, in the order the kernel needs them: propagation
//! first (or every mount below would reach the host), then the root, then the spec's
//! mounts, then the device nodes of a fresh `/dev`, then the step into the root, then the
//! paths to hide or protect. [`crate::launch`] puts the sections together; no section is
//! patched after it is built.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::{MountOptions, Propagation};

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

/// The links every fresh `/dev` has, from the name in `/dev` to its target.
pub(super) const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// One operation of a mount plan (see [`crate::launch::plan`]). Paths before the root is entered are host paths
/// (those under the new root are resolved inside it, never through a symlink out of
/// it); paths after it are the container's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MountOp {
    /// Set the propagation of every mount in this namespace, recursively.
    Propagation {
        /// Private, slave or shared.
        kind: Propagation,
    },
    /// Bind a directory onto itself, recursively, so that it is a mount point.
    BindSelf {
        /// The directory.
        path: PathBuf,
    },
    /// Attach a detached, idmapped copy of a directory tree at `target` (move_mount(2)).
    AttachTree {
        /// Which of the container's idmapped trees, by position.
        tree: usize,
        /// What the tree is a copy of, for the reader.
        source: PathBuf,
        /// Where.
        target: PathBuf,
    },
    /// mount(2) a filesystem on a directory, made if missing.
    Mount {
        /// The filesystem type, which is also the source name (`proc`, `tmpfs`, ...).
        fstype: String,
        /// Where.
        target: PathBuf,
        /// Flags and the filesystem's own options.
        options: MountOptions,
    },
    /// Bind `source` at `target` (made if missing: a directory, or an empty file when
    /// `source` is a file).
    Bind {
        /// What to bind: a host path.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// With the mounts below `source` too (MS_REC).
        recursive: bool,
        /// Make the bind read-only, with everything below it when `recursive`.
        readonly: bool,
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
    /// chroot(2) into `new_root` (chapters 1 to 3).
    Chroot {
        /// The new root.
        new_root: PathBuf,
    },
    /// Hide a path: bind `/dev/null` over a file, mount an empty read-only tmpfs over a
    /// directory, skip a path this kernel does not have.
    Mask {
        /// The path, inside the container.
        path: PathBuf,
    },
    /// Make a path read-only: bind it onto itself, then make the bind read-only.
    /// Skipped when the kernel does not have it.
    ReadOnly {
        /// The path, inside the container.
        path: PathBuf,
    },
    /// Set a bind mount's flags (nosuid, nodev, noexec, the atime rule) with
    /// mount_setattr(2), with every mount below it when `recursive`: a bind mount takes
    /// the flags of the mount it copies, whatever mount(2) is given.
    SetAttributes {
        /// The mount point, resolved as [`MountOp::Bind`]'s target is.
        target: PathBuf,
        /// The flags to set (`data` is not used).
        options: MountOptions,
        /// With the mounts below it.
        recursive: bool,
    },
    /// Make the mount at `path` read-only (mount_setattr(2)), with every mount below it
    /// when `recursive`.
    RemountReadOnly {
        /// The mount point.
        path: PathBuf,
        /// With the mounts below it.
        recursive: bool,
    },
}

impl fmt::Display for MountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountOp::Propagation { kind } => {
                let flag = match kind {
                    Propagation::Private => "MS_PRIVATE",
                    Propagation::Slave => "MS_SLAVE",
                    Propagation::Shared => "MS_SHARED",
                };
                write!(
                    f,
                    "make every mount {kind}, recursively (MS_REC|{flag} on /)"
                )
            }
            MountOp::BindSelf { path } => write!(
                f,
                "bind {} onto itself (pivot_root needs a mount point)",
                path.display()
            ),
            MountOp::Mount {
                fstype,
                target,
                options,
            } => {
                write!(f, "mount {fstype} on {}", target.display())?;
                let names = options.names();
                if !names.is_empty() {
                    write!(f, " ({})", names.join(","))?;
                }
                Ok(())
            }
            MountOp::AttachTree {
                tree,
                source,
                target,
            } => write!(
                f,
                "attach idmapped tree {} (a view of {}) on {}",
                tree + 1,
                source.display(),
                target.display()
            ),
            MountOp::Bind {
                source,
                target,
                recursive,
                readonly,
            } => {
                let what = if *recursive { "rbind" } else { "bind" };
                write!(f, "{what} {} on {}", source.display(), target.display())?;
                if *readonly {
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
            MountOp::Chroot { new_root } => write!(f, "chroot into {}", new_root.display()),
            MountOp::Mask { path } => write!(f, "mask {}", path.display()),
            MountOp::ReadOnly { path } => write!(f, "make {} read-only", path.display()),
            MountOp::SetAttributes {
                target,
                options,
                recursive,
            } => {
                let below = if *recursive {
                    " and every mount below it"
                } else {
                    ""
                };
                write!(
                    f,
                    "set {} on the mount at {}{below} (mount_setattr)",
                    options.names().join(","),
                    target.display()
                )
            }
            MountOp::RemountReadOnly { path, recursive } => {
                let below = if *recursive {
                    " and every mount below it"
                } else {
                    ""
                };
                write!(f, "make the mount at {}{below} read-only", path.display())
            }
        }
    }
}
