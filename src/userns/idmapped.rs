//! Idmapped mounts: a view of a directory tree whose files' owners are shifted through a
//! user namespace's map, so that the image root owns on the host belongs to the
//! container's root inside.
//!
//! With root's default map (`0 2000000000 65536`) the image's files belong to host uid 0,
//! which the container cannot name: to its root they are nobody's, and not even an
//! overlay lets it change them. An idmapped mount (Linux 5.12+, as a lower layer of
//! overlayfs 5.19+) shows each file's owner through a map instead: on it, a file of host
//! uid 0 belongs to host uid 2000000000, the container's root. Nothing on disk changes, and
//! any number of containers share the one image. Only the host's root can make one
//! (CAP_SYS_ADMIN over the filesystem), so a rootless container goes without; it needs
//! none, as its user owns the image.
//!
//! See also [mount_setattr(2)](https://man7.org/linux/man-pages/man2/mount_setattr.2.html),
//! [open_tree(2)](https://man7.org/linux/man-pages/man2/open_tree.2.html),
//! [move_mount(2)](https://man7.org/linux/man-pages/man2/move_mount.2.html).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use super::UsernsError;

// ANCHOR: idmapped_tree
/// A detached, idmapped copy of the mounts at and under `path`, as a file descriptor:
/// files appear owned through the maps of the user namespace `userns`. The container
/// attaches it in its own mount namespace (move_mount(2)); the host's mount table never
/// holds it.
///
/// A map is borrowed from a user namespace, so [`crate::launch`] makes a short-lived
/// process with the container's maps and opens its `/proc/PID/ns/user`; the namespace
/// lives on in the mount after the process is gone.
pub fn idmapped_tree(path: &Path, userns: BorrowedFd) -> Result<OwnedFd, UsernsError> {
    let failed = |step: &'static str| {
        move |source| UsernsError::IdmappedMount {
            path: path.to_path_buf(),
            step,
            source,
            hint: idmap_hint(path),
        }
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| failed("open_tree")(Errno::EINVAL))?;
    // SAFETY: open_tree(2) with a NUL-terminated path; the result is a new fd or -1.
    let tree = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint,
        )
    })
    .map_err(failed("open_tree"))?;
    // SAFETY: the fd was just returned to us and is owned by nothing else.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    // SAFETY: mount_attr is plain integers, for which zero is a valid value.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    attr.attr_set = libc::MOUNT_ATTR_IDMAP;
    attr.userns_fd = userns.as_raw_fd() as u64;
    // SAFETY: mount_setattr(2) on our fd with an empty path and a valid struct of the
    // size we pass.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map_err(failed("mount_setattr MOUNT_ATTR_IDMAP"))?;
    Ok(tree)
}
// ANCHOR_END: idmapped_tree

// ANCHOR: idmap_since
/// Which filesystems can be idmapped from which Linux version: mount_setattr(2) says
/// EINVAL for any other, and for these on an older kernel.
const IDMAP_SINCE: [(i64, &str, (u32, u32)); 5] = [
    (0xEF53, "ext4", (5, 12)),
    (0x5846_5342, "xfs", (5, 12)),
    (0x9123_683E, "btrfs", (5, 15)),
    (0x794C_7630, "overlayfs", (5, 19)),
    (0x0102_1994, "tmpfs", (6, 3)),
];
// ANCHOR_END: idmap_since

/// What to tell the user when `path` cannot be idmapped: its filesystem, the Linux
/// version that filesystem needs, this kernel's, and where images can go instead.
fn idmap_hint(path: &Path) -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some((inside, fstype)) = mounts_inside(&mountinfo, path).into_iter().next() {
        return format!(
            "{inside} inside it is a mount of {fstype}, and every mount in the tree is \
             idmapped with it: unmount what is mounted inside, or use a tree without mounts"
        );
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    // f_type is an i64 on x86_64 but narrower on some other architectures.
    #[allow(clippy::unnecessary_cast)]
    let magic = nix::sys::statfs::statfs(path).map(|s| s.filesystem_type().0 as i64);
    hint_for(magic.ok(), &release)
}

/// The mounts strictly below `path` in `mountinfo` (proc(5)), with their filesystem
/// types: open_tree(AT_RECURSIVE) takes them along, and mount_setattr refuses the whole
/// tree if one of them cannot be idmapped (a proc mounted inside a rootfs, say).
fn mounts_inside(mountinfo: &str, path: &Path) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (fields, rest) = line.split_once(" - ")?;
            let mount_point = fields.split_whitespace().nth(4)?;
            let fstype = rest.split_whitespace().next()?;
            Path::new(mount_point)
                .strip_prefix(path)
                .is_ok_and(|below| !below.as_os_str().is_empty())
                .then(|| (mount_point.to_string(), fstype.to_string()))
        })
        .collect()
}

/// The hint for a tree on the filesystem with statfs(2) magic `magic` under Linux `release`.
fn hint_for(magic: Option<i64>, release: &str) -> String {
    let known = |magic| IDMAP_SINCE.iter().find(|(m, _, _)| *m == magic);
    let needs = match magic.and_then(known) {
        Some((_, name, (major, minor))) => {
            format!("{name} can be idmapped from Linux {major}.{minor}; this is {release}")
        }
        None => format!("its filesystem cannot be idmapped on Linux {release}"),
    };
    let others: Vec<String> = IDMAP_SINCE
        .iter()
        .map(|(_, name, (major, minor))| format!("{name} {major}.{minor}"))
        .collect();
    format!(
        "{needs}; filesystems that can, from: {}; keep nutshell's data on one (NUTSHELL_DATA=DIR)",
        others.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_on_linux_6_1_is_told_it_needs_6_3_and_where_to_go() {
        assert_eq!(
            hint_for(Some(0x0102_1994), "6.1.0-48-amd64"),
            "tmpfs can be idmapped from Linux 6.3; this is 6.1.0-48-amd64; filesystems that \
             can, from: ext4 5.12, xfs 5.12, btrfs 5.15, overlayfs 5.19, tmpfs 6.3; keep \
             nutshell's data on one (NUTSHELL_DATA=DIR)"
        );
    }

    #[test]
    fn a_mount_inside_the_tree_is_found_by_its_mount_point() {
        let mountinfo = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:5 / /srv/rootfs/proc rw - proc proc rw
31 22 0:6 / /srv/rootfs-other rw - tmpfs tmpfs rw";
        assert_eq!(
            mounts_inside(mountinfo, Path::new("/srv/rootfs")),
            [("/srv/rootfs/proc".to_string(), "proc".to_string())]
        );
        assert!(mounts_inside(mountinfo, Path::new("/srv/rootfs/proc")).is_empty());
    }

    #[test]
    fn an_unknown_filesystem_is_said_to_have_no_idmapped_mounts() {
        let nine_p = 0x0102_1997;
        assert!(hint_for(Some(nine_p), "6.18.0").starts_with(
            "its filesystem cannot be idmapped on Linux 6.18.0; filesystems that can"
        ));
    }
}
