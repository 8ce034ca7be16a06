//! The one pipeline every container goes through: a [`ContainerSpec`] is planned against
//! the host's facts into a [`LaunchPlan`], and the plan is carried out into a
//! [`Container`] that owns everything it made.
//!
//! ```text
//! ContainerSpec ──plan(spec, facts)──▶ LaunchPlan ──create──▶ Container ──start──▶ running
//!  what it is       pure, printable      typed steps    owns cgroup, dirs,   its program
//!                   (--plan)             host + child   state; tears down    exec'd
//! ```
//!
//! **The steps.** nutshell's own ([`ParentStep`]) make the container's state directory,
//! its directories, its cgroup and a sealed copy of nutshell, clone the first process
//! into its new namespaces, and — while it waits — write its id maps and move it into
//! its cgroup. The first process's ([`ChildStep`]) run in two parts: a tiny prelude in
//! the clone itself, which allocates nothing (see the `clone` module), then everything
//! else in `nutshell-init`, the sealed copy it execs: close inherited fds, make the time
//! and cgroup namespaces, set the hostname, the mount plan, drop privileges, check the
//! working directory, reset signals, wait at the start gate, exec the program.
//!
//! **Create and start.** [`create`] returns once the first process waits at its start
//! gate, fully prepared, as `runc create` leaves it; [`Container::start`] opens the gate.
//!
//! **Failures.** A failing child step comes back as its position in the plan and its
//! errno; [`LaunchError::ChildStep`] names the step and explains the errno in one place,
//! keyed by the step's kind. Anything made before the failure is torn down.
//!
//! **Owners.** Until it is started and after, the first process dies with the process
//! that created it (PR_SET_PDEATHSIG), and the state directory's lock dies with it too:
//! the next launch, or `nutshell cleanup`, finds the leftovers and removes them. A
//! detached spec's container is the exception: [`Container::detach`] lets it go on
//! alone, and [`Detached`] drives it from other processes (chapter 11's runtime).
//!
//! Introduced in chapter 3, the first chapter whose container is built on it; every
//! chapter's binary, chapter 11's runtime and chapter 12's scheduler launch through it.

mod child;
mod clone;
mod container;
mod detached;
mod explain;
mod facts;
mod fds;
mod first;
mod id;
pub mod images;
mod plan;
mod prepare;
mod root;
mod rules;
mod state;
mod steps;
mod sweep;
mod wire;

use std::path::PathBuf;

use nix::errno::Errno;

pub use child::init_main;
pub use container::{Container, create};
pub use detached::Detached;
pub use facts::{HostFacts, ID_MAP_HELPER_DIRS};
pub(crate) use fds::{pidfd_open, pidfd_send_signal, poll_readable};
pub use id::{ContainerId, InvalidId, random_hex};
pub use plan::{LaunchPlan, NO_ROOTLESS_CGROUP, Owned, PlanError, plan};
pub use state::{ProcessRef, State, Status, now as now_secs};
pub use steps::{CHILD_TIMEOUT_SECS, ChildStep, ParentStep};
pub use sweep::{remove_everything, sweep_stale};

use crate::spec::ContainerSpec;

/// `argv[0]` of the container's first process once it runs the sealed copy of nutshell:
/// every nutshell binary checks for it first (see [`crate::cli::main_with`]).
pub const INIT_ARGV0: &str = "nutshell-init";

/// Why a container could not be made, started or removed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The spec cannot be run.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The network could not be set up or removed.
    #[error(transparent)]
    Network(#[from] crate::net::NetError),
    /// The image has a symlink where a filesystem is to be mounted.
    #[error(
        "the root's {name} is a symlink (to {target}): nutshell mounts only on real directories inside the root, since a mount through a link could land on the host"
    )]
    RootSymlink {
        /// `/proc`, `/dev` or `/sys`.
        name: String,
        /// Where the link points.
        target: PathBuf,
    },
    /// `nutshell clean` found containers still running.
    #[error("containers are running ({names}): stop them first, then clean")]
    StillRunning {
        /// Their names, comma-separated.
        names: String,
    },
    /// No container of this id exists.
    #[error("container {id} does not exist")]
    NotFound {
        /// The id.
        id: ContainerId,
    },
    /// The container belongs to the process that made it, which still runs.
    #[error(
        "container {id} belongs to nutshell process {owner}, which runs it in the foreground: end that process instead"
    )]
    Owned {
        /// The id.
        id: ContainerId,
        /// The owner's pid.
        owner: i32,
    },
    /// Another command holds the container's lock.
    #[error("container {id} is busy: another nutshell command holds its lock; try again")]
    Busy {
        /// The id.
        id: ContainerId,
    },
    /// A container of this id exists.
    #[error("a container named {id} exists already: pick another name, or remove it")]
    IdInUse {
        /// The id.
        id: ContainerId,
    },
    /// A file operation on the host failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The container's directories could not be made or removed.
    #[error(transparent)]
    Overlay(#[from] crate::overlay::OverlayError),
    /// The id maps or an idmapped mount could not be made.
    #[error(transparent)]
    Userns(#[from] crate::userns::UsernsError),
    /// The cgroup could not be made, filled or removed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// clone(2) refused.
    #[error("clone the container's first process (new namespaces: {namespaces}): {source}{}", why.map(|w| format!(" ({w})")).unwrap_or_default())]
    Clone {
        /// The namespaces asked for.
        namespaces: String,
        /// The errno.
        #[source]
        source: Errno,
        /// What it most likely means.
        why: Option<&'static str>,
    },
    /// One of nutshell's steps for the waiting first process failed.
    #[error("{step}: {source}")]
    ParentStep {
        /// The step, as the plan prints it.
        step: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// One of the first process's steps failed.
    #[error("{step} failed in the container process: {errno}{}", explanation.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    ChildStep {
        /// The step, as the plan prints it.
        step: String,
        /// The errno.
        errno: Errno,
        /// What it most likely means here.
        explanation: Option<String>,
        /// Whether it was the exec of the container's program: then the caller exits as
        /// a shell does for a command it could not run.
        exec: bool,
    },
    /// The first process ended without saying why.
    #[error("the container's first process {status} before it was {stage}")]
    ChildGone {
        /// How it ended.
        status: String,
        /// What it was to become: ready, or started.
        stage: &'static str,
    },
    /// The first process took too long.
    #[error(
        "the container's first process was not {stage} within {CHILD_TIMEOUT_SECS} s; it was killed"
    )]
    Timeout {
        /// What it was to become.
        stage: &'static str,
    },
    /// A call that does not fit the container's state (start twice, say).
    #[error("container {id} is {status:?}: cannot {what}")]
    WrongState {
        /// The container.
        id: ContainerId,
        /// Its state.
        status: Status,
        /// What was asked.
        what: &'static str,
    },
    /// Waiting for the container failed.
    #[error(transparent)]
    Init(#[from] crate::init::InitError),
    /// The eBPF device filter could not be loaded or attached.
    #[error(transparent)]
    DeviceFilter(#[from] crate::cgroups::device_filter::DeviceFilterError),
    /// A hook nutshell ran failed.
    #[error("{stage} {source}")]
    Hook {
        /// Its stage.
        stage: crate::hooks::Stage,
        /// How it failed.
        #[source]
        source: crate::hooks::HookError,
    },
}

impl LaunchError {
    /// The status to exit with for this error, as Docker's and a shell's conventions
    /// have it: 127 when the container's program was not found, 126 when it could not
    /// be run; `None` for any other error (exit 1).
    pub fn exit_status(&self) -> Option<u8> {
        match self {
            LaunchError::ChildStep {
                exec: true, errno, ..
            } => Some(if *errno == Errno::ENOENT { 127 } else { 126 }),
            _ => None,
        }
    }
}

/// Plan and create container `id` (a random one if `None`) from `spec`: returns it
/// waiting at its start gate. Shorthand for [`plan`] then [`create`].
pub fn launch(
    id: Option<ContainerId>,
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<Container, LaunchError> {
    let id = id.unwrap_or_else(ContainerId::random);
    let plan = plan(&id, spec, facts)?;
    create(plan, spec, facts)
}

// ANCHOR: run_to_end
/// Carry out `plan` for `spec` in the foreground: create the container, start it, wait
/// for it while passing on the signals this process gets, and remove it. The signals are
/// blocked first, so that one sent from here on waits, pending, to be passed on, instead
/// of killing this process and leaving the container without its owner.
pub fn run_to_end(
    plan: LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<crate::process::Exit, LaunchError> {
    run_to_end_with(plan, spec, facts, |_| Ok(()), |_| ())
}

/// [`run_to_end`], calling `created` once the container is created, before it starts
/// (runc's `--pid-file` is written there), and `started` once its program runs (the
/// poststart hooks).
pub fn run_to_end_with(
    plan: LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
    created: impl FnOnce(&Container) -> Result<(), LaunchError>,
    started: impl FnOnce(&Container),
) -> Result<crate::process::Exit, LaunchError> {
    crate::init::block_handled_signals().map_err(|source| LaunchError::ParentStep {
        step: "block the signals to pass on".to_string(),
        source,
    })?;
    let mut container = create(plan, spec, facts)?;
    created(&container)?;
    container.start()?;
    started(&container);
    let exit = container.wait_forwarding_signals()?;
    container.remove()?;
    Ok(exit)
}
// ANCHOR_END: run_to_end

// ANCHOR: run_as_mapped_root
/// Run `builtin` as root of a new user namespace with `maps`, on the host's root, and
/// wait for it. A rootless container may give files to ids its user has only through
/// /etc/subuid; outside, its user is not their owner and may not even enter their
/// directories, but inside a namespace with the same maps it is their owner's root.
pub fn run_as_mapped_root(
    maps: &crate::userns::IdMaps,
    builtin: crate::workloads::Builtin,
    facts: &HostFacts,
) -> Result<crate::process::Exit, LaunchError> {
    let spec = sweep::userns_helper(maps, Some(builtin));
    let mut helper = launch(None, &spec, facts)?;
    helper.start()?;
    let exit = helper.wait()?;
    helper.remove()?;
    Ok(exit)
}
// ANCHOR_END: run_as_mapped_root
