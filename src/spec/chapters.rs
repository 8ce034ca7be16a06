//! Each chapter's container as a spec: chapter N's is chapter N-1's with one more
//! feature switched on. The chapter binaries start from [`for_chapter`] and set what their
//! flags say; the book shows each chapter's block below.

use std::path::{Path, PathBuf};

use super::{ContainerSpec, Device, EnterRoot, Mount, Namespaces, Process, Program, Root, RootFs};
use crate::capabilities::{Capabilities, Capability};
use crate::mounts::{MASKED_PATHS, READONLY_PATHS};
use crate::namespaces::{Namespace, TimeOffsets};
use crate::uts::DEFAULT_HOSTNAME;

/// The container of chapter `chapter` (1 to 8) on `rootfs`, running `program`: every
/// feature the chapters up to it introduce, with their defaults. The binaries then set
/// what the flags ask for (hostname, limits, maps, layers).
pub fn for_chapter(chapter: u8, rootfs: &Path, program: Program) -> ContainerSpec {
    // ANCHOR: chapter_1
    // Chapter 1: a chroot into the rootfs, nothing else.
    let root = Root {
        fs: RootFs::Dir {
            path: rootfs.to_path_buf(),
            idmap: false,
        },
        readonly: false,
        enter: EnterRoot::Chroot,
    };
    let mut spec = ContainerSpec::new(root, Process::new(program));
    // ANCHOR_END: chapter_1
    if chapter >= 2 {
        // ANCHOR: chapter_2
        // Chapter 2: its own hostname, IPC objects and clocks. A mount namespace too, only
        // for a /proc of its own (chapter 4 is about mounts).
        spec.namespaces = Namespaces::new_for(&[
            Namespace::Uts,
            Namespace::Ipc,
            Namespace::Time,
            Namespace::Mount,
        ]);
        spec.hostname = Some(DEFAULT_HOSTNAME.to_string());
        spec.time_offsets = Some(TimeOffsets::default());
        spec.mounts.push(Mount::proc());
        // ANCHOR_END: chapter_2
    }
    if chapter >= 3 {
        // ANCHOR: chapter_3
        // Chapter 3: its own process ids, and nutshell's init as PID 1. A shell opens
        // /dev/null for every background job, so a /dev with that one device.
        *spec.namespaces.mode_mut(Namespace::Pid) = super::NamespaceMode::New;
        spec.process.init = true;
        spec.mounts.push(Mount::dev());
        spec.devices.push(Device::char("null", 1, 3));
        // ANCHOR_END: chapter_3
    }
    if chapter >= 4 {
        // ANCHOR: chapter_4
        // Chapter 4: pivot_root into the image; a full /dev, a read-only /sys; the host's
        // dangerous /proc and /sys paths hidden or read-only; and the privileges a root
        // container keeps cut down to Docker's, with no way to gain more by exec.
        spec.root.enter = EnterRoot::PivotRoot;
        let tty_gid = crate::mounts::tty_gid(rootfs);
        spec.mounts = vec![
            Mount::proc(),
            Mount::dev(),
            Mount::devpts(tty_gid),
            Mount::shm(),
            Mount::mqueue(),
            Mount::sysfs(),
        ];
        spec.devices = Device::defaults();
        spec.masked_paths = MASKED_PATHS.iter().map(PathBuf::from).collect();
        spec.readonly_paths = READONLY_PATHS.iter().map(PathBuf::from).collect();
        spec.process.capabilities = Some(root_container_capabilities(false));
        spec.process.no_new_privileges = true;
        // ANCHOR_END: chapter_4
    }
    if chapter >= 5 {
        // ANCHOR: chapter_5
        // Chapter 5: a cgroup namespace, and its view of the cgroup tree, read-only.
        // (The binary adds the cgroup itself, with the limits its flags ask for.)
        *spec.namespaces.mode_mut(Namespace::Cgroup) = super::NamespaceMode::New;
        spec.mounts.push(Mount::cgroup());
        // ANCHOR_END: chapter_5
    }
    if chapter >= 6 {
        // ANCHOR: chapter_6
        // Chapter 6: a user namespace, created first so that it owns the others; its
        // root is an unprivileged user of the host. With it, CAP_MKNOD is harmless.
        *spec.namespaces.mode_mut(Namespace::User) = super::NamespaceMode::New;
        spec.process.capabilities = Some(root_container_capabilities(true));
        // ANCHOR_END: chapter_6
    }
    if chapter >= 7 {
        // ANCHOR: chapter_7
        // Chapter 7: an overlay root, the image below an upper dir of the container's own.
        // (The binary adds layers, and idmaps them for root's container.)
        spec.root.fs = RootFs::Overlay {
            lowers: vec![rootfs.to_path_buf()],
            upper: super::Upper::Managed { keep: false },
            idmap: false,
        };
        // ANCHOR_END: chapter_7
    }
    if chapter >= 8 {
        // ANCHOR: chapter_8
        // Chapter 8: a network namespace of its own, on the default bridge: a veth pair,
        // an address from the bridge's subnet, a default route, NAT.
        // (The binary chooses the network and the published ports from its flags.)
        *spec.namespaces.mode_mut(Namespace::Net) = super::NamespaceMode::New;
        spec.network = Some(super::Network::Bridge(super::BridgeNetwork::default()));
        // ANCHOR_END: chapter_8
    }
    spec
}

// ANCHOR: root_container_capabilities
/// What a root container may keep: Docker's 14 capabilities, less CAP_MKNOD without a
/// user namespace. Docker keeps CAP_MKNOD because its device cgroup refuses the use of
/// any node but the standard ones; nutshell has no device cgroup yet, so a container of
/// the host's root could `mknod` the host's disk and open it. In a user namespace the
/// kernel refuses such a node itself.
pub fn root_container_capabilities(user_namespace: bool) -> Capabilities {
    let mut caps = Capabilities::docker_default();
    if !user_namespace {
        for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
            set.remove(Capability::Mknod);
        }
    }
    caps
}
// ANCHOR_END: root_container_capabilities

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(chapter: u8) -> Vec<Namespace> {
        for_chapter(
            chapter,
            Path::new("/rootfs"),
            Program::Args(vec!["true".into()]),
        )
        .namespaces
        .new_kinds()
    }

    #[test]
    fn each_chapter_adds_its_namespace() {
        assert!(kinds(1).is_empty());
        assert_eq!(
            kinds(2),
            [
                Namespace::Ipc,
                Namespace::Mount,
                Namespace::Time,
                Namespace::Uts
            ]
        );
        assert!(kinds(3).contains(&Namespace::Pid));
        assert!(kinds(5).contains(&Namespace::Cgroup));
        assert!(kinds(6).contains(&Namespace::User));
        assert!(
            !kinds(7).contains(&Namespace::Net),
            "the network comes in chapter 8"
        );
        assert!(kinds(8).contains(&Namespace::Net));
    }

    #[test]
    fn without_a_user_namespace_mknod_is_not_kept() {
        let caps = root_container_capabilities(false);
        assert!(!caps.bounding.contains(Capability::Mknod));
        assert_eq!(caps.effective.len(), 13);
        assert!(
            root_container_capabilities(true)
                .effective
                .contains(Capability::Mknod)
        );
    }
}
