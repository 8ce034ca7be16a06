//! What a container mounts, and the device nodes of its `/dev`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One mount, made before the container enters its root (OCI `mounts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Where, as a path inside the container.
    pub destination: PathBuf,
    /// What is mounted there.
    pub kind: MountKind,
    /// The generic flags and the filesystem's own options.
    #[serde(default)]
    pub options: MountOptions,
}

/// What a mount is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MountKind {
    /// A host directory or file, seen at the destination too (`mount --bind`).
    Bind {
        /// The host path.
        source: PathBuf,
        /// With everything mounted below it (`rbind`).
        #[serde(default)]
        recursive: bool,
    },
    /// A fresh in-memory filesystem.
    Tmpfs,
    /// A procfs for the container's PID namespace.
    Proc,
    /// A sysfs. Mounting one needs a network namespace of the container's own when it is
    /// in a user namespace; without, the plan binds the host's `/sys` read-only instead.
    Sysfs,
    /// A devpts for the container's terminals (`newinstance`: its own pty numbers).
    Devpts,
    /// The POSIX message queue filesystem of the container's IPC namespace.
    Mqueue,
    /// The container's cgroup hierarchy, as its cgroup namespace shows it.
    Cgroup,
}

impl MountKind {
    /// The filesystem type mount(2) gets, `bind` for a bind mount.
    pub fn fstype(&self) -> &'static str {
        match self {
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Devpts => "devpts",
            MountKind::Mqueue => "mqueue",
            MountKind::Cgroup => "cgroup",
        }
    }
}

/// A mount's flags (mount(8)'s generic options) and its filesystem's own options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountOptions {
    /// `ro`.
    pub readonly: bool,
    /// `nosuid`: set-user-ID bits and file capabilities do nothing here.
    pub nosuid: bool,
    /// `nodev`: device nodes here cannot be opened.
    pub nodev: bool,
    /// `noexec`: nothing here can be executed.
    pub noexec: bool,
    /// When reading a file updates its access time.
    pub atime: Atime,
    /// `nodiratime`: reading a directory never updates its access time.
    pub nodiratime: bool,
    /// The filesystem's own options, such as `mode=755` or `size=64k`.
    pub data: Vec<String>,
}

/// When a read updates a file's access time (mount(8)'s `relatime`, `strictatime`,
/// `noatime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Atime {
    /// `relatime`, the kernel's default: only when it is older than the last change, or
    /// a day old.
    #[default]
    Relative,
    /// `strictatime`: on every read.
    Strict,
    /// `noatime`: never.
    Never,
}

impl MountOptions {
    /// `nosuid,nodev,noexec`: what a filesystem with no programs and no devices gets.
    pub fn inert() -> MountOptions {
        MountOptions {
            nosuid: true,
            nodev: true,
            noexec: true,
            ..MountOptions::default()
        }
    }

    /// These options with `data` added.
    pub fn with_data(mut self, data: &[&str]) -> MountOptions {
        self.data.extend(data.iter().map(|d| d.to_string()));
        self
    }

    /// These options, read-only.
    pub fn read_only(mut self) -> MountOptions {
        self.readonly = true;
        self
    }

    /// The generic flags by mount(8)'s names, then the data: `ro,nosuid,mode=755`.
    pub fn names(&self) -> Vec<String> {
        [
            (self.readonly, "ro"),
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
            (self.atime == Atime::Strict, "strictatime"),
            (self.atime == Atime::Never, "noatime"),
            (self.nodiratime, "nodiratime"),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_string())
        .chain(self.data.iter().cloned())
        .collect()
    }
}

impl Mount {
    // ANCHOR: proc_and_dev
    /// A fresh procfs at `/proc`: nothing in it is a program or a device.
    pub fn proc() -> Mount {
        Mount::new("/proc", MountKind::Proc, MountOptions::inert())
    }

    /// A tmpfs at `/dev` for the device nodes: so not `nodev`, but nothing in it runs.
    pub fn dev() -> Mount {
        let options = MountOptions {
            nosuid: true,
            noexec: true,
            ..MountOptions::default()
        };
        Mount::new(
            "/dev",
            MountKind::Tmpfs,
            options.with_data(&["mode=755", "size=64k"]),
        )
    }
    // ANCHOR_END: proc_and_dev

    /// The container's own devpts at `/dev/pts`; new terminals belong to `tty_gid` (the
    /// image's `tty` group), if given.
    pub fn devpts(tty_gid: Option<u32>) -> Mount {
        let mut options = MountOptions {
            nosuid: true,
            noexec: true,
            ..MountOptions::default()
        }
        .with_data(&["newinstance", "ptmxmode=0666", "mode=0620"]);
        if let Some(gid) = tty_gid {
            options.data.push(format!("gid={gid}"));
        }
        Mount::new("/dev/pts", MountKind::Devpts, options)
    }

    /// A tmpfs at `/dev/shm`, for POSIX shared memory.
    pub fn shm() -> Mount {
        Mount::new(
            "/dev/shm",
            MountKind::Tmpfs,
            MountOptions::inert().with_data(&["mode=1777", "size=64m"]),
        )
    }

    /// The container IPC namespace's message queues at `/dev/mqueue`.
    pub fn mqueue() -> Mount {
        Mount::new("/dev/mqueue", MountKind::Mqueue, MountOptions::inert())
    }

    /// A read-only sysfs at `/sys`: it is not namespaced, its writable files are the
    /// host's.
    pub fn sysfs() -> Mount {
        Mount::new("/sys", MountKind::Sysfs, MountOptions::inert().read_only())
    }

    /// The container's cgroup, read-only, at `/sys/fs/cgroup`.
    pub fn cgroup() -> Mount {
        Mount::new(
            "/sys/fs/cgroup",
            MountKind::Cgroup,
            MountOptions::inert().read_only(),
        )
    }

    /// The host's `source` at `destination`, optionally read-only.
    pub fn bind(
        source: impl Into<PathBuf>,
        destination: impl Into<PathBuf>,
        readonly: bool,
    ) -> Mount {
        let options = MountOptions {
            readonly,
            ..MountOptions::default()
        };
        let kind = MountKind::Bind {
            source: source.into(),
            recursive: false,
        };
        Mount::new(destination, kind, options)
    }

    /// A mount of `kind` at `destination`.
    pub fn new(destination: impl Into<PathBuf>, kind: MountKind, options: MountOptions) -> Mount {
        Mount {
            destination: destination.into(),
            kind,
            options,
        }
    }
}

/// A character device made in the container's fresh `/dev` (OCI `linux.devices[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Its path inside the container, under `/dev`.
    pub path: PathBuf,
    /// The device's major number.
    pub major: u64,
    /// The device's minor number.
    pub minor: u64,
    /// Its permission bits, set exactly (the umask does not apply).
    pub mode: u32,
}

impl Device {
    // ANCHOR: default_devices
    /// The devices every container has, as in the OCI runtime spec's list of default
    /// devices: null, zero, full, random, urandom, tty.
    pub fn defaults() -> Vec<Device> {
        [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ]
        .into_iter()
        .map(|(name, major, minor)| Device::char(name, major, minor))
        .collect()
    }
    // ANCHOR_END: default_devices

    /// `/dev/NAME`, character device MAJOR:MINOR, readable and writable by everyone.
    pub fn char(name: &str, major: u64, minor: u64) -> Device {
        Device {
            path: PathBuf::from("/dev").join(name),
            major,
            minor,
            mode: 0o666,
        }
    }
}

/// What mount events pass between the container's mounts and the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// Neither way (`rprivate`), the default: nothing the container mounts reaches the
    /// host, and nothing the host mounts later reaches the container.
    #[default]
    Private,
    /// Host to container only (`rslave`): a disk the host mounts later shows up inside.
    Slave,
    /// Both ways (`rshared`): what the container mounts appears on the host. Rarely right.
    Shared,
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Propagation::Private => "private",
            Propagation::Slave => "slave",
            Propagation::Shared => "shared",
        })
    }
}
