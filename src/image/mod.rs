//! Images on disk: a root filesystem and a small manifest, under the data directory.
//!
//! Chapter 1 needs one image before any other exists: the *default image*, a tiny root
//! filesystem assembled from this machine with no network (see [`default`]). Every chapter
//! runs it unless given `--rootfs DIR`. Chapter 9 adds OCI images to the same store.
//!
//! Layout: `<data>/images/<name>/rootfs/` and `<data>/images/<name>/image.json`. An image
//! is built in a `.partial` directory beside its final place and renamed into place when
//! complete, so a failed or interrupted build never leaves a half image that looks whole.

pub mod default;
pub mod elf;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use default::Source;

/// Errors from building or opening an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No way to assemble the default image on this host.
    #[error("cannot build the default image: {missing}; {remedy}")]
    CannotBuild {
        /// What was missing.
        missing: String,
        /// What the reader can do about it.
        remedy: String,
    },
    /// A library a program needs was not found in any loader directory.
    #[error("{needed_by} needs {library}, which is in none of the loader's directories")]
    MissingLibrary {
        /// The DT_NEEDED name.
        library: String,
        /// The file that needs it.
        needed_by: PathBuf,
    },
    /// A file that looks like ELF could not be parsed.
    #[error("parse ELF file {path}: {reason}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Reading a file or directory failed.
    #[error("read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing into the image failed.
    #[error("write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Running a host program (`busybox --list-full`) failed.
    #[error("run {program}: {reason}")]
    Run {
        /// The program.
        program: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The image's manifest is missing or unreadable.
    #[error(
        "image {name} at {dir} is incomplete or damaged ({reason}); rebuild it with `nutshell image default --rebuild`"
    )]
    Damaged {
        /// The image name.
        name: String,
        /// Its directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What `image.json` records about how an image was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Where the programs came from: `busybox` or `host`.
    pub source: String,
    /// The host file each program was copied from (for busybox: the busybox binary).
    pub origin: Vec<PathBuf>,
    /// The programs in the image, by path inside it.
    pub programs: Vec<String>,
    /// Loaders and shared libraries copied, by path inside the image.
    pub libraries: Vec<PathBuf>,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its name (`default`).
    pub name: String,
    /// Its root filesystem.
    pub rootfs: PathBuf,
    /// How it was made.
    pub manifest: Manifest,
}

/// The image directory `<data>/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

/// The name of the image chapters run when not given `--rootfs`.
pub const DEFAULT_IMAGE: &str = "default";

impl ImageStore {
    /// The store under the data directory `data_dir` (see [`crate::store`]).
    pub fn new(data_dir: &Path) -> Self {
        ImageStore {
            dir: data_dir.join("images"),
        }
    }

    /// The directory of the image `name`, whether or not it exists.
    pub fn image_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Open the image `name` if it was built; `Ok(None)` if it was not.
    pub fn open(&self, name: &str) -> Result<Option<Image>, ImageError> {
        let dir = self.image_dir(name);
        if !dir.exists() {
            return Ok(None);
        }
        let damaged = |reason: String| ImageError::Damaged {
            name: name.to_string(),
            dir: dir.clone(),
            reason,
        };
        let text = fs::read_to_string(dir.join("image.json"))
            .map_err(|e| damaged(format!("image.json: {e}")))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| damaged(format!("image.json: {e}")))?;
        let rootfs = dir.join("rootfs");
        if !rootfs
            .join("bin/sh")
            .symlink_metadata()
            .is_ok_and(|m| !m.is_dir())
        {
            return Err(damaged("rootfs/bin/sh is missing".to_string()));
        }
        Ok(Some(Image {
            name: name.to_string(),
            rootfs,
            manifest,
        }))
    }

    /// The default image, built from `host_root` the first time it is asked for.
    /// Returns the image and whether this call built it.
    pub fn ensure_default(
        &self,
        source: Source,
        host_root: &Path,
    ) -> Result<(Image, bool), ImageError> {
        if let Some(image) = self.open(DEFAULT_IMAGE)? {
            return Ok((image, false));
        }
        self.build_default(source, host_root, false)
            .map(|image| (image, true))
    }

    /// Build the default image. With `replace`, an existing one is removed; without, an
    /// image that another process finished first is kept and ours is discarded.
    pub fn build_default(
        &self,
        source: Source,
        host_root: &Path,
        replace: bool,
    ) -> Result<Image, ImageError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Write { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let partial = self
            .dir
            .join(format!(".{DEFAULT_IMAGE}.partial-{}", std::process::id()));
        let result = (|| {
            fs::create_dir(&partial).map_err(write_err(&partial))?;
            let manifest = default::assemble(&partial.join("rootfs"), source, host_root)?;
            let json = serde_json::to_string_pretty(&manifest).map_err(|e| ImageError::Write {
                path: partial.join("image.json"),
                source: std::io::Error::other(e),
            })?;
            fs::write(partial.join("image.json"), json + "\n")
                .map_err(write_err(&partial.join("image.json")))?;
            let target = self.image_dir(DEFAULT_IMAGE);
            if target.exists() {
                if !replace {
                    return fs::remove_dir_all(&partial).map_err(write_err(&partial));
                }
                fs::remove_dir_all(&target).map_err(write_err(&target))?;
            }
            fs::rename(&partial, &target).map_err(write_err(&target))
        })();
        if let Err(err) = result {
            let _ = fs::remove_dir_all(&partial);
            return Err(err);
        }
        self.open(DEFAULT_IMAGE)?
            .ok_or_else(|| ImageError::Damaged {
                name: DEFAULT_IMAGE.to_string(),
                dir: self.image_dir(DEFAULT_IMAGE),
                reason: "it vanished right after it was built".to_string(),
            })
    }
}
