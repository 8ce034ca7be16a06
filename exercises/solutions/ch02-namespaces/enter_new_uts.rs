//! # Reference solution: ch02-namespaces, a hostname of your own

use nix::sched::{CloneFlags, unshare};

/// Move the calling process into a new UTS namespace and set its hostname to `name`.
pub fn enter_new_uts(name: &str) -> nix::Result<()> {
    // FIX: unshare first. The new UTS namespace starts as a copy of the current one, so
    // the hostname is unchanged until the next call; without this step sethostname(2)
    // would rename the namespace this process shares with the host.
    unshare(CloneFlags::CLONE_NEWUTS)?;
    nix::unistd::sethostname(name)
}
