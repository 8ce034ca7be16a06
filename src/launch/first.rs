//! The container's first process as the host side drives it: cloning it, releasing it,
//! hearing from it, and ending it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::LaunchError;
use super::clone::{Prelude, PreludeSteps, clone_first_process, sealed_init};
use super::container::{Container, FirstProcess};
use super::explain::{explain, userns_refused};
use super::facts::HostFacts;
use super::fds::{
    pidfd_open, pidfd_send_signal, poll_readable, receive_report, send_message, socketpair,
};
use super::prepare::rootfs_of;
use super::state::ProcessRef;
use super::steps::{CHILD_TIMEOUT_SECS, ChildStep, ParentStep};
use super::wire::{Boot, Report};
use crate::namespaces::{self, Namespace};
use crate::process::Exit;
use crate::spec::{ContainerSpec, NamespaceMode};

impl Container {
    /// One idmapped tree per source, through the maps of a short-lived helper: a
    /// process made by this same pipeline in a user namespace with the container's maps,
    /// never started, whose `/proc/PID/ns/user` lends the maps.
    pub(super) fn idmapped_trees(&self, sources: &[PathBuf]) -> Result<Vec<OwnedFd>, LaunchError> {
        let mapping = self.plan.mapping.as_ref().ok_or(LaunchError::ParentStep {
            step: "make idmapped trees".to_string(),
            source: Errno::EINVAL,
        })?;
        let helper = super::launch(
            None,
            &super::sweep::userns_helper(&mapping.maps, None),
            &self.facts,
        )?;
        let pid = helper.pid_or_einval()?;
        let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
        let userns = std::fs::File::open(&path).map_err(|source| LaunchError::Io {
            op: "open",
            path,
            source,
        })?;
        let trees = sources
            .iter()
            .map(|source| crate::userns::idmapped_tree(source, userns.as_fd()))
            .collect::<Result<Vec<_>, _>>()?;
        helper.remove()?;
        Ok(trees)
    }

    pub(super) fn clone_first_process(
        &mut self,
        spec: &ContainerSpec,
        new: &[Namespace],
        trees: &[OwnedFd],
    ) -> Result<(), LaunchError> {
        let (parent_end, child_end) = socketpair().map_err(|source| LaunchError::ParentStep {
            step: "make the sync socket".to_string(),
            source,
        })?;
        let gate_path = self.state_dir()?.start_gate();
        nix::unistd::mkfifo(&gate_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
            |e| LaunchError::Io {
                op: "make the start gate",
                path: gate_path.clone(),
                source: e.into(),
            },
        )?;
        // Read and write: opening a FIFO for reading alone blocks until a writer comes.
        let gate = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&gate_path)
            .map_err(|source| LaunchError::Io {
                op: "open the start gate",
                path: gate_path.clone(),
                source,
            })?;
        // A detached container's exec fifo: its write end goes to the child. Opening a
        // FIFO for writing alone blocks until a reader comes, so the read and write end
        // held here is that reader, closed when this returns.
        let exec_fifo = if spec.detached {
            let path = self.state_dir()?.exec_fifo();
            let io = |op: &'static str| {
                let path = path.clone();
                move |source| LaunchError::Io { op, path, source }
            };
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| io("make the exec fifo")(e.into()))?;
            let hold = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io("open the exec fifo"))?;
            let write_end = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io("open the exec fifo"))?;
            Some((hold, write_end))
        } else {
            None
        };
        let console = match &spec.console_socket {
            Some(path) => Some(std::os::unix::net::UnixStream::connect(path).map_err(
                |source| LaunchError::Io {
                    op: "connect to the console socket",
                    path: path.clone(),
                    source,
                },
            )?),
            None => None,
        };
        // Unless the plan has nutshell join it before the clone (a normal user's exec).
        let join_user = match &spec.namespaces.user {
            NamespaceMode::Join(path)
                if self
                    .plan
                    .child
                    .iter()
                    .any(|s| matches!(s, ChildStep::JoinUserNamespace(_))) =>
            {
                Some(std::fs::File::open(path).map_err(|source| LaunchError::Io {
                    op: "open the user namespace",
                    path: path.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        let init = sealed_init(&self.facts.init_binary).map_err(|source| LaunchError::Io {
            op: "copy into a sealed memfd",
            path: self.facts.init_binary.clone(),
            source,
        })?;
        let position = |wanted: fn(&ChildStep) -> bool| {
            self.plan.child.iter().position(wanted).unwrap_or(0) as u32
        };
        let steps = PreludeSteps {
            die_with_parent: position(|s| matches!(s, ChildStep::DieWithParent)),
            join_user: position(|s| matches!(s, ChildStep::JoinUserNamespace(_))),
            become_root: position(|s| matches!(s, ChildStep::BecomeRoot { .. })),
            exec_init: position(|s| matches!(s, ChildStep::ExecInit)),
        };
        let become_root = self.plan.child.iter().find_map(|s| match s {
            ChildStep::BecomeRoot { setgroups } => Some(*setgroups),
            _ => None,
        });
        let mut keep = vec![child_end.as_raw_fd(), gate.as_raw_fd()];
        keep.extend(trees.iter().map(AsRawFd::as_raw_fd));
        keep.extend(
            exec_fifo
                .as_ref()
                .map(|(_, write_end)| write_end.as_raw_fd()),
        );
        keep.extend(console.as_ref().map(AsRawFd::as_raw_fd));
        let prelude = Prelude::new(
            child_end.as_raw_fd(),
            parent_end.as_raw_fd(),
            join_user.as_ref().map(AsRawFd::as_raw_fd),
            become_root,
            keep,
            init,
            steps,
            &spec.process.env,
        )
        .map_err(|source| LaunchError::ParentStep {
            step: "prepare the environment (a variable holds a NUL byte)".to_string(),
            source,
        })?;
        let flags = CloneFlags::from_bits_retain(namespaces::clone_flags(new));
        let pid = clone_first_process(flags, &prelude).map_err(|source| LaunchError::Clone {
            namespaces: namespaces::describe(new),
            source,
            why: userns_refused(source, self.facts.caller.privileged, new),
        })?;
        let pidfd = pidfd_open(pid).map_err(|source| LaunchError::ParentStep {
            step: "open a pidfd".to_string(),
            source,
        });
        let pidfd = match pidfd {
            Ok(fd) => fd,
            Err(err) => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(err);
            }
        };
        self.child = Some(FirstProcess {
            pid,
            pidfd,
            sync: Some(parent_end),
            gate_fd: gate.as_raw_fd(),
            tree_fds: trees.iter().map(AsRawFd::as_raw_fd).collect(),
            exec_fifo_fd: exec_fifo.as_ref().map(|(_, w)| w.as_raw_fd()),
            console_fd: console.as_ref().map(AsRawFd::as_raw_fd),
        });
        self.record.init = ProcessRef::of(pid.as_raw());
        self.save()
    }

    /// Tell the first process to go on, and send it its steps.
    pub(super) fn release(&mut self, facts: &HostFacts) -> Result<(), LaunchError> {
        let (start_gate, trees, exec_fifo, console_socket) = self
            .child
            .as_ref()
            .map(|c| (c.gate_fd, c.tree_fds.clone(), c.exec_fifo_fd, c.console_fd))
            .unwrap_or((-1, Vec::new(), None, None));
        let boot = Boot {
            steps: self.plan.child.clone(),
            first: self.plan.init_steps_start(),
            rootfs: rootfs_of(&self.plan),
            start_gate,
            exec_fifo,
            console_socket,
            trees,
            cap_last_cap: facts.cap_last_cap,
            setgroups: !self.plan.mapping.as_ref().is_some_and(|m| m.deny_setgroups),
        };
        let sync = self.sync_fd()?;
        send_message(sync, b"G")
            .and_then(|()| {
                let json = serde_json::to_vec(&boot).map_err(|_| Errno::EINVAL)?;
                send_message(sync, &json)
            })
            .map_err(|source| LaunchError::ParentStep {
                step: ParentStep::Release.to_string(),
                source,
            })
    }

    pub(super) fn sync_fd(&self) -> Result<BorrowedFd<'_>, LaunchError> {
        self.child
            .as_ref()
            .and_then(|c| c.sync.as_ref())
            .map(AsFd::as_fd)
            .ok_or(LaunchError::ParentStep {
                step: "talk to the container's first process".to_string(),
                source: Errno::EBADF,
            })
    }

    // ANCHOR: wait_for
    /// Wait for `wanted` from the first process, or its failure; the socket closing
    /// means it exec'd its program (good, when waiting to start) or died.
    pub(super) fn wait_for(
        &mut self,
        wanted: Report,
        stage: &'static str,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + Duration::from_secs(CHILD_TIMEOUT_SECS);
        loop {
            let sync = self.sync_fd()?;
            let left = deadline.saturating_duration_since(Instant::now());
            let report = match receive_report(sync, left) {
                Ok(report) => report,
                Err(Errno::ETIMEDOUT) => {
                    self.teardown_process();
                    return Err(LaunchError::Timeout { stage });
                }
                Err(source) => {
                    return Err(LaunchError::ParentStep {
                        step: "read the container's first process's report".to_string(),
                        source,
                    });
                }
            };
            match report {
                Some(Report::Failed { step, errno }) => {
                    let errno = Errno::from_raw(errno);
                    let step = step as usize;
                    let explanation = self
                        .plan
                        .child
                        .get(step)
                        .and_then(|s| explain(s, errno, &self.plan));
                    self.teardown_process();
                    let exec = matches!(
                        self.plan.child.get(step),
                        Some(ChildStep::Exec { .. } | ChildStep::FindProgram(_))
                    );
                    return Err(LaunchError::ChildStep {
                        step: match self.plan.child.get(step) {
                            // With an init too, what failed is the exec of the program.
                            Some(ChildStep::Exec { program, .. }) => format!("exec {program}"),
                            Some(ChildStep::FindProgram(args)) => {
                                format!("exec {}", args.first().map_or("", String::as_str))
                            }
                            Some(other) => other.to_string(),
                            None => format!("step {step}"),
                        },
                        errno,
                        explanation,
                        exec,
                    });
                }
                Some(report) if report == wanted => {
                    if wanted == Report::Started {
                        self.close_sync();
                    }
                    return Ok(());
                }
                Some(_) => continue,
                // Closed without a failure: the exec worked (the program may have
                // ended already; wait() then finds how).
                None if wanted == Report::Started => {
                    self.close_sync();
                    return Ok(());
                }
                None => {
                    let status = self.reap_now();
                    return Err(LaunchError::ChildGone { status, stage });
                }
            }
        }
    }
    // ANCHOR_END: wait_for

    pub(super) fn close_sync(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.sync = None;
        }
    }

    /// Reap the first process, which closed its socket: how it ended, for a message.
    pub(super) fn reap_now(&mut self) -> String {
        if let Some(exit) = self.exit {
            return exit.to_string();
        }
        let Some(child) = &self.child else {
            return "is gone".to_string();
        };
        let _ = poll_readable(child.pidfd.as_fd(), Duration::from_secs(5));
        match waitpid(child.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                self.exit = Some(Exit::Code(code));
                Exit::Code(code).to_string()
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                self.exit = Some(Exit::Signal(signal as i32));
                Exit::Signal(signal as i32).to_string()
            }
            _ => "closed its end of the sync socket".to_string(),
        }
    }

    /// Kill the first process if it runs, and reap it, waiting at most 10 s.
    pub(super) fn teardown_process(&mut self) {
        let Some(child) = &self.child else {
            return;
        };
        if self.exit.is_none() {
            let _ = pidfd_send_signal(child.pidfd.as_fd(), Signal::SIGKILL);
            let _ = poll_readable(child.pidfd.as_fd(), Duration::from_secs(10));
            if let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                waitpid(child.pid, Some(WaitPidFlag::WNOHANG))
            {
                self.exit = Some(Exit::Signal(libc::SIGKILL));
            }
        }
        if let Some(child) = self.child.as_mut() {
            child.sync = None;
        }
    }
}
