//! The container spec: everything about one container, as plain data.
//!
//! A [`ContainerSpec`] says *what* a container is — its root filesystem, which namespaces
//! it gets, its limits, its mounts, the process it runs and with which privileges — and
//! nothing about *how* to make it. Every way of starting a container builds one: each
//! chapter binary from its flags, chapter 10's build steps, chapter 11's runtime from an
//! OCI `config.json`, chapter 12's scheduler from a placement. [`crate::launch`] then plans
//! it against the host's facts and runs it, the same way for all of them.
//!
//! The fields follow the OCI runtime spec's `config.json` closely (root, mounts,
//! `linux.namespaces`, `linux.uidMappings`, `linux.resources`, `linux.maskedPaths`,
//! `process.capabilities`, `process.rlimits` ...), so that chapter 11's mapping is one
//! field to one field. Where nutshell needs more (an overlay root, a program of its own to
//! run, an init), the extra is a field of its own, never a reading of another.
//!
//! Introduced in chapter 3, the first chapter whose container is built on the launch
//! pipeline; chapters 1 and 2 are built on it too, in hindsight.
//!
//! See also the [OCI runtime spec](https://github.com/opencontainers/runtime-spec/blob/main/config.md).

pub mod chapters;
mod mount;
pub mod process;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroups::Resources;
use crate::namespaces::{Namespace, TimeOffsets};
use crate::userns::IdMap;

pub use crate::net::{BridgeNetwork, Network};

pub use mount::{Atime, Device, Mount, MountKind, MountOptions, Propagation};
pub use process::{CONTAINER_PATH, Process, Program, Rlimit, RlimitResource, User, standard_env};

// ANCHOR: container_spec
/// Everything about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// The root filesystem and how the container enters it.
    pub root: Root,
    /// Which namespaces are new, joined, or the host's.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// The hostname, in the container's own UTS namespace.
    #[serde(default)]
    pub hostname: Option<String>,
    /// How far the container's clocks are moved, in its own time namespace.
    #[serde(default)]
    pub time_offsets: Option<TimeOffsets>,
    /// The uid map of a new user namespace; empty: the caller's default (see
    /// [`crate::userns::plan_mapping`]).
    #[serde(default)]
    pub uid_maps: Vec<IdMap>,
    /// The gid map; empty: as the uid map.
    #[serde(default)]
    pub gid_maps: Vec<IdMap>,
    /// A cgroup of the container's own, with its limits; `None`: the caller's cgroup.
    #[serde(default)]
    pub cgroup: Option<CgroupSpec>,
    /// What is mounted in the container, in order, before it enters its root.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Device nodes made in a fresh `/dev` (OCI `linux.devices`).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Paths hidden from the container (OCI `linux.maskedPaths`).
    #[serde(default)]
    pub masked_paths: Vec<PathBuf>,
    /// Paths the container may read but not write (OCI `linux.readonlyPaths`).
    #[serde(default)]
    pub readonly_paths: Vec<PathBuf>,
    /// What mount events may pass between the container's mounts and the host's (OCI
    /// `linux.rootfsPropagation`).
    #[serde(default)]
    pub root_propagation: Propagation,
    /// How its own network namespace is connected; `None`: not at all (the host's or a
    /// joined namespace, or a new one left as the kernel makes it, with `lo` down).
    #[serde(default)]
    pub network: Option<Network>,
    /// The process the container runs.
    pub process: Process,
    /// Kernel parameters set in the container's namespaces (OCI `linux.sysctl`), such as
    /// `net.ipv4.ip_forward`: written to `/proc/sys` once its mounts are made.
    #[serde(default)]
    pub sysctl: std::collections::BTreeMap<String, String>,
    /// The NIS domain name, in its own UTS namespace (OCI `domainname`).
    #[serde(default)]
    pub domainname: Option<String>,
    /// The container outlives the process that creates it, as `runc create`'s does: it
    /// waits at its start gate for a later `nutshell start`, which learns through the
    /// exec fifo whether its program started (chapter 11).
    #[serde(default)]
    pub detached: bool,
    /// With `process.terminal`: the unix socket the terminal's master end is sent to, as
    /// runc's `--console-socket` (the caller listens there; podman's conmon does).
    #[serde(default)]
    pub console_socket: Option<PathBuf>,
    /// The system calls the process may make (OCI `linux.seccomp`), compiled to a BPF
    /// filter at plan time and installed just before the program runs.
    #[serde(default)]
    pub seccomp: Option<crate::seccomp::Profile>,
    /// Programs to run at points of its lifecycle (OCI `hooks`, chapter 11).
    #[serde(default)]
    pub hooks: crate::hooks::Hooks,
    /// Pass this many of the caller's fds above stdio, 3 and up, on to the program
    /// (runc's `--preserve-fds`): every other inherited fd is closed.
    #[serde(default)]
    pub preserve_fds: u32,
}
// ANCHOR_END: container_spec

impl ContainerSpec {
    /// A container on `root` running `process`, with nothing else: no namespaces of its
    /// own, no cgroup, no mounts. The chapters and the runtime add what they need.
    pub fn new(root: Root, process: Process) -> ContainerSpec {
        ContainerSpec {
            root,
            namespaces: Namespaces::default(),
            hostname: None,
            time_offsets: None,
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
            cgroup: None,
            mounts: Vec::new(),
            devices: Vec::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            root_propagation: Propagation::default(),
            network: None,
            process,
            sysctl: std::collections::BTreeMap::new(),
            domainname: None,
            detached: false,
            console_socket: None,
            seccomp: None,
            hooks: crate::hooks::Hooks::default(),
            preserve_fds: 0,
        }
    }
}

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// What the root is made of.
    pub fs: RootFs,
    /// Remount the root read-only once everything is mounted on it (OCI `root.readonly`).
    #[serde(default)]
    pub readonly: bool,
    /// How the process gets into it.
    #[serde(default)]
    pub enter: EnterRoot,
}

/// What a container's root is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RootFs {
    /// The host's own root: no new root at all. For helper processes that only need a
    /// namespace, such as the one that lends its user namespace to an idmapped mount.
    Host,
    /// A directory used as it is (OCI `root.path`).
    Dir {
        /// The directory, an absolute host path.
        path: PathBuf,
        /// Show it through the container's id maps with an idmapped mount, so that files
        /// the host's root owns belong to the container's root (root's user namespace
        /// containers only).
        #[serde(default)]
        idmap: bool,
    },
    /// An overlay: read-only lower layers, and an upper layer for every write.
    Overlay {
        /// The lower layers, top first; the image is the last.
        lowers: Vec<PathBuf>,
        /// Where writes go.
        upper: Upper,
        /// Show the lowers through the container's id maps (see [`RootFs::Dir`]).
        #[serde(default)]
        idmap: bool,
    },
}

/// The writable layer of an overlay root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Upper {
    /// The container's own `upper` and `work` under `<data>/containers/<id>/`, made for
    /// it and removed with it, unless `keep` (then the upper stays, to look at).
    Managed {
        /// Keep the upper dir when the container is removed.
        #[serde(default)]
        keep: bool,
    },
    /// Directories the caller made and removes: `work` empty, on `upper`'s filesystem.
    Dirs {
        /// The upper dir.
        upper: PathBuf,
        /// The work dir.
        work: PathBuf,
    },
    /// No upper: a read-only overlay of two or more lowers.
    None,
}

/// How the process gets into its root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnterRoot {
    /// pivot_root(2) in the container's mount namespace, then detach the old root: the
    /// host's root is gone from the container's mount tree (chapter 4).
    #[default]
    PivotRoot,
    /// chroot(2): only `/` changes, and a root process can walk back out (chapter 1).
    Chroot,
}

/// What a container does with one kind of namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceMode {
    /// Share the caller's.
    #[default]
    Host,
    /// A new one of its own.
    New,
    /// Join an existing one, named by a path such as `/proc/PID/ns/net` or a bind
    /// mount of one (`/run/netns/NAME`).
    Join(PathBuf),
}

/// The namespace of each kind: one field each, as in OCI's `linux.namespaces` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Namespaces {
    /// User and group ids, capabilities.
    pub user: NamespaceMode,
    /// Mount points.
    pub mount: NamespaceMode,
    /// Hostname.
    pub uts: NamespaceMode,
    /// System V IPC and POSIX message queues.
    pub ipc: NamespaceMode,
    /// Process ids.
    pub pid: NamespaceMode,
    /// Network devices, addresses, ports.
    pub net: NamespaceMode,
    /// The cgroup root the container sees.
    pub cgroup: NamespaceMode,
    /// The offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME.
    pub time: NamespaceMode,
}

impl Namespaces {
    /// New namespaces of every kind in `kinds`, the host's for the others.
    pub fn new_for(kinds: &[Namespace]) -> Namespaces {
        let mut namespaces = Namespaces::default();
        for &kind in kinds {
            *namespaces.mode_mut(kind) = NamespaceMode::New;
        }
        namespaces
    }

    /// What the container does with `kind`.
    pub fn mode(&self, kind: Namespace) -> &NamespaceMode {
        match kind {
            Namespace::User => &self.user,
            Namespace::Mount => &self.mount,
            Namespace::Uts => &self.uts,
            Namespace::Ipc => &self.ipc,
            Namespace::Pid => &self.pid,
            Namespace::Net => &self.net,
            Namespace::Cgroup => &self.cgroup,
            Namespace::Time => &self.time,
        }
    }

    /// The mode of `kind`, to change it.
    pub fn mode_mut(&mut self, kind: Namespace) -> &mut NamespaceMode {
        match kind {
            Namespace::User => &mut self.user,
            Namespace::Mount => &mut self.mount,
            Namespace::Uts => &mut self.uts,
            Namespace::Ipc => &mut self.ipc,
            Namespace::Pid => &mut self.pid,
            Namespace::Net => &mut self.net,
            Namespace::Cgroup => &mut self.cgroup,
            Namespace::Time => &mut self.time,
        }
    }

    /// Whether the container gets a new namespace of `kind`.
    pub fn is_new(&self, kind: Namespace) -> bool {
        *self.mode(kind) == NamespaceMode::New
    }

    /// The kinds it gets new namespaces of, in [`Namespace::ALL`]'s order.
    pub fn new_kinds(&self) -> Vec<Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(|&kind| self.is_new(kind))
            .collect()
    }
}

/// The container's cgroup: where it is, and what it may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupSpec {
    /// The path below each hierarchy's root, such as `nutshell/nodes/node-2/web`; `None`:
    /// `nutshell/<id>`. It must start with `nutshell/`: nutshell writes to no cgroup it
    /// did not create (OCI `linux.cgroupsPath`).
    #[serde(default)]
    pub path: Option<String>,
    /// The limits; none set: a cgroup that only counts (OCI `linux.resources`).
    #[serde(default)]
    pub resources: Resources,
    /// The cgroup is another container's, which this process joins (`nutshell exec`):
    /// it is only entered, never made, written or removed.
    #[serde(default)]
    pub existing: bool,
    /// For an existing cgroup: the controllers it has, all of which are entered (a
    /// process left out of one, `devices` say, would escape its rules); empty: the
    /// standard set.
    #[serde(default)]
    pub controllers: Vec<String>,
}
