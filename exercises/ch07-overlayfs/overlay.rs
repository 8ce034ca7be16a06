//! # Exercise ch07-overlayfs: build the overlay mount options, and mount it
//!
//! An overlay stacks directories: read-only lower layers (the image), and on top of them
//! one writable upper layer (the container's own). Reads fall through to the highest
//! layer that has the file; writes land in `upper`, copying a lower file up first. The
//! kernel learns the layers from one string, the `data` argument of mount(2):
//!
//! ```text
//! lowerdir=/img/top:/img/base,upperdir=/c/upper,workdir=/c/work
//! ```
//!
//! Write three functions:
//!
//! 1. `escape_path`: the path as the overlay parser wants it. The kernel splits the
//!    string into options at each `,` and the lowerdir list into layers at each `:`,
//!    unless the character follows a `\`; afterwards it removes each `\` and keeps the
//!    character after it. So put a `\` before every `\`, `:` and `,` in the path, and
//!    leave every other character as it is: `/a:b,c` becomes `/a\:b\,c`. (Paths here
//!    are UTF-8: `to_string_lossy` is fine.)
//! 2. `overlay_options`: `lowerdir=`, the escaped `lowers` joined by `:` in the order
//!    given — `lowers[0]` is the TOP layer: the leftmost lowerdir wins over the ones to
//!    its right — then `,upperdir=` and the escaped `upper`, then `,workdir=` and the
//!    escaped `work`.
//! 3. `mount_overlay`: mount(2) an overlay on `target` with those options: filesystem
//!    type `overlay`, source `overlay` (any name: it is what the mount table shows), no
//!    flags, the options as data. If it fails, return its error (do not panic).
//!
//! `work` is the kernel's scratch space (files are prepared there, then renamed into
//! `upper` in one step): an empty directory on the same filesystem as `upper`. `lowers`
//! always holds at least one directory.
//!
//! Read book/src/ch07-overlayfs.md first. Check your work with
//! `just exercise ch07-overlayfs` (as root: the tests mount real overlays).

use std::path::Path;

/// `path` with a `\` before each `\`, `:` and `,`, so that the overlay parser reads it
/// as one path.
pub fn escape_path(path: &Path) -> String {
    // TODO: walk path.to_string_lossy() character by character; push a '\\' before each
    //       '\\', ':' and ',', and every character itself.
    let _ = path;
    todo!("escape_path: a backslash before each backslash, colon and comma")
}

/// The mount(2) data of an overlay of `lowers` (top first) under `upper`, with `work`.
pub fn overlay_options(lowers: &[&Path], upper: &Path, work: &Path) -> String {
    // TODO: "lowerdir=" + the escaped lowers joined by ":" (keep their order: lowers[0]
    //       is the top layer), then ",upperdir=" + escaped upper, ",workdir=" + escaped
    //       work.
    let _ = (lowers, upper, work);
    todo!("overlay_options: lowerdir=..:..,upperdir=..,workdir=..")
}

/// Mount an overlay of `lowers` (top first) under `upper`, with `work`, on `target`.
pub fn mount_overlay(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> nix::Result<()> {
    // TODO: nix::mount::mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(),
    //       Some(options.as_str())) with the options from overlay_options. Return its
    //       result.
    let _ = (lowers, upper, work, target);
    todo!("mount_overlay: mount(2) with fstype overlay and the options as data")
}
