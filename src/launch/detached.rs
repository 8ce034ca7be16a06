//! Containers that outlive the process that made them: `nutshell create` leaves one
//! waiting at its start gate and exits, as `runc create` does, and every later command
//! (`start`, `state`, `kill`, `delete`) is a new process that finds it by its state dir.
//!
//! Two FIFOs in the state dir carry the start. The *start gate* is the one chapter 3's
//! containers wait at: `start` writes a byte to it. The *exec fifo* goes the other way:
//! the first process holds its write end, close-on-exec, so `start`, reading it, sees
//! either a failure report (the exec failed: which step, which errno) or end-of-file,
//! which means the exec happened and the kernel closed the fd. runc's `exec.fifo` works
//! the same way, and so `runc start`, like `nutshell start`, returns only once the
//! container's program runs.
//!
//! A detached container has no owner process, so its lock is free: the lock is now
//! only taken for the moment a command changes the container, so that two commands
//! never do at once, and the sweep of killed owners' leftovers skips it.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::LaunchError;
use super::explain::explain;
use super::facts::HostFacts;
use super::fds::{pidfd_open, pidfd_send_signal, poll_readable};
use super::id::ContainerId;
use super::plan::LaunchPlan;
use super::state::{self, ProcessRef, State, StateDir, Status};
use super::steps::{CHILD_TIMEOUT_SECS, ChildStep};
use super::sweep::{cgroup_dirs, remove_left};
use super::wire::{REPORT_LEN, Report};
use crate::cgroups::{Cgroup, CgroupDir};

/// How long a command waits for another one that holds a container's lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How long `delete` waits for a killed container to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A container as a command other than its creator sees it: its state, read from its
/// state dir.
#[derive(Debug, Clone)]
pub struct Detached {
    dir: PathBuf,
    state: State,
}

impl Detached {
    /// The container `id` under `state_root`, read without its lock.
    pub fn find(state_root: &Path, id: &ContainerId) -> Result<Detached, LaunchError> {
        let dir = state_root.join(id.as_str());
        let state =
            state::read_state(&dir).ok_or_else(|| LaunchError::NotFound { id: id.clone() })?;
        Ok(Detached { dir, state })
    }

    /// Every container under `state_root` whose state can be read, sorted by id.
    pub fn list(state_root: &Path) -> Result<Vec<Detached>, LaunchError> {
        let dirs = state::list(state_root).map_err(|source| LaunchError::Io {
            op: "read",
            path: state_root.to_path_buf(),
            source,
        })?;
        Ok(dirs
            .into_iter()
            .filter_map(|dir| state::read_state(&dir).map(|state| Detached { dir, state }))
            .collect())
    }

    /// Its id.
    pub fn id(&self) -> &ContainerId {
        &self.state.id
    }

    /// Its state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What its `state.json` says.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Its first process, if it still runs (as the host sees it: its PID 1).
    pub fn pid(&self) -> Option<i32> {
        self.state.init.filter(ProcessRef::alive).map(|p| p.pid)
    }

    // ANCHOR: status
    /// Where it is in its life now: `state.json` says what the last command saw, and a
    /// created or running container whose first process has ended since is stopped.
    pub fn status(&self) -> Status {
        match self.state.status {
            Status::Created | Status::Running if self.pid().is_none() => Status::Stopped,
            status => status,
        }
    }
    // ANCHOR_END: status

    /// The processes in its cgroup (every hierarchy's, without repeats), or only its
    /// first process without a cgroup.
    pub fn processes(&self, facts: &HostFacts) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .cgroup_dirs(facts)
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.path.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        if pids.is_empty() {
            pids.extend(self.pid());
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Its cgroup, if it has one, to read or change; the handle does not remove it.
    pub fn cgroup(&self, facts: &HostFacts) -> Option<Cgroup> {
        let (path, _) = self.state.owned.cgroup.as_ref()?;
        Cgroup::borrowed(path, self.cgroup_dirs(facts)).ok()
    }

    fn cgroup_dirs(&self, facts: &HostFacts) -> Vec<CgroupDir> {
        match (&self.state.owned.cgroup, &facts.cgroups) {
            (Some((path, controllers)), Some(layout)) => cgroup_dirs(layout, path, controllers),
            _ => Vec::new(),
        }
    }

    /// Its state dir with the lock held, for a command that changes it. A container
    /// still owned by the process that made it (not detached) is that process's to
    /// change.
    fn lock(&self) -> Result<StateDir, LaunchError> {
        if !self.state.detached && self.state.owner.alive() {
            return Err(LaunchError::Owned {
                id: self.state.id.clone(),
                owner: self.state.owner.pid,
            });
        }
        StateDir::lock_detached(&self.dir, LOCK_WAIT)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => LaunchError::NotFound {
                    id: self.state.id.clone(),
                },
                _ => LaunchError::Io {
                    op: "lock",
                    path: self.dir.join("lock"),
                    source,
                },
            })?
            .ok_or_else(|| LaunchError::Busy {
                id: self.state.id.clone(),
            })
    }

    /// Read the state again, now that the lock is held: it may have changed.
    fn refresh(&mut self, dir: &StateDir) -> Result<(), LaunchError> {
        self.state = dir.read().ok_or_else(|| LaunchError::NotFound {
            id: self.state.id.clone(),
        })?;
        Ok(())
    }

    fn save(&self, dir: &mut StateDir) -> Result<(), LaunchError> {
        dir.write(&self.state).map_err(|source| LaunchError::Io {
            op: "write",
            path: self.dir.join("state.json"),
            source,
        })
    }

    fn wrong_state(&self, what: &'static str) -> LaunchError {
        LaunchError::WrongState {
            id: self.state.id.clone(),
            status: self.status(),
            what,
        }
    }

    // ANCHOR: start
    /// Open the start gate, then read the exec fifo until the first process reports a
    /// failure or its end closes at the exec. Returns once the program runs.
    pub fn start(&mut self) -> Result<(), LaunchError> {
        let mut dir = self.lock()?;
        self.refresh(&dir)?;
        if self.status() != Status::Created {
            return Err(self.wrong_state("start it (only a created container can be)"));
        }
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| LaunchError::Io { op, path, source }
        };
        let (gate, exec_fifo) = (dir.start_gate(), dir.exec_fifo());
        // Non-blocking: opened before the gate, so no report is missed.
        let mut reports = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&exec_fifo)
            .map_err(io("open the exec fifo", &exec_fifo))?;
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&gate);
        // With no reader left (the first process died), ENXIO at once.
        std::io::Write::write_all(&mut opened.map_err(io("open the start gate", &gate))?, b"1")
            .map_err(io("write", &gate))?;
        if !poll_readable(reports.as_fd(), Duration::from_secs(CHILD_TIMEOUT_SECS))
            .map_err(|e| io("wait for", &exec_fifo)(e.into()))?
        {
            return Err(LaunchError::Timeout { stage: "started" });
        }
        let mut bytes = Vec::with_capacity(REPORT_LEN);
        let read = reports.read_to_end(&mut bytes);
        if let Err(e) = read
            && e.kind() != std::io::ErrorKind::WouldBlock
        {
            return Err(io("read", &exec_fifo)(e));
        }
        let failure = bytes
            .chunks(REPORT_LEN)
            .filter_map(Report::decode)
            .find_map(|report| match report {
                Report::Failed { step, errno } => Some((step as usize, Errno::from_raw(errno))),
                _ => None,
            });
        for fifo in [&gate, &exec_fifo] {
            let _ = std::fs::remove_file(fifo);
        }
        if let Some((step, errno)) = failure {
            self.state.status = Status::Stopped;
            self.save(&mut dir)?;
            return Err(self.step_failed(step, errno));
        }
        self.state.status = Status::Running;
        self.save(&mut dir)
    }
    // ANCHOR_END: start

    /// The error for child step `step` failing with `errno`, explained by the plan
    /// `create` left.
    fn step_failed(&self, step: usize, errno: Errno) -> LaunchError {
        let plan: Option<LaunchPlan> = std::fs::read(self.dir.join("plan.json"))
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok());
        let child_step = plan.as_ref().and_then(|p| p.child.get(step));
        LaunchError::ChildStep {
            step: match child_step {
                Some(ChildStep::Exec { program, .. }) => format!("exec {program}"),
                Some(ChildStep::FindProgram(args)) => {
                    format!("exec {}", args.first().map_or("", String::as_str))
                }
                Some(other) => other.to_string(),
                None => format!("step {step}"),
            },
            errno,
            explanation: plan
                .as_ref()
                .zip(child_step)
                .and_then(|(plan, s)| explain(s, errno, plan)),
            exec: matches!(
                child_step,
                Some(ChildStep::Exec { .. } | ChildStep::FindProgram(_))
            ),
        }
    }

    // ANCHOR: kill
    /// Send `signal` to its first process, or with `all` to every process in its
    /// cgroup. Through a pidfd, opened and then checked against the recorded start
    /// time: a pid the kernel has handed out again is never signalled.
    pub fn kill(&self, signal: Signal, all: bool, facts: &HostFacts) -> Result<(), LaunchError> {
        let Some(init) = self.state.init.filter(ProcessRef::alive) else {
            return Err(self.wrong_state("send it a signal (its process has ended)"));
        };
        let pids = if all {
            self.processes(facts)
        } else {
            vec![init.pid]
        };
        for pid in pids {
            let Ok(pidfd) = pidfd_open(Pid::from_raw(pid)) else {
                continue; // gone meanwhile
            };
            if pid == init.pid && !init.alive() {
                continue;
            }
            match pidfd_send_signal(pidfd.as_fd(), signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(LaunchError::ParentStep {
                        step: format!("send {signal} to process {pid}"),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: kill

    /// Remove its state dir and nothing else: for an exec'd process, which owns nothing
    /// and lives on in its container's cgroup.
    pub fn forget(self) -> Result<(), LaunchError> {
        let dir = self.lock()?;
        dir.remove().map_err(|source| LaunchError::Io {
            op: "remove",
            path: self.dir.clone(),
            source,
        })
    }

    // ANCHOR: delete
    /// Remove it: its processes, cgroup, directories and state. A running container is
    /// refused unless `force` (then killed first); a created one is killed, as runc
    /// does, since nothing else could ever start it. Returns what was removed.
    pub fn delete(mut self, force: bool, facts: &HostFacts) -> Result<String, LaunchError> {
        let dir = self.lock()?;
        self.refresh(&dir)?;
        if self.status() == Status::Running && !force {
            return Err(self.wrong_state("delete it: stop it first, or use delete --force"));
        }
        if let Some(init) = self.state.init.filter(ProcessRef::alive)
            && let Ok(pidfd) = pidfd_open(Pid::from_raw(init.pid))
            && init.alive()
        {
            let _ = pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL);
            let _ = poll_readable(pidfd.as_fd(), KILL_WAIT);
        }
        remove_left(dir, facts)
    }
    // ANCHOR_END: delete
}
