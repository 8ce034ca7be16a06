//! Carrying out a [`LaunchPlan`]: the [`Container`] handle, which owns everything the
//! plan made and takes it all down again.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::LaunchError;
use super::clone::sealed_init;
use super::facts::HostFacts;
use super::fds::pidfd_send_signal;
use super::id::ContainerId;
use super::plan::LaunchPlan;
use super::prepare::{check_mount_points, check_reachable, make_container_dirs};
use super::state::{ProcessRef, State, StateDir, Status, now};
use super::steps::ParentStep;
use super::sweep::{remove_container_dir, sweep_stale};
use super::wire::Report;
use crate::cgroups::Cgroup;
use crate::process::Exit;
use crate::spec::{ContainerSpec, RootFs};

/// A container this process made: its first process, cgroup, directories and state.
/// Dropping it kills whatever still runs and removes all of it; [`Container::remove`]
/// does the same and reports errors.
#[derive(Debug)]
pub struct Container {
    pub(super) plan: LaunchPlan,
    pub(super) facts: HostFacts,
    pub(super) state: Option<StateDir>,
    pub(super) record: State,
    pub(super) cgroup: Option<Cgroup>,
    pub(super) container_dir: Option<PathBuf>,
    pub(super) child: Option<FirstProcess>,
    pub(super) exit: Option<Exit>,
    /// Its network while it is being set up: the leased address and the netlink sockets.
    pub(super) network: Option<crate::net::Setup>,
}

/// The container's first process, as the host side holds it.
#[derive(Debug)]
pub(super) struct FirstProcess {
    pub(super) pid: Pid,
    /// A pidfd: waits with a timeout, and signals that cannot reach a reused pid.
    pub(super) pidfd: OwnedFd,
    /// The host side's end of the sync socket; `None` once the program is exec'd.
    pub(super) sync: Option<OwnedFd>,
    /// The numbers of the start gate and the idmapped trees in the child, which got
    /// copies of this process's fds at the clone: for its boot message.
    pub(super) gate_fd: RawFd,
    pub(super) tree_fds: Vec<RawFd>,
    /// The number of a detached container's exec fifo in the child, likewise.
    pub(super) exec_fifo_fd: Option<RawFd>,
    /// The number of the console socket in the child, likewise.
    pub(super) console_fd: Option<RawFd>,
}

// ANCHOR: create
/// Carry out `plan` (made from `spec` on the host `facts` describe) up to the point where
/// the container's first process waits at its start gate. Whatever fails, everything
/// made before is torn down.
pub fn create(
    plan: LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<Container, LaunchError> {
    check_mount_points(spec)?;
    check_reachable(&plan, spec, facts)?;
    let owner = ProcessRef::of(std::process::id() as i32).ok_or_else(|| LaunchError::Io {
        op: "read",
        path: PathBuf::from("/proc/self/stat"),
        source: std::io::Error::last_os_error(),
    })?;
    let record = State {
        id: plan.id.clone(),
        status: Status::Creating,
        owner,
        init: None,
        owned: plan.owned.clone(),
        created: now(),
        layers: match &spec.root.fs {
            RootFs::Overlay { lowers, .. } => lowers.clone(),
            RootFs::Dir { path, .. } => vec![path.clone()],
            RootFs::Host => Vec::new(),
        },
        detached: false,
    };
    let mut container = Container {
        plan,
        facts: facts.clone(),
        state: None,
        record,
        cgroup: None,
        container_dir: None,
        child: None,
        exit: None,
        network: None,
    };
    let mut trees: Vec<OwnedFd> = Vec::new();
    let steps = container.plan.parent.clone();
    for step in &steps {
        match step {
            ParentStep::SweepStale { state_root } => {
                // Someone else's leftovers must not stop this container; `nutshell
                // cleanup` reports what it cannot remove.
                let _ = sweep_stale(state_root, facts);
            }
            ParentStep::RecordState { .. } => container.record_state()?,
            ParentStep::CreateContainerDirs {
                dir,
                subdirs,
                owner,
            } => {
                // Recorded first: a half-made dir is removed with the rest.
                container.container_dir = Some(dir.clone());
                make_container_dirs(&facts.data_dir, &container.plan.id, subdirs, *owner)?;
            }
            ParentStep::IdmapTrees { sources } => {
                trees = container.idmapped_trees(sources)?;
            }
            ParentStep::CreateCgroup { path, controllers } => {
                let layout = facts.cgroups.as_ref().ok_or_else(|| {
                    LaunchError::Plan(super::PlanError::NoCgroup(
                        "no cgroup hierarchy is mounted on this host".to_string(),
                    ))
                })?;
                let controllers: Vec<&str> = controllers.iter().map(String::as_str).collect();
                container.cgroup = Some(Cgroup::create(layout, path, &controllers)?);
            }
            ParentStep::AttachDeviceFilter(rules) => {
                let dir = container.cgroup.as_ref().and_then(|cgroup| {
                    cgroup
                        .dirs()
                        .iter()
                        .find(|d| d.version == crate::cgroups::CgroupVersion::V2)
                });
                let Some(dir) = dir else {
                    return Err(LaunchError::Plan(super::PlanError::Settings(
                        crate::cgroups::SettingsError::NoDeviceControl,
                    )));
                };
                crate::cgroups::device_filter::attach(&dir.path, rules)?;
            }
            ParentStep::WriteCgroup(setting) => {
                if let Some(cgroup) = &container.cgroup {
                    cgroup.apply(std::slice::from_ref(setting))?;
                }
            }
            ParentStep::SealInit { binary } => {
                sealed_init(binary).map_err(|source| LaunchError::Io {
                    op: "copy into a sealed memfd",
                    path: binary.clone(),
                    source,
                })?;
            }
            ParentStep::Clone { namespaces } => {
                container.clone_first_process(spec, namespaces, &trees)?;
                // The child has its own copies now.
                trees.clear();
            }
            ParentStep::WriteIdMaps(mapping) => {
                let pid = container.pid_or_einval()?;
                crate::userns::write_id_maps(pid, mapping, Path::new("/proc"))?;
            }
            ParentStep::JoinForChildren { paths } => {
                for path in paths {
                    let file = std::fs::File::open(path).map_err(|source| LaunchError::Io {
                        op: "open the namespace",
                        path: path.clone(),
                        source,
                    })?;
                    nix::sched::setns(file, nix::sched::CloneFlags::empty()).map_err(|source| {
                        LaunchError::ParentStep {
                            step: step.to_string(),
                            source,
                        }
                    })?;
                }
            }
            ParentStep::EnterCgroup { path, controllers } => {
                let pid = container.pid_or_einval()?;
                let layout = facts.cgroups.as_ref().ok_or(LaunchError::ParentStep {
                    step: step.to_string(),
                    source: Errno::ENOENT,
                })?;
                for dir in super::sweep::cgroup_dirs(layout, path, controllers) {
                    let procs = dir.path.join("cgroup.procs");
                    std::fs::write(&procs, pid.to_string()).map_err(|source| LaunchError::Io {
                        op: "write",
                        path: procs,
                        source,
                    })?;
                }
            }
            ParentStep::JoinCgroup { .. } => {
                let pid = container.pid_or_einval()?;
                if let Some(cgroup) = &container.cgroup {
                    cgroup.add_pid(pid)?;
                }
            }
            ParentStep::SetOomScoreAdj(value) => {
                let pid = container.pid_or_einval()?;
                let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
                std::fs::write(&path, value.to_string()).map_err(|source| LaunchError::Io {
                    op: "write",
                    path,
                    source,
                })?;
            }
            ParentStep::SetRlimit(rlimit) => {
                let pid = container.pid_or_einval()?;
                let limit = libc::rlimit64 {
                    rlim_cur: rlimit.soft,
                    rlim_max: rlimit.hard,
                };
                // SAFETY: prlimit64 on our own child with a valid struct, no old value.
                Errno::result(unsafe {
                    libc::prlimit64(
                        pid.as_raw(),
                        rlimit.resource.raw(),
                        &limit,
                        std::ptr::null_mut(),
                    )
                })
                .map_err(|source| LaunchError::ParentStep {
                    step: step.to_string(),
                    source,
                })?;
            }
            ParentStep::Network(step) => {
                let pid = container.pid().map(Pid::as_raw);
                let setup = container
                    .network
                    .get_or_insert_with(|| crate::net::Setup::new(container.plan.id.as_str()));
                let pasta = setup.run(step, pid)?;
                let address = setup.address();
                if let Some(owned) = container.record.owned.network.as_mut()
                    && (pasta.is_some() || owned.address != address)
                {
                    // Recorded at once: a sweep after a killed owner stops its pasta.
                    owned.pasta = pasta.or(owned.pasta);
                    owned.address = address;
                    container.save()?;
                }
            }
            ParentStep::RunHooks { stage, .. } => {
                let pid = container.pid_or_einval()?;
                spec.hooks
                    .run(*stage, pid.as_raw())
                    .map_err(|source| LaunchError::Hook {
                        stage: *stage,
                        source,
                    })?;
            }
            ParentStep::Release => {
                // The netlink sockets are not the container's to keep.
                container.network = None;
                container.release(facts)?;
            }
            ParentStep::WaitReady => {
                container.wait_for(Report::Ready, "ready")?;
                container.record.status = Status::Created;
                container.save()?;
            }
            ParentStep::Start => {}
        }
    }
    Ok(container)
}
// ANCHOR_END: create

impl Container {
    /// Its id.
    pub fn id(&self) -> &ContainerId {
        &self.plan.id
    }

    /// The plan it was made from.
    pub fn plan(&self) -> &LaunchPlan {
        &self.plan
    }

    /// Its first process's pid, as the host sees it (its PID 1, with a PID namespace).
    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// A pidfd of its first process, which turns readable when that process ends: for
    /// a caller that waits on other fds too (the monitor of a detached container).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.child.as_ref().map(|c| c.pidfd.as_fd())
    }

    /// Its address on a bridge network, once leased.
    pub fn address(&self) -> Option<std::net::Ipv4Addr> {
        self.record.owned.network.as_ref().and_then(|n| n.address)
    }

    /// Its cgroup, if it has one.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Where it is in its life.
    pub fn status(&self) -> Status {
        self.record.status
    }

    // ANCHOR: start
    /// Open the start gate: the first process goes on to exec its program. Returns once
    /// it has, or with the reason it could not.
    pub fn start(&mut self) -> Result<(), LaunchError> {
        if self.record.status != Status::Created {
            return Err(LaunchError::WrongState {
                id: self.plan.id.clone(),
                status: self.record.status,
                what: "start it",
            });
        }
        let gate = self.state_dir()?.start_gate();
        // Non-blocking: with no reader left (the first process died), ENXIO at once.
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&gate)
            .map_err(|source| LaunchError::Io {
                op: "open the start gate",
                path: gate.clone(),
                source,
            })?;
        fifo.write_all(b"1").map_err(|source| LaunchError::Io {
            op: "write",
            path: gate,
            source,
        })?;
        self.wait_for(Report::Started, "started")?;
        self.record.status = Status::Running;
        self.save()
    }
    // ANCHOR_END: start

    /// Wait until the first process ends, and say how.
    pub fn wait(&mut self) -> Result<Exit, LaunchError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let pid = self.pid_or_einval()?;
        let exit = loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break Exit::Code(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => break Exit::Signal(signal as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(LaunchError::ParentStep {
                        step: format!("wait for process {pid}"),
                        source,
                    });
                }
            }
        };
        self.finished(exit)
    }

    /// Wait at most `timeout` for the first process to end: `None` if it still runs.
    pub fn wait_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<Exit>, LaunchError> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let child = self.child.as_ref().ok_or(LaunchError::ParentStep {
            step: "find the container's first process".to_string(),
            source: Errno::ESRCH,
        })?;
        // The pidfd turns readable when the process ends; the waitpid then reaps it.
        let ended = super::fds::poll_readable(child.pidfd.as_fd(), timeout).map_err(|source| {
            LaunchError::ParentStep {
                step: format!("poll the pidfd of process {}", child.pid),
                source,
            }
        })?;
        if ended {
            self.wait().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Wait until the first process ends, passing on to it the signals this process
    /// gets (see [`crate::init::wait_forwarding_signals`]).
    pub fn wait_forwarding_signals(&mut self) -> Result<Exit, LaunchError> {
        let pid = self.pid_or_einval()?;
        let exit = crate::init::wait_forwarding_signals(pid)?;
        self.finished(exit)
    }

    /// Send `signal` to the first process, through its pidfd.
    pub fn kill(&self, signal: Signal) -> Result<(), LaunchError> {
        let Some(child) = &self.child else {
            return Ok(());
        };
        pidfd_send_signal(child.pidfd.as_fd(), signal).map_err(|source| LaunchError::ParentStep {
            step: format!("send {signal} to the container"),
            source,
        })
    }

    /// Kill whatever still runs and remove everything the container made.
    pub fn remove(mut self) -> Result<(), LaunchError> {
        self.teardown()
    }

    // ANCHOR: detach
    /// Let a created container of a detached spec go on without this process, as `runc
    /// create` does: its state dir says so, and keeps the plan for `nutshell start` to
    /// explain a failure with. From here on its state dir owns it: the cgroup, the
    /// directories and the process stay when this handle goes, until `nutshell delete`.
    /// Returns its state dir.
    pub fn detach(mut self) -> Result<PathBuf, LaunchError> {
        let detachable = self.plan.child.iter().any(|step| {
            matches!(
                step,
                super::steps::ChildStep::WaitForStart { detached: true }
            )
        });
        if !detachable || self.record.status != Status::Created {
            return Err(LaunchError::WrongState {
                id: self.plan.id.clone(),
                status: self.record.status,
                what: "detach it (only a created container of a detached spec can be)",
            });
        }
        let dir = self.state_dir()?.path().to_path_buf();
        let plan_path = dir.join("plan.json");
        let json = serde_json::to_vec_pretty(&self.plan).map_err(std::io::Error::other);
        json.and_then(|json| std::fs::write(&plan_path, json))
            .map_err(|source| LaunchError::Io {
                op: "write",
                path: plan_path,
                source,
            })?;
        self.record.detached = true;
        self.save()?;
        // Forget, not remove: each of these now belongs to the state dir.
        if let Some(cgroup) = self.cgroup.take() {
            std::mem::forget(cgroup);
        }
        self.container_dir = None;
        self.record.owned.network = None;
        self.network = None;
        self.child = None;
        self.state = None;
        Ok(dir)
    }
    // ANCHOR_END: detach

    pub(super) fn finished(&mut self, exit: Exit) -> Result<Exit, LaunchError> {
        self.exit = Some(exit);
        self.record.status = Status::Stopped;
        self.save()?;
        Ok(exit)
    }

    pub(super) fn pid_or_einval(&self) -> Result<Pid, LaunchError> {
        self.pid().ok_or(LaunchError::ParentStep {
            step: "find the container's first process".to_string(),
            source: Errno::ESRCH,
        })
    }

    pub(super) fn state_dir(&self) -> Result<&StateDir, LaunchError> {
        self.state.as_ref().ok_or_else(|| LaunchError::WrongState {
            id: self.plan.id.clone(),
            status: self.record.status,
            what: "find its state",
        })
    }

    fn record_state(&mut self) -> Result<(), LaunchError> {
        let root = &self.facts.state_root;
        match StateDir::create(root, &self.plan.id, &self.record) {
            Ok(dir) => {
                self.state = Some(dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(LaunchError::IdInUse {
                id: self.plan.id.clone(),
            }),
            Err(source) => Err(LaunchError::Io {
                op: "make the state directory in",
                path: root.clone(),
                source,
            }),
        }
    }

    pub(super) fn save(&mut self) -> Result<(), LaunchError> {
        let Some(dir) = self.state.as_mut() else {
            return Ok(());
        };
        let path = dir.path().join("state.json");
        dir.write(&self.record).map_err(|source| LaunchError::Io {
            op: "write",
            path,
            source,
        })
    }

    // ANCHOR: teardown
    /// Kill what still runs, then remove the cgroup, the container's directories and its
    /// state, in that order: a cgroup with a process in it cannot be removed, nor a
    /// directory an overlay is mounted on while a process holds the mount namespace.
    fn teardown(&mut self) -> Result<(), LaunchError> {
        self.teardown_process();
        let mut first_error = None;
        self.network = None;
        // Only with its state made: without, the id may be another container's, and so
        // would be the lease and the veth named after it.
        if let Some(network) = self.record.owned.network.take()
            && self.state.is_some()
            && let Err(err) = crate::net::teardown(self.plan.id.as_str(), &network)
        {
            first_error.get_or_insert(LaunchError::Network(err));
        }
        if let Some(mut cgroup) = self.cgroup.take()
            && let Err(err) = cgroup.remove()
        {
            first_error.get_or_insert(LaunchError::Cgroup(err));
        }
        if let Some(dir) = self.container_dir.take()
            && let Err(err) = remove_container_dir(&dir, &self.plan.owned, &self.facts)
        {
            first_error.get_or_insert(err);
        }
        if let Some(state) = self.state.take() {
            let path = state.path().to_path_buf();
            if let Err(source) = state.remove() {
                first_error.get_or_insert(LaunchError::Io {
                    op: "remove",
                    path,
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
    // ANCHOR_END: teardown
}

impl Drop for Container {
    fn drop(&mut self) {
        // Teardown on every path, also when a step failed; the errors were reported
        // already, or cannot be acted on here (Container::remove returns them).
        let _ = self.teardown();
    }
}
