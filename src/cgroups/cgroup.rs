//! A real cgroup: make it, write its limits, put processes in, read its counters, remove it.
//!
//! A cgroup is a directory: `mkdir` creates it (the kernel fills it with interface files),
//! writing a PID to its `cgroup.procs` moves that process in, and `rmdir` removes it once
//! no process is left. nutshell makes every cgroup under a `nutshell` directory of its own
//! (`<mount>/nutshell/<id>`, or deeper: `<mount>/nutshell/nodes/node-2/<id>` for chapter
//! 12's nodes) and never writes to a cgroup it did not create.
//!
//! The two versions differ in how a cgroup gets its controllers:
//!
//! - **v1**: each hierarchy has its own controllers, so a container needs one directory
//!   per hierarchy (on a hybrid host: `cpu/nutshell/c1`, `cpuacct/nutshell/c1`,
//!   `memory/nutshell/c1`, ...), and the PID goes into each one's `cgroup.procs`. A new
//!   `cpuset` cgroup starts with empty `cpuset.cpus`/`cpuset.mems` and refuses processes
//!   until they are copied from the parent.
//! - **v2**: one tree. A controller is available in a cgroup only if its parent lists it
//!   in `cgroup.subtree_control` (`echo +cpu > nutshell/cgroup.subtree_control`), and the
//!   "no internal processes" rule says a cgroup that hands controllers to its children
//!   holds no processes itself — which is why containers live one level below `nutshell`,
//!   and why every level between `nutshell` and a container enables the controllers for
//!   the level below.
//!   Whoever owns the root decides what is delegated: if the root's own
//!   `cgroup.subtree_control` lacks a controller, nutshell says so rather than change it.
//!
//! Every path comes from the [`CgroupLayout`], so tests run this code on a fake tree of
//! plain directories in a temp dir.
//!
//! See also [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html) and
//! [cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html) (sections
//! "Controlling Controllers" and "No Internal Process Constraint").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;

use nix::unistd::Pid;

use super::cgroupfs::{copy_cpuset, mkdir, read_keyed, read_number, remove_dir, write_file};
use super::layout::{CgroupLayout, CgroupMount, CgroupVersion};
use super::settings::Setting;

/// Every cgroup the project makes lives under `<mount>/nutshell/`.
pub const PARENT: &str = "nutshell";

/// How often [`Cgroup::create`] starts over when a sibling removes the shared parent in
/// between, and how often [`Cgroup::remove`] retries `EBUSY` (10 ms apart).
const CREATE_ATTEMPTS: usize = 5;
const REMOVE_ATTEMPTS: usize = 200;

/// One directory of a cgroup: the part of it in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupDir {
    /// The hierarchy's version.
    pub version: CgroupVersion,
    /// The requested controllers this directory serves.
    pub controllers: Vec<String>,
    /// `<mount>/nutshell/.../<name>`.
    pub path: PathBuf,
    /// The hierarchy's mount point: the levels between it and `path` are nutshell's.
    pub mount_point: PathBuf,
}

/// A cgroup this process created, in every hierarchy that holds one of its controllers.
/// Dropping it removes it (best effort); call [`Cgroup::remove`] to see errors.
#[derive(Debug)]
pub struct Cgroup {
    /// The path below each hierarchy's root: `nutshell/<id>`.
    path: String,
    dirs: Vec<CgroupDir>,
    removed: bool,
}

/// Errors from making, filling, reading or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A component of the path is not a plain name, or the path is not below
    /// `nutshell/`.
    #[error("cgroup path {name:?}: {problem}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// No hierarchy on this host has a requested controller.
    #[error("controller {controller} is not available on this host ({layout})")]
    ControllerMissing {
        /// The controller.
        controller: String,
        /// The host's layout.
        layout: String,
    },
    /// The cgroup2 root does not delegate a controller to its children.
    #[error(
        "controller {controller} is not enabled in {}: nutshell never writes to a cgroup \
         it did not create; enable it as root with `echo +{controller} > {}`",
        path.display(), path.display()
    )]
    NotDelegated {
        /// The controller.
        controller: String,
        /// The root's `cgroup.subtree_control`.
        path: PathBuf,
    },
    /// A cgroup of that name already exists (another container, or a leftover).
    #[error("create cgroup {}: it already exists", path.display())]
    AlreadyExists {
        /// The existing directory.
        path: PathBuf,
    },
    /// `mkdir` failed.
    #[error("create cgroup {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
    /// Writing a cgroup file failed (the kernel rejects bad values with `EINVAL`).
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The error, with its errno.
        source: io::Error,
    },
    /// A setting's file is not in the cgroup: the kernel does not offer it here.
    #[error(
        "{} does not exist: this host's kernel does not offer that setting (blkio.weight, say, needs an I/O scheduler with weights)",
        path.display()
    )]
    NoSuchSetting {
        /// The file.
        path: PathBuf,
    },
    /// Reading a cgroup file failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
    /// A counter file does not have the expected shape.
    #[error("parse {}: {problem}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// A setting or counter needs a controller this cgroup was not created with.
    #[error("cgroup {name} has no {version} directory for controller {controller}")]
    NoDirectory {
        /// The cgroup's name.
        name: String,
        /// The version asked for.
        version: CgroupVersion,
        /// The controller asked for.
        controller: String,
    },
    /// `rmdir` failed (`EBUSY`: processes are still inside).
    #[error("remove cgroup {}: {source}", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
}

/// CPU counters, all in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// CPU time used by the group.
    pub usage_ns: u64,
    /// Bandwidth periods in which the group had runnable threads.
    pub nr_periods: u64,
    /// Periods that ended with the group throttled (quota used up).
    pub nr_throttled: u64,
    /// Total time the group's threads spent throttled.
    pub throttled_ns: u64,
}

/// Memory limit counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Processes the OOM killer killed in the group.
    pub oom_kill: u64,
    /// Times usage hit the limit (v2 `memory.events` max; v1 `memory.failcnt`, or
    /// `memory.memsw.failcnt` when the memory+swap limit is the one hit).
    pub limit_hits: u64,
    /// Highest usage seen, if the kernel records it.
    pub peak_bytes: Option<u64>,
}

/// Task counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsStats {
    /// Tasks in the group now.
    pub current: u64,
    /// Forks refused because the group was at `pids.max`.
    pub max_hits: u64,
}

impl Cgroup {
    // ANCHOR: create
    /// Makes `<mount>/<path>` — `path` is `nutshell/<id>` or deeper — in every hierarchy
    /// that holds one of `controllers`: one directory per v1 hierarchy, one in the cgroup2
    /// tree with the controllers enabled in the `cgroup.subtree_control` of every level
    /// from `nutshell` down. On failure removes what it made.
    pub fn create(
        layout: &CgroupLayout,
        path: &str,
        controllers: &[&str],
    ) -> Result<Cgroup, CgroupError> {
        let levels = validate_path(path)?;
        // Check everything before making anything, so bad input leaves nothing behind.
        let mut planned: Vec<(&CgroupMount, Vec<String>)> = Vec::new();
        for &controller in controllers {
            let mount =
                layout
                    .mount_for(controller)
                    .ok_or_else(|| CgroupError::ControllerMissing {
                        controller: controller.to_owned(),
                        layout: layout.layout.to_string(),
                    })?;
            if mount.version == CgroupVersion::V2 {
                check_delegated(mount, controller)?;
            }
            match planned
                .iter_mut()
                .find(|(m, _)| m.mount_point == mount.mount_point)
            {
                Some((_, list)) => list.push(controller.to_owned()),
                None => planned.push((mount, vec![controller.to_owned()])),
            }
        }
        let mut cgroup = Cgroup {
            path: path.to_owned(),
            dirs: Vec::new(),
            removed: false,
        };
        for (mount, controllers) in planned {
            let dir = mount.mount_point.join(path);
            // On error `cgroup` is dropped here, which removes the dirs made so far.
            make_dirs(mount, &controllers, &levels)?;
            cgroup.dirs.push(CgroupDir {
                version: mount.version,
                controllers,
                path: dir,
                mount_point: mount.mount_point.clone(),
            });
        }
        Ok(cgroup)
    }
    // ANCHOR_END: create

    /// A cgroup a process now gone made at `dirs`, to empty and remove: what a killed
    /// owner left. Dropping it removes it, as [`Cgroup::create`]'s.
    pub fn left_behind(path: &str, dirs: Vec<CgroupDir>) -> Result<Cgroup, CgroupError> {
        validate_path(path)?;
        Ok(Cgroup {
            path: path.to_owned(),
            dirs,
            removed: false,
        })
    }

    /// A cgroup that lives on after this handle: a detached container's, to read,
    /// freeze or change from another command. Dropping it leaves it.
    pub fn borrowed(path: &str, dirs: Vec<CgroupDir>) -> Result<Cgroup, CgroupError> {
        validate_path(path)?;
        Ok(Cgroup {
            path: path.to_owned(),
            dirs,
            removed: true,
        })
    }

    /// The path given to [`Cgroup::create`], `nutshell/<id>`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its last component: the container's id.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The directories, one per hierarchy.
    pub fn dirs(&self) -> &[CgroupDir] {
        &self.dirs
    }

    /// Writes each setting to its file in the dir of its controller, in order.
    pub fn apply(&self, settings: &[Setting]) -> Result<(), CgroupError> {
        for setting in settings {
            let dir = self.dir_for(setting.version, &setting.controller)?;
            let path = dir.path.join(&setting.file);
            match write_file(&path, &setting.value) {
                // cgroupfs makes no files: a write to one it lacks fails with EACCES.
                Err(_) if !path.exists() => return Err(CgroupError::NoSuchSetting { path }),
                other => other?,
            }
        }
        Ok(())
    }

    /// Moves process `pid`, with all its threads, into the cgroup (its `cgroup.procs`).
    pub fn add_pid(&self, pid: Pid) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            write_file(&dir.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    // ANCHOR: freeze
    /// Freeze every process in the cgroup (`frozen`), or thaw them, and wait until the
    /// kernel says it is done: v1 through the freezer hierarchy's `freezer.state`
    /// (`FROZEN`, `THAWED`; `FREEZING` meanwhile), v2 through `cgroup.freeze`, with
    /// `frozen 1` in `cgroup.events` once done. How `nutshell pause` and `resume` work.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let (file, value, done) = match self.freezer()? {
            (CgroupVersion::V1, dir) => (
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
                dir.join("freezer.state"),
            ),
            (CgroupVersion::V2, dir) => (
                dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                dir.join("cgroup.events"),
            ),
        };
        write_file(&file, value)?;
        for _ in 0..REMOVE_ATTEMPTS {
            if self.is_frozen_in(&done)? == frozen {
                return Ok(());
            }
            // v1: a task that did not stop yet is asked again.
            write_file(&file, value)?;
            thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(CgroupError::Write {
            path: file,
            value: value.to_string(),
            source: io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not finish within 2 s",
            ),
        })
    }

    /// Whether the cgroup is frozen (false where it has no freezer).
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Ok((CgroupVersion::V1, dir)) => self.is_frozen_in(&dir.join("freezer.state")),
            Ok((CgroupVersion::V2, dir)) => self.is_frozen_in(&dir.join("cgroup.events")),
            Err(_) => Ok(false),
        }
        .unwrap_or(false)
    }
    // ANCHOR_END: freeze

    /// The directory that freezes it: v1's freezer hierarchy where the cgroup has one,
    /// else its cgroup2 directory.
    fn freezer(&self) -> Result<(CgroupVersion, PathBuf), CgroupError> {
        let v1 = self.dirs.iter().find(|d| {
            d.version == CgroupVersion::V1 && d.controllers.iter().any(|c| c == "freezer")
        });
        let v2 = self.dirs.iter().find(|d| d.version == CgroupVersion::V2);
        match v1.or(v2) {
            Some(dir) => Ok((dir.version, dir.path.clone())),
            None => Err(CgroupError::ControllerMissing {
                controller: "freezer".to_string(),
                layout: "this cgroup's hierarchies".to_string(),
            }),
        }
    }

    fn is_frozen_in(&self, file: &Path) -> Result<bool, CgroupError> {
        let text = fs::read_to_string(file).map_err(|source| CgroupError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        Ok(text.trim() == "FROZEN" || text.lines().any(|line| line.trim() == "frozen 1"))
    }

    // ANCHOR: cpu_stats
    /// Reads CPU usage and throttling, normalised to nanoseconds: v1 from
    /// `cpuacct.usage` and the `cpu` hierarchy's `cpu.stat` (`throttled_time`), v2 from
    /// `cpu.stat` (`usage_usec`, `throttled_usec`).
    pub fn cpu_stats(&self) -> Result<CpuStats, CgroupError> {
        let cpu = self.dir_for_any("cpu")?;
        let stat_path = cpu.path.join("cpu.stat");
        let stat = read_keyed(&stat_path)?;
        let field = |key: &str| -> Result<u64, CgroupError> {
            stat.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .ok_or_else(|| CgroupError::Parse {
                    path: stat_path.clone(),
                    problem: format!("no {key} line"),
                })
        };
        Ok(match cpu.version {
            CgroupVersion::V1 => CpuStats {
                usage_ns: read_number(&self.dir_for_any("cpuacct")?.path.join("cpuacct.usage"))?,
                nr_periods: field("nr_periods")?,
                nr_throttled: field("nr_throttled")?,
                throttled_ns: field("throttled_time")?,
            },
            CgroupVersion::V2 => CpuStats {
                usage_ns: field("usage_usec")? * 1000,
                nr_periods: field("nr_periods")?,
                nr_throttled: field("nr_throttled")?,
                throttled_ns: field("throttled_usec")? * 1000,
            },
        })
    }
    // ANCHOR_END: cpu_stats

    /// Reads OOM kills, limit hits and peak usage: v2 `memory.events` (`oom_kill`, `max`)
    /// and `memory.peak`; v1 `memory.oom_control` (`oom_kill`), `memory.failcnt` and
    /// `memory.max_usage_in_bytes`.
    pub fn memory_events(&self) -> Result<MemoryEvents, CgroupError> {
        let dir = self.dir_for_any("memory")?;
        let value = |pairs: &[(String, u64)], key: &str| {
            pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
        };
        let optional = |path: PathBuf| match read_number(&path) {
            Ok(n) => Ok(Some(n)),
            Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(err) => Err(err),
        };
        Ok(match dir.version {
            CgroupVersion::V2 => {
                let events = read_keyed(&dir.path.join("memory.events"))?;
                MemoryEvents {
                    oom_kill: value(&events, "oom_kill"),
                    limit_hits: value(&events, "max"),
                    peak_bytes: optional(dir.path.join("memory.peak"))?,
                }
            }
            CgroupVersion::V1 => {
                // oom_kill appeared in memory.oom_control in Linux 4.13; older kernels
                // only have under_oom, so a missing line counts as 0.
                let control = read_keyed(&dir.path.join("memory.oom_control"))?;
                MemoryEvents {
                    oom_kill: value(&control, "oom_kill"),
                    // With swap limited too, the memory+swap counter reaches its limit
                    // first and memory.failcnt can stay 0: count the larger of the two.
                    limit_hits: read_number(&dir.path.join("memory.failcnt"))?
                        .max(optional(dir.path.join("memory.memsw.failcnt"))?.unwrap_or(0)),
                    peak_bytes: optional(dir.path.join("memory.max_usage_in_bytes"))?,
                }
            }
        })
    }

    /// Reads `pids.current` and the `max` count of `pids.events`.
    pub fn pids_stats(&self) -> Result<PidsStats, CgroupError> {
        let dir = self.dir_for_any("pids")?;
        let events = read_keyed(&dir.path.join("pids.events"))?;
        Ok(PidsStats {
            current: read_number(&dir.path.join("pids.current"))?,
            max_hits: events
                .iter()
                .find(|(k, _)| k == "max")
                .map_or(0, |(_, v)| *v),
        })
    }

    // ANCHOR: kill_all
    /// SIGKILL every process in the cgroup, in every hierarchy: how a container whose
    /// owner was killed is ended. Waits up to 2 s for them to be gone.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        for _ in 0..REMOVE_ATTEMPTS {
            let mut left = 0;
            for dir in &self.dirs {
                let procs = dir.path.join("cgroup.procs");
                let text = match fs::read_to_string(&procs) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other.map_err(|source| CgroupError::Read {
                        path: procs.clone(),
                        source,
                    })?,
                };
                for pid in text
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    left += 1;
                    // It may be gone already; a process in this cgroup is ours to end.
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if left == 0 {
                return Ok(());
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }
    // ANCHOR_END: kill_all

    /// Removes every dir (retrying `EBUSY` for up to 2 s while processes finish
    /// exiting), then the levels above it up to `nutshell`, which stay if another
    /// container still uses them. Idempotent.
    pub fn remove(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        for dir in &self.dirs {
            remove_dir(&dir.path, REMOVE_ATTEMPTS)?;
        }
        for dir in &self.dirs {
            for level in dir.path.ancestors().skip(1) {
                if !level.starts_with(dir.mount_point.join(PARENT)) {
                    break;
                }
                // EBUSY/ENOTEMPTY: a sibling container is inside; its remove() tries again.
                if remove_dir(level, 1).is_err() {
                    break;
                }
            }
        }
        self.removed = true;
        Ok(())
    }

    fn dir_for(&self, version: CgroupVersion, controller: &str) -> Result<&CgroupDir, CgroupError> {
        self.dirs
            .iter()
            .find(|d| d.version == version && d.controllers.iter().any(|c| c == controller))
            .ok_or_else(|| CgroupError::NoDirectory {
                name: self.path.clone(),
                version,
                controller: controller.to_owned(),
            })
    }

    fn dir_for_any(&self, controller: &str) -> Result<&CgroupDir, CgroupError> {
        let found = self
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller));
        let version = self.dirs.first().map_or(CgroupVersion::V2, |d| d.version);
        found.map_or_else(|| self.dir_for(version, controller), Ok)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Teardown on every path, also when a step failed; errors were reported already
        // or cannot be acted on here.
        let _ = self.remove();
    }
}

/// Whether the memory controller can limit swap here: v1 `memory.memsw.limit_in_bytes`
/// in the hierarchy root, v2 `memory.swap.max` in `nutshell` or any child of the root
/// (the root itself has no memory.* files).
pub fn swap_accounting(layout: &CgroupLayout) -> bool {
    let Some(mount) = layout.mount_for("memory") else {
        return false;
    };
    match mount.version {
        CgroupVersion::V1 => mount
            .mount_point
            .join("memory.memsw.limit_in_bytes")
            .exists(),
        CgroupVersion::V2 => fs::read_dir(&mount.mount_point).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|entry| entry.path().join("memory.swap.max").exists())
        }),
    }
}

/// The controllers a container's cgroup uses here: `cpu`, `memory`, `pids`, plus
/// `cpuacct` where a v1 hierarchy has it (v2 counts CPU usage in `cpu.stat` itself and
/// has no `cpuacct`). Pass it to [`Cgroup::create`] so one call works on every layout.
pub fn standard_controllers(layout: &CgroupLayout) -> Vec<&'static str> {
    let mut controllers = vec!["cpu", "memory", "pids"];
    if layout.v1_mount_for("cpuacct").is_some() {
        controllers.insert(1, "cpuacct");
    }
    controllers
}

/// CPUs online (sysconf `_SC_NPROCESSORS_ONLN`), the upper bound for `--cpus`.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online)
        .ok()
        .filter(|&n| n > 0)
        .or_else(|| thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// A cgroup path is `nutshell/` and one or more plain names below it; returns its levels,
/// `nutshell` first.
pub fn validate_path(path: &str) -> Result<Vec<&str>, CgroupError> {
    let levels: Vec<&str> = path.split('/').collect();
    let invalid = |problem| CgroupError::InvalidName {
        name: path.to_owned(),
        problem,
    };
    if levels.first() != Some(&PARENT) || levels.len() < 2 {
        return Err(invalid(
            "must start with nutshell/ and name a cgroup below it: nutshell writes to no cgroup it did not create",
        ));
    }
    for level in &levels {
        validate_name(level).map_err(|_| {
            invalid(
                "each level must be a plain name: not empty, . or .., no NUL, at most 255 bytes",
            )
        })?;
    }
    Ok(levels)
}

/// A cgroup name is one path component: not empty, `.` or `..`, no `/` or NUL.
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let problem = if name.is_empty() {
        Some("must not be empty")
    } else if name == "." || name == ".." {
        Some("must not be . or ..")
    } else if name.contains('/') || name.contains('\0') {
        Some("must be a single path component (no / or NUL)")
    } else if name.len() > 255 {
        Some("must be at most 255 bytes")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(CgroupError::InvalidName {
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Fails unless the cgroup2 root lists `controller` in its `cgroup.subtree_control`.
fn check_delegated(mount: &CgroupMount, controller: &str) -> Result<(), CgroupError> {
    let path = mount.mount_point.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    if enabled.split_whitespace().any(|c| c == controller) {
        Ok(())
    } else {
        Err(CgroupError::NotDelegated {
            controller: controller.to_owned(),
            path,
        })
    }
}

/// Makes every level of `levels` (`nutshell`, then each below it) under `mount`, the
/// last one new, preparing each level for the next: on v2 its `cgroup.subtree_control`
/// enables the controllers, on v1 cpuset it gets its parent's CPUs and memory nodes.
/// Starts over when a sibling removes an empty level between two `mkdir`s.
fn make_dirs(
    mount: &CgroupMount,
    controllers: &[String],
    levels: &[&str],
) -> Result<(), CgroupError> {
    let leaf = mount.mount_point.join(levels.join("/"));
    for attempt in 1..=CREATE_ATTEMPTS {
        let mut parent = mount.mount_point.clone();
        let made = levels[..levels.len() - 1].iter().try_for_each(|level| {
            let dir = parent.join(level);
            mkdir(&dir, true)?;
            prepare_level(mount, controllers, &parent, &dir)?;
            parent = dir;
            Ok(())
        });
        let made = made.and_then(|()| mkdir(&leaf, false));
        match made {
            Err(CgroupError::Create { source, .. } | CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) && attempt < CREATE_ATTEMPTS =>
            {
                continue;
            }
            Err(err) => {
                // Leave no empty level behind either (kept if a sibling is in it).
                remove_empty_levels(mount, &leaf);
                return Err(err);
            }
            Ok(()) => break,
        }
    }
    let is_cpuset = mount.version == CgroupVersion::V1 && controllers.iter().any(|c| c == "cpuset");
    if is_cpuset
        && let Some(parent) = leaf.parent()
        && let Err(err) = copy_cpuset(parent, &leaf)
    {
        let _ = remove_dir(&leaf, 1);
        remove_empty_levels(mount, &leaf);
        return Err(err);
    }
    Ok(())
}

/// Remove the levels above `leaf` up to `nutshell` while they are empty.
fn remove_empty_levels(mount: &CgroupMount, leaf: &Path) {
    let top = mount.mount_point.join(PARENT);
    for level in leaf.ancestors().skip(1) {
        if !level.starts_with(&top) || remove_dir(level, 1).is_err() {
            break;
        }
    }
}

/// v2: enable the controllers for the children of `level`. v1 cpuset: give `level` the
/// CPUs and memory nodes of `above`, the level above it.
fn prepare_level(
    mount: &CgroupMount,
    controllers: &[String],
    above: &Path,
    level: &Path,
) -> Result<(), CgroupError> {
    match mount.version {
        CgroupVersion::V2 => {
            let file = level.join("cgroup.subtree_control");
            let enabled = fs::read_to_string(&file).unwrap_or_default();
            let missing: Vec<String> = controllers
                .iter()
                .filter(|c| !enabled.split_whitespace().any(|e| e == c.as_str()))
                .map(|c| format!("+{c}"))
                .collect();
            // One write for all: the kernel takes a space-separated list.
            if missing.is_empty() {
                Ok(())
            } else {
                write_file(&file, &missing.join(" "))
            }
        }
        CgroupVersion::V1 if controllers.iter().any(|c| c == "cpuset") => copy_cpuset(above, level),
        CgroupVersion::V1 => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_lie_below_nutshell() {
        for path in [
            "nutshell",
            "other/c1",
            "/nutshell/c1",
            "nutshell//c1",
            "nutshell/../x",
            "nutshell/a/",
        ] {
            assert!(
                matches!(validate_path(path), Err(CgroupError::InvalidName { .. })),
                "{path:?}"
            );
        }
        assert_eq!(
            validate_path("nutshell/nodes/node-2/c1").expect("valid"),
            ["nutshell", "nodes", "node-2", "c1"]
        );
    }

    #[test]
    fn names_must_be_one_plain_component() {
        for name in ["", ".", "..", "a/b", "/abs", "nul\0", &"x".repeat(256)] {
            assert!(
                matches!(validate_name(name), Err(CgroupError::InvalidName { .. })),
                "{name:?}"
            );
        }
        for name in ["c1", "ch05-1234-0", "with.dot", "..."] {
            assert!(validate_name(name).is_ok(), "{name:?}");
        }
    }
}
