//! # Reference solution: ch11-runtime, the runtime's state machine

use crate::lifecycle::{Command, Outcome, Refusal, Status};

/// What `command` does to a container in `status`: the outcome, or the refusal.
pub fn next(status: Status, command: Command) -> Result<Outcome, Refusal> {
    use Status::{Created, Creating, Paused, Running, Stopped};
    // FIX: a refusal carries the status and the command as they were given, so that it
    // says what was asked of what.
    let refused = Err(Refusal { status, command });
    // FIX: every inner match names every status, with no `_`: a status added later
    // (runc has a "pausing" too) does not compile until each command has a rule for it.
    match command {
        // FIX: only a created container's first process waits at the start gate.
        Command::Start => match status {
            Created => Ok(Outcome::Now(Running)),
            Creating | Running | Paused | Stopped => refused,
        },
        // FIX: a signal changes no status; the process ending does, later. A stopped
        // container's pid may belong to another process by now: never signal it.
        Command::Kill => match status {
            Created | Running | Paused => Ok(Outcome::Now(status)),
            Creating | Stopped => refused,
        },
        Command::Pause => match status {
            Running => Ok(Outcome::Now(Paused)),
            Creating | Created | Paused | Stopped => refused,
        },
        Command::Resume => match status {
            Paused => Ok(Outcome::Now(Running)),
            Creating | Created | Running | Stopped => refused,
        },
        // FIX: a created container may go too, killed first: nothing could start it once
        // its state dir is gone. One whose program runs, frozen or not, needs --force.
        Command::Delete { force: false } => match status {
            Created | Stopped => Ok(Outcome::Deleted),
            Creating | Running | Paused => refused,
        },
        // FIX: --force kills whatever runs, then removes it, in any status.
        Command::Delete { force: true } => Ok(Outcome::Deleted),
    }
}
