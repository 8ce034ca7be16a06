//! Packing a directory into a layer tar, reproducibly.
//!
//! The default image is assembled as a directory; to be an ordinary OCI image it needs
//! its tree as a layer blob. The same bytes must come out every time for the same tree,
//! or its digest (and every chain id above it) would change with each build: so entries
//! go in sorted by name, owners as numbers with no user or group names, no access or
//! change times, and mtimes clamped to a fixed time (`SOURCE_DATE_EPOCH` when it is
//! set, as reproducible-builds.org defines it). Hardlinks inside the tree become tar
//! hardlinks, so a file is stored once.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The time packed entries get when `SOURCE_DATE_EPOCH` is not set: 2000-01-01, a
/// fixed time that is plainly not when anything was built.
pub const DEFAULT_EPOCH: u64 = 946_684_800;

/// The mtime to clamp to: `SOURCE_DATE_EPOCH` if set and a number, else
/// [`DEFAULT_EPOCH`].
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EPOCH)
}

// ANCHOR: pack_dir
/// Write the tree under `root` as a tar stream to `out`, every mtime clamped to at most
/// `epoch`; with `as_root`, every entry owned by 0:0 (a tree a user assembled is root's
/// in the user's own namespace). Returns the stream's writer, finished.
pub fn pack_dir<W: Write>(root: &Path, out: W, epoch: u64, as_root: bool) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let packer = Packer {
        root,
        epoch,
        as_root,
    };
    packer.pack(&mut builder, Path::new(""), &mut links)?;
    builder.into_inner()
}

struct Packer<'a> {
    root: &'a Path,
    epoch: u64,
    as_root: bool,
}

impl Packer<'_> {
    /// The entries of `relative`, in name order, each directory followed by its own.
    fn pack<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        relative: &Path,
        links: &mut HashMap<(u64, u64), PathBuf>,
    ) -> io::Result<()> {
        let dir = self.root.join(relative);
        let mut names: Vec<_> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let path = relative.join(&name);
            let full = self.root.join(&path);
            let meta = fs::symlink_metadata(&full)?;
            let mut header = tar::Header::new_ustar();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
            header.set_mode(meta.mode() & 0o7777);
            let (uid, gid) = if self.as_root {
                (0, 0)
            } else {
                (meta.uid(), meta.gid())
            };
            header.set_uid(uid.into());
            header.set_gid(gid.into());
            header.set_mtime((meta.mtime().max(0) as u64).min(self.epoch));
            let kind = meta.file_type();
            if kind.is_dir() {
                header.set_size(0);
                builder.append_data(&mut header, &path, io::empty())?;
                self.pack(builder, &path, links)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&full)?;
                header.set_size(0);
                builder.append_link(&mut header, &path, &target)?;
            } else if kind.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&key) {
                        header.set_entry_type(tar::EntryType::Link);
                        header.set_size(0);
                        builder.append_link(&mut header, &path, first)?;
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                let file = fs::File::open(&full)?;
                builder.append_data(&mut header, &path, file)?;
            } else {
                // Devices, fifos and sockets have no place in nutshell's own images.
                return Err(io::Error::other(format!(
                    "{}: not a file, directory or symlink",
                    full.display()
                )));
            }
        }
        Ok(())
    }
}
// ANCHOR_END: pack_dir

/// Set every mtime under `root` (and its own) to `epoch`, without following symlinks:
/// the tree then matches its packed layer exactly.
pub fn clamp_mtimes(root: &Path, epoch: u64) -> io::Result<()> {
    let time = nix::sys::time::TimeSpec::new(epoch as i64, 0);
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else {
                set_mtime(&path, time)?;
            }
        }
        dirs.push(dir);
    }
    // Directories last, deepest first: touching a child changes nothing in the parent,
    // but keep the order obvious.
    for dir in dirs.iter().rev() {
        set_mtime(dir, time)?;
    }
    Ok(())
}

fn set_mtime(path: &Path, time: nix::sys::time::TimeSpec) -> io::Result<()> {
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// `epoch` (seconds since 1970) as an RFC 3339 UTC time, as image configs write it.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(DEFAULT_EPOCH), "2000-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn the_same_tree_packs_to_the_same_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        fs::write(dir.path().join("etc/motd"), "hi\n").expect("write");
        std::os::unix::fs::symlink("motd", dir.path().join("etc/issue")).expect("symlink");
        fs::hard_link(dir.path().join("etc/motd"), dir.path().join("motd")).expect("link");
        let first = pack_dir(dir.path(), Vec::new(), DEFAULT_EPOCH, true).expect("pack");
        clamp_mtimes(dir.path(), 1).expect("touch");
        let second = pack_dir(dir.path(), Vec::new(), DEFAULT_EPOCH, true).expect("pack");
        assert_ne!(first, second, "the mtimes are in the tar");
        clamp_mtimes(dir.path(), DEFAULT_EPOCH).expect("touch");
        let third = pack_dir(dir.path(), Vec::new(), DEFAULT_EPOCH, true).expect("pack");
        let fourth = pack_dir(dir.path(), Vec::new(), DEFAULT_EPOCH, true).expect("pack");
        assert_eq!(third, fourth);
        let mut archive = tar::Archive::new(&third[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["etc", "etc/issue", "etc/motd", "motd"]);
    }
}
