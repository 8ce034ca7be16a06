//! System V and POSIX message queues: the objects an IPC namespace holds.
//!
//! Besides pipes and sockets, Linux has two families of IPC objects that are found by a
//! *name* rather than through a file descriptor passed around: System V IPC (message
//! queues, semaphore sets and shared memory segments, looked up by a numeric key with
//! msgget(2), semget(2), shmget(2)) and POSIX message queues (looked up by a name like
//! `/jobs` with mq_open(3)). Any process that knows the key or the name can open the object,
//! and the object lives on after its creator exits, until someone removes it. An IPC
//! namespace gives its processes their own set of both families: the host's objects are
//! invisible inside, and the namespace's objects are destroyed with it. Chapter 2
//! introduces this module; its binary and tests use these helpers to show both halves.
//!
//! Every object made here has a key and a name derived from a process id (see
//! [`QueueNames::unique`]), so that parallel runs never meet and a leak can be traced.
//!
//! See also [ipc_namespaces(7)](https://man7.org/linux/man-pages/man7/ipc_namespaces.7.html),
//! [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html),
//! [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html),
//! [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html),
//! [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html),
//! [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html),
//! [mq_unlink(3)](https://man7.org/linux/man-pages/man3/mq_unlink.3.html).

use std::ffi::CString;
use std::fmt;

use nix::errno::Errno;

/// The high byte of every System V key nutshell makes: `N`, so `ipcs` shows whose they are.
const KEY_PREFIX: libc::key_t = 0x4e00_0000;

/// The longest POSIX message queue name, without its leading `/` (`NAME_MAX`).
const POSIX_NAME_MAX: usize = 255;

/// Errors from making, finding or removing a message queue.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// A POSIX message queue name must be `/` and then 1 to 255 bytes with no `/` or NUL.
    #[error(
        "POSIX message queue name {0:?} is not valid: it must be '/' followed by 1 to 255 characters, none of them '/'"
    )]
    InvalidName(String),
    /// msgget(2) failed.
    #[error("{action} System V message queue with key {key:#010x}: {source}")]
    Sysv {
        /// `create`, `look up` or `remove`.
        action: &'static str,
        /// The queue's key.
        key: libc::key_t,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// mq_open(3) or mq_unlink(3) failed.
    #[error("{action} POSIX message queue {name}: {source}")]
    Posix {
        /// `create`, `look up` or `remove`.
        action: &'static str,
        /// The queue's name.
        name: String,
        /// The errno.
        #[source]
        source: Errno,
    },
}

// ANCHOR: queue_names
/// How a System V message queue and a POSIX message queue are found: by a key, and by a
/// name. Nothing else is needed to reach them — which is why a namespace is needed to hide
/// them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueNames {
    /// The System V key, passed to msgget(2).
    pub sysv_key: libc::key_t,
    /// The POSIX name, passed to mq_open(3): `/nutshell-<pid>-<slot>`.
    pub posix_name: String,
}
// ANCHOR_END: queue_names

/// What a look-up of [`QueueNames`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The System V queue's id, if a queue with the key exists.
    pub sysv_id: Option<i32>,
    /// Whether a POSIX queue with the name exists.
    pub posix: bool,
}

impl QueueNames {
    /// Names unique to process `pid` and `slot` (0 to 3, so one process can own four
    /// pairs): the key is `0x4e` in the high byte then the pid and the slot, the name is
    /// `/nutshell-<pid>-<slot>`. Linux pids fit in 22 bits, so keys never collide.
    pub fn unique(pid: u32, slot: u8) -> QueueNames {
        let low = ((pid & 0x003f_ffff) << 2) | u32::from(slot & 3);
        QueueNames {
            sysv_key: KEY_PREFIX | low as libc::key_t,
            posix_name: format!("/nutshell-{pid}-{slot}"),
        }
    }

    /// Make both queues, failing if either exists already. If the second cannot be made,
    /// the first is removed again.
    pub fn create(&self) -> Result<(), IpcError> {
        create_sysv_queue(self.sysv_key)?;
        if let Err(err) = create_posix_queue(&self.posix_name) {
            let _ = remove_sysv_queue(self.sysv_key);
            return Err(err);
        }
        Ok(())
    }

    /// Look both queues up, as any process in this IPC namespace could.
    pub fn lookup(&self) -> Result<Found, IpcError> {
        Ok(Found {
            sysv_id: find_sysv_queue(self.sysv_key)?,
            posix: posix_queue_exists(&self.posix_name)?,
        })
    }

    /// Remove both queues; one that does not exist is not an error.
    pub fn remove(&self) -> Result<(), IpcError> {
        let sysv = remove_sysv_queue(self.sysv_key);
        let posix = remove_posix_queue(&self.posix_name);
        sysv.and(posix)
    }
}

impl fmt::Display for QueueNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "System V key {:#010x} and POSIX {}",
            self.sysv_key, self.posix_name
        )
    }
}

/// Owns the queues of a [`QueueNames`]: removes them when dropped, so that they go
/// whichever way the function that made them returns.
#[derive(Debug)]
pub struct QueueGuard {
    names: QueueNames,
    armed: bool,
}

impl QueueGuard {
    /// Take charge of the queues called `names`, whether or not they exist yet.
    pub fn new(names: QueueNames) -> QueueGuard {
        QueueGuard { names, armed: true }
    }

    /// The names guarded.
    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    /// Remove the queues now and report any error.
    pub fn remove(mut self) -> Result<(), IpcError> {
        self.armed = false;
        self.names.remove()
    }
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.names.remove();
        }
    }
}

// ANCHOR: sysv
/// Create a System V message queue with `key`; fail if one exists. Returns its id.
pub fn create_sysv_queue(key: libc::key_t) -> Result<i32, IpcError> {
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    Errno::result(id).map_err(|source| IpcError::Sysv {
        action: "create",
        key,
        source,
    })
}

/// The id of the System V message queue with `key`, or `None` if this IPC namespace has
/// none: msgget(2) without `IPC_CREAT` only looks.
pub fn find_sysv_queue(key: libc::key_t) -> Result<Option<i32>, IpcError> {
    // SAFETY: msgget takes no pointers.
    match Errno::result(unsafe { libc::msgget(key, 0) }) {
        Ok(id) => Ok(Some(id)),
        Err(Errno::ENOENT) => Ok(None),
        Err(source) => Err(IpcError::Sysv {
            action: "look up",
            key,
            source,
        }),
    }
}
// ANCHOR_END: sysv

/// Remove the System V message queue with `key`, if there is one.
pub fn remove_sysv_queue(key: libc::key_t) -> Result<(), IpcError> {
    let Some(id) = find_sysv_queue(key)? else {
        return Ok(());
    };
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is allowed.
    match Errno::result(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }) {
        // Someone removed it between the look-up and now: the goal is met.
        Ok(_) | Err(Errno::EINVAL) | Err(Errno::EIDRM) => Ok(()),
        Err(source) => Err(IpcError::Sysv {
            action: "remove",
            key,
            source,
        }),
    }
}

/// `name` as a C string, once it is checked to be a valid POSIX queue name.
fn posix_name(name: &str) -> Result<CString, IpcError> {
    let invalid = || IpcError::InvalidName(name.to_string());
    let rest = name.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.len() > POSIX_NAME_MAX || rest.contains('/') {
        return Err(invalid());
    }
    CString::new(name).map_err(|_| invalid())
}

// ANCHOR: posix
/// Create a POSIX message queue called `name` (`/something`); fail if one exists.
pub fn create_posix_queue(name: &str) -> Result<(), IpcError> {
    let c_name = posix_name(name)?;
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: a valid C string; mode and a null attr (the defaults) as O_CREAT requires.
    let mqd = unsafe {
        libc::mq_open(
            c_name.as_ptr(),
            flags,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    let mqd = Errno::result(mqd).map_err(|source| IpcError::Posix {
        action: "create",
        name: name.to_string(),
        source,
    })?;
    // The queue lives on without a descriptor, like a file; this one is not needed.
    // SAFETY: mqd was just opened by us.
    unsafe { libc::mq_close(mqd) };
    Ok(())
}

/// Whether this IPC namespace has a POSIX message queue called `name`.
pub fn posix_queue_exists(name: &str) -> Result<bool, IpcError> {
    let c_name = posix_name(name)?;
    // SAFETY: a valid C string; without O_CREAT mq_open takes no further arguments.
    let mqd = unsafe { libc::mq_open(c_name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    match Errno::result(mqd) {
        Ok(mqd) => {
            // SAFETY: mqd was just opened by us.
            unsafe { libc::mq_close(mqd) };
            Ok(true)
        }
        Err(Errno::ENOENT) => Ok(false),
        Err(source) => Err(IpcError::Posix {
            action: "look up",
            name: name.to_string(),
            source,
        }),
    }
}
// ANCHOR_END: posix

/// Remove the POSIX message queue called `name`, if there is one.
pub fn remove_posix_queue(name: &str) -> Result<(), IpcError> {
    let c_name = posix_name(name)?;
    // SAFETY: a valid C string.
    match Errno::result(unsafe { libc::mq_unlink(c_name.as_ptr()) }) {
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(source) => Err(IpcError::Posix {
            action: "remove",
            name: name.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_carry_the_pid_and_the_slot() {
        let names = QueueNames::unique(12345, 1);
        assert_eq!(names.sysv_key, 0x4e00_0000 | (12345 << 2) | 1);
        assert_eq!(names.posix_name, "/nutshell-12345-1");
    }

    #[test]
    fn unique_keys_of_the_largest_pids_do_not_collide() {
        let max_pid = 4_194_303; // pid_max is at most 2^22
        let a = QueueNames::unique(max_pid, 3);
        let b = QueueNames::unique(max_pid - 1, 3);
        assert_ne!(a.sysv_key, b.sysv_key);
        assert!(a.sysv_key > 0);
    }

    #[test]
    fn posix_names_need_one_leading_slash_and_no_other() {
        for bad in ["", "/", "jobs", "/a/b", "/nul\0"] {
            assert!(
                matches!(posix_name(bad), Err(IpcError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(posix_name(&format!("/{}", "q".repeat(256))).is_err());
        assert!(posix_name("/nutshell-1-0").is_ok());
    }

    #[test]
    fn queues_are_made_found_and_removed() {
        // Unprivileged users may make queues too. The slots are this test process's own:
        // no binary can have its pid while it runs, and each test here uses another slot.
        let names = QueueNames::unique(std::process::id(), 3);
        let guard = QueueGuard::new(names.clone());
        names.create().expect("create");
        let found = names.lookup().expect("lookup");
        assert!(found.sysv_id.is_some() && found.posix, "{found:?}");
        assert!(matches!(
            names.create(),
            Err(IpcError::Sysv {
                source: Errno::EEXIST,
                ..
            })
        ));
        guard.remove().expect("remove");
        assert_eq!(
            names.lookup().expect("lookup"),
            Found {
                sysv_id: None,
                posix: false
            }
        );
    }

    #[test]
    fn a_dropped_guard_removes_its_queues() {
        let names = QueueNames::unique(std::process::id(), 2);
        {
            let _guard = QueueGuard::new(names.clone());
            names.create().expect("create");
        }
        assert_eq!(
            names.lookup().expect("lookup"),
            Found {
                sysv_id: None,
                posix: false
            }
        );
    }
}
