//! The eight Linux namespaces: what each one isolates and the flag that makes one.
//!
//! A namespace wraps one global resource so that the processes inside see their own
//! instance of it. `nutshell doctor` probes each kind; chapters 2–8 each put one to work.
//!
//! See also [namespaces(7)](https://man7.org/linux/man-pages/man7/namespaces.7.html),
//! [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html).

use std::fmt;

/// A kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Namespace {
    /// Mount points (chapter 4).
    Mount,
    /// Hostname and NIS domain name (chapter 2).
    Uts,
    /// System V IPC objects and POSIX message queues (chapter 2).
    Ipc,
    /// Process ids (chapter 3).
    Pid,
    /// Network devices, addresses, routes, ports (chapter 8).
    Net,
    /// User and group ids, capabilities (chapter 6).
    User,
    /// The cgroup root a process sees (chapter 5).
    Cgroup,
    /// The offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME (chapter 2).
    Time,
}

impl Namespace {
    /// All eight, in the order of namespaces(7)'s table.
    pub const ALL: [Namespace; 8] = [
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Time,
        Namespace::User,
        Namespace::Uts,
    ];

    /// The `CLONE_NEW*` flag for clone(2) and unshare(2). A raw `libc` value, because nix
    /// has no `CLONE_NEWTIME`.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => libc::CLONE_NEWTIME,
        }
    }

    /// Its name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_has_its_own_flag() {
        let mut flags: Vec<_> = Namespace::ALL.iter().map(|ns| ns.clone_flag()).collect();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), 8);
    }

    #[test]
    fn proc_names_match_the_files_in_proc_self_ns() {
        for ns in Namespace::ALL {
            let path = std::path::Path::new("/proc/self/ns").join(ns.proc_name());
            assert!(
                path.symlink_metadata().is_ok(),
                "{} missing",
                path.display()
            );
        }
    }
}
