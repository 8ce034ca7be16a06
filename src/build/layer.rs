//! Layers a build makes: a `RUN` step's overlay upper turned into an OCI layer, and the
//! entries `COPY` writes directly.
//!
//! An overlay upper *is* a diff of the lowers, in overlayfs's own notation: a new or
//! changed file is there in full, a deleted one is a 0/0 character device, a directory
//! that replaced the lower one carries an `overlay.opaque` xattr. An OCI layer is the
//! same diff in the image spec's notation, which a tar can carry: a deleted `a/b` is an
//! empty file `a/.wh.b`, an opaque directory `a` holds an empty `a/.wh..wh..opq`.
//! [`pack_upper`] translates one into the other, which is what docker's overlay2 driver
//! and buildah do on commit, and is the inverse of chapter 9's extraction.
//!
//! Nothing of the upper's own bookkeeping may leak in: overlay's xattrs stay behind (a
//! layer carries no xattrs at all), and an upper that used overlay's `redirect_dir` or
//! `metacopy` features (a renamed directory recorded as a pointer, a file copied up
//! without its data) cannot be expressed as a layer, so it is refused. nutshell mounts
//! with neither, and the check keeps it honest.
//!
//! **Reproducible.** Entries are sorted, owners written as numbers only, mtimes clamped
//! to the build's epoch (`SOURCE_DATE_EPOCH`, or 2000-01-01), no access or change times,
//! no user or group names: the same changes give the same bytes, and so the same digest.
//!
//! **Owners.** A root build's `RUN` runs in a user namespace (chapter 6) whose root is
//! an unprivileged host id, so the upper's files belong to host ids: the packer maps
//! each back through the namespace's maps, and the layer says root where the container
//! said root.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::tree::{has_xattr, is_opaque, is_whiteout};
use crate::userns::IdMaps;

/// OCI's prefix for a deleted path's marker.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// OCI's marker for an opaque directory.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// An upper that cannot become a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the upper or writing the tar failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The upper used an overlay feature a layer cannot carry.
    #[error(
        "{}: overlay recorded it with {feature}, which a layer cannot carry (nutshell mounts its overlays without it)",
        .path.display()
    )]
    OverlayFeature {
        /// The entry.
        path: PathBuf,
        /// `redirect_dir` or `metacopy`.
        feature: &'static str,
    },
    /// A file owned by an id the container's maps do not cover.
    #[error("{}: owned by host id {id}, which the container's id map does not cover", .path.display())]
    Unmapped {
        /// The entry.
        path: PathBuf,
        /// The host id.
        id: u32,
    },
    /// A name the layer format reserves.
    #[error("{}: names starting with .wh. are reserved for whiteouts in a layer", .path.display())]
    ReservedName {
        /// The entry.
        path: PathBuf,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How the packer names owners: host ids through a user namespace's maps, or as they are.
#[derive(Debug, Clone, Copy)]
pub enum Owners<'a> {
    /// The ids are the container's own (no user namespace, or packed inside it).
    AsTheyAre,
    /// The ids are host ids of a container with these maps.
    Mapped(&'a IdMaps),
}

impl Owners<'_> {
    /// `meta`'s owner as the image names it.
    pub fn inside(&self, path: &Path, meta: &Metadata) -> Result<(u32, u32), LayerError> {
        match self {
            Owners::AsTheyAre => Ok((meta.uid(), meta.gid())),
            Owners::Mapped(maps) => {
                let unmapped = |id| LayerError::Unmapped {
                    path: path.to_path_buf(),
                    id,
                };
                let uid = maps
                    .inside_uid(meta.uid())
                    .ok_or_else(|| unmapped(meta.uid()))?;
                let gid = maps
                    .inside_gid(meta.gid())
                    .ok_or_else(|| unmapped(meta.gid()))?;
                Ok((uid, gid))
            }
        }
    }
}

/// What one entry of a layer is, for [`LayerWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    /// The owner, as the image sees it.
    pub uid: u32,
    /// The group.
    pub gid: u32,
    /// Seconds since the epoch, before clamping.
    pub mtime: i64,
}

impl EntryMeta {
    /// `meta`'s mode and mtime, owned by `uid:gid`.
    pub fn of(meta: &Metadata, uid: u32, gid: u32) -> EntryMeta {
        EntryMeta {
            mode: meta.mode() & 0o7777,
            uid,
            gid,
            mtime: meta.mtime(),
        }
    }
}

// ANCHOR: layer_writer
/// A layer tar written entry by entry, reproducibly: every header in the same form,
/// numeric owners only, mtimes clamped to `epoch`. The caller adds entries in order.
pub struct LayerWriter<W: Write> {
    builder: tar::Builder<W>,
    epoch: u64,
}

impl<W: Write> LayerWriter<W> {
    /// A writer of a layer onto `out`, mtimes clamped to `epoch`.
    pub fn new(out: W, epoch: u64) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        LayerWriter { builder, epoch }
    }

    fn header(&self, kind: tar::EntryType, meta: &EntryMeta, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(meta.mode);
        header.set_uid(meta.uid.into());
        header.set_gid(meta.gid.into());
        header.set_mtime((meta.mtime.max(0) as u64).min(self.epoch));
        header.set_size(size);
        header
    }

    /// A directory.
    pub fn dir(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()> {
        let mut header = self.header(tar::EntryType::Directory, meta, 0);
        self.builder.append_data(&mut header, path, io::empty())
    }

    /// A regular file of `size` bytes read from `data`.
    pub fn file(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        size: u64,
        data: impl io::Read,
    ) -> io::Result<()> {
        let mut header = self.header(tar::EntryType::Regular, meta, size);
        self.builder.append_data(&mut header, path, data)
    }

    /// A symlink to `target`.
    pub fn symlink(&mut self, path: &Path, meta: &EntryMeta, target: &Path) -> io::Result<()> {
        let mut header = self.header(tar::EntryType::Symlink, meta, 0);
        self.builder.append_link(&mut header, path, target)
    }

    /// A hard link to `target`, an earlier entry of this layer.
    pub fn hardlink(&mut self, path: &Path, meta: &EntryMeta, target: &Path) -> io::Result<()> {
        let mut header = self.header(tar::EntryType::Link, meta, 0);
        self.builder.append_link(&mut header, path, target)
    }

    /// A device node or FIFO (`kind`), with its device numbers.
    pub fn special(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        kind: tar::EntryType,
        rdev: u64,
    ) -> io::Result<()> {
        let mut header = self.header(kind, meta, 0);
        header.set_device_major(nix::sys::stat::major(rdev) as u32)?;
        header.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
        self.builder.append_data(&mut header, path, io::empty())
    }

    /// The OCI whiteout of `path`: an empty `.wh.<name>` beside it.
    pub fn whiteout(&mut self, path: &Path, meta: &EntryMeta) -> io::Result<()> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let marker = path.with_file_name(format!("{WHITEOUT_PREFIX}{name}"));
        let meta = EntryMeta {
            mode: 0o600,
            ..*meta
        };
        self.file(&marker, &meta, 0, io::empty())
    }

    /// The OCI opaque marker inside directory `dir`.
    pub fn opaque(&mut self, dir: &Path, meta: &EntryMeta) -> io::Result<()> {
        let meta = EntryMeta {
            mode: meta.mode & 0o777,
            ..*meta
        };
        self.file(&dir.join(OPAQUE_MARKER), &meta, 0, io::empty())
    }

    /// Finish the tar (its two zero blocks) and hand back the output.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}
// ANCHOR_END: layer_writer

/// Remove from `upper` the empty files the runtime made only to mount over (`stubs`,
/// such as `etc/hosts`, which chapter 8 binds over the image's): when `lowers` lacks
/// them, the container made them as mount points, not its command. A directory left
/// empty by that, with the mode the lowers give it, goes too. BuildKit cleans its mount
/// stubs the same way.
pub fn remove_mount_stubs(
    upper: &Path,
    stubs: &[PathBuf],
    lowers: &super::tree::LayeredTree,
) -> Result<(), LayerError> {
    for stub in stubs {
        let relative = stub.strip_prefix("/").unwrap_or(stub);
        let path = upper.join(relative);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let in_lowers = lowers
            .lookup(relative)
            .map_err(io_err("look up", relative))?
            .is_some();
        if in_lowers || !meta.is_file() || meta.len() != 0 {
            continue;
        }
        fs::remove_file(&path).map_err(io_err("remove the mount stub", &path))?;
        for dir in relative.ancestors().skip(1) {
            if dir.as_os_str().is_empty() {
                break;
            }
            let full = upper.join(dir);
            let empty = fs::read_dir(&full).is_ok_and(|mut d| d.next().is_none());
            let same = match lowers.lookup(dir).map_err(io_err("look up", dir))? {
                Some(lower) => {
                    let mine = fs::symlink_metadata(&full).map_err(io_err("read", &full))?;
                    lower.meta.is_dir() && lower.meta.mode() == mine.mode() && !is_opaque(&full)
                }
                None => true,
            };
            if !(empty && same) {
                break;
            }
            fs::remove_dir(&full).map_err(io_err("remove", &full))?;
        }
    }
    Ok(())
}

// ANCHOR: pack_upper
/// Write the overlay upper `upper` as an OCI layer onto `out`: whiteouts as `.wh.`
/// files, opaque directories with `.wh..wh..opq`, owners named by `owners`, mtimes
/// clamped to `epoch`. Returns the output and the number of entries.
pub fn pack_upper<W: Write>(
    upper: &Path,
    out: W,
    epoch: u64,
    owners: Owners<'_>,
) -> Result<(W, u64), LayerError> {
    let mut packer = UpperPacker {
        upper,
        owners,
        layer: LayerWriter::new(out, epoch),
        links: HashMap::new(),
        entries: 0,
    };
    packer.pack(Path::new(""))?;
    let out = packer
        .layer
        .finish()
        .map_err(io_err("finish the layer of", upper))?;
    Ok((out, packer.entries))
}

struct UpperPacker<'a, W: Write> {
    upper: &'a Path,
    owners: Owners<'a>,
    layer: LayerWriter<W>,
    /// The first path of each multiply-linked inode, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

impl<W: Write> UpperPacker<'_, W> {
    fn pack(&mut self, relative: &Path) -> Result<(), LayerError> {
        let dir = self.upper.join(relative);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err("read", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err("read", &dir))?;
        names.sort();
        for name in names {
            let path = relative.join(&name);
            let full = self.upper.join(&path);
            if name.to_string_lossy().starts_with(WHITEOUT_PREFIX) {
                return Err(LayerError::ReservedName { path });
            }
            let meta = fs::symlink_metadata(&full).map_err(io_err("read", &full))?;
            for (key, feature) in [
                ("trusted.overlay.redirect", "redirect_dir"),
                ("user.overlay.redirect", "redirect_dir"),
                ("trusted.overlay.metacopy", "metacopy"),
                ("user.overlay.metacopy", "metacopy"),
            ] {
                if has_xattr(&full, key) {
                    return Err(LayerError::OverlayFeature { path, feature });
                }
            }
            let (uid, gid) = self.owners.inside(&path, &meta)?;
            let entry = EntryMeta::of(&meta, uid, gid);
            let write = io_err("write the layer entry for", &full);
            let kind = meta.file_type();
            self.entries += 1;
            if is_whiteout(&meta) {
                self.layer.whiteout(&path, &entry).map_err(write)?;
            } else if kind.is_dir() {
                self.layer.dir(&path, &entry).map_err(write)?;
                if is_opaque(&full) {
                    self.layer
                        .opaque(&path, &entry)
                        .map_err(io_err("write the opaque marker of", &full))?;
                }
                self.pack(&path)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&full).map_err(io_err("read the link", &full))?;
                self.layer.symlink(&path, &entry, &target).map_err(write)?;
            } else if kind.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        self.layer.hardlink(&path, &entry, &first).map_err(write)?;
                        continue;
                    }
                    self.links.insert(key, path.clone());
                }
                let file = fs::File::open(&full).map_err(io_err("open", &full))?;
                self.layer
                    .file(&path, &entry, meta.len(), file)
                    .map_err(write)?;
            } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
                let tar_kind = if kind.is_char_device() {
                    tar::EntryType::Char
                } else if kind.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                };
                self.layer
                    .special(&path, &entry, tar_kind, meta.rdev())
                    .map_err(write)?;
            } else {
                // A socket: a tar has no type for it, and docker leaves them out too.
                self.entries -= 1;
            }
        }
        Ok(())
    }
}
// ANCHOR_END: pack_upper

// ANCHOR: describe_layer
/// One line per entry of the layer tar `reader`, in the layer's order, saying what
/// unpacking it does: `whiteout etc/group` for `etc/.wh.group`, `opaque opt/a` for
/// `opt/a/.wh..wh..opq`, else the entry's type, mode, owner and path.
pub fn describe_layer(reader: impl io::Read) -> io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(reader);
    let mut lines = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let header = entry.header();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let parent = path.parent().unwrap_or(Path::new(""));
        let line = if name == OPAQUE_MARKER {
            format!(
                "opaque    {}/   (hides the lower layers' entries)",
                parent.display()
            )
        } else if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
            format!("whiteout  {}   (deleted)", parent.join(deleted).display())
        } else {
            let kind = match header.entry_type() {
                tar::EntryType::Directory => "dir",
                tar::EntryType::Symlink => "symlink",
                tar::EntryType::Link => "hardlink",
                tar::EntryType::Fifo => "fifo",
                tar::EntryType::Char | tar::EntryType::Block => "device",
                _ => "file",
            };
            let mut line = format!(
                "{kind:<9} {} {:04o} {}:{}",
                path.display(),
                header.mode()? & 0o7777,
                header.uid()?,
                header.gid()?
            );
            if let Some(target) = entry.link_name()? {
                line.push_str(&format!(" -> {}", target.display()));
            } else if kind == "file" {
                line.push_str(&format!(" ({} bytes)", header.size()?));
            }
            line
        };
        lines.push(line);
    }
    Ok(lines)
}
// ANCHOR_END: describe_layer

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, char, u32, u64, u64)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").display().to_string(),
                    match h.entry_type() {
                        tar::EntryType::Directory => 'd',
                        tar::EntryType::Symlink => 'l',
                        tar::EntryType::Link => 'h',
                        _ => 'f',
                    },
                    h.mode().expect("mode"),
                    h.uid().expect("uid"),
                    h.mtime().expect("mtime"),
                )
            })
            .collect()
    }

    #[test]
    fn an_upper_packs_sorted_with_clamped_times() {
        let dir = tempfile::tempdir().expect("temp dir");
        let upper = dir.path();
        fs::create_dir_all(upper.join("www/b")).expect("mkdir");
        fs::write(upper.join("www/index.html"), "<h1>hi</h1>").expect("write");
        fs::write(upper.join("www/a"), "a").expect("write");
        fs::hard_link(upper.join("www/a"), upper.join("www/b/a")).expect("link");
        std::os::unix::fs::symlink("index.html", upper.join("www/home")).expect("symlink");
        let (bytes, count) = pack_upper(upper, Vec::new(), 1000, Owners::AsTheyAre).expect("pack");
        assert_eq!(count, 6);
        let found = entries(&bytes);
        let names: Vec<_> = found.iter().map(|e| (e.0.as_str(), e.1)).collect();
        assert_eq!(
            names,
            [
                ("www", 'd'),
                ("www/a", 'f'),
                ("www/b", 'd'),
                ("www/b/a", 'h'),
                ("www/home", 'l'),
                ("www/index.html", 'f'),
            ]
        );
        assert!(
            found.iter().all(|e| e.4 == 1000),
            "mtimes clamped: {found:?}"
        );
        let again = pack_upper(upper, Vec::new(), 1000, Owners::AsTheyAre).expect("pack");
        assert_eq!(bytes, again.0, "the same upper packs to the same bytes");
    }

    #[test]
    fn host_ids_map_back_to_the_container_s() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("f"), "x").expect("write");
        let meta = fs::metadata(dir.path().join("f")).expect("stat");
        let maps = IdMaps {
            uids: vec![crate::userns::IdMap {
                inside: 0,
                outside: meta.uid(),
                count: 1,
            }],
            gids: vec![crate::userns::IdMap {
                inside: 5,
                outside: meta.gid(),
                count: 1,
            }],
        };
        let (bytes, _) =
            pack_upper(dir.path(), Vec::new(), 1, Owners::Mapped(&maps)).expect("pack");
        let mut archive = tar::Archive::new(&bytes[..]);
        let entry = archive
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert_eq!(entry.header().uid().expect("uid"), 0);
        assert_eq!(entry.header().gid().expect("gid"), 5);
        let none = IdMaps {
            uids: vec![crate::userns::IdMap {
                inside: 0,
                outside: meta.uid().wrapping_add(1),
                count: 1,
            }],
            gids: maps.gids.clone(),
        };
        assert!(matches!(
            pack_upper(dir.path(), Vec::new(), 1, Owners::Mapped(&none)),
            Err(LayerError::Unmapped { .. })
        ));
    }

    #[test]
    fn whiteout_markers_are_oci_s() {
        let mut layer = LayerWriter::new(Vec::new(), 5);
        let meta = EntryMeta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 99,
        };
        layer.dir(Path::new("etc"), &meta).expect("dir");
        layer.opaque(Path::new("etc"), &meta).expect("opaque");
        layer
            .whiteout(Path::new("etc/motd"), &meta)
            .expect("whiteout");
        let bytes = layer.finish().expect("finish");
        let found = entries(&bytes);
        assert_eq!(
            found,
            [
                ("etc".to_string(), 'd', 0o755, 0, 5),
                ("etc/.wh..wh..opq".to_string(), 'f', 0o755, 0, 5),
                ("etc/.wh.motd".to_string(), 'f', 0o600, 0, 5),
            ]
        );
    }

    #[test]
    fn a_reserved_name_in_the_upper_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(".wh.sneaky"), "").expect("write");
        assert!(matches!(
            pack_upper(dir.path(), Vec::new(), 1, Owners::AsTheyAre),
            Err(LayerError::ReservedName { .. })
        ));
    }
}
