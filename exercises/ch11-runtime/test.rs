//! Tests for exercise ch11-runtime. The statement is at the top of `transitions.rs`.
//!
//! Pure data: no root, no container. Each command is tried in each of the five statuses,
//! thirty pairs in all, and compared with runc's rule; a failure names the pair, what it
//! should give, what came back, and why the rule is what it is.

mod lifecycle;
#[cfg_attr(not(feature = "solution"), path = "transitions.rs")]
#[cfg_attr(
    feature = "solution",
    path = "../solutions/ch11-runtime/transitions.rs"
)]
mod transitions;

use lifecycle::{Command, Outcome, Refusal, Status};
use transitions::next;

/// What the rule says a command gives in one status.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Allowed, with this outcome.
    Gives(Outcome),
    /// Refused, with the status and the command.
    Refused,
}

use Rule::{Gives, Refused};
use Status::{Created, Creating, Paused, Running, Stopped};

/// A result, as a sentence for a failure.
fn describe(result: &Result<Outcome, Refusal>) -> String {
    match result {
        Ok(Outcome::Now(status)) => format!("allowed, leaving it {status}"),
        Ok(Outcome::Deleted) => "allowed, deleting it".to_string(),
        Err(refusal) => format!("refused with \"{refusal}\""),
    }
}

/// Check `command` in every status against `rules`: one row per status, in the order of
/// `Status::ALL`, each with what the command must give and why.
fn check(command: Command, rules: [(Status, Rule, &str); 5]) {
    let statuses: Vec<Status> = rules.iter().map(|(status, _, _)| *status).collect();
    assert_eq!(
        statuses,
        Status::ALL,
        "the test's table for {command} has a row per status, in order"
    );
    for (status, rule, why) in rules {
        let expected = match rule {
            Gives(outcome) => Ok(outcome),
            Refused => Err(Refusal { status, command }),
        };
        let got = next(status, command);
        assert_eq!(
            got,
            expected,
            "`{command}` on a {status} container should be {}, but it is {}: {why}",
            describe(&expected),
            describe(&got)
        );
    }
}

#[test]
fn start_starts_only_a_created_container() {
    check(
        Command::Start,
        [
            (
                Creating,
                Refused,
                "it is still being made, by the process that owns it",
            ),
            (
                Created,
                Gives(Outcome::Now(Running)),
                "its first process waits at the start gate: start opens it, and the \
                 program runs",
            ),
            (
                Running,
                Refused,
                "it was started already: nobody waits at the start gate any more",
            ),
            (
                Paused,
                Refused,
                "it was started already (paused is running, only frozen): resume it",
            ),
            (
                Stopped,
                Refused,
                "its program has ended, and cannot run again: create a new container",
            ),
        ],
    );
}

#[test]
fn kill_signals_a_created_running_or_paused_container_and_changes_no_status() {
    let unchanged = "a signal changes no status by itself: the container is stopped once \
                     its process ends, which a later command notices";
    check(
        Command::Kill,
        [
            (
                Creating,
                Refused,
                "it is still being made, by the process that owns it",
            ),
            (Created, Gives(Outcome::Now(Created)), unchanged),
            (Running, Gives(Outcome::Now(Running)), unchanged),
            (
                Paused,
                Gives(Outcome::Now(Paused)),
                "paused is running, only frozen: the process takes the signal when \
                 thawed, and the signal changes no status by itself",
            ),
            (
                Stopped,
                Refused,
                "its process has ended, and its pid may be another process's by now: \
                 runc never signals a stopped container",
            ),
        ],
    );
}

#[test]
fn pause_freezes_only_a_running_container() {
    check(
        Command::Pause,
        [
            (Creating, Refused, "it has no program running to freeze"),
            (
                Created,
                Refused,
                "its program has not started: only a running one is paused",
            ),
            (
                Running,
                Gives(Outcome::Now(Paused)),
                "pause freezes every process of its cgroup",
            ),
            (Paused, Refused, "it is frozen already"),
            (
                Stopped,
                Refused,
                "its program has ended: nothing is left to freeze",
            ),
        ],
    );
}

#[test]
fn resume_thaws_only_a_paused_container() {
    check(
        Command::Resume,
        [
            (Creating, Refused, "only a paused container can be resumed"),
            (
                Created,
                Refused,
                "only a paused container can be resumed: start it",
            ),
            (
                Running,
                Refused,
                "it is not frozen: only a paused one is resumed",
            ),
            (
                Paused,
                Gives(Outcome::Now(Running)),
                "resume thaws its cgroup, and it runs again",
            ),
            (Stopped, Refused, "only a paused container can be resumed"),
        ],
    );
}

#[test]
fn delete_removes_only_a_created_or_stopped_container() {
    check(
        Command::Delete { force: false },
        [
            (
                Creating,
                Refused,
                "it is still being made, by the process that owns it: only --force \
                 takes it from that process",
            ),
            (
                Created,
                Gives(Outcome::Deleted),
                "its first process is killed first, and that is no loss: once its state \
                 dir is gone, nothing could ever start it",
            ),
            (
                Running,
                Refused,
                "its program still runs: stop it first, or delete --force",
            ),
            (
                Paused,
                Refused,
                "its program still runs, only frozen: stop it first, or delete --force",
            ),
            (
                Stopped,
                Gives(Outcome::Deleted),
                "its program has ended: what is left is only to be removed",
            ),
        ],
    );
}

#[test]
fn delete_force_removes_a_container_in_any_status() {
    let any = "--force kills whatever still runs, then removes the container";
    check(
        Command::Delete { force: true },
        [
            (Creating, Gives(Outcome::Deleted), any),
            (Created, Gives(Outcome::Deleted), any),
            (Running, Gives(Outcome::Deleted), any),
            (Paused, Gives(Outcome::Deleted), any),
            (Stopped, Gives(Outcome::Deleted), any),
        ],
    );
}

#[test]
fn a_refusal_prints_as_runc_words_it() {
    let printed: Vec<String> = [
        (Stopped, Command::Start),
        (Running, Command::Delete { force: false }),
        (Created, Command::Resume),
    ]
    .into_iter()
    .map(|(status, command)| match next(status, command) {
        Err(refusal) => refusal.to_string(),
        Ok(outcome) => format!("{status} + {command} was allowed: {outcome:?}"),
    })
    .collect();
    assert_eq!(
        printed,
        [
            "container is stopped: cannot start",
            "container is running: cannot delete",
            "container is created: cannot resume",
        ],
        "a refusal carries the status and the command it was given"
    );
}

#[test]
fn a_container_lives_created_running_paused_running_then_is_deleted_once_stopped() {
    let mut status = Created;
    for (command, after) in [
        (Command::Start, Running),
        (Command::Pause, Paused),
        (Command::Resume, Running),
        (Command::Kill, Running),
    ] {
        let (expected, got) = (Ok(Outcome::Now(after)), next(status, command));
        assert_eq!(
            got,
            expected,
            "`{command}` on a {status} container should be {}, but it is {}",
            describe(&expected),
            describe(&got)
        );
        status = after;
    }
    // The killed program ends, and the next command sees a stopped container.
    assert_eq!(
        next(Stopped, Command::Delete { force: false }),
        Ok(Outcome::Deleted),
        "a stopped container is deleted without --force"
    );
}
