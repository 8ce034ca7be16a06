//! The build context: the directory `nutshell build DIR` reads `COPY` and `ADD` sources
//! from.
//!
//! Docker sends the whole context to its daemon before the build starts, minus what the
//! ignore file (`.containerignore`, or `.dockerignore`) lists; nutshell reads it in place,
//! but with the same result: an ignored file does not exist as far as the build is
//! concerned. [`Ignore`] reads that file. [`expand_sources`] turns a `COPY` source, maybe a
//! glob like `src/*.rs`, into paths inside the context, [`walk`] lists what copying one of
//! them copies, and [`hash_sources`] digests those files for the build cache, which reuses
//! a `COPY` layer only while its sources are byte for byte the same.
//!
//! # Security
//!
//! The context is the one part of the host a Containerfile can read, so every path stays
//! inside it: `COPY ../secret` is refused, and symbolic links are never followed, neither
//! while walking nor through a parent directory (`COPY link/passwd` with `link -> /etc`).
//! A link is copied as a link.
//!
//! Ref: <https://docs.docker.com/build/concepts/context/>

mod ignore;

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use ignore::{Glob, clean};
pub use ignore::{IGNORE_FILES, Ignore};

/// Why a build context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A line of the ignore file is not a valid pattern.
    #[error("{}:{line}: invalid pattern {pattern:?}: {reason}", .file.display())]
    BadPattern {
        /// The ignore file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The line, trimmed.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `COPY` source glob that is not a valid pattern.
    #[error("invalid source pattern {pattern:?}: {reason}")]
    BadSource {
        /// The source as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A source that leads out of the context, like `../x`.
    #[error("forbidden path outside the build context: {0}")]
    OutsideContext(String),
    /// A source that matches nothing the build may see.
    #[error("source {name:?} not found in the build context (or excluded by {ignore_file})")]
    NotFound {
        /// The source as written.
        name: String,
        /// The ignore file in use, or `the ignore file`.
        ignore_file: String,
    },
    /// A source whose path goes through a symbolic link inside the context.
    #[error(
        "source {name:?} goes through the symbolic link {}; the build does not follow links, name the real directory",
        .link.display()
    )]
    ThroughSymlink {
        /// The source.
        name: String,
        /// The link, relative to the context.
        link: PathBuf,
    },
    /// Reading the context failed.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        /// What was being done: `read`, `list`, `stat`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContextError {
    let path = path.to_path_buf();
    move |source| ContextError::Io { op, path, source }
}

/// Expands a `COPY`/`ADD` source into the paths it names, relative to `context`, sorted,
/// ignored ones left out. `.` (or `/`) is the context itself, returned as an empty path.
///
/// A glob (`*`, `?`, `[...]`, `\` escaping) matches per path component with Go's
/// `filepath.Match` rules, so `*` never crosses `/` and there is no `**`; the tree is read
/// only as deep as the pattern has components. A leading `/` or `./` is dropped, since
/// sources are relative to the context root.
pub fn expand_sources(
    context: &Path,
    source: &str,
    ignore: &Ignore,
) -> Result<Vec<PathBuf>, ContextError> {
    let cleaned = clean_source(source)?;
    let not_found = || ContextError::NotFound {
        name: source.to_string(),
        ignore_file: ignore.describe(),
    };
    if !contains_wildcards(&cleaned) {
        let relative = PathBuf::from(&cleaned);
        check_no_links(context, parent_of(&relative), source)?;
        let Some(metadata) = lookup(context, &relative)? else {
            return Err(not_found());
        };
        return match visible(context, &relative, &metadata, ignore)? {
            true => Ok(vec![relative]),
            false => Err(not_found()),
        };
    }
    let components: Vec<&str> = cleaned.split('/').collect();
    let first_glob = components
        .iter()
        .position(|part| contains_wildcards(part))
        .unwrap_or(components.len());
    let base: PathBuf = components[..first_glob].iter().collect();
    let globs = components[first_glob..]
        .iter()
        .map(|part| Glob::compile(part, false))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| ContextError::BadSource {
            pattern: source.to_string(),
            reason,
        })?;
    check_no_links(context, &base, source)?;
    match lookup(context, &base)? {
        Some(metadata) if metadata.is_dir() => {}
        _ => return Err(not_found()),
    }
    // Each step keeps the paths that match the pattern so far; only a real directory
    // leads on to the next component, so a link is always a leaf.
    let mut dirs = vec![base];
    let mut matched = Vec::new();
    for (depth, glob) in globs.iter().enumerate() {
        let last = depth + 1 == globs.len();
        let mut next = Vec::new();
        for dir in &dirs {
            for (relative, metadata) in list_dir(context, dir)? {
                let name = relative.file_name().unwrap_or_default().to_string_lossy();
                if !glob.matches(&name) {
                    continue;
                }
                if last {
                    matched.push((relative, metadata));
                } else if metadata.is_dir() {
                    next.push(relative);
                }
            }
        }
        dirs = next;
    }
    let mut found = Vec::new();
    for (relative, metadata) in matched {
        if visible(context, &relative, &metadata, ignore)? {
            found.push(relative);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(not_found());
    }
    Ok(found)
}

/// Lists what copying `relative` copies, relative to `context`: for a directory every
/// entry below it (not the directory itself), parents before children and sorted by path;
/// for anything else, itself. Ignored entries are left out, but an ignored directory is
/// still looked into when `!` rules exist, and kept if it holds something included, as
/// docker keeps the parents of a re-included file. Links are listed, never followed.
pub fn walk(
    context: &Path,
    relative: &Path,
    ignore: &Ignore,
) -> Result<Vec<PathBuf>, ContextError> {
    check_relative(relative)?;
    check_no_links(context, parent_of(relative), &relative.to_string_lossy())?;
    let path = context.join(relative);
    let metadata = fs::symlink_metadata(&path).map_err(io_error("stat", &path))?;
    let mut found = Vec::new();
    if metadata.is_dir() {
        collect(context, relative, ignore, &mut found)?;
    } else if !ignore.is_ignored(relative) {
        found.push(relative.to_path_buf());
    }
    Ok(found)
}

fn collect(
    context: &Path,
    dir: &Path,
    ignore: &Ignore,
    found: &mut Vec<PathBuf>,
) -> Result<(), ContextError> {
    for (relative, metadata) in list_dir(context, dir)? {
        if !ignore.is_ignored(&relative) {
            found.push(relative.clone());
            if metadata.is_dir() {
                collect(context, &relative, ignore, found)?;
            }
        } else if metadata.is_dir() && ignore.has_exceptions() {
            // Keep the directory only if something below it is re-included.
            let mark = found.len();
            found.push(relative.clone());
            collect(context, &relative, ignore, found)?;
            if found.len() == mark + 1 {
                found.pop();
            }
        }
    }
    Ok(())
}

/// Digests `paths` (relative to `context`, in the given order) for the build cache, as
/// lowercase hex SHA-256. Each path adds its name, its type, its permission bits (with
/// setuid, setgid and sticky), and then, for a file, its size and content; for a link,
/// its target; for a device, its number. Times, owners and inode numbers are left out, so
/// a fresh checkout of the same tree hashes the same. Directory sizes are left out too:
/// they depend on the filesystem, and the entries below a directory are hashed anyway.
pub fn hash_sources(context: &Path, paths: &[PathBuf]) -> Result<String, ContextError> {
    let mut hasher = Sha256::new();
    for relative in paths {
        check_relative(relative)?;
        let path = context.join(relative);
        let metadata = fs::symlink_metadata(&path).map_err(io_error("stat", &path))?;
        let kind = metadata.file_type();
        let tag = match () {
            _ if kind.is_file() => b'f',
            _ if kind.is_dir() => b'd',
            _ if kind.is_symlink() => b'l',
            _ if kind.is_fifo() => b'p',
            _ if kind.is_socket() => b's',
            _ if kind.is_block_device() => b'b',
            _ => b'c',
        };
        // Length prefixes keep the stream unambiguous: no name can pose as content.
        write_bytes(&mut hasher, relative.as_os_str().as_bytes());
        hasher.update([tag]);
        hasher.update((metadata.mode() & 0o7777).to_le_bytes());
        match tag {
            b'f' => {
                hasher.update(metadata.len().to_le_bytes());
                hasher.update(content_digest(&path)?);
            }
            b'l' => {
                let target = fs::read_link(&path).map_err(io_error("read link", &path))?;
                write_bytes(&mut hasher, target.as_os_str().as_bytes());
            }
            b'b' | b'c' => hasher.update(metadata.rdev().to_le_bytes()),
            _ => {}
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn write_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn content_digest(path: &Path) -> Result<[u8; 32], ContextError> {
    // O_NOFOLLOW: the file was a regular file at stat time; if it became a link since,
    // fail rather than read what the link points at.
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_error("read", path))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_error("read", path))?;
    Ok(hasher.finalize().into())
}

/// Cleans a source like Go's `filepath.Clean`; `/x` is `x` in the context, `.` is `""`.
fn clean_source(source: &str) -> Result<String, ContextError> {
    let cleaned = clean(source);
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(ContextError::OutsideContext(source.to_string()));
    }
    let relative = cleaned.trim_start_matches('/');
    Ok(if relative == "." {
        String::new()
    } else {
        relative.to_string()
    })
}

/// Whether a path has glob characters, a `\`-escaped one not counting (Go's rule).
fn contains_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Refuses a relative path with `..`, a root or a prefix in it.
fn check_relative(relative: &Path) -> Result<(), ContextError> {
    match relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        true => Ok(()),
        false => Err(ContextError::OutsideContext(relative.display().to_string())),
    }
}

/// Refuses a directory path `dir` (one to look things up in) if it or any directory on
/// the way to it is a symbolic link, which the kernel would follow, possibly out of the
/// context.
fn check_no_links(context: &Path, dir: &Path, name: &str) -> Result<(), ContextError> {
    let mut parent = PathBuf::new();
    for component in dir.components() {
        parent.push(component);
        match fs::symlink_metadata(context.join(&parent)) {
            Ok(metadata) if metadata.is_symlink() => {
                return Err(ContextError::ThroughSymlink {
                    name: name.to_string(),
                    link: parent,
                });
            }
            Ok(_) => {}
            // Missing: the lookup of the path itself reports it.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn parent_of(relative: &Path) -> &Path {
    relative.parent().unwrap_or(Path::new(""))
}

/// The metadata of `relative`, or `None` if there is no such path.
fn lookup(context: &Path, relative: &Path) -> Result<Option<Metadata>, ContextError> {
    let path = context.join(relative);
    match fs::symlink_metadata(&path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(ContextError::Io {
            op: "stat",
            path,
            source,
        }),
    }
}

/// A directory's entries with their metadata (not following links), sorted by name.
fn list_dir(context: &Path, dir: &Path) -> Result<Vec<(PathBuf, Metadata)>, ContextError> {
    let path = context.join(dir);
    let mut names = Vec::new();
    for entry in fs::read_dir(&path).map_err(io_error("list", &path))? {
        names.push(entry.map_err(io_error("list", &path))?.file_name());
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let relative = dir.join(name);
            let full = context.join(&relative);
            let metadata = fs::symlink_metadata(&full).map_err(io_error("stat", &full))?;
            Ok((relative, metadata))
        })
        .collect()
}

/// Whether the build sees `relative`: not ignored, or an ignored directory that holds
/// something re-included.
fn visible(
    context: &Path,
    relative: &Path,
    metadata: &Metadata,
    ignore: &Ignore,
) -> Result<bool, ContextError> {
    if !ignore.is_ignored(relative) {
        return Ok(true);
    }
    if !(metadata.is_dir() && ignore.has_exceptions()) {
        return Ok(false);
    }
    let mut below = Vec::new();
    collect(context, relative, ignore, &mut below)?;
    Ok(!below.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::time::{Duration, SystemTime};

    /// A context holding `files` (parents created), with `ignore` as `.containerignore`.
    fn context(files: &[&str], ignore: Option<&str>) -> (tempfile::TempDir, Ignore) {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, file.as_bytes()).expect("write");
        }
        if let Some(text) = ignore {
            fs::write(dir.path().join(".containerignore"), text).expect("write ignore");
        }
        let rules = Ignore::load(dir.path()).expect("load ignore");
        (dir, rules)
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_literal_source_is_itself_and_dot_is_the_root() {
        let (dir, ignore) = context(&["app/main.rs"], None);
        let expand = |s| expand_sources(dir.path(), s, &ignore).expect("found");
        assert_eq!(expand("app/main.rs"), paths(&["app/main.rs"]));
        assert_eq!(expand("./app/"), paths(&["app"]));
        assert_eq!(expand("/app//main.rs"), paths(&["app/main.rs"]));
        assert_eq!(expand("."), vec![PathBuf::new()]);
        assert_eq!(expand("/"), vec![PathBuf::new()]);
    }

    #[test]
    fn a_star_matches_one_level_sorted() {
        let (dir, ignore) = context(&["b.txt", "a.txt", "c.md", "sub/d.txt"], None);
        let found = expand_sources(dir.path(), "*.txt", &ignore).expect("found");
        assert_eq!(found, paths(&["a.txt", "b.txt"]));
    }

    #[test]
    fn globs_work_in_directory_components() {
        let files = [
            "src/a/mod.rs",
            "src/b/mod.rs",
            "src/b/lib.rs",
            "src/c.rs",
            "x/a/mod.rs",
        ];
        let (dir, ignore) = context(&files, None);
        let found = expand_sources(dir.path(), "src/*/mod.rs", &ignore).expect("found");
        assert_eq!(found, paths(&["src/a/mod.rs", "src/b/mod.rs"]));
        let found = expand_sources(dir.path(), "s?c/[ab]", &ignore).expect("found");
        assert_eq!(found, paths(&["src/a", "src/b"]));
        let found = expand_sources(dir.path(), "src/\\[x", &ignore);
        assert!(matches!(found, Err(ContextError::NotFound { .. })));
    }

    #[test]
    fn expansion_leaves_out_ignored_paths() {
        let (dir, ignore) = context(
            &["a.txt", "secret.txt", "logs/x.txt"],
            Some("secret.txt\nlogs\n"),
        );
        let found = expand_sources(dir.path(), "*", &ignore).expect("found");
        assert_eq!(found, paths(&[".containerignore", "a.txt"]));
    }

    #[test]
    fn an_ignored_directory_with_a_reincluded_file_is_found() {
        let (dir, ignore) = context(
            &["docs/keep.md", "docs/drop.md"],
            Some("docs\n!docs/keep.md\n"),
        );
        let found = expand_sources(dir.path(), "docs", &ignore).expect("found");
        assert_eq!(found, paths(&["docs"]));
        let walked = walk(dir.path(), Path::new("docs"), &ignore).expect("walk");
        assert_eq!(walked, paths(&["docs/keep.md"]));
    }

    #[test]
    fn sources_outside_the_context_are_refused() {
        let (dir, ignore) = context(&["a"], None);
        for source in ["../x", "a/../../x", "..", "./.."] {
            let err = expand_sources(dir.path(), source, &ignore).expect_err(source);
            assert_eq!(
                err.to_string(),
                format!("forbidden path outside the build context: {source}")
            );
        }
        // Like Go's Clean, `..` at the root stays at the root.
        assert_eq!(
            expand_sources(dir.path(), "/../a", &ignore).expect("found"),
            paths(&["a"])
        );
    }

    #[test]
    fn not_found_names_the_ignore_file_in_use() {
        let (dir, ignore) = context(&["a.txt", "hidden"], Some("hidden\n"));
        for source in ["missing", "*.go", "hidden", "a.txt/inside"] {
            let err = expand_sources(dir.path(), source, &ignore).expect_err(source);
            assert_eq!(
                err.to_string(),
                format!(
                    "source \"{source}\" not found in the build context (or excluded by .containerignore)"
                )
            );
        }
        let err = expand_sources(dir.path(), "x", &Ignore::default()).expect_err("missing");
        assert!(
            err.to_string()
                .ends_with("(or excluded by the ignore file)"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_source_glob_is_an_error() {
        let (dir, ignore) = context(&["a"], None);
        let err = expand_sources(dir.path(), "src/[a", &ignore).expect_err("bad glob");
        assert_eq!(
            err.to_string(),
            "invalid source pattern \"src/[a\": '[' is never closed"
        );
    }

    #[test]
    fn symlinks_are_never_followed() {
        let (dir, ignore) = context(&["real/file", "outside/secret"], None);
        symlink(dir.path().join("outside"), dir.path().join("real/link")).expect("symlink");
        let err =
            expand_sources(dir.path(), "real/link/secret", &ignore).expect_err("through link");
        assert!(
            matches!(err, ContextError::ThroughSymlink { ref link, .. } if link == Path::new("real/link"))
        );
        assert!(expand_sources(dir.path(), "real/*/secret", &ignore).is_err());
        assert_eq!(
            expand_sources(dir.path(), "real/link", &ignore).expect("link"),
            paths(&["real/link"])
        );
        let walked = walk(dir.path(), Path::new("real"), &ignore).expect("walk");
        assert_eq!(walked, paths(&["real/file", "real/link"]));
    }

    #[test]
    fn walk_lists_parents_first_sorted_without_ignored_entries() {
        let files = [
            "b/z", "b/a/1", "a-c", "a/x", "skip/y", "keep.log", "drop.log",
        ];
        let (dir, ignore) = context(&files, Some("skip\n*.log\n!keep.log\n.containerignore\n"));
        let walked = walk(dir.path(), Path::new(""), &ignore).expect("walk");
        assert_eq!(
            walked,
            paths(&["a", "a/x", "a-c", "b", "b/a", "b/a/1", "b/z", "keep.log"])
        );
        assert_eq!(
            walk(dir.path(), Path::new("a/x"), &ignore).expect("file"),
            paths(&["a/x"])
        );
        assert!(
            walk(dir.path(), Path::new("drop.log"), &ignore)
                .expect("ignored")
                .is_empty()
        );
        assert!(matches!(
            walk(dir.path(), Path::new("../etc"), &ignore),
            Err(ContextError::OutsideContext(_))
        ));
    }

    #[test]
    fn walk_reincludes_deep_exceptions_and_drops_empty_ignored_dirs() {
        let files = [
            "vendor/a/keep.rs",
            "vendor/a/x.c",
            "vendor/b/y.c",
            "src/m.rs",
        ];
        let rules = "vendor\n!vendor/**/*.rs\n.containerignore\n";
        let (dir, ignore) = context(&files, Some(rules));
        let walked = walk(dir.path(), Path::new(""), &ignore).expect("walk");
        assert_eq!(
            walked,
            paths(&["src", "src/m.rs", "vendor", "vendor/a", "vendor/a/keep.rs"])
        );
    }

    fn hash(dir: &Path, list: &[&str]) -> String {
        hash_sources(dir, &paths(list)).expect("hash")
    }

    #[test]
    fn hash_follows_content_mode_and_names() {
        let (dir, _) = context(&["d/f"], None);
        let list = ["d", "d/f"];
        let first = hash(dir.path(), &list);
        assert_eq!(first.len(), 64);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(hash(dir.path(), &list), first);

        let file = dir.path().join("d/f");
        fs::write(&file, "other").expect("write");
        let content = hash(dir.path(), &list);
        assert_ne!(content, first);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("chmod");
        let mode = hash(dir.path(), &list);
        assert_ne!(mode, content);

        fs::rename(&file, dir.path().join("d/g")).expect("rename");
        assert_ne!(hash(dir.path(), &["d", "d/g"]), mode);
    }

    #[test]
    fn hash_ignores_mtime() {
        let (dir, _) = context(&["f"], None);
        let before = hash(dir.path(), &["f"]);
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(dir.path().join("f"))
            .and_then(|f| f.set_modified(old))
            .expect("set mtime");
        assert_eq!(hash(dir.path(), &["f"]), before);
    }

    #[test]
    fn hash_covers_link_targets_without_following_them() {
        let (dir, _) = context(&["t1", "t2"], None);
        symlink("t1", dir.path().join("l")).expect("symlink");
        let first = hash(dir.path(), &["l"]);
        fs::write(dir.path().join("t1"), "changed").expect("write");
        assert_eq!(hash(dir.path(), &["l"]), first);
        fs::remove_file(dir.path().join("l")).expect("rm");
        symlink("t2", dir.path().join("l")).expect("symlink");
        assert_ne!(hash(dir.path(), &["l"]), first);
    }
}
