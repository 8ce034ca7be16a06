//! overlayfs: a container root made of read-only image layers and one writable layer.
//!
//! An overlay mount stacks directories. The *lower* layers are read-only and may be shared
//! by any number of containers; the *upper* layer takes every write; the *work* dir is the
//! kernel's scratch space for making changes atomic (it must be empty and on the same
//! filesystem as the upper). The mount point shows the merge:
//!
//! - reading a file finds it in the upper, else in the first lower that has it;
//! - opening a lower file for writing, or changing its metadata (chmod, chown, an
//!   xattr), first *copies it up*: the whole file lands in the upper, and the lower
//!   never changes;
//! - deleting a lower file leaves a *whiteout* in the upper, a character device 0/0 that
//!   hides the lower file;
//! - replacing a lower directory (remove it, make it again) marks the new upper directory
//!   *opaque* with an xattr, so the lower directory's entries stay hidden.
//!
//! This module builds the mount options ([`OverlayLayers`]), makes and removes each
//! container's upper, work and mount-point directories ([`ContainerDirs`]), reads what a
//! container changed from its upper ([`upper_changes`]) and hashes a tree to show that a
//! lower layer is unchanged ([`tree_digest`]).
//!
//! Rootless: since Linux 5.11 overlayfs can be mounted inside a user namespace with the
//! `userxattr` option; it then stores its marks in `user.overlay.*` xattrs, because the
//! `trusted.*` ones it uses as real root are reserved to the host's root.
//! [`explain_mount_error`] turns mount(2)'s bare errno into what happened and what to do.
//!
//! Introduced in chapter 7 (ch07-overlayfs).
//!
//! See also [mount(2)](https://man7.org/linux/man-pages/man2/mount.2.html),
//! [xattr(7)](https://man7.org/linux/man-pages/man7/xattr.7.html),
//! [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html),
//! and the kernel's [overlayfs documentation](https://docs.kernel.org/filesystems/overlayfs.html).

pub(crate) mod changes;
mod digest;
mod options;
mod scratch;

use std::path::PathBuf;

use nix::errno::Errno;

pub use changes::{Change, ChangeKind, EntryKind, upper_changes};
pub use digest::tree_digest;
pub use options::{
    MAX_LAYERS, MOUNT_DATA_MAX, OverlayLayers, escape_path, explain_mount_error, in_user_namespace,
};
pub use scratch::{ContainerDirs, remove_tree};

/// Errors from building, mounting, inspecting or removing an overlay.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// No lower layer was given: an overlay needs at least one.
    #[error("an overlay needs at least one lower directory; give the image's rootfs")]
    NoLower,
    /// Only lower layers and a single one: there is nothing to stack.
    #[error(
        "a read-only overlay (no upper) needs at least two lower directories; give an upper and a work dir, or another lower"
    )]
    SingleLowerReadOnly,
    /// An upper dir without a work dir, or the other way round.
    #[error("the {given} dir {path} needs a {missing} dir too, on the same filesystem")]
    Unpaired {
        /// The one given (`upper` or `work`).
        given: &'static str,
        /// Its path.
        path: PathBuf,
        /// The one missing.
        missing: &'static str,
    },
    /// A layer path is relative: the kernel would resolve it against the mounting process's
    /// working directory, which is rarely what was meant.
    #[error("the {role} dir {path} is relative; give an absolute path")]
    RelativePath {
        /// `lower`, `upper` or `work`.
        role: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A layer path cannot go into a mount option string.
    #[error("the {role} dir {path} cannot be a mount option: {reason}")]
    UnusablePath {
        /// `lower`, `upper` or `work`.
        role: &'static str,
        /// The path.
        path: PathBuf,
        /// Why (not UTF-8, a NUL byte).
        reason: &'static str,
    },
    /// More lower layers than the kernel stacks.
    #[error("{count} lower directories, but overlayfs stacks at most {max}; merge some layers")]
    TooManyLayers {
        /// How many were given.
        count: usize,
        /// The kernel's limit (`OVL_MAX_STACK`).
        max: usize,
    },
    /// The option string does not fit the one page mount(2) copies from the caller; the
    /// kernel would cut it silently and fail on the cut path.
    #[error(
        "the overlay options for {layers} lower directories are {len} bytes, but mount(2) reads at most {max} (one page, with the final NUL); use shorter paths (keep the layers under a short directory) or fewer layers"
    )]
    OptionsTooLong {
        /// The option string's length, without the NUL.
        len: usize,
        /// The most mount(2) takes, without the NUL.
        max: usize,
        /// How many lower layers.
        layers: usize,
    },
    /// mount(2) refused the overlay.
    #[error("mount overlay on {target}: {source}: {explanation}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The errno.
        #[source]
        source: Errno,
        /// What it most likely means here and what to do, from [`explain_mount_error`].
        explanation: String,
    },
    /// umount(2) failed.
    #[error("unmount {target}: {source}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A container's directory already exists.
    #[error(
        "{path} already exists: a container of that name is running, or one leaked; pick another name or remove it"
    )]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// A container name that is not one path component.
    #[error("container name {name:?} must be one non-empty path component (no '/', not . or ..)")]
    BadName {
        /// The name.
        name: String,
    },
    /// Removing a container's directories while its overlay is still mounted there.
    #[error(
        "{merged} is still a mount point; unmount it first (removing through it would write whiteouts into the upper)"
    )]
    StillMounted {
        /// The mount point.
        merged: PathBuf,
    },
    /// Upper and work dirs ended up on different filesystems.
    #[error("{upper} and {work} are on different filesystems; overlayfs needs them on one")]
    CrossDevice {
        /// The upper dir.
        upper: PathBuf,
        /// The work dir.
        work: PathBuf,
    },
    /// Making or naming the user namespace of an idmapped lower failed.
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation (`create`, `chown`, `read`, `remove`, ...).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl OverlayError {
    /// A closure making an [`OverlayError::Io`] for `op` on `path`, for `map_err`.
    fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| OverlayError::Io { op, path, source }
    }
}
