//! The container's own mount tree: a new mount namespace cut off from the host's, a
//! root that is the image by pivot_root(2), a fresh /proc, a minimal /dev, a read-only
//! /sys, and the /proc and /sys paths a container must not read or write.
//!
//! A new mount namespace starts as a copy of its parent's mount table. Whether later
//! mounts in one copy appear in the other is the mount's *propagation type*: shared
//! mounts pass mount events to their peers (and systemd makes every mount shared at
//! boot), slave mounts only receive them, private mounts neither send nor receive, and
//! unbindable ones are private and cannot be bind-mounted either. The plan therefore
//! starts by making every mount private, recursively (`MS_REC`), and only then mounts.
//!
//! Then the root changes by pivot_root(2), not chroot(2): the image becomes the root
//! *mount* of the namespace and the host's root is detached from it, so chapter 1's
//! escape has nowhere to go. Masked and read-only paths follow runc's default spec.
//!
//! Introduced in chapter 4 (ch04-mount). The work is split in two: the sections
//! ([`mounts_section`] and the others) compute what to do as [`MountOp`]s, plain data
//! that the launch plan carries (pure, snapshot-tested); [`Applier`] does it, in the
//! container's first process, resolving every path inside the root.
//!
//! See also [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html),
//! [mount(2)](https://man7.org/linux/man-pages/man2/mount.2.html),
//! [pivot_root(2)](https://man7.org/linux/man-pages/man2/pivot_root.2.html),
//! [umount(2)](https://man7.org/linux/man-pages/man2/umount.2.html),
//! [proc(5)](https://man7.org/linux/man-pages/man5/proc.5.html).

mod apply;
mod plan;
mod resolve;
mod sections;

use std::path::Path;

pub use apply::{Applier, pivot_root_into};
pub use plan::{MASKED_PATHS, MountOp, READONLY_PATHS};
pub use sections::{
    MountContext, devices_section, enter_section, mounts_section, propagation_section,
    protect_section,
};

/// The gid of the `tty` group in `<rootfs>/etc/group`, if the image has one. A rootfs
/// without that file or group gets none: the devpts default (the creator's gid) is right.
pub fn tty_gid(rootfs: &Path) -> Option<u32> {
    let group = std::fs::read_to_string(rootfs.join("etc/group")).ok()?;
    group_gid(&group, "tty")
}

/// The gid of group `name` in the text of an /etc/group file (`name:x:gid:members`).
pub fn group_gid(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tty_group_is_found_by_name() {
        let group = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n";
        assert_eq!(group_gid(group, "tty"), Some(5));
        assert_eq!(group_gid("root:x:0:\n", "tty"), None);
        assert_eq!(group_gid("tty:x:five:\n", "tty"), None);
    }

    #[test]
    fn a_rootfs_without_etc_group_has_no_tty_gid() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(tty_gid(dir.path()), None);
    }
}
