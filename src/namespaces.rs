//! The eight Linux namespaces: what each one isolates and the flag that makes one.
//!
//! A namespace wraps one global resource so that the processes inside see their own
//! instance of it. `nutshell doctor` probes each kind; chapters 2–8 each put one to work.
//!
//! See also [namespaces(7)](https://man7.org/linux/man-pages/man7/namespaces.7.html),
//! [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html).

use std::fmt;
use std::path::Path;

use nix::errno::Errno;

/// A kind of namespace.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
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

    // ANCHOR: clone_flag
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
    // ANCHOR_END: clone_flag

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

/// Errors from making or preparing namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// unshare(2) failed.
    #[error("unshare({namespaces}): {source}")]
    Unshare {
        /// The namespaces asked for.
        namespaces: String,
        /// The errno.
        #[source]
        source: Errno,
    },
}

/// The clone(2)/unshare(2) flags for `namespaces`, OR-ed together.
pub fn clone_flags(namespaces: &[Namespace]) -> libc::c_int {
    namespaces
        .iter()
        .fold(0, |flags, ns| flags | ns.clone_flag())
}

/// `namespaces` for messages: `uts, ipc`, or `none`.
pub fn describe(namespaces: &[Namespace]) -> String {
    if namespaces.is_empty() {
        return "none".to_string();
    }
    namespaces
        .iter()
        .map(|ns| ns.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Move the calling process into new namespaces of these kinds. For the PID and time
/// namespaces only the caller's *children* move; see pid_namespaces(7).
pub fn unshare(namespaces: &[Namespace]) -> Result<(), NamespaceError> {
    // SAFETY: a plain system call with no pointers.
    Errno::result(unsafe { libc::unshare(clone_flags(namespaces)) })
        .map(drop)
        .map_err(|source| NamespaceError::Unshare {
            namespaces: describe(namespaces),
            source,
        })
}

/// How far the clocks of a new time namespace are moved forward, in whole seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeOffsets {
    /// Added to CLOCK_MONOTONIC.
    pub monotonic_secs: i64,
    /// Added to CLOCK_BOOTTIME (what /proc/uptime shows).
    pub boottime_secs: i64,
}

impl TimeOffsets {
    /// The same shift for both clocks: what "the uptime is N seconds more" means.
    pub fn uptime(secs: i64) -> Self {
        TimeOffsets {
            monotonic_secs: secs,
            boottime_secs: secs,
        }
    }

    /// The lines the kernel expects in /proc/PID/timens_offsets: `<clock> <secs> <nanosecs>`.
    pub fn to_proc_format(self) -> String {
        format!(
            "monotonic {} 0\nboottime {} 0\n",
            self.monotonic_secs, self.boottime_secs
        )
    }
}

// ANCHOR: enter_new_time_namespace
/// Move this process — single-threaded, in a user namespace it is root of — into a new
/// time namespace with `offsets`. For a container with a user namespace: the time
/// namespace is then owned by it, and a normal user can make one.
///
/// unshare(CLONE_NEWTIME) makes the namespace for future children only; the offsets go
/// in while it is still empty; then setns(2) on `/proc/self/ns/time_for_children` moves
/// this process in, which the kernel allows only a single-threaded caller (EUSERS
/// otherwise) with CAP_SYS_ADMIN over the namespace.
pub fn enter_new_time_namespace(offsets: TimeOffsets) -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    ))?;
    std::fs::write("/proc/self/timens_offsets", offsets.to_proc_format())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let ns = std::fs::File::open("/proc/self/ns/time_for_children")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    nix::sched::setns(
        ns,
        nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
}
// ANCHOR_END: enter_new_time_namespace

/// The three clocks a time namespace is about, read one after the other: two it can move
/// and one it cannot. See clock_gettime(2).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clocks {
    /// CLOCK_REALTIME, the wall clock: never offset by a time namespace.
    pub realtime: f64,
    /// CLOCK_MONOTONIC, seconds since some point at boot, not counting suspend: offset.
    pub monotonic: f64,
    /// CLOCK_BOOTTIME, like CLOCK_MONOTONIC but counting suspend (the uptime): offset.
    pub boottime: f64,
}

impl Clocks {
    /// Read the three clocks, in seconds, as the calling process's time namespace sees them.
    pub fn now() -> Result<Clocks, Errno> {
        let read = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid timespec for the kernel to fill in.
            Errno::result(unsafe { libc::clock_gettime(clock, &mut ts) })?;
            Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
        };
        Ok(Clocks {
            realtime: read(libc::CLOCK_REALTIME)?,
            monotonic: read(libc::CLOCK_MONOTONIC)?,
            boottime: read(libc::CLOCK_BOOTTIME)?,
        })
    }
}

/// The uptime in seconds from `/proc/uptime` under `proc_dir`: its first field, which the
/// kernel reads from CLOCK_BOOTTIME in the reader's time namespace.
pub fn read_uptime(proc_dir: &Path) -> std::io::Result<f64> {
    let text = std::fs::read_to_string(proc_dir.join("uptime"))?;
    parse_uptime(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected /proc/uptime: {text:?}"),
        )
    })
}

/// The first field of `/proc/uptime`'s text (`12345.67 23456.78`).
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
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
    fn clone_flags_or_the_flags_together() {
        assert_eq!(
            clone_flags(&[Namespace::Uts, Namespace::Ipc]),
            libc::CLONE_NEWUTS | libc::CLONE_NEWIPC
        );
        assert_eq!(clone_flags(&[]), 0);
    }

    #[test]
    fn time_offsets_are_written_in_the_kernels_format() {
        assert_eq!(
            TimeOffsets::uptime(86400).to_proc_format(),
            "monotonic 86400 0\nboottime 86400 0\n"
        );
    }

    #[test]
    fn the_uptime_is_the_first_field() {
        assert_eq!(parse_uptime("12345.67 23456.78\n"), Some(12345.67));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn clocks_can_be_read() {
        let clocks = Clocks::now().expect("clock_gettime");
        assert!(clocks.boottime >= clocks.monotonic);
        assert!(clocks.realtime > 1e9);
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
