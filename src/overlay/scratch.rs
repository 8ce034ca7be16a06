//! Each container's own overlay directories, `<data>/containers/<name>/{upper,work,merged}`,
//! made before the mount and removed with the container.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{OverlayError, OverlayLayers};

/// A container's upper, work and mount-point dirs. Removed by [`ContainerDirs::remove`],
/// or on drop (upper included) if that was not called.
#[derive(Debug)]
pub struct ContainerDirs {
    root: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
    removed: bool,
}

impl ContainerDirs {
    // ANCHOR: create
    /// Make `<data_dir>/containers/<name>/{upper,work,merged}`, `name` being the
    /// container's id (which also names its state and its cgroup). With `owner`
    /// (a host uid and gid), upper, work and merged belong to it: a container whose root
    /// is mapped to that uid can then mount the overlay and write its upper.
    pub fn create(
        data_dir: &Path,
        name: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<Self, OverlayError> {
        let dirs = Self::at(data_dir, name)?;
        let parent = data_dir.join("containers");
        fs::create_dir_all(&parent).map_err(OverlayError::io("create", &parent))?;
        match fs::DirBuilder::new().mode(0o755).create(&dirs.root) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Not ours: keep it from being removed on drop.
                let mut dirs = dirs;
                dirs.removed = true;
                return Err(OverlayError::AlreadyExists {
                    path: dirs.root.clone(),
                });
            }
            other => other.map_err(OverlayError::io("create", &dirs.root))?,
        }
        // From here on, an error drops `dirs`, which removes what was made.
        // The upper's mode becomes the mode of the container's `/`: 0755, as in an image.
        for (dir, mode) in [
            (&dirs.upper, 0o755),
            (&dirs.work, 0o700),
            (&dirs.merged, 0o755),
        ] {
            fs::DirBuilder::new()
                .mode(mode)
                .create(dir)
                .map_err(OverlayError::io("create", dir))?;
            // The umask may have taken bits off.
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(OverlayError::io("chmod", dir))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
                    .map_err(OverlayError::io("chown", dir))?;
            }
        }
        let dev = |dir: &Path| {
            fs::symlink_metadata(dir)
                .map(|meta| meta.dev())
                .map_err(OverlayError::io("stat", dir))
        };
        // Siblings are on one filesystem unless something is mounted on one of them.
        if dev(&dirs.upper)? != dev(&dirs.work)? {
            return Err(OverlayError::CrossDevice {
                upper: dirs.upper.clone(),
                work: dirs.work.clone(),
            });
        }
        Ok(dirs)
    }
    // ANCHOR_END: create

    /// The dirs of container `name` under `data_dir`, whether or not they exist: to remove
    /// what a crashed run left, half-made or whole. Nothing is removed on drop unless
    /// [`ContainerDirs::remove`] is called.
    pub fn existing(data_dir: &Path, name: &str) -> Result<Self, OverlayError> {
        let mut dirs = Self::at(data_dir, name)?;
        dirs.removed = true;
        Ok(dirs)
    }

    fn at(data_dir: &Path, name: &str) -> Result<Self, OverlayError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(OverlayError::BadName {
                name: name.to_string(),
            });
        }
        let root = data_dir.join("containers").join(name);
        Ok(ContainerDirs {
            upper: root.join("upper"),
            work: root.join("work"),
            merged: root.join("merged"),
            root,
            removed: false,
        })
    }

    /// Hand the dirs over to whoever removes them (a container's teardown): they are
    /// no longer removed on drop. Returns `<data>/containers/<name>`.
    pub fn keep(mut self) -> PathBuf {
        self.removed = true;
        self.root.clone()
    }

    /// `<data>/containers/<name>`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The upper dir: every write of the container lands here.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The work dir, the kernel's scratch space.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// The mount point of the merged view: the container's root.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// The overlay of `lowers` (top first) under this container's upper.
    pub fn layers(&self, lowers: Vec<PathBuf>, userxattr: bool) -> OverlayLayers {
        OverlayLayers {
            userxattr,
            ..OverlayLayers::read_write(lowers, self.upper.clone(), self.work.clone())
        }
    }

    // ANCHOR: remove
    /// Remove work and merged, and upper unless `keep_upper`; returns where the kept upper
    /// is. Missing dirs are fine (a half-made container). Refuses while the overlay is
    /// still mounted on merged.
    pub fn remove(&mut self, keep_upper: bool) -> Result<Option<PathBuf>, OverlayError> {
        if is_mount_point(&self.merged, &self.root) {
            return Err(OverlayError::StillMounted {
                merged: self.merged.clone(),
            });
        }
        self.removed = true;
        remove_tree(&self.work)?;
        remove_tree(&self.merged)?;
        if keep_upper && self.upper.exists() {
            return Ok(Some(self.upper.clone()));
        }
        remove_tree(&self.upper)?;
        remove_tree(&self.root)?;
        Ok(None)
    }
    // ANCHOR_END: remove
}

impl Drop for ContainerDirs {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove(false);
        }
    }
}

/// Whether `dir` is on another filesystem than `parent`: something is mounted on it.
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    match (fs::symlink_metadata(dir), fs::symlink_metadata(parent)) {
        (Ok(dir), Ok(parent)) => dir.dev() != parent.dev(),
        _ => false,
    }
}

// ANCHOR: remove_tree
/// Remove `path` and everything below it, never following a symlink (a container may
/// have put `etc/evil -> /` in its upper: the link goes, `/` stays). Directories are made
/// readable first: the kernel leaves `work/work` with mode 000, which stops even its
/// owner, if not root, from listing it. The paths are re-read, not opened once: the
/// container that could swap a directory for a link in between has exited.
pub fn remove_tree(path: &Path) -> Result<(), OverlayError> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        other => other.map_err(OverlayError::io("stat", path))?,
    };
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(OverlayError::io("remove", path));
    }
    if meta.mode() & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(OverlayError::io("chmod", path))?;
    }
    for entry in fs::read_dir(path).map_err(OverlayError::io("read", path))? {
        let entry = entry.map_err(OverlayError::io("read", path))?;
        remove_tree(&entry.path())?;
    }
    match fs::remove_dir(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other.map_err(OverlayError::io("remove", path)),
    }
}
// ANCHOR_END: remove_tree
