//! What the container's first process tells nutshell over the sync socket, and what
//! nutshell sends it: fixed-size reports that the prelude can write without allocating,
//! and the one message with its steps.

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::steps::ChildStep;

/// A report from the container's first process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Child step `step` (its position in the plan) failed with `errno`.
    Failed {
        /// The step's position in the plan's child steps.
        step: u32,
        /// The errno it failed with.
        errno: i32,
    },
    /// Every step is done; it waits at the start gate.
    Ready,
    /// The init has started the program (without an init, the socket closing on exec
    /// says the same).
    Started,
}

/// The size of an encoded report.
pub const REPORT_LEN: usize = 12;

impl Report {
    /// Step `step` failed with `errno`.
    pub fn failed(step: u32, errno: nix::errno::Errno) -> Report {
        Report::Failed {
            step,
            errno: errno as i32,
        }
    }

    /// Three native-endian 32-bit words: kind, step, errno.
    pub fn encode(self) -> [u8; REPORT_LEN] {
        let (kind, step, errno) = match self {
            Report::Failed { step, errno } => (1u32, step, errno),
            Report::Ready => (2, 0, 0),
            Report::Started => (3, 0, 0),
        };
        let mut bytes = [0u8; REPORT_LEN];
        bytes[..4].copy_from_slice(&kind.to_ne_bytes());
        bytes[4..8].copy_from_slice(&step.to_ne_bytes());
        bytes[8..].copy_from_slice(&errno.to_ne_bytes());
        bytes
    }

    /// The report in `bytes`, if they are one.
    pub fn decode(bytes: &[u8]) -> Option<Report> {
        if bytes.len() != REPORT_LEN {
            return None;
        }
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        let step = u32::from_ne_bytes(word(4));
        let errno = i32::from_ne_bytes(word(8));
        match u32::from_ne_bytes(word(0)) {
            1 => Some(Report::Failed { step, errno }),
            2 => Some(Report::Ready),
            3 => Some(Report::Started),
            _ => None,
        }
    }
}

/// What nutshell-init receives once it runs: its steps and the fds it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boot {
    /// The plan's child steps, all of them: a failure is reported by position.
    pub steps: Vec<ChildStep>,
    /// The first step for nutshell-init to run (the ones before ran in the prelude).
    pub first: usize,
    /// The root as a host path, which mount targets below it are resolved in.
    pub rootfs: PathBuf,
    /// The start gate's read end.
    pub start_gate: RawFd,
    /// The exec fifo's write end, for a detached container: once through the gate, it
    /// reports there, to `nutshell start`, since its creator is gone.
    #[serde(default)]
    pub exec_fifo: Option<RawFd>,
    /// The console socket, connected, for a container with a terminal.
    #[serde(default)]
    pub console_socket: Option<RawFd>,
    /// The idmapped trees, in the order [`crate::mounts::MountOp::AttachTree`] names them.
    pub trees: Vec<RawFd>,
    /// The highest capability number, for dropping the bounding set.
    pub cap_last_cap: u32,
    /// Whether setgroups(2) may be called (not in a user namespace whose map writer
    /// denied it).
    pub setgroups: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_garbage_is_refused() {
        for report in [
            Report::Failed {
                step: 7,
                errno: libc::ELOOP,
            },
            Report::Ready,
            Report::Started,
        ] {
            assert_eq!(Report::decode(&report.encode()), Some(report));
        }
        assert_eq!(Report::decode(&[0; REPORT_LEN]), None);
        assert_eq!(Report::decode(&[1, 2, 3]), None);
    }
}
