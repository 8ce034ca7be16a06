//! Applying one tar entry to the layer directory: the changeset rules and the refusals
//! of [`super`], one entry at a time, every path relative to the layer's fd.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use tar::EntryType;

use super::at::*;
use super::{
    Components, EntryName, ExtractError, Limits, PAX_XATTR, Privilege, Unpacked, apply, components,
    cstring, mtime, owner,
};

/// The unpacking of one layer, in progress.
pub(super) struct Layer {
    pub(super) root: OwnedFd,
    pub(super) privilege: Privilege,
    pub(super) limits: Limits,
    /// Every path an entry named, and whether it was a directory: to refuse duplicates.
    pub(super) seen: HashMap<Components, bool>,
    /// Directories, their mtimes and, for a plain user, their modes: set at the end,
    /// since writing into a directory changes its mtime and needs write permission.
    pub(super) dirs: Vec<(Components, i64, Option<u32>)>,
    pub(super) done: Unpacked,
    pub(super) buffer: Vec<u8>,
    /// The directories of the last parent path opened, outermost first: a tar lists a
    /// directory's entries together, so the next entry mostly shares them, and opening
    /// each component again per entry was most of the syscalls. Dropped by `clear`,
    /// since removing or replacing something is the only way an entry changes what a
    /// path of this layer is.
    pub(super) parents: Vec<(Vec<u8>, Rc<OwnedFd>)>,
}

impl Layer {
    pub(super) fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        let refuse = |problem: String| ExtractError::Refused {
            entry: name.clone(),
            problem,
        };
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        self.done.entries += 1;
        if self.done.entries > self.limits.max_entries {
            return Err(refuse(format!(
                "the layer has more than {} entries, the limit",
                self.limits.max_entries
            )));
        }
        let size = entry.size();
        if self.done.bytes.saturating_add(size) > self.limits.max_bytes {
            return Err(refuse(format!(
                "it declares {size} bytes, over the layer limit of {} bytes",
                self.limits.max_bytes
            )));
        }
        let path = components(&name.0).map_err(refuse)?;
        let is_dir = matches!(kind, EntryType::Directory);
        let Some((file, parent)) = path.split_last() else {
            // `.` or `./`: the layer's root itself, which only a directory may describe.
            if !is_dir {
                return Err(refuse(
                    "it would change the type of the layer's root, which is a directory"
                        .to_string(),
                ));
            }
            let root = self.dup_root(name)?;
            let deferred = self.set_metadata(&root, entry, name)?;
            self.dirs.push((Vec::new(), mtime(entry), deferred));
            return Ok(());
        };
        let earlier_dir = self.seen.insert(path.clone(), is_dir);
        if earlier_dir.is_some_and(|was_dir| !(was_dir && is_dir)) {
            return Err(refuse(
                "it is a duplicate of an earlier entry: refused, as a way to swap a file's type"
                    .to_string(),
            ));
        }
        if let Some(target) = file.strip_prefix(b".wh.") {
            return self.whiteout(parent, target, name);
        }
        let parent_fd = self.open_parent(parent, name)?;
        let file_c = cstring(file, name)?;
        match kind {
            EntryType::Directory => {
                self.make_dir(&parent_fd, &file_c, name)?;
                let dir = open_dir_at(&parent_fd, &file_c).map_err(apply(name, "open"))?;
                let deferred = self.set_metadata(&dir, entry, name)?;
                self.dirs.push((path, mtime(entry), deferred));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // O_EXCL fails on anything there, a symlink too: only then clear and retry.
                let file = match create_file(&parent_fd, &file_c) {
                    Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                        self.clear(&parent_fd, &file_c, name)?;
                        create_file(&parent_fd, &file_c)
                    }
                    created => created,
                }
                .map_err(apply(name, "create"))?;
                let written = self.copy_data(entry, &file, name)?;
                self.done.bytes += written;
                self.set_metadata(&file, entry, name)?;
                set_times(&file, mtime(entry)).map_err(apply(name, "set its mtime"))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| refuse("a symlink with no target".to_string()))?;
                self.clear(&parent_fd, &file_c, name)?;
                let target = cstring(&target, name)?;
                check(unsafe {
                    libc::symlinkat(target.as_ptr(), parent_fd.as_raw_fd(), file_c.as_ptr())
                })
                .map_err(apply(name, "make the symlink"))?;
                self.chown_at(&parent_fd, &file_c, entry, name)?;
                set_times_at(&parent_fd, &file_c, mtime(entry))
                    .map_err(apply(name, "set its mtime"))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("a hardlink with no target".to_string()))?
                    .into_owned();
                self.hardlink(&parent_fd, &file_c, &target, name)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (type_bits, what) = match kind {
                    EntryType::Char => (libc::S_IFCHR, "character device"),
                    EntryType::Block => (libc::S_IFBLK, "block device"),
                    _ => (libc::S_IFIFO, "fifo"),
                };
                if type_bits != libc::S_IFIFO && self.privilege != Privilege::Root {
                    self.done
                        .skipped_devices
                        .push(String::from_utf8_lossy(&name.0).into_owned());
                    return Ok(());
                }
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.clear(&parent_fd, &file_c, name)?;
                let mode = header.mode().unwrap_or(0o600) & 0o7777;
                check(unsafe {
                    libc::mknodat(
                        parent_fd.as_raw_fd(),
                        file_c.as_ptr(),
                        type_bits | mode,
                        libc::makedev(major, minor),
                    )
                })
                .map_err(apply(name, what))?;
                self.chown_at(&parent_fd, &file_c, entry, name)?;
                // mknod's mode went through the umask; the node was just made, so it
                // is no symlink and fchmodat needs no NOFOLLOW.
                let mode = if self.privilege == Privilege::User {
                    mode & 0o1777
                } else {
                    mode
                };
                check(unsafe { libc::fchmodat(parent_fd.as_raw_fd(), file_c.as_ptr(), mode, 0) })
                    .map_err(apply(name, "set its mode"))?;
                set_times_at(&parent_fd, &file_c, mtime(entry))
                    .map_err(apply(name, "set its mtime"))?;
            }
            other => {
                return Err(refuse(format!(
                    "entry type {:?} is not one a layer may hold",
                    other.as_byte() as char
                )));
            }
        }
        Ok(())
    }

    /// `.wh.TARGET` in `parent`: hide TARGET of the layers below.
    fn whiteout(
        &mut self,
        parent: &[Vec<u8>],
        target: &[u8],
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        let refuse = |problem: &str| ExtractError::Refused {
            entry: name.clone(),
            problem: problem.to_string(),
        };
        let parent_fd = self.open_parent(parent, name)?;
        if target == b".wh..opq" {
            self.set_opaque(&parent_fd, name)?;
            self.done.whiteouts += 1;
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(refuse(
                "a whiteout of nothing, `.` or `..`: it would hide the directory itself or its parent",
            ));
        }
        if target.starts_with(b".wh.") {
            return Err(refuse(
                "a whiteout name with the reserved prefix .wh..wh. that is not .wh..wh..opq",
            ));
        }
        let target_c = cstring(target, name)?;
        match lstat_at(&parent_fd, &target_c) {
            // This layer's own TARGET stays: a whiteout hides only the layers below.
            Ok(stat) if is_type(&stat, libc::S_IFDIR) => {
                let dir = open_dir_at(&parent_fd, &target_c).map_err(apply(name, "open"))?;
                self.set_opaque(&dir, name)?;
            }
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                check(unsafe {
                    libc::mknodat(parent_fd.as_raw_fd(), target_c.as_ptr(), libc::S_IFCHR, 0)
                })
                .map_err(apply(name, "make the whiteout (a 0/0 character device)"))?;
            }
            Err(err) => return Err(apply(name, "look at the whited-out path")(err)),
        }
        self.done.whiteouts += 1;
        Ok(())
    }

    /// Mark `dir` opaque: nothing of the layers below shows through it.
    fn set_opaque(&self, dir: &OwnedFd, name: &EntryName) -> Result<(), ExtractError> {
        for prefix in self.privilege.overlay_xattr_prefixes() {
            set_xattr(dir, &format!("{prefix}opaque"), b"y")
                .map_err(apply(name, "mark the directory opaque"))?;
        }
        Ok(())
    }

    /// Open the entry's parent directory inside the layer, making missing directories
    /// (a tar need not list them). No symlink is followed on the way: a write through
    /// one is refused, wherever it points. What the last call opened is reused (see
    /// `parents`).
    fn open_parent(
        &mut self,
        parent: &[Vec<u8>],
        name: &EntryName,
    ) -> Result<Rc<OwnedFd>, ExtractError> {
        let kept = (self.parents.iter().zip(parent))
            .take_while(|((open, _), component)| open == *component)
            .count();
        self.parents.truncate(kept);
        for component in &parent[kept..] {
            let c = cstring(component, name)?;
            let dir: &OwnedFd = self.parents.last().map_or(&self.root, |(_, fd)| fd);
            let opened = match open_beneath(dir, &c) {
                Ok(fd) => fd,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) })
                        .map_err(apply(name, "make a parent directory"))?;
                    open_beneath(dir, &c).map_err(apply(name, "open a parent directory"))?
                }
                Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(ExtractError::Refused {
                        entry: name.clone(),
                        problem: format!(
                            "its parent {:?} is a symlink: writing through a symlink is refused",
                            String::from_utf8_lossy(component)
                        ),
                    });
                }
                // O_DIRECTORY wins over O_NOFOLLOW: a symlink fails with ENOTDIR too.
                Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => {
                    let symlink = lstat_at(dir, &c).is_ok_and(|s| is_type(&s, libc::S_IFLNK));
                    let what = if symlink {
                        "is a symlink: writing through a symlink is refused"
                    } else {
                        "is not a directory"
                    };
                    return Err(ExtractError::Refused {
                        entry: name.clone(),
                        problem: format!(
                            "its parent {:?} {what}",
                            String::from_utf8_lossy(component)
                        ),
                    });
                }
                Err(err) => return Err(apply(name, "open a parent directory")(err)),
            };
            self.parents.push((component.clone(), Rc::new(opened)));
        }
        match self.parents.last() {
            Some((_, dir)) => Ok(Rc::clone(dir)),
            None => Ok(Rc::new(self.dup_root(name)?)),
        }
    }

    fn dup_root(&self, name: &EntryName) -> Result<OwnedFd, ExtractError> {
        self.root
            .try_clone()
            .map_err(apply(name, "duplicate the layer's fd"))
    }

    /// A directory at `file`: kept if there is one, made otherwise, replacing a
    /// whiteout of this layer (and then opaque: what was below is gone).
    fn make_dir(
        &mut self,
        parent: &OwnedFd,
        file: &CString,
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        match lstat_at(parent, file) {
            Ok(stat) if is_type(&stat, libc::S_IFDIR) => return Ok(()),
            Ok(stat) => {
                let was_whiteout = is_type(&stat, libc::S_IFCHR) && stat.st_rdev == 0;
                self.clear(parent, file, name)?;
                check(unsafe { libc::mkdirat(parent.as_raw_fd(), file.as_ptr(), 0o700) })
                    .map_err(apply(name, "make the directory"))?;
                if was_whiteout {
                    let dir = open_dir_at(parent, file).map_err(apply(name, "open"))?;
                    self.set_opaque(&dir, name)?;
                }
            }
            Err(_) => {
                check(unsafe { libc::mkdirat(parent.as_raw_fd(), file.as_ptr(), 0o700) })
                    .map_err(apply(name, "make the directory"))?;
            }
        }
        Ok(())
    }

    /// Remove what this layer has at `file`, so that a non-directory can replace it.
    fn clear(
        &mut self,
        parent: &OwnedFd,
        file: &CString,
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        let existing = lstat_at(parent, file);
        if existing.is_ok() {
            self.parents.clear();
        }
        match existing {
            Err(_) => Ok(()),
            Ok(stat) if is_type(&stat, libc::S_IFDIR) => {
                remove_tree_at(parent, file).map_err(apply(name, "replace a directory"))
            }
            Ok(_) => check(unsafe { libc::unlinkat(parent.as_raw_fd(), file.as_ptr(), 0) })
                .map_err(apply(name, "replace what was there")),
        }
    }

    /// A hardlink at `file` to `target`, an entry this layer already holds.
    fn hardlink(
        &mut self,
        parent: &OwnedFd,
        file: &CString,
        target: &[u8],
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        let refuse = |problem: String| ExtractError::Refused {
            entry: name.clone(),
            problem,
        };
        let target_path =
            components(target).map_err(|why| refuse(format!("its hardlink target {why}")))?;
        let Some((target_file, target_parent)) = target_path.split_last() else {
            return Err(refuse("a hardlink to the layer's root".to_string()));
        };
        let target_parent = self.open_parent(target_parent, name)?;
        let target_c = cstring(target_file, name)?;
        match lstat_at(&target_parent, &target_c) {
            Ok(stat) if is_type(&stat, libc::S_IFDIR) => {
                return Err(refuse("a hardlink to a directory".to_string()));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(refuse(format!(
                    "its hardlink target {:?} is not in the layer (yet)",
                    String::from_utf8_lossy(target)
                )));
            }
        }
        self.clear(parent, file, name)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink, never its target.
        check(unsafe {
            libc::linkat(
                target_parent.as_raw_fd(),
                target_c.as_ptr(),
                parent.as_raw_fd(),
                file.as_ptr(),
                0,
            )
        })
        .map_err(apply(name, "make the hardlink"))
    }

    /// Copy the entry's data into `file`, at most what it declared.
    fn copy_data<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &OwnedFd,
        name: &EntryName,
    ) -> Result<u64, ExtractError> {
        // The File borrows the fd only for the copy: the OwnedFd stays the owner.
        let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(file.as_raw_fd()) });
        let mut total = 0u64;
        loop {
            let n = match entry.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExtractError::Stream {
                        after: format!(" in entry {name}"),
                        source,
                    });
                }
            };
            out.write_all(&self.buffer[..n])
                .map_err(apply(name, "write the file"))?;
            total += n as u64;
        }
        if total != entry.size() {
            return Err(ExtractError::Stream {
                after: format!(" in entry {name}"),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{total} of {} bytes: the stream ended early", entry.size()),
                ),
            });
        }
        Ok(total)
    }

    /// Owner, xattrs and mode (setuid included: after the chown, which clears it; and
    /// last, as a plain user may set `user.*` xattrs only while it may write). For a
    /// plain user a directory stays writable: its mode is returned, to be set at the end.
    fn set_metadata<R: Read>(
        &self,
        fd: &OwnedFd,
        entry: &mut tar::Entry<'_, R>,
        name: &EntryName,
    ) -> Result<Option<u32>, ExtractError> {
        if self.privilege != Privilege::User {
            let (uid, gid) = owner(entry, name)?;
            check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
                .map_err(|err| self.owner_error(name, uid, gid, err))?;
        }
        let mode = entry
            .header()
            .mode()
            .map_err(apply(name, "read its mode"))?
            & 0o7777;
        let mode = if self.privilege == Privilege::User {
            // Without the owner, setuid and setgid would hand the bits to this user.
            mode & 0o1777
        } else {
            mode
        };
        for (key, value) in self.xattrs(entry, name)? {
            set_xattr(fd, &key, &value).map_err(apply(name, "set an extended attribute"))?;
        }
        let deferred = self.privilege == Privilege::User
            && entry.header().entry_type() == EntryType::Directory;
        let now = if deferred { mode | 0o700 } else { mode };
        check(unsafe { libc::fchmod(fd.as_raw_fd(), now) }).map_err(apply(name, "set its mode"))?;
        Ok(deferred.then_some(mode))
    }

    /// The entry's xattrs that this process may set. Overlay's own are refused: an image
    /// that carries `overlay.redirect` or `overlay.opaque` would steer the overlay.
    fn xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &EntryName,
    ) -> Result<Vec<(String, Vec<u8>)>, ExtractError> {
        let mut found = Vec::new();
        let Some(extensions) = entry
            .pax_extensions()
            .map_err(apply(name, "read its PAX records"))?
        else {
            return Ok(found);
        };
        for extension in extensions {
            let extension = extension.map_err(apply(name, "read its PAX records"))?;
            let Some(key) = extension.key().ok().and_then(|k| k.strip_prefix(PAX_XATTR)) else {
                continue;
            };
            if key.starts_with("trusted.overlay.") || key.starts_with("user.overlay.") {
                return Err(ExtractError::Refused {
                    entry: name.clone(),
                    problem: format!("it sets overlay's own xattr {key}"),
                });
            }
            let allowed = match self.privilege {
                Privilege::Root => true,
                Privilege::MappedRoot => !key.starts_with("trusted."),
                Privilege::User => key.starts_with("user."),
            };
            if allowed {
                found.push((key.to_string(), extension.value_bytes().to_vec()));
            }
        }
        Ok(found)
    }

    fn chown_at<R: Read>(
        &self,
        parent: &OwnedFd,
        file: &CString,
        entry: &tar::Entry<'_, R>,
        name: &EntryName,
    ) -> Result<(), ExtractError> {
        if self.privilege == Privilege::User {
            return Ok(());
        }
        let (uid, gid) = owner(entry, name)?;
        check(unsafe {
            libc::fchownat(
                parent.as_raw_fd(),
                file.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map_err(|err| self.owner_error(name, uid, gid, err))
    }

    fn owner_error(&self, name: &EntryName, uid: u32, gid: u32, err: io::Error) -> ExtractError {
        if err.raw_os_error() == Some(libc::EINVAL) {
            ExtractError::Refused {
                entry: name.clone(),
                problem: format!(
                    "its owner {uid}:{gid} is outside the user namespace's id maps: give your user more subordinate ids (/etc/subuid, /etc/subgid)"
                ),
            }
        } else {
            apply(name, "set its owner")(err)
        }
    }

    /// Set the directories' mtimes (and deferred modes) last, deepest first: their
    /// entries are all in now. Of two entries of one directory, the later wins.
    pub(super) fn finish_dirs(&mut self) -> Result<(), ExtractError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(path, _, _)| std::cmp::Reverse(path.len()));
        // Siblings come one after another: keep their parents open, as open_parent does.
        let mut open: Vec<(&[u8], OwnedFd)> = Vec::new();
        for (path, mtime, mode) in &dirs {
            let name = EntryName(path.join(&b'/'));
            let kept = (open.iter().zip(path))
                .take_while(|((done, _), component)| *done == component.as_slice())
                .count();
            open.truncate(kept);
            for component in &path[kept..] {
                let c = cstring(component, &name)?;
                let parent = open.last().map_or(&self.root, |(_, fd)| fd);
                let dir = open_beneath(parent, &c).map_err(apply(&name, "open"))?;
                open.push((component, dir));
            }
            let dir = open.last().map_or(&self.root, |(_, fd)| fd);
            if let Some(mode) = mode {
                check(unsafe { libc::fchmod(dir.as_raw_fd(), *mode) })
                    .map_err(apply(&name, "set its mode"))?;
            }
            set_times(dir, *mtime).map_err(apply(&name, "set its mtime"))?;
        }
        Ok(())
    }
}
