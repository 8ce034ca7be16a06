//! The image being built, seen as its overlay would show it, without mounting anything.
//!
//! `COPY` needs to know what the image already has at its destination (is `/app` a
//! directory? is `/bin` a symlink to `usr/bin`? with which owner and mode does `/app`
//! exist, since the new layer repeats it?), `COPY --from` reads another stage's files,
//! and `--chown=www` looks up `www` in the image's own `/etc/passwd`. Each of these is a
//! lookup through the layer directories, top first, by overlayfs's rules: the top-most
//! layer that has a path wins; a whiteout (a 0/0 character device) deletes it from the
//! layers below; a directory marked opaque hides everything below it; a file or a
//! whiteout in place of a directory hides that whole subtree.
//!
//! The layers are the store's own unpacked directories, made by the safe extraction of
//! chapter 9, so no path in them points outside; still, nothing here follows a symlink
//! on the host: every prefix of a path is checked to be a real directory in the layer
//! before the next component is looked at, and symlinks of the image are resolved by
//! this module, inside the image.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// How many symlinks one resolution may follow, as Linux's own limit.
const MAX_SYMLINKS: usize = 40;

/// The merged view of layer directories.
#[derive(Debug, Clone)]
pub struct LayeredTree {
    /// The layers, top first.
    top_first: Vec<PathBuf>,
}

/// A path found in the merged view: the layer file that shows through, and its metadata.
#[derive(Debug)]
pub struct Found {
    /// The file in its layer directory.
    pub real: PathBuf,
    /// Its metadata (not following a symlink).
    pub meta: Metadata,
}

impl LayeredTree {
    /// The merged view of `bottom_first` (the order a manifest lists layers in).
    pub fn new(bottom_first: &[PathBuf]) -> LayeredTree {
        LayeredTree {
            top_first: bottom_first.iter().rev().cloned().collect(),
        }
    }

    /// What the merged view has at `path` (relative to the image's root, no `..`), not
    /// following a symlink at its last component; `None` if nothing.
    pub fn lookup(&self, path: &Path) -> io::Result<Option<Found>> {
        let parts = components(path)?;
        'layers: for layer in &self.top_first {
            let mut hides_below = false;
            let mut dir = layer.clone();
            for (i, part) in parts.iter().enumerate() {
                let here = dir.join(part);
                let meta = match fs::symlink_metadata(&here) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if hides_below {
                            return Ok(None);
                        }
                        continue 'layers;
                    }
                    Err(e) => return Err(e),
                };
                if is_whiteout(&meta) {
                    return Ok(None);
                }
                if i + 1 == parts.len() {
                    return Ok(Some(Found { real: here, meta }));
                }
                if !meta.is_dir() {
                    // A file where the path needs a directory hides the layers below.
                    return Ok(None);
                }
                if is_opaque(&here) {
                    hides_below = true;
                }
                dir = here;
            }
            // The root itself.
            return Ok(Some(Found {
                meta: fs::symlink_metadata(layer)?,
                real: layer.clone(),
            }));
        }
        Ok(None)
    }

    /// `path` with every symlink in it resolved inside the image (an absolute target
    /// starts again from the image's root, never the host's); the last component too
    /// when `follow_last`. Components that do not exist are kept as they are.
    pub fn resolve(&self, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
        let mut pending: Vec<String> = components(path)?.into_iter().rev().collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut followed = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(part);
            if pending.is_empty() && !follow_last {
                break;
            }
            let here: PathBuf = resolved.iter().collect();
            let Some(found) = self.lookup(&here)? else {
                continue;
            };
            if !found.meta.file_type().is_symlink() {
                continue;
            }
            followed += 1;
            if followed > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "/{}: too many levels of symbolic links in the image",
                    here.display()
                )));
            }
            let target = fs::read_link(&found.real)?;
            resolved.pop();
            if target.is_absolute() {
                resolved.clear();
            }
            for component in target.components().rev() {
                match component {
                    Component::Normal(name) => pending.push(name.to_string_lossy().into_owned()),
                    Component::ParentDir => pending.push("..".to_string()),
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                }
            }
        }
        Ok(resolved.iter().collect())
    }

    /// The names in directory `path` of the merged view, sorted; whiteouts and what they
    /// hide left out.
    pub fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let parts = components(path)?;
        let mut names = std::collections::BTreeMap::<String, bool>::new();
        'layers: for layer in &self.top_first {
            let mut dir = layer.clone();
            let mut opaque = false;
            for part in &parts {
                dir = dir.join(part);
                match fs::symlink_metadata(&dir) {
                    Ok(meta) if meta.is_dir() => opaque = is_opaque(&dir),
                    Ok(_) => break 'layers,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue 'layers,
                    Err(e) => return Err(e),
                }
            }
            if parts.is_empty() {
                opaque = false;
            }
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let whiteout = is_whiteout(&entry.metadata()?);
                // The top-most layer decides; a whiteout there hides the name below.
                names.entry(name).or_insert(!whiteout);
            }
            if opaque {
                break;
            }
        }
        Ok(names
            .into_iter()
            .filter_map(|(name, shown)| shown.then_some(name))
            .collect())
    }

    /// The regular file at `path` (symlinks resolved inside the image), at most `max`
    /// bytes of it; `None` if there is none.
    pub fn read_file(&self, path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let path = self.resolve(path, true)?;
        match self.lookup(&path)? {
            Some(found) if found.meta.is_file() => {
                let mut bytes = Vec::new();
                fs::File::open(&found.real)?
                    .take(max)
                    .read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            _ => Ok(None),
        }
    }
}

/// A 0/0 character device: overlayfs's mark for a deleted path.
pub fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether directory `dir` carries overlayfs's opaque mark (`trusted.` as root made it,
/// `user.` in a user namespace); an xattr that cannot be read is no mark.
pub fn is_opaque(dir: &Path) -> bool {
    crate::overlay::changes::is_opaque(dir).unwrap_or(false)
}

/// Whether `path` itself (not following a symlink) has xattr `name`, whatever its size.
pub fn has_xattr(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(path), Ok(name)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: NUL-terminated strings; size 0 asks only for the value's length.
    unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// The normal components of a relative-or-absolute image path; `..` is refused.
fn components(path: &Path) -> io::Result<Vec<String>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::other(format!(
                    "{}: a path in the image may not contain ..",
                    path.display()
                )));
            }
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whiteouts need mknod, which only root may do: the build's privileged tests
    /// cover them; these use opaque marks and files.
    fn layers() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let bottom = dir.path().join("l1");
        let top = dir.path().join("l2");
        fs::create_dir_all(bottom.join("usr/bin")).expect("mkdir");
        fs::write(bottom.join("usr/bin/sh"), "sh").expect("write");
        std::os::unix::fs::symlink("usr/bin", bottom.join("bin")).expect("symlink");
        fs::create_dir_all(bottom.join("etc")).expect("mkdir");
        fs::write(bottom.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
        fs::write(bottom.join("etc/group"), "root:x:0:\n").expect("write");
        fs::create_dir_all(top.join("etc")).expect("mkdir");
        fs::write(top.join("etc/passwd"), "www:x:33:33::/:/bin/sh\n").expect("write");
        fs::create_dir_all(top.join("app")).expect("mkdir");
        fs::write(top.join("app/index.html"), "hi").expect("write");
        (dir, vec![bottom, top])
    }

    #[test]
    fn the_top_layer_wins() {
        let (_dir, layers) = layers();
        let tree = LayeredTree::new(&layers);
        let passwd = tree
            .read_file(Path::new("/etc/passwd"), 1024)
            .expect("read")
            .expect("a file");
        assert_eq!(passwd, b"www:x:33:33::/:/bin/sh\n");
        assert_eq!(
            tree.read_file(Path::new("etc/group"), 1024).expect("read"),
            Some(b"root:x:0:\n".to_vec())
        );
        assert_eq!(
            tree.read_dir(Path::new("/")).expect("read dir"),
            ["app", "bin", "etc", "usr"]
        );
        assert_eq!(
            tree.read_dir(Path::new("etc")).expect("read dir"),
            ["group", "passwd"]
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        let (_dir, layers) = layers();
        let tree = LayeredTree::new(&layers);
        assert_eq!(
            tree.resolve(Path::new("/bin/sh"), true).expect("resolve"),
            Path::new("usr/bin/sh")
        );
        assert_eq!(
            tree.resolve(Path::new("/bin"), false).expect("resolve"),
            Path::new("bin")
        );
        assert_eq!(
            tree.resolve(Path::new("/bin/new/x"), true)
                .expect("resolve"),
            Path::new("usr/bin/new/x"),
            "missing components are kept"
        );
        assert!(tree.lookup(Path::new("bin/sh")).expect("lookup").is_none());
        assert!(
            tree.read_file(Path::new("bin/sh"), 10)
                .expect("read")
                .is_some()
        );
    }

    #[test]
    fn an_absolute_symlink_stays_in_the_image() {
        let (_dir, layers) = layers();
        std::os::unix::fs::symlink("/etc", layers[1].join("app/conf")).expect("symlink");
        let tree = LayeredTree::new(&layers);
        assert_eq!(
            tree.resolve(Path::new("app/conf/passwd"), true)
                .expect("resolve"),
            Path::new("etc/passwd")
        );
        std::os::unix::fs::symlink("loop", layers[1].join("loop")).expect("symlink");
        assert!(tree.resolve(Path::new("loop"), true).is_err());
    }

    #[test]
    fn an_opaque_directory_hides_the_layers_below() {
        use std::os::unix::ffi::OsStrExt;
        let (_dir, layers) = layers();
        let dir =
            std::ffi::CString::new(layers[1].join("etc").as_os_str().as_bytes()).expect("path");
        // SAFETY: NUL-terminated strings and a one-byte value, as passed.
        let set = unsafe {
            libc::lsetxattr(
                dir.as_ptr(),
                c"user.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(
            set,
            0,
            "user xattrs on the temp dir's filesystem: {}",
            io::Error::last_os_error()
        );
        let tree = LayeredTree::new(&layers);
        assert_eq!(
            tree.read_dir(Path::new("etc")).expect("read dir"),
            ["passwd"]
        );
        assert!(
            tree.lookup(Path::new("etc/group"))
                .expect("lookup")
                .is_none()
        );
        assert!(
            tree.lookup(Path::new("usr/bin/sh"))
                .expect("lookup")
                .is_some()
        );
    }

    #[test]
    fn a_file_in_place_of_a_directory_hides_below() {
        let (_dir, layers) = layers();
        fs::remove_dir_all(layers[1].join("etc")).expect("rm");
        fs::write(layers[1].join("etc"), "not a dir").expect("write");
        let tree = LayeredTree::new(&layers);
        assert!(
            tree.lookup(Path::new("etc/passwd"))
                .expect("lookup")
                .is_none()
        );
        assert!(
            tree.lookup(Path::new("etc"))
                .expect("lookup")
                .is_some_and(|f| f.meta.is_file())
        );
    }

    #[test]
    fn dot_dot_is_refused() {
        let (_dir, layers) = layers();
        let tree = LayeredTree::new(&layers);
        assert!(tree.lookup(Path::new("../etc")).is_err());
    }
}
