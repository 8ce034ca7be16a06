//! # Exercise ch11-runtime: the runtime's state machine
//!
//! An OCI runtime splits a container's life into commands, each a process of its own:
//! `create` makes the container and leaves its first process waiting, `start` lets it
//! exec the program, `kill` signals it, `delete` removes what is left. In between, the
//! container is in one of the runtime spec's states, **creating → created → running →
//! stopped**, plus runc's **paused**: a running container whose cgroup is frozen. Each
//! command first reads that state, and refuses when it does not fit: starting twice
//! would open a gate nobody waits at, and signalling a stopped container's pid could hit
//! another process that has been handed the same pid since.
//!
//! Write `next`: given the container's status and a command, what the command leaves
//! behind, or why it is refused. The rules, as runc has them:
//!
//! - `start`: only a **created** container. It then runs: `Outcome::Now(Running)`.
//! - `kill`: a **created**, **running** or **paused** container (paused is running, only
//!   frozen: the process takes the signal when thawed). Not a stopped one (its pid may
//!   be someone else's now), nor a creating one (the process making it owns it). A
//!   signal changes no status by itself: the container is stopped once its process
//!   *ends*, which a later command notices. So kill leaves the status as it was.
//! - `pause`: only a **running** container, which is then paused. `resume`: only a
//!   **paused** one, which runs again.
//! - `delete`, without `--force`: only a **created** or a **stopped** container. A
//!   created one is killed first: nothing could ever start it once its state dir is
//!   gone. A running or paused one is refused, its program still runs: stop it first.
//!   A creating one is refused too: the process making it owns it.
//! - `delete --force`: any container, in any status: it kills what runs, then removes.
//!
//! A command that is allowed gives `Ok`, with the status it leaves the container in
//! (`Outcome::Now`), or `Outcome::Deleted` for a delete. One that is refused gives
//! `Err(Refusal { status, command })` with the status and the command it was given,
//! which prints as runc words it: `container is stopped: cannot start`.
//!
//! The function is pure: it only decides. nutshell's real commands read the status from
//! the state dir first, then do the work only if the rule allows it.
//!
//! The types are given in `lifecycle.rs`, next to this file: `Status`, `Command`,
//! `Outcome` and `Refusal`. Do not change that file.
//!
//! Read book/src/ch11-runtime.md, and the checks at the top of `Detached::start`, `kill`
//! and `delete` in src/launch/detached.rs and of `pause` in src/oci/runtime.rs. Check
//! your work with `just exercise ch11-runtime` (no root needed: no container is made).

use crate::lifecycle::{Command, Outcome, Refusal, Status};

/// What `command` does to a container in `status`: the outcome, or the refusal.
pub fn next(status: Status, command: Command) -> Result<Outcome, Refusal> {
    // TODO: match on the command, then on the status, naming every status in each inner
    //       match (no `_`): the compiler then checks that no pair is left undecided.
    // TODO: start: created → running. kill: created, running, paused → unchanged.
    //       pause: running → paused. resume: paused → running.
    // TODO: delete: created or stopped → Outcome::Deleted; delete --force: any status.
    // TODO: everything else: Err(Refusal { status, command }).
    let _ = (status, command);
    todo!("next: the outcome of a command in a status, or its refusal")
}
