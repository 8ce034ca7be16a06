//! # Exercise ch02-namespaces: a hostname of your own
//!
//! A container has its own hostname, and setting it must not rename the machine. Write
//! `enter_new_uts`: after it returns `Ok(())`,
//!
//! 1. the calling process is in a new UTS namespace of its own, and
//! 2. the hostname in that namespace is `name`,
//!
//! while every other process — the host — keeps its hostname. If a step fails, return its
//! error (do not panic): a name longer than 64 bytes is `EINVAL`.
//!
//! Read book/src/ch02-namespaces.md first. Check your work with
//! `just exercise ch02-namespaces` (as root). The tests run your function in a forked
//! child that is itself inside a scratch UTS namespace standing in for the host, so even a
//! wrong answer never renames the real machine.

/// Move the calling process into a new UTS namespace and set its hostname to `name`.
pub fn enter_new_uts(name: &str) -> nix::Result<()> {
    // TODO: move this process into a new UTS namespace (unshare(2), CLONE_NEWUTS).
    // TODO: set the hostname of that namespace (sethostname(2)).
    let _ = name;
    todo!("enter_new_uts: unshare, then sethostname")
}
