//! `COPY` and `ADD`: files from the build context (or another stage) written as a layer,
//! with docker's rules, and no container needed.
//!
//! A `RUN` step needs a container because only running the command says what it
//! changes. A `COPY` step's changes are known beforehand: the sources, at the
//! destination, owned by root (or `--chown`), so the layer is written directly as a tar.
//! What the image already has matters in three places, each a lookup in the image so
//! far ([`LayeredTree`]):
//!
//! - **Is the destination a directory?** `COPY a.txt /app` copies to `/app/a.txt` when
//!   `/app` is one, and to the file `/app` when it is not. A destination that ends in
//!   `/` is always a directory, and several sources need one.
//! - **Symlinks on the way:** `COPY x /bin/` with `/bin -> usr/bin` writes `/usr/bin/x`,
//!   resolved inside the image.
//! - **The directories above:** a layer that holds `app/a.txt` holds `app` too, and
//!   unpacking it sets `app`'s mode and owner; so an existing `app` is written with its
//!   own, and a missing one is made 0755, owned as the copied files are.
//!
//! Docker's directory rule: copying a directory copies its *contents*, not the directory
//! itself. `ADD` does what `COPY` does, and unpacks a local tar archive (plain, gzip or
//! zstd) into the destination; a URL needs the network, which a build here has not.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::context::{self, Ignore};
use super::layer::{EntryMeta, LayerWriter, Owners};
use super::tree::LayeredTree;

/// A `COPY` or `ADD` that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The context refused a source.
    #[error(transparent)]
    Context(#[from] context::ContextError),
    /// Several sources and a destination that is not a directory.
    #[error(
        "{instruction} with more than one source needs a directory as the destination, ending in /: {dest}"
    )]
    DestNotDir {
        /// COPY or ADD.
        instruction: &'static str,
        /// The destination as written.
        dest: String,
    },
    /// A source of another stage or image that is not there.
    #[error("{instruction} --from={from}: {path} does not exist there")]
    NotInStage {
        /// COPY or ADD.
        instruction: &'static str,
        /// The stage or image.
        from: String,
        /// The source.
        path: String,
    },
    /// A glob in a `--from` source.
    #[error(
        "{instruction} --from={from}: globs in sources from a stage are not supported by nutshell: {path}"
    )]
    GlobFromStage {
        /// COPY or ADD.
        instruction: &'static str,
        /// The stage or image.
        from: String,
        /// The source.
        path: String,
    },
    /// `ADD https://...`.
    #[error(
        "ADD {0}: nutshell build has no network to fetch a URL; download it into the context and COPY it"
    )]
    Url(String),
    /// Reading or writing failed.
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
    /// An entry of an archive `ADD` would unpack outside its destination.
    #[error("ADD {archive}: entry {entry} leads outside the destination")]
    ArchiveEscape {
        /// The archive.
        archive: String,
        /// The entry's name.
        entry: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Where the sources come from.
pub enum Sources<'a> {
    /// The build context, less what its ignore file lists.
    Context {
        /// The context directory.
        dir: &'a Path,
        /// Its ignore file.
        ignore: &'a Ignore,
    },
    /// Another stage's (or image's) files.
    Tree {
        /// Its name, for errors.
        name: &'a str,
        /// Its layers.
        tree: &'a LayeredTree,
    },
}

/// One `COPY` or `ADD`, its variables expanded.
pub struct Copy<'a> {
    /// `COPY` or `ADD`.
    pub instruction: &'static str,
    /// The sources, as expanded.
    pub sources: &'a [String],
    /// The destination, absolute (a relative one joined to the working directory), and
    /// whether it was written with a trailing `/`.
    pub dest: String,
    /// `--chown`, resolved to ids.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, parsed.
    pub mode: Option<u32>,
    /// Whether local archives are unpacked (`ADD`).
    pub unpack_archives: bool,
}

/// A source resolved: where it is, and where in the image it goes.
#[derive(Debug)]
struct Planned {
    /// The source path on the host.
    host: PathBuf,
    /// Its path relative to the source root (for errors and archives).
    shown: String,
    /// Its destination in the image, relative to the root.
    dest: PathBuf,
    /// Whether it is a directory whose contents are copied.
    contents_of_dir: bool,
}

/// An entry of the layer being written.
#[derive(Debug)]
enum Entry {
    Dir(EntryMeta),
    File {
        meta: EntryMeta,
        host: PathBuf,
        size: u64,
    },
    Symlink {
        meta: EntryMeta,
        target: PathBuf,
    },
}

// ANCHOR: copy_sources
/// The context paths (relative) a `COPY` reads, for the cache key: every file under
/// every source.
pub fn context_paths(
    dir: &Path,
    ignore: &Ignore,
    sources: &[String],
) -> Result<Vec<PathBuf>, CopyError> {
    let mut paths = Vec::new();
    for source in sources {
        for matched in context::expand_sources(dir, source, ignore)? {
            paths.extend(context::walk(dir, &matched, ignore)?);
        }
    }
    Ok(paths)
}
// ANCHOR_END: copy_sources

// ANCHOR: copy_layer
/// Write `copy` from `sources` as a layer over `image` (whose files' owners read as
/// `image_owners`) onto `out`, mtimes clamped to `epoch`.
pub fn write_copy_layer<W: io::Write>(
    copy: &Copy<'_>,
    sources: &Sources<'_>,
    image: &LayeredTree,
    image_owners: Owners<'_>,
    out: W,
    epoch: u64,
) -> Result<W, CopyError> {
    let dest_is_dir = copy.dest.ends_with('/') || {
        let resolved = image
            .resolve(Path::new(&copy.dest), true)
            .map_err(io_err("resolve", Path::new(&copy.dest)))?;
        image
            .lookup(&resolved)
            .map_err(io_err("look up", &resolved))?
            .is_some_and(|f| f.meta.is_dir())
    };
    let planned = plan_sources(copy, sources, dest_is_dir)?;
    // The destination's directory, symlinks resolved inside the image.
    let (owner_uid, owner_gid) = copy.owner.unwrap_or((0, 0));
    let mut entries: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let mut archives = Vec::new();
    for source in planned {
        let dest = resolve_parent(image, &source.dest)?;
        let meta = fs::symlink_metadata(&source.host).map_err(io_err("read", &source.host))?;
        if source.contents_of_dir {
            entries.insert(dest.clone(), Entry::Dir(new_meta(copy, &meta, 0o755)));
            let files = match sources {
                Sources::Context { dir, ignore } => {
                    let relative = source.host.strip_prefix(dir).unwrap_or(Path::new(""));
                    context::walk(dir, relative, ignore)?
                        .into_iter()
                        .filter_map(|p| p.strip_prefix(relative).ok().map(Path::to_path_buf))
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect::<Vec<_>>()
                }
                Sources::Tree { tree, .. } => {
                    let mut found = Vec::new();
                    walk_tree(tree, Path::new(&source.shown), Path::new(""), &mut found)?;
                    found
                }
            };
            for relative in files {
                let host = match sources {
                    Sources::Context { .. } => source.host.join(&relative),
                    Sources::Tree { tree, .. } => {
                        real_in(tree, &Path::new(&source.shown).join(&relative))?
                    }
                };
                entries.insert(dest.join(&relative), entry_for(copy, &host)?);
            }
        } else if copy.unpack_archives && is_archive(&source.host) {
            // An archive unpacks into the destination itself, a directory.
            let into = resolve_parent(image, Path::new(copy.dest.trim_end_matches('/')))?;
            archives.push((source.host.clone(), source.shown.clone(), into));
        } else {
            entries.insert(dest, entry_for(copy, &source.host)?);
        }
    }
    // The directories above every entry: the image's own, or new ones.
    let mut parents: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let archive_dests = archives.iter().map(|(_, _, dest)| dest.join("x"));
    for path in entries.keys().cloned().chain(archive_dests) {
        for ancestor in path.ancestors().skip(1) {
            if ancestor.as_os_str().is_empty() || entries.contains_key(ancestor) {
                continue;
            }
            let existing = image
                .lookup(ancestor)
                .map_err(io_err("look up", ancestor))?;
            let meta = match existing {
                Some(found) if found.meta.is_dir() => {
                    let (uid, gid) = owners_of(image_owners, ancestor, &found.meta)?;
                    EntryMeta::of(&found.meta, uid, gid)
                }
                _ => EntryMeta {
                    mode: 0o755,
                    uid: owner_uid,
                    gid: owner_gid,
                    mtime: epoch as i64,
                },
            };
            parents
                .entry(ancestor.to_path_buf())
                .or_insert(Entry::Dir(meta));
        }
    }
    // A source directory's entry for its destination keeps an existing directory's
    // metadata, as docker leaves an existing directory as it is.
    for (path, entry) in entries.iter_mut() {
        if let Entry::Dir(meta) = entry
            && let Some(found) = image.lookup(path).map_err(io_err("look up", path))?
            && found.meta.is_dir()
        {
            let (uid, gid) = owners_of(image_owners, path, &found.meta)?;
            *meta = EntryMeta::of(&found.meta, uid, gid);
        }
    }
    entries.extend(parents);
    let mut layer = LayerWriter::new(out, epoch);
    for (path, entry) in &entries {
        let write = io_err("write the layer entry for", path);
        match entry {
            Entry::Dir(meta) => layer.dir(path, meta).map_err(write)?,
            Entry::File { meta, host, size } => {
                let file = fs::File::open(host).map_err(io_err("open", host))?;
                layer
                    .file(path, meta, *size, file.take(*size))
                    .map_err(write)?;
            }
            Entry::Symlink { meta, target } => layer.symlink(path, meta, target).map_err(write)?,
        }
    }
    for (host, shown, dest) in archives {
        unpack_archive(copy, &host, &shown, &dest, &mut layer)?;
    }
    layer
        .finish()
        .map_err(io_err("finish the layer for", Path::new(&copy.dest)))
}
// ANCHOR_END: copy_layer

/// Each source, where it is and where it goes, by docker's rules.
fn plan_sources(
    copy: &Copy<'_>,
    sources: &Sources<'_>,
    dest_is_dir: bool,
) -> Result<Vec<Planned>, CopyError> {
    let dest = Path::new(&copy.dest);
    let mut planned = Vec::new();
    for source in copy.sources {
        if copy.unpack_archives && (source.starts_with("http://") || source.starts_with("https://"))
        {
            return Err(CopyError::Url(source.clone()));
        }
        match sources {
            Sources::Context { dir, ignore } => {
                for relative in context::expand_sources(dir, source, ignore)? {
                    let host = dir.join(&relative);
                    let is_dir = fs::symlink_metadata(&host)
                        .map_err(io_err("read", &host))?
                        .is_dir();
                    planned.push(Planned {
                        shown: relative.display().to_string(),
                        dest: dest.to_path_buf(),
                        contents_of_dir: is_dir,
                        host,
                    });
                }
            }
            Sources::Tree { name, tree, .. } => {
                if source.contains(['*', '?', '[']) {
                    return Err(CopyError::GlobFromStage {
                        instruction: copy.instruction,
                        from: name.to_string(),
                        path: source.clone(),
                    });
                }
                let resolved = tree
                    .resolve(Path::new(source), true)
                    .map_err(io_err("resolve", Path::new(source)))?;
                let found = tree
                    .lookup(&resolved)
                    .map_err(io_err("look up", &resolved))?;
                let Some(found) = found else {
                    return Err(CopyError::NotInStage {
                        instruction: copy.instruction,
                        from: name.to_string(),
                        path: source.clone(),
                    });
                };
                planned.push(Planned {
                    shown: resolved.display().to_string(),
                    dest: dest.to_path_buf(),
                    contents_of_dir: found.meta.is_dir(),
                    host: found.real,
                });
            }
        }
    }
    if planned.len() > 1 && !copy.dest.ends_with('/') && !dest_is_dir {
        return Err(CopyError::DestNotDir {
            instruction: copy.instruction,
            dest: copy.dest.clone(),
        });
    }
    let many = planned.len() > 1;
    for source in &mut planned {
        let into_dir = dest_is_dir || many;
        if !source.contents_of_dir && into_dir {
            let name = source.host.file_name().unwrap_or_default().to_os_string();
            source.dest = dest.join(name);
        }
    }
    Ok(planned)
}

/// `path` relative to the image root, its directories' symlinks resolved in the image.
fn resolve_parent(image: &LayeredTree, path: &Path) -> Result<PathBuf, CopyError> {
    let name = path.file_name().map(Path::new);
    let parent = path.parent().unwrap_or(Path::new("/"));
    let parent = image
        .resolve(parent, true)
        .map_err(io_err("resolve", parent))?;
    Ok(match name {
        Some(name) => parent.join(name),
        None => parent,
    })
}

/// Metadata of a copied entry: `--chmod` or the source's mode, `--chown` or root.
fn new_meta(copy: &Copy<'_>, source: &fs::Metadata, default_mode: u32) -> EntryMeta {
    let (uid, gid) = copy.owner.unwrap_or((0, 0));
    let mode = copy.mode.unwrap_or(if source.is_dir() || source.is_file() {
        source.mode() & 0o7777
    } else {
        default_mode
    });
    EntryMeta {
        mode,
        uid,
        gid,
        mtime: source.mtime(),
    }
}

fn entry_for(copy: &Copy<'_>, host: &Path) -> Result<Entry, CopyError> {
    let meta = fs::symlink_metadata(host).map_err(io_err("read", host))?;
    let entry_meta = new_meta(copy, &meta, 0o777);
    Ok(if meta.is_dir() {
        Entry::Dir(entry_meta)
    } else if meta.file_type().is_symlink() {
        Entry::Symlink {
            meta: EntryMeta {
                mode: 0o777,
                ..entry_meta
            },
            target: fs::read_link(host).map_err(io_err("read the link", host))?,
        }
    } else if meta.is_file() {
        Entry::File {
            meta: entry_meta,
            host: host.to_path_buf(),
            size: meta.len(),
        }
    } else {
        return Err(CopyError::Io {
            op: "copy",
            path: host.to_path_buf(),
            source: io::Error::other("not a file, directory or symlink"),
        });
    })
}

fn owners_of(
    owners: Owners<'_>,
    path: &Path,
    meta: &fs::Metadata,
) -> Result<(u32, u32), CopyError> {
    owners.inside(path, meta).map_err(|e| CopyError::Io {
        op: "read the owner of",
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })
}

/// Every path under `dir` of `tree`, relative to it, sorted.
fn walk_tree(
    tree: &LayeredTree,
    dir: &Path,
    relative: &Path,
    found: &mut Vec<PathBuf>,
) -> Result<(), CopyError> {
    let here = dir.join(relative);
    for name in tree.read_dir(&here).map_err(io_err("read", &here))? {
        let path = relative.join(&name);
        found.push(path.clone());
        let meta = tree
            .lookup(&dir.join(&path))
            .map_err(io_err("look up", &path))?;
        if meta.is_some_and(|f| f.meta.is_dir()) {
            walk_tree(tree, dir, &path, found)?;
        }
    }
    Ok(())
}

fn real_in(tree: &LayeredTree, path: &Path) -> Result<PathBuf, CopyError> {
    tree.lookup(path)
        .map_err(io_err("look up", path))?
        .map(|f| f.real)
        .ok_or_else(|| CopyError::Io {
            op: "find",
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        })
}

/// Whether `path` is a tar archive, plain or compressed, as `ADD` recognises one.
fn is_archive(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let Ok(mut reader) = decompressed(file) else {
        return false;
    };
    let mut block = [0u8; 512];
    reader.read_exact(&mut block).is_ok() && &block[257..262] == b"ustar"
}

fn decompressed(mut file: fs::File) -> io::Result<Box<dyn Read>> {
    use std::io::Seek;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    file.rewind()?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(file)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(file)?),
        _ => Box::new(file),
    })
}

/// `ADD`'s archive rule: the archive's entries under `dest`, with their own owners
/// (or `--chown`). Every name is checked to stay below `dest`; the store's extraction
/// checks the layer again (links, whiteouts) when it is unpacked.
fn unpack_archive<W: io::Write>(
    copy: &Copy<'_>,
    host: &Path,
    shown: &str,
    dest: &Path,
    layer: &mut LayerWriter<W>,
) -> Result<(), CopyError> {
    let file = fs::File::open(host).map_err(io_err("open", host))?;
    let reader = decompressed(file).map_err(io_err("read", host))?;
    let mut archive = tar::Archive::new(reader);
    let read = |e| CopyError::Io {
        op: "read the archive",
        path: host.to_path_buf(),
        source: e,
    };
    let escape = |entry: &Path| CopyError::ArchiveEscape {
        archive: shown.to_string(),
        entry: entry.display().to_string(),
    };
    let inside = |name: &Path| -> Option<PathBuf> {
        let mut clean = PathBuf::new();
        for component in name.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(dest.join(clean))
    };
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let name = entry.path().map_err(read)?.into_owned();
        let Some(path) = inside(&name) else {
            return Err(escape(&name));
        };
        if path == dest {
            continue;
        }
        let header = entry.header();
        let (uid, gid) = copy.owner.unwrap_or((
            header.uid().map_err(read)? as u32,
            header.gid().map_err(read)? as u32,
        ));
        let meta = EntryMeta {
            mode: copy.mode.unwrap_or(header.mode().map_err(read)? & 0o7777),
            uid,
            gid,
            mtime: header.mtime().map_err(read)? as i64,
        };
        let write = io_err("write the layer entry for", &path);
        match header.entry_type() {
            tar::EntryType::Directory => layer.dir(&path, &meta).map_err(write)?,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(read)?
                    .unwrap_or_default()
                    .into_owned();
                if header.entry_type() == tar::EntryType::Link {
                    let Some(target) = inside(&target) else {
                        return Err(escape(&target));
                    };
                    layer.hardlink(&path, &meta, &target).map_err(write)?;
                } else {
                    layer.symlink(&path, &meta, &target).map_err(write)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                layer.file(&path, &meta, size, &mut entry).map_err(write)?;
            }
            // Devices and the like: skipped, as a user's archive rarely means them.
            _ => {}
        }
    }
    Ok(())
}
