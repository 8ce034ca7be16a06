//! Each container's state directory, `<state>/<id>/`: its `state.json`, its start gate,
//! and a lock its owner holds for as long as it owns the container.
//!
//! The lock is what makes cleanup safe. flock(2) locks go away when their holder dies,
//! however it dies — SIGKILL included — so a container whose lock can be taken has no
//! owner left, and whatever it left (a cgroup, its directories, a process that somehow
//! outlived its owner) can be removed. The next launch sweeps such leftovers, and so does
//! `nutshell cleanup`. A live container's lock cannot be taken, so neither touches it.
//!
//! A state directory is made with mkdir(2), so two launches of one id cannot both
//! succeed, and its lock file is linked into it already locked, so a sweeper never takes
//! the lock of a container that is being made (see [`FileLock::create_locked`]).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::id::ContainerId;
use super::plan::Owned;
use crate::store::FileLock;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being made: its resources may be half there.
    Creating,
    /// Its first process waits at the start gate.
    Created,
    /// Its program runs.
    Running,
    /// Its program has ended.
    Stopped,
}

/// A process, named so that a pid the kernel has handed out again is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// The pid, as the host sees it.
    pub pid: i32,
    /// Its start time, field 22 of `/proc/PID/stat`.
    pub start_time: u64,
}

impl ProcessRef {
    /// The process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        Some(ProcessRef {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// Whether this very process still runs: it exists with the same start time, and
    /// is not a zombie waiting to be reaped.
    pub fn alive(&self) -> bool {
        stat_fields(self.pid).is_some_and(|(state, start)| state != 'Z' && start == self.start_time)
    }
}

/// Field 22 of `/proc/PID/stat`, the start time.
fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, start)| start)
}

/// Fields 3 (the state) and 22 (the start time) of `/proc/PID/stat`, read after the
/// command name in parentheses, which may hold spaces and parentheses itself.
fn stat_fields(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// What `state.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The container's id.
    pub id: ContainerId,
    /// Where it is in its life.
    pub status: Status,
    /// The process that owns it.
    pub owner: ProcessRef,
    /// Its first process, once cloned.
    pub init: Option<ProcessRef>,
    /// What it owns on the host, to remove with it: recorded before any of it is made.
    pub owned: Owned,
    /// When it was created, in seconds since the epoch.
    pub created: u64,
    /// The image layers (or root directory) it runs on, which the image store must not
    /// remove while it exists.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    /// Its creator has let it go (`nutshell create`): it is not a leftover when no one
    /// holds its lock, and lives until `nutshell delete`.
    #[serde(default)]
    pub detached: bool,
}

/// How long a state directory without a lock is left alone: making one takes
/// microseconds between its mkdir and its lock, so this much means its maker died there.
const UNLOCKED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A container's state directory, with its lock held.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    lock: Option<FileLock>,
}

impl StateDir {
    /// Make `<root>/<id>` with its lock held and `state` written, or fail with
    /// `AlreadyExists` if a container of that id exists.
    ///
    /// The directory is made under a name of its own, `.making-PID.N-ID`, and renamed into
    /// place complete (renameat2 RENAME_NOREPLACE, atomic: of two launches of one id, one
    /// gets EEXIST), so that `<root>/<id>` never exists without its lock: a sweep that
    /// finds one unlocked knows its owner is gone. A maker killed half-way leaves only
    /// the temporary name, which [`sweep_unfinished`] removes once its pid is gone.
    pub fn create(root: &Path, id: &ContainerId, state: &State) -> io::Result<StateDir> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)?;
        let temp = root.join(unfinished_name("making", id.as_str()));
        fs::DirBuilder::new().mode(0o700).create(&temp)?;
        let made = (|| {
            let lock = FileLock::create_locked(&temp.join("lock"))?;
            let mut state_dir = StateDir {
                dir: temp.clone(),
                lock: Some(lock),
            };
            state_dir.write(state)?;
            let dir = root.join(id.as_str());
            rename_no_replace(&temp, &dir)?;
            state_dir.dir = dir;
            Ok(state_dir)
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        made
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The start gate, a FIFO in the directory.
    pub fn start_gate(&self) -> PathBuf {
        self.dir.join("start")
    }

    /// The exec fifo of a detached container, where its first process reports to
    /// `nutshell start` whether its program started.
    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Write `state` to `state.json`, atomically: a reader sees the old or the new.
    pub fn write(&mut self, state: &State) -> io::Result<()> {
        crate::store::write_json(&self.dir.join("state.json"), state)
    }

    /// Remove the directory, and with it the lock: first renamed out of the way
    /// (`.removing-PID.N-ID`), so that a removal cut short by a kill never leaves
    /// `<root>/<id>` half-emptied and unlocked.
    pub fn remove(mut self) -> io::Result<()> {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tombstone = self.dir.with_file_name(unfinished_name("removing", &name));
        let result = match fs::rename(&self.dir, &tombstone) {
            Ok(()) => fs::remove_dir_all(&tombstone),
            Err(e) => Err(e),
        };
        let result = match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        self.lock = None;
        result
    }

    // ANCHOR: take_over
    /// The state dir of a container whose owner is gone: its lock taken, so that no one
    /// else sweeps it at the same time. `None` if the lock is held (the owner lives), if
    /// the directory is gone, or if it has no lock yet and is young: a launch makes the
    /// directory, then links its lock in already held, and may be between the two.
    pub fn take_over(dir: &Path) -> io::Result<Option<StateDir>> {
        match FileLock::try_acquire_existing(&dir.join("lock")) {
            Ok(Some(lock)) => Ok(Some(StateDir {
                dir: dir.to_path_buf(),
                lock: Some(lock),
            })),
            Ok(None) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // No lock: being made now, or its maker died between mkdir and link.
                let age = fs::metadata(dir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                match age {
                    Some(age) if age > UNLOCKED_GRACE => Ok(Some(StateDir {
                        dir: dir.to_path_buf(),
                        lock: None,
                    })),
                    _ => Ok(None),
                }
            }
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: take_over

    /// [`StateDir::take_over`], waiting up to `wait` for a lock whose owner has died:
    /// the lock's open file is shared with the owner's children until they have gone
    /// (a container's first process, or a helper of its launch, still dying of its
    /// parent-death signal), and a sweep that ran just then would skip the container
    /// for good. A lock whose owner lives is not waited for.
    pub fn take_over_when_orphaned(dir: &Path, wait: Duration) -> io::Result<Option<StateDir>> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(taken) = StateDir::take_over(dir)? {
                return Ok(Some(taken));
            }
            let owner_alive = fs::read_to_string(dir.join("state.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<State>(&text).ok())
                .is_none_or(|state| state.owner.alive());
            if owner_alive || std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Read `state.json`; `None` for a directory whose owner died before writing it.
    pub fn read(&self) -> Option<State> {
        read_state(&self.dir)
    }

    /// The state dir `dir` of a detached container, with its lock: waits up to `wait`
    /// while another command holds it. `None` if it is still held then.
    pub fn lock_detached(dir: &Path, wait: Duration) -> io::Result<Option<StateDir>> {
        Ok(
            FileLock::acquire(&dir.join("lock"), wait)?.map(|lock| StateDir {
                dir: dir.to_path_buf(),
                lock: Some(lock),
            }),
        )
    }
}

/// Read `<dir>/state.json`, without its lock: what any reader may look at.
pub fn read_state(dir: &Path) -> Option<State> {
    let text = fs::read_to_string(dir.join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The state dirs under `root`, sorted (not the unfinished ones being made or removed).
pub fn list(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = match fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect::<Vec<_>>(),
    };
    dirs.sort();
    Ok(dirs)
}

/// Remove the unfinished state dirs under `root` (`.making-…`, `.removing-…`) whose maker
/// or remover, named by the pid in the name, is gone. Returns what was removed.
pub fn sweep_unfinished(root: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = [".making-", ".removing-"]
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if ProcessRef::of(pid).is_none() {
            match fs::remove_dir_all(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => removed.push(entry.path()),
            }
        }
    }
    Ok(removed)
}

/// A fresh `.KIND-PID.N-ID` name for a state dir being made or removed.
fn unfinished_name(kind: &str, id: &str) -> String {
    format!(".{kind}-{}.{}-{id}", std::process::id(), next_n())
}

/// A number unique within this process, for the names above.
fn next_n() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// rename(2) that fails with EEXIST instead of replacing `to`: renameat2(2) with
/// RENAME_NOREPLACE.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths; the call only reads them.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &ContainerId) -> State {
        State {
            id: id.clone(),
            status: Status::Creating,
            owner: ProcessRef::of(std::process::id() as i32).expect("this process"),
            init: None,
            owned: Owned::default(),
            created: now(),
            layers: Vec::new(),
            detached: false,
        }
    }

    #[test]
    fn a_state_dir_appears_only_whole_and_unfinished_ones_of_dead_makers_are_swept() {
        let root = tempfile::tempdir().expect("temp dir");
        let id = ContainerId::parse("whole").expect("id");
        let dir = StateDir::create(root.path(), &id, &state(&id)).expect("create");
        assert_eq!(dir.path(), root.path().join("whole"));
        assert!(dir.path().join("lock").exists() && dir.path().join("state.json").exists());
        assert_eq!(
            list(root.path()).expect("list"),
            vec![root.path().join("whole")]
        );
        // A maker that is gone (no such pid) and one that lives (this process).
        let dead = root.path().join(".making-999999999.0-dead");
        let alive = root
            .path()
            .join(format!(".making-{}.0-alive", std::process::id()));
        fs::create_dir(&dead).expect("mkdir");
        fs::create_dir(&alive).expect("mkdir");
        assert_eq!(
            sweep_unfinished(root.path()).expect("sweep"),
            vec![dead.clone()]
        );
        assert!(!dead.exists() && alive.exists());
        dir.remove().expect("remove");
        assert_eq!(list(root.path()).expect("list"), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_live_owners_state_cannot_be_taken_over_a_dead_ones_can() {
        let root = tempfile::tempdir().expect("temp dir");
        let id = ContainerId::parse("c1").expect("id");
        let dir = StateDir::create(root.path(), &id, &state(&id)).expect("create");
        assert!(StateDir::take_over(dir.path()).expect("try").is_none());
        let path = dir.path().to_path_buf();
        // Dropping the lock is what the kernel does when the owner dies.
        drop(dir);
        let taken = StateDir::take_over(&path).expect("try").expect("free");
        assert_eq!(taken.read().expect("state").id, id);
        taken.remove().expect("remove");
        assert!(!path.exists());
    }

    #[test]
    fn one_id_cannot_be_created_twice() {
        let root = tempfile::tempdir().expect("temp dir");
        let id = ContainerId::parse("twice").expect("id");
        let _first = StateDir::create(root.path(), &id, &state(&id)).expect("create");
        let err = StateDir::create(root.path(), &id, &state(&id)).expect_err("taken");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            list(root.path()).expect("list").len(),
            1,
            "no temp dir left"
        );
    }

    #[test]
    fn a_young_dir_without_a_lock_is_left_alone() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("being-made");
        fs::create_dir(&dir).expect("mkdir");
        assert!(StateDir::take_over(&dir).expect("try").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessRef::of(std::process::id() as i32).expect("this process");
        assert!(me.alive());
        let reused = ProcessRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.alive());
    }
}
