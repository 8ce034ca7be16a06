//! Given, for exercise ch11-runtime: the states a container goes through, the commands
//! a runtime takes, and what a command gives back. Read them, but do not change them:
//! the tests compare your answers with these types, and a refusal by the message it
//! prints.

use std::fmt;

/// Where a container is in its life, as `runc state` and `nutshell state` print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being made by `create`: its resources may be half there, and the process making
    /// them owns it.
    Creating,
    /// Its first process waits at the start gate, before the exec of the program.
    Created,
    /// Its program runs.
    Running,
    /// Running, with every process of its cgroup frozen: runc's addition to the spec's
    /// four states, for `pause`.
    Paused,
    /// Its program has ended.
    Stopped,
}

impl Status {
    /// Every status, in the order of a container's life.
    pub const ALL: [Status; 5] = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// A runtime command that acts on an existing container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `start`: open the start gate, so the first process execs the program.
    Start,
    /// `kill`: send a signal to the first process.
    Kill,
    /// `pause`: freeze every process of the container's cgroup.
    Pause,
    /// `resume`: thaw them.
    Resume,
    /// `delete`, or `delete --force`: remove the container, killing its processes first.
    Delete {
        /// `--force`: also a container whose processes still run.
        force: bool,
    },
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Start => "start",
            Command::Kill => "kill",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Delete { force: false } => "delete",
            Command::Delete { force: true } => "delete --force",
        })
    }
}

/// What an allowed command leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container, in this status now.
    Now(Status),
    /// No container: `delete` removed it, state dir and all.
    Deleted,
}

/// A command the container's status does not allow: nothing was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The status the container is in.
    pub status: Status,
    /// The command that was refused.
    pub command: Command,
}

/// As runc words it: `container is stopped: cannot start`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "container is {}: cannot {}", self.status, self.command)
    }
}
