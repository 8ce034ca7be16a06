//! How the parent and a freshly cloned child take turns: the parent's steps for the
//! child (chapter 6: its id maps, its cgroup), and the one-shot pipe the child waits on.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::{Pid, pipe2};

use super::ProcessError;

/// Something the parent does for the child after the clone and before the child's own
/// steps, while the child waits: write its id maps, move it into its cgroup. Some of
/// these only the parent can do (the child, in its new user namespace, has no say over
/// the host's ids), and the child must not go on until they are done.
pub struct ParentStep<'a> {
    /// What the step does, shown in errors: `write uid_map and gid_map`.
    pub name: String,
    /// The work, given the child's pid as the parent sees it.
    #[allow(clippy::type_complexity)]
    pub run: Box<dyn FnOnce(Pid) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a>,
}

impl<'a> ParentStep<'a> {
    /// A named parent step.
    pub fn new<E>(name: impl Into<String>, run: impl FnOnce(Pid) -> Result<(), E> + 'a) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ParentStep {
            name: name.into(),
            run: Box::new(move |pid| run(pid).map_err(|e| Box::new(e) as _)),
        }
    }
}

/// A one-shot pipe that lets one process wait until another says "go". The waiting
/// side reads one byte; closing the other end without writing also ends the wait, so a
/// parent that fails never leaves its child blocked forever.
pub struct Gate {
    wait_end: OwnedFd,
    open_end: OwnedFd,
}

impl Gate {
    /// A closed gate. Make it before the clone, so both processes have both ends.
    pub fn new() -> Result<Gate, ProcessError> {
        let (wait_end, open_end) = pipe2(OFlag::O_CLOEXEC).map_err(ProcessError::Pipe)?;
        Ok(Gate { wait_end, open_end })
    }

    /// Split into the waiting end and the opening end.
    pub fn split(self) -> (GateWaiter, GateOpener) {
        (GateWaiter(self.wait_end), GateOpener(self.open_end))
    }
}

/// The end of a [`Gate`] that waits.
pub struct GateWaiter(OwnedFd);

impl GateWaiter {
    /// Block until the gate opens: `true` if the other side said go, `false` if it went
    /// away without saying so.
    pub fn wait(self) -> bool {
        let mut byte = [0u8; 1];
        let mut file = std::fs::File::from(self.0);
        loop {
            match file.read(&mut byte) {
                Ok(1) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => return false,
            }
        }
    }
}

/// The end of a [`Gate`] that opens it.
pub struct GateOpener(pub(super) OwnedFd);

impl GateOpener {
    /// Let the waiting side go on.
    pub fn open(self) -> std::io::Result<()> {
        std::fs::File::from(self.0).write_all(b"G")
    }
}
