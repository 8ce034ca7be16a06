//! Where nutshell keeps what it writes: a data directory for images and containers'
//! directories, a state directory for what is running.
//!
//! Data: root uses `/var/lib/nutshell`; a normal user `$XDG_DATA_HOME/nutshell` (by
//! default `~/.local/share/nutshell`); `NUTSHELL_DATA` overrides both, which is how the
//! tests keep every image they build in a temporary directory.
//!
//! State: one directory per container, `<state>/<id>/`, holding its `state.json` and its
//! lock. Root uses `/run/nutshell`, a tmpfs that a reboot empties, as the containers it
//! describes are gone then too; a normal user `$XDG_RUNTIME_DIR/nutshell`, or
//! `<data>/run` without one; `NUTSHELL_ROOT` overrides both (runc's `--root`).
//!
//! Nothing else is written anywhere, and `just clean` removes all of it. Chapter 1
//! introduces this module for the default image.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that overrides the data directory.
pub const DATA_ENV: &str = "NUTSHELL_DATA";

/// The data directory for a process with effective uid `euid`, given a way to read
/// environment variables (a parameter, so the rules can be tested without touching the
/// real environment).
pub fn data_dir_for(euid: u32, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(DATA_ENV) {
        return dir;
    }
    if euid == 0 {
        return PathBuf::from("/var/lib/nutshell");
    }
    if let Some(xdg) = set("XDG_DATA_HOME") {
        return xdg.join("nutshell");
    }
    match set("HOME") {
        Some(home) => home.join(".local/share/nutshell"),
        None => PathBuf::from("/var/lib/nutshell"),
    }
}

/// The environment variable that overrides the state directory.
pub const STATE_ENV: &str = "NUTSHELL_ROOT";

/// The state directory for a process with effective uid `euid` and data directory
/// `data`, given a way to read environment variables.
pub fn state_dir_for(euid: u32, data: &Path, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(STATE_ENV) {
        return dir;
    }
    if euid == 0 {
        return PathBuf::from("/run/nutshell");
    }
    match set("XDG_RUNTIME_DIR") {
        Some(runtime) => runtime.join("nutshell"),
        None => data.join("run"),
    }
}

/// The state directory of this process.
pub fn state_dir() -> PathBuf {
    state_dir_for(nix::unistd::geteuid().as_raw(), &data_dir(), |name| {
        std::env::var_os(name)
    })
}

/// The data directory of this process.
pub fn data_dir() -> PathBuf {
    data_dir_for(nix::unistd::geteuid().as_raw(), |name| {
        std::env::var_os(name)
    })
}

/// Write `value` as pretty JSON to `path` through `path.new` and rename(2), so that a
/// reader sees the old file or the new one whole, never half of one.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> io::Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    std::fs::write(&temp, json + "\n")?;
    std::fs::rename(&temp, path)
}

// ANCHOR: file_lock
/// An exclusive flock(2) on a file, held until dropped. The kernel releases it when the
/// holder dies, however it dies, so a lock that can be taken is also proof that its last
/// holder is gone: the image build and each container's state use that.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Take the lock on `path` (created if missing), waiting for its holder at most
    /// `timeout`. `Ok(None)` when the holder kept it all that time.
    pub fn acquire(path: &Path, timeout: Duration) -> io::Result<Option<FileLock>> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let deadline = Instant::now() + timeout;
        loop {
            // Not a blocking flock: that one has no timeout.
            // SAFETY: flock on an fd this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Some(FileLock { file }));
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err);
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Take the lock on `path` if no one holds it; `Ok(None)` at once if someone does.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        Self::acquire(path, Duration::ZERO)
    }

    /// Take the lock on the existing file `path` if no one holds it; `Ok(None)` at once
    /// if someone does. Unlike [`FileLock::try_acquire`], a missing file is `NotFound`,
    /// not made: a lock file appears only already locked (see [`FileLock::create_locked`]).
    pub fn try_acquire_existing(path: &Path) -> io::Result<Option<FileLock>> {
        let file = File::options().write(true).open(path)?;
        // SAFETY: flock on an fd this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(FileLock { file }));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(None),
            _ => Err(err),
        }
    }

    // ANCHOR: create_locked
    /// Make the file `path` with this lock already held: so that no one else can take
    /// it in between, it is made nameless (O_TMPFILE), locked, and only then linked to
    /// its name.
    pub fn create_locked(path: &Path) -> io::Result<FileLock> {
        use std::os::unix::ffi::OsStrExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        let file = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)?;
        // SAFETY: flock on an fd this function owns; nothing else can have it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let to = std::ffi::CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: linkat of our nameless file, through its /proc/self/fd magic link,
        // to a NUL-terminated path.
        let linked = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if linked != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileLock { file })
    }
    // ANCHOR_END: create_locked

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.file
    }
}
// ANCHOR_END: file_lock

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_keeps_images_in_var_lib() {
        assert_eq!(
            data_dir_for(0, env(&[("HOME", "/root")])),
            PathBuf::from("/var/lib/nutshell")
        );
    }

    #[test]
    fn a_user_keeps_images_in_xdg_data_home() {
        let vars = [("HOME", "/home/ada"), ("XDG_DATA_HOME", "/home/ada/data")];
        assert_eq!(
            data_dir_for(1000, env(&vars)),
            PathBuf::from("/home/ada/data/nutshell")
        );
    }

    #[test]
    fn a_user_without_xdg_uses_dot_local_share() {
        assert_eq!(
            data_dir_for(1000, env(&[("HOME", "/home/ada")])),
            PathBuf::from("/home/ada/.local/share/nutshell")
        );
    }

    #[test]
    fn state_lives_in_run_for_root_and_in_the_runtime_dir_for_a_user() {
        let data = Path::new("/home/ada/.local/share/nutshell");
        assert_eq!(
            state_dir_for(0, data, env(&[])),
            PathBuf::from("/run/nutshell")
        );
        assert_eq!(
            state_dir_for(1000, data, env(&[("XDG_RUNTIME_DIR", "/run/user/1000")])),
            PathBuf::from("/run/user/1000/nutshell")
        );
        assert_eq!(state_dir_for(1000, data, env(&[])), data.join("run"));
        let vars = [
            ("NUTSHELL_ROOT", "/tmp/s"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ];
        assert_eq!(
            state_dir_for(1000, data, env(&vars)),
            PathBuf::from("/tmp/s")
        );
    }

    #[test]
    fn a_held_lock_is_refused_until_it_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lock");
        let held = FileLock::try_acquire(&path).expect("lock").expect("free");
        // A second open file description: flock conflicts between them even in one process.
        assert!(FileLock::try_acquire(&path).expect("try").is_none());
        let waited = Instant::now();
        assert!(
            FileLock::acquire(&path, Duration::from_millis(100))
                .expect("try")
                .is_none()
        );
        assert!(waited.elapsed() >= Duration::from_millis(100));
        drop(held);
        assert!(FileLock::try_acquire(&path).expect("lock").is_some());
    }

    #[test]
    fn a_lock_file_appears_only_already_locked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lock");
        assert_eq!(
            FileLock::try_acquire_existing(&path)
                .expect_err("no file")
                .kind(),
            io::ErrorKind::NotFound
        );
        let held = FileLock::create_locked(&path).expect("create");
        assert!(
            FileLock::try_acquire_existing(&path)
                .expect("try")
                .is_none()
        );
        drop(held);
        assert!(
            FileLock::try_acquire_existing(&path)
                .expect("try")
                .is_some()
        );
    }

    #[test]
    fn nutshell_data_overrides_everything() {
        let vars = [("NUTSHELL_DATA", "/tmp/t1"), ("HOME", "/root")];
        assert_eq!(data_dir_for(0, env(&vars)), PathBuf::from("/tmp/t1"));
    }
}
