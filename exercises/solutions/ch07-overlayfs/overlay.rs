//! # Reference solution: ch07-overlayfs, build the overlay mount options, and mount it

use std::path::Path;

use nix::mount::{MsFlags, mount};

/// `path` with a `\` before each `\`, `:` and `,`, so that the overlay parser reads it
/// as one path.
pub fn escape_path(path: &Path) -> String {
    let mut escaped = String::new();
    for c in path.to_string_lossy().chars() {
        // FIX: the kernel splits options at ',' and layers at ':' unless a '\' comes
        // first, then drops each '\': so '\' itself needs one too.
        if matches!(c, '\\' | ':' | ',') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The mount(2) data of an overlay of `lowers` (top first) under `upper`, with `work`.
pub fn overlay_options(lowers: &[&Path], upper: &Path, work: &Path) -> String {
    // FIX: keep the order: the leftmost lowerdir is the top layer.
    let lowerdir: Vec<String> = lowers.iter().map(|lower| escape_path(lower)).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        escape_path(upper),
        escape_path(work)
    )
}

/// Mount an overlay of `lowers` (top first) under `upper`, with `work`, on `target`.
pub fn mount_overlay(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> nix::Result<()> {
    let options = overlay_options(lowers, upper, work);
    // FIX: the layers travel as mount(2)'s data string; the source is only a label.
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
}
