//! The overlay's layers and the option string mount(2) gets for them.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::OverlayError;
use crate::mounts::MountOp;

/// The most lower layers one overlay stacks (the kernel's `OVL_MAX_STACK`).
pub const MAX_LAYERS: usize = 500;

/// The most bytes of options mount(2) reads, the final NUL included: it copies one page
/// from the caller and puts a NUL at its end, so a longer string is cut short without an
/// error. 4096 is the smallest page size Linux runs with, so this limit holds everywhere.
pub const MOUNT_DATA_MAX: usize = 4096;

/// The directories one overlay mount stacks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverlayLayers {
    /// The read-only layers, **top first**: the leftmost lowerdir is the top layer, so a
    /// path in `lowers[0]` hides the same path in `lowers[1]`.
    pub lowers: Vec<PathBuf>,
    /// The writable layer; `None` for a read-only overlay (which needs two lowers).
    pub upper: Option<PathBuf>,
    /// The kernel's scratch dir: empty, on the same filesystem as `upper`.
    pub work: Option<PathBuf>,
    /// Keep overlayfs's marks in `user.overlay.*` xattrs instead of `trusted.overlay.*`:
    /// needed to mount inside a user namespace (Linux 5.11+). Without it, a recent kernel
    /// still mounts there (its log says "try mounting with 'userxattr' option") but cannot
    /// mark anything: deleting a lower directory then fails with EIO.
    pub userxattr: bool,
}

impl OverlayLayers {
    /// A writable overlay: `lowers` (top first) under `upper`, with `work` beside it.
    pub fn read_write(lowers: Vec<PathBuf>, upper: PathBuf, work: PathBuf) -> Self {
        OverlayLayers {
            lowers,
            upper: Some(upper),
            work: Some(work),
            userxattr: false,
        }
    }

    // ANCHOR: mount_options
    /// The option string for mount(2): `lowerdir=A:B,upperdir=U,workdir=W[,userxattr]`,
    /// each path escaped by [`escape_path`]. Pure: checks the layers, touches nothing.
    pub fn mount_options(&self) -> Result<String, OverlayError> {
        if self.lowers.is_empty() {
            return Err(OverlayError::NoLower);
        }
        if self.lowers.len() > MAX_LAYERS {
            return Err(OverlayError::TooManyLayers {
                count: self.lowers.len(),
                max: MAX_LAYERS,
            });
        }
        let lowers = self
            .lowers
            .iter()
            .map(|lower| escape_path("lower", lower))
            .collect::<Result<Vec<_>, _>>()?;
        // ':' separates the layers; the escaped ones inside a path do not.
        let mut options = format!("lowerdir={}", lowers.join(":"));
        match (&self.upper, &self.work) {
            (Some(upper), Some(work)) => {
                options += &format!(",upperdir={}", escape_path("upper", upper)?);
                options += &format!(",workdir={}", escape_path("work", work)?);
            }
            (Some(upper), None) => return Err(unpaired("upper", upper, "work")),
            (None, Some(work)) => return Err(unpaired("work", work, "upper")),
            (None, None) if self.lowers.len() < 2 => return Err(OverlayError::SingleLowerReadOnly),
            (None, None) => {}
        }
        if self.userxattr {
            options += ",userxattr";
        }
        if options.len() >= MOUNT_DATA_MAX {
            return Err(OverlayError::OptionsTooLong {
                len: options.len(),
                max: MOUNT_DATA_MAX - 1,
                layers: self.lowers.len(),
            });
        }
        Ok(options)
    }
    // ANCHOR_END: mount_options

    // ANCHOR: mount_op
    /// The overlay as one operation of a mount plan (a [`crate::mounts::MountOp`]).
    pub fn mount_op(&self, target: &Path) -> Result<MountOp, OverlayError> {
        Ok(MountOp::Mount {
            fstype: "overlay".to_string(),
            target: target.to_path_buf(),
            options: crate::spec::MountOptions {
                data: vec![self.mount_options()?],
                ..crate::spec::MountOptions::default()
            },
        })
    }
    // ANCHOR_END: mount_op

    // ANCHOR: mount
    /// Mount the overlay on `target`. A refusal comes back with [`explain_mount_error`]'s
    /// reading of the errno.
    pub fn mount(&self, target: &Path) -> Result<(), OverlayError> {
        let options = self.mount_options()?;
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|errno| OverlayError::Mount {
            target: target.to_path_buf(),
            source: errno,
            explanation: explain_mount_error(errno, self, in_user_namespace()),
        })
    }
    // ANCHOR_END: mount

    /// Unmount the overlay at `target` (lazily: a process still inside keeps its view
    /// until it leaves, and the mount point is free at once).
    pub fn unmount(target: &Path) -> Result<(), OverlayError> {
        nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(|source| OverlayError::Unmount {
            target: target.to_path_buf(),
            source,
        })
    }
}

fn unpaired(given: &'static str, path: &Path, missing: &'static str) -> OverlayError {
    OverlayError::Unpaired {
        given,
        path: path.to_path_buf(),
        missing,
    }
}

// ANCHOR: escape_path
/// A layer path as overlayfs's option parser wants it: absolute, UTF-8, and with `\`, `:`
/// and `,` escaped by a backslash. The kernel splits the options at unescaped commas
/// (`ovl_next_opt` in fs/overlayfs/params.c), the lowerdir list at unescaped colons
/// (`ovl_parse_param_split_lowerdirs`), then drops one backslash before any character
/// (`ovl_unescape`), for lowerdir, upperdir and workdir alike. `role` names the layer in
/// errors.
pub fn escape_path(role: &'static str, path: &Path) -> Result<String, OverlayError> {
    let unusable = |reason| OverlayError::UnusablePath {
        role,
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_absolute() {
        return Err(OverlayError::RelativePath {
            role,
            path: path.to_path_buf(),
        });
    }
    // The option string is a Rust String (MountOp carries one) and a C string.
    let text = path.to_str().ok_or_else(|| unusable("it is not UTF-8"))?;
    if text.contains('\0') {
        return Err(unusable("it contains a NUL byte"));
    }
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ':' | ',') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    Ok(escaped)
}
// ANCHOR_END: escape_path

// ANCHOR: explain_mount_error
/// What a refused overlay mount most likely means, and what to do: mount(2) answers with
/// one errno for many causes (the kernel log, `dmesg`, names the exact one).
/// `in_user_namespace` says whether the mounting process is in a user namespace other
/// than the host's (see [`in_user_namespace`]).
pub fn explain_mount_error(
    errno: Errno,
    layers: &OverlayLayers,
    in_user_namespace: bool,
) -> String {
    let explanation = match errno {
        Errno::EPERM if in_user_namespace => {
            "this kernel does not let a user namespace mount overlayfs: rootless overlay needs \
             Linux 5.11 or later (and the mount namespace must be created inside the user \
             namespace); run as root instead"
        }
        Errno::EPERM => {
            "mounting needs CAP_SYS_ADMIN: run as root, or in a user namespace with userxattr \
             (Linux 5.11+)"
        }
        Errno::EINVAL if layers.userxattr => {
            "the kernel refused the options: before Linux 5.11 there is no userxattr option, \
             and the upper filesystem must support user.* xattrs (tmpfs only since Linux 6.6); \
             other causes: upper and work on different filesystems, work inside upper, an \
             upper on NFS or another overlay. `dmesg | grep overlayfs` says which"
        }
        Errno::EINVAL if in_user_namespace => {
            "in a user namespace overlayfs cannot write trusted.* xattrs (they are reserved to \
             the host's root): add userxattr (Linux 5.11+). Other causes: upper and work on \
             different filesystems, work inside upper. `dmesg | grep overlayfs` says which"
        }
        Errno::EINVAL => {
            "the kernel refused the options: upper and work on different filesystems, work \
             inside upper, an upper on NFS or another overlay, or an option this kernel does \
             not know. As root without a user namespace overlayfs keeps its marks in trusted.* \
             xattrs, which the upper filesystem must support. `dmesg | grep overlayfs` says which"
        }
        Errno::ENOENT => "a layer directory or the mount point does not exist: create it first",
        Errno::ENOTDIR => "a layer or the mount point is not a directory",
        Errno::EBUSY => {
            "the work or upper dir is in use by another overlay mount: give each container \
             its own upper and work"
        }
        Errno::ENODEV => {
            "this kernel has no overlay filesystem: load the module (modprobe overlay) or \
             build it in (CONFIG_OVERLAY_FS)"
        }
        Errno::EACCES => {
            "a layer dir is not searchable by the mounting user: in a user namespace the \
             upper and work must belong to the user the container's root maps to"
        }
        Errno::EROFS => "the upper dir is on a read-only filesystem",
        _ => "see `dmesg | grep overlayfs` for the kernel's reason",
    };
    explanation.to_string()
}
// ANCHOR_END: explain_mount_error

/// Whether this process runs in a user namespace other than the host's: the initial
/// namespace's uid map is the identity over all 2^32 ids, `0 0 4294967295`.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}
