//! Images on disk: the default image's directory, and the OCI image store.
//!
//! Chapter 1 needs one image before any other exists: the *default image*, a tiny root
//! filesystem assembled from this machine with no network (see [`default`]). Every chapter
//! runs it unless given `--rootfs DIR`. Its directory is `<data>/images/default/rootfs/`,
//! with `<data>/images/default/image.json` saying how it was made; it is built in a
//! `.partial` directory beside its final place and renamed into place when complete, so
//! a failed or interrupted build never leaves a half image that looks whole.
//!
//! Chapter 9 adds real images: [`digest`] and [`oci`] (the format), [`extract`] and
//! [`layer`] (safe unpacking), [`store`] (blobs by digest, layers by chain id, names),
//! [`archive`] (layouts and docker's archives), [`reference`](mod@reference), [`registry`] and
//! [`distribution`] (pull and push), [`pack`] (a directory as a reproducible layer),
//! [`run`] (a config as a process), [`listing`] and [`progress`] (what the commands
//! print), and [`demo`] (the chapter's two images). The default image is one of them too:
//! packed into a layer and added to the store when it is built.

pub mod archive;
pub mod default;
pub mod demo;
pub mod digest;
pub mod distribution;
pub mod elf;
pub mod extract;
pub mod layer;
pub mod listing;
pub mod oci;
pub mod pack;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod run;
pub mod store;

use std::fs;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use default::Source;

use crate::spec;
use crate::store::FileLock;

/// How long a process waits for another one's image build: building the default image
/// takes seconds, so minutes mean that something is stuck.
const BUILD_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// An image name that is not one plain path component.
    #[error(
        "image name {name:?} is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// Another process held the image store's build lock for too long.
    #[error(
        "another nutshell process has been building an image in {dir} for {waited_secs} s; wait for it, or remove {dir}/.build.lock if no nutshell is running"
    )]
    LockTimeout {
        /// The store's directory.
        dir: PathBuf,
        /// How long this process waited.
        waited_secs: u64,
    },
    /// The OCI image store refused.
    #[error(transparent)]
    Store(Box<store::StoreError>),
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

/// Where [`ImageStore::demo_layers`] keeps chapter 7's demo layers, under the images.
const DEMO_LAYERS_DIR: &str = "demo-layers";

/// Chapter 7's demo layers, top first, and what each one's `/etc/motd` says.
const DEMO_LAYERS: [(&str, &str); 2] = [
    ("demo-top", "from the top layer (lower 1)\n"),
    ("demo-base", "from the layer below it (lower 2)\n"),
];

impl ImageStore {
    /// The store under the data directory `data_dir` (see [`crate::store`]).
    pub fn new(data_dir: &Path) -> Self {
        ImageStore {
            dir: data_dir.join("images"),
        }
    }

    /// The directory of the image `name`, whether or not it exists. A name is one plain
    /// path component, so that `../x` or `/x` cannot name a directory outside the store.
    pub fn image_dir(&self, name: &str) -> Result<PathBuf, ImageError> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    /// The directory of the default image, whether or not it is built yet.
    pub fn default_image_dir(&self) -> PathBuf {
        self.dir.join(DEFAULT_IMAGE)
    }

    /// Open the image `name` if it was built; `Ok(None)` if it was not.
    pub fn open(&self, name: &str) -> Result<Option<Image>, ImageError> {
        let dir = self.image_dir(name)?;
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
    /// Returns the image and whether this call built it. Any number of processes may
    /// ask at once: one builds, under the store's lock, and the others wait and open it.
    pub fn ensure_default(
        &self,
        source: Source,
        host_root: &Path,
    ) -> Result<(Image, bool), ImageError> {
        if let Some(image) = self.open(DEFAULT_IMAGE)? {
            return Ok((image, false));
        }
        let _lock = self.lock()?;
        // Someone else may have built it while this process waited for the lock.
        if let Some(image) = self.open(DEFAULT_IMAGE)? {
            return Ok((image, false));
        }
        self.build_default_locked(source, host_root, false)
            .map(|image| (image, true))
    }

    /// Build the default image. With `replace`, an existing one is removed; without, an
    /// existing one is kept and returned.
    pub fn build_default(
        &self,
        source: Source,
        host_root: &Path,
        replace: bool,
    ) -> Result<Image, ImageError> {
        let _lock = self.lock()?;
        self.build_default_locked(source, host_root, replace)
    }

    // ANCHOR: build_lock
    /// The store's build lock: held while an image is built, so that concurrent first
    /// runs build the default image once instead of racing to rename their copies into
    /// the same place ("Directory not empty").
    fn lock(&self) -> Result<FileLock, ImageError> {
        fs::create_dir_all(&self.dir).map_err(|source| ImageError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.dir.join(".build.lock");
        match FileLock::acquire(&path, BUILD_LOCK_TIMEOUT) {
            Ok(Some(lock)) => Ok(lock),
            Ok(None) => Err(ImageError::LockTimeout {
                dir: self.dir.clone(),
                waited_secs: BUILD_LOCK_TIMEOUT.as_secs(),
            }),
            Err(source) => Err(ImageError::Write { path, source }),
        }
    }
    // ANCHOR_END: build_lock

    /// [`ImageStore::build_default`], with the build lock held.
    fn build_default_locked(
        &self,
        source: Source,
        host_root: &Path,
        replace: bool,
    ) -> Result<Image, ImageError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Write { path, source }
        };
        let target = self.image_dir(DEFAULT_IMAGE)?;
        if target.exists() && !replace {
            return self.open_built(DEFAULT_IMAGE);
        }
        self.remove_partial_builds()?;
        let partial = self
            .dir
            .join(format!(".{DEFAULT_IMAGE}.partial-{}", std::process::id()));
        let result = (|| {
            fs::create_dir(&partial).map_err(write_err(&partial))?;
            let tree = partial.join("rootfs");
            let manifest = default::assemble(&tree, source, host_root)?;
            let json = serde_json::to_string_pretty(&manifest).map_err(|e| ImageError::Write {
                path: partial.join("image.json"),
                source: std::io::Error::other(e),
            })?;
            fs::write(partial.join("image.json"), json + "\n")
                .map_err(write_err(&partial.join("image.json")))?;
            // ANCHOR: default_as_oci
            // The default image is an ordinary OCI image too: its tree is packed into a
            // layer blob and unpacked into the store like any layer. The tree itself
            // stays, as the plain directory that chapters 1 to 6 run (and may write in);
            // the store's copy is the read-only layer that overlays stack.
            let data_dir = self.dir.parent().unwrap_or(&self.dir);
            let run = oci::RunConfig {
                env: Some(vec![format!("PATH={}", spec::CONTAINER_PATH)]),
                cmd: Some(vec!["/bin/sh".to_string()]),
                working_dir: Some("/".to_string()),
                ..Default::default()
            };
            let unpacker = store::InProcess {
                privilege: extract::Privilege::of_this_process(),
                limits: extract::Limits::default(),
            };
            store::OciStore::new(data_dir)
                .add_tree(
                    DEFAULT_IMAGE,
                    &tree,
                    run,
                    &format!("nutshell image default (programs from {})", manifest.source),
                    pack::source_date_epoch(),
                    &unpacker,
                )
                .map_err(|e| ImageError::Store(Box::new(e)))?;
            // ANCHOR_END: default_as_oci
            if target.exists() {
                fs::remove_dir_all(&target).map_err(write_err(&target))?;
            }
            fs::rename(&partial, &target).map_err(write_err(&target))
        })();
        if let Err(err) = result {
            let _ = fs::remove_dir_all(&partial);
            return Err(err);
        }
        self.open_built(DEFAULT_IMAGE)
    }

    /// The two tiny layers chapter 7's tour stacks over the image, top first, each with
    /// its own `/etc/motd`: `<images>/demo-layers/{demo-top,demo-base}`, whether or not
    /// they are made yet.
    pub fn demo_layer_dirs(&self) -> Vec<PathBuf> {
        DEMO_LAYERS
            .iter()
            .map(|(name, _)| self.dir.join(DEMO_LAYERS_DIR).join(name))
            .collect()
    }

    /// [`ImageStore::demo_layer_dirs`], made once, under the build lock, and kept as the
    /// default image is: read-only lowers that any number of containers share.
    pub fn demo_layers(&self) -> Result<Vec<PathBuf>, ImageError> {
        let layers = self.demo_layer_dirs();
        let target = self.dir.join(DEMO_LAYERS_DIR);
        if target.exists() {
            return Ok(layers);
        }
        let _lock = self.lock()?;
        if target.exists() {
            return Ok(layers);
        }
        self.remove_partial_builds()?;
        let partial = self
            .dir
            .join(format!(".{DEMO_LAYERS_DIR}.partial-{}", std::process::id()));
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Write { path, source }
        };
        let result = (|| {
            for (name, text) in DEMO_LAYERS {
                let etc = partial.join(name).join("etc");
                fs::create_dir_all(&etc).map_err(write_err(&etc))?;
                fs::write(etc.join("motd"), text).map_err(write_err(&etc.join("motd")))?;
            }
            fs::rename(&partial, &target).map_err(write_err(&target))
        })();
        if let Err(err) = result {
            let _ = fs::remove_dir_all(&partial);
            return Err(err);
        }
        Ok(layers)
    }

    /// Open an image that must exist.
    fn open_built(&self, name: &str) -> Result<Image, ImageError> {
        self.open(name)?.ok_or_else(|| ImageError::Damaged {
            name: name.to_string(),
            dir: self.dir.join(name),
            reason: "it vanished right after it was built".to_string(),
        })
    }

    /// Remove the `.NAME.partial-PID` dirs of builds that were killed half-way. Called
    /// with the build lock held, so no build in progress owns one.
    fn remove_partial_builds(&self) -> Result<(), ImageError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| ImageError::Read {
            path: self.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().contains(".partial-") {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|source| ImageError::Write { path, source })?;
            }
        }
        Ok(())
    }
}

/// An image name is one path component of letters, digits, `.`, `_` and `-`, starting
/// with a letter or digit: never `..`, `/x` or a hidden name.
fn validate_name(name: &str) -> Result<(), ImageError> {
    let valid = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ImageError::BadName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_outside_the_store_are_refused() {
        let store = ImageStore::new(Path::new("/data"));
        for name in ["../x", "/x", "a/b", "", ".hidden", "..", "a\0b"] {
            let err = store.image_dir(name).expect_err(name);
            assert!(err.to_string().starts_with("image name"), "{err}");
        }
        assert_eq!(
            store.image_dir("default").expect("valid"),
            Path::new("/data/images/default")
        );
    }

    #[test]
    fn the_demo_layers_are_made_once_and_each_has_its_own_motd() {
        let data = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::new(data.path());
        let stale = data.path().join("images/.demo-layers.partial-99999999");
        fs::create_dir_all(&stale).expect("make a stale partial");
        let planned = store.demo_layer_dirs();
        assert!(
            planned.iter().all(|dir| !dir.exists()),
            "planning made them"
        );
        let layers = store.demo_layers().expect("make them");
        assert_eq!(layers, planned);
        let motd = |dir: &Path| fs::read_to_string(dir.join("etc/motd")).expect("motd");
        assert_eq!(motd(&layers[0]), "from the top layer (lower 1)\n");
        assert_eq!(motd(&layers[1]), "from the layer below it (lower 2)\n");
        assert!(!stale.exists(), "the stale partial is still there");
        fs::write(layers[0].join("etc/marker"), "").expect("mark the layer");
        assert_eq!(store.demo_layers().expect("again"), layers);
        assert!(layers[0].join("etc/marker").exists(), "made a second time");
    }

    #[test]
    fn a_partial_build_left_by_a_killed_process_is_removed_by_the_next_build() {
        let data = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::new(data.path());
        let stale = data.path().join("images/.default.partial-99999999");
        fs::create_dir_all(stale.join("rootfs")).expect("make a stale partial");
        let empty_host = tempfile::tempdir().expect("temp dir");
        // The build itself fails (no shell on this "host"), but the stale dir goes first.
        assert!(
            store
                .build_default(Source::Auto, empty_host.path(), false)
                .is_err()
        );
        assert!(!stale.exists(), "the stale partial build is still there");
    }
}
