//! Reading and setting the calling thread's capabilities: prctl(2) and capset(2).

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::names::Capability;
use super::sets::{CapRule, CapSet, Capabilities};

/// Errors from naming, checking, reading or applying capabilities.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    /// A name capabilities(7) does not list.
    #[error(
        "unknown capability {name:?}: capabilities(7) lists the names, such as CAP_CHOWN (or chown)"
    )]
    UnknownName {
        /// The name given.
        name: String,
    },
    /// The sets break a rule the kernel would enforce (see [`Capabilities::check`]).
    #[error("invalid capability sets: {}", rule.explain(*caps))]
    Invalid {
        /// The rule broken.
        rule: CapRule,
        /// The capabilities that break it.
        caps: CapSet,
    },
    /// `prctl(PR_CAPBSET_DROP)` failed.
    #[error(
        "drop {} from the bounding set (prctl PR_CAPBSET_DROP): {source}{}",
        number_name(*cap), drop_hint(*source)
    )]
    DropBounding {
        /// The capability's number (perhaps one newer than this module).
        cap: u32,
        /// The errno.
        source: Errno,
    },
    /// `prctl(PR_CAPBSET_READ)` failed.
    #[error("read whether {cap} is in the bounding set (prctl PR_CAPBSET_READ): {source}")]
    ReadBounding {
        /// The capability.
        cap: Capability,
        /// The errno.
        source: Errno,
    },
    /// capset(2) refused the effective, permitted and inheritable sets.
    #[error(
        "set the effective, permitted and inheritable sets (capset): {source}{}",
        capset_hint(*source)
    )]
    Capset {
        /// The errno.
        source: Errno,
    },
    /// capget(2) failed.
    #[error("read this thread's capability sets (capget): {source}")]
    Capget {
        /// The errno.
        source: Errno,
    },
    /// `prctl(PR_CAP_AMBIENT_CLEAR_ALL)` failed.
    #[error("clear the ambient set (prctl PR_CAP_AMBIENT_CLEAR_ALL): {source}{}", ambient_hint(*source))]
    ClearAmbient {
        /// The errno.
        source: Errno,
    },
    /// `prctl(PR_CAP_AMBIENT_RAISE)` failed.
    #[error(
        "raise {cap} in the ambient set (prctl PR_CAP_AMBIENT_RAISE): {source}{}",
        ambient_hint(*source)
    )]
    Ambient {
        /// The capability.
        cap: Capability,
        /// The errno.
        source: Errno,
    },
    /// `prctl(PR_CAP_AMBIENT_IS_SET)` failed.
    #[error("read whether {cap} is ambient (prctl PR_CAP_AMBIENT_IS_SET): {source}{}", ambient_hint(*source))]
    ReadAmbient {
        /// The capability.
        cap: Capability,
        /// The errno.
        source: Errno,
    },
    /// `prctl(PR_SET_KEEPCAPS)` failed.
    #[error("set keep-caps to {keep} (prctl PR_SET_KEEPCAPS): {source}")]
    KeepCaps {
        /// The value asked for.
        keep: bool,
        /// The errno (`EPERM` when `SECBIT_KEEP_CAPS_LOCKED` is set).
        source: Errno,
    },
    /// `cap_last_cap` could not be read.
    #[error("read {}: {source}", path.display())]
    ReadLastCap {
        /// The file.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
    /// `cap_last_cap` does not hold a number.
    #[error("parse {}: {value:?} is not a capability number", path.display())]
    ParseLastCap {
        /// The file.
        path: PathBuf,
        /// What it holds.
        value: String,
    },
}

/// `capability 21 (CAP_SYS_ADMIN)`, or just the number for one newer than this module.
fn number_name(number: u32) -> String {
    match Capability::from_number(number) {
        Some(cap) => format!("capability {number} ({cap})"),
        None => format!("capability {number}"),
    }
}

fn drop_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => {
            ": dropping needs CAP_SETPCAP in the effective set, so drop the bounding set \
             before capset lowers it"
        }
        Errno::EINVAL => ": this kernel has no capability of that number (see cap_last_cap)",
        _ => "",
    }
}

fn capset_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => {
            ": the permitted set may only shrink, and this process does not hold every \
             capability asked for (after setuid to a non-zero uid it keeps them only with \
             keep-caps set); without CAP_SETPCAP in effective, inheritable may gain only \
             what is permitted"
        }
        _ => "",
    }
}

fn ambient_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => {
            ": an ambient capability must be permitted and inheritable, and \
             SECBIT_NO_CAP_AMBIENT_RAISE unset"
        }
        Errno::EINVAL => ": this kernel has no ambient set (it needs Linux 4.3)",
        _ => "",
    }
}

/// The highest capability number this kernel knows, from `<proc_dir>/sys/kernel/cap_last_cap`
/// (40 on Linux 5.9 and later).
pub fn cap_last_cap(proc_dir: &Path) -> Result<u32, CapError> {
    let path = proc_dir.join("sys/kernel/cap_last_cap");
    let text = std::fs::read_to_string(&path).map_err(|source| CapError::ReadLastCap {
        path: path.clone(),
        source,
    })?;
    text.trim().parse().map_err(|_| CapError::ParseLastCap {
        path,
        value: text.trim().to_string(),
    })
}

// The PR_CAP_AMBIENT operations, as prctl's second argument (an unsigned long).
const AMBIENT_IS_SET: libc::c_ulong = libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong;
const AMBIENT_RAISE: libc::c_ulong = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
const AMBIENT_CLEAR_ALL: libc::c_ulong = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;

/// prctl(2) with integer arguments only; the fourth and fifth are zero, which the
/// `PR_CAP_AMBIENT` operations require.
fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<i32, Errno> {
    let zero: libc::c_ulong = 0;
    // SAFETY: the operations used here read their arguments as integers, never as
    // pointers, and every argument is passed as the `unsigned long` the kernel reads.
    Errno::result(unsafe { libc::prctl(option, arg2, arg3, zero, zero) })
}

/// Drops from this thread's bounding set every capability from 0 to `last_cap` that is
/// not in `keep`, including those newer than this module, which are never kept.
///
/// Call it first: `PR_CAPBSET_DROP` needs `CAP_SETPCAP` in the effective set, which
/// [`apply`] may take away. Children made afterwards inherit the lowered set.
/// See also [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html).
pub fn drop_bounding(keep: CapSet, last_cap: u32) -> Result<(), CapError> {
    for number in 0..=last_cap {
        let kept = Capability::from_number(number).is_some_and(|cap| keep.contains(cap));
        if !kept {
            prctl(libc::PR_CAPBSET_DROP, number.into(), 0).map_err(|source| {
                CapError::DropBounding {
                    cap: number,
                    source,
                }
            })?;
        }
    }
    Ok(())
}

/// Sets or clears keep-caps (`PR_SET_KEEPCAPS`). A change from uid 0 to a non-zero uid
/// empties the permitted set unless it is set; set it before setuid(2) to the
/// container's user and clear it after, then [`apply`] the sets (the effective set is
/// emptied whatever this says). execve(2) clears it too.
/// See also [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html).
pub fn set_keep_caps(keep: bool) -> Result<(), CapError> {
    prctl(libc::PR_SET_KEEPCAPS, keep.into(), 0)
        .map(drop)
        .map_err(|source| CapError::KeepCaps { keep, source })
}

/// The header of capset(2) and capget(2), `struct __user_cap_header_struct`.
#[repr(C)]
struct CapUserHeader {
    version: u32,
    /// 0: the calling thread.
    pid: i32,
}

/// One 32-bit word of each set, `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, passed as two [`CapUserData`] words
/// (version 1 had one word, 32 capabilities).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Word `index` of a set (0: capabilities 0 to 31, 1: 32 to 63).
fn word(set: CapSet, index: usize) -> u32 {
    (set.bits() >> (32 * index)) as u32
}

// ANCHOR: apply
/// Gives this thread `caps`' effective, permitted and inheritable sets with capset(2),
/// then makes its ambient set exactly `caps.ambient`. The bounding set is
/// [`drop_bounding`]'s: call that first, and this after any setuid(2).
///
/// The sets are [checked](Capabilities::check) first. Capabilities belong to a thread,
/// not a process: only the calling thread changes, so call it where there is one thread,
/// as in the freshly exec'd setup process.
/// See also [capset(2)](https://man7.org/linux/man-pages/man2/capset.2.html).
pub fn apply(caps: &Capabilities) -> Result<(), CapError> {
    caps.check()?;
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [0, 1].map(|i| CapUserData {
        effective: word(caps.effective, i),
        permitted: word(caps.permitted, i),
        inheritable: word(caps.inheritable, i),
    });
    // SAFETY: both are the kernel's structs (repr(C)), and version 3 reads exactly two
    // data words; the kernel may write a supported version into the header.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    Errno::result(ret).map_err(|source| CapError::Capset { source })?;

    // capset already dropped from ambient what is no longer both permitted and
    // inheritable; clearing it makes it exactly the list, whatever this process had.
    prctl(libc::PR_CAP_AMBIENT, AMBIENT_CLEAR_ALL, 0)
        .map_err(|source| CapError::ClearAmbient { source })?;
    for cap in caps.ambient.iter() {
        prctl(libc::PR_CAP_AMBIENT, AMBIENT_RAISE, cap.number().into())
            .map_err(|source| CapError::Ambient { cap, source })?;
    }
    Ok(())
}
// ANCHOR_END: apply

/// This thread's five sets, as the kernel holds them: capget(2) for effective, permitted
/// and inheritable, then `PR_CAPBSET_READ` and `PR_CAP_AMBIENT_IS_SET` for each
/// capability the kernel has. It only reads.
pub fn current() -> Result<Capabilities, CapError> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: both are the kernel's structs (repr(C)), and version 3 writes exactly two
    // data words.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    Errno::result(ret).map_err(|source| CapError::Capget { source })?;
    let join = |word: fn(&CapUserData) -> u32| {
        CapSet::from_bits(u64::from(word(&data[0])) | (u64::from(word(&data[1])) << 32))
    };
    let mut caps = Capabilities {
        effective: join(|d| d.effective),
        permitted: join(|d| d.permitted),
        inheritable: join(|d| d.inheritable),
        ..Capabilities::default()
    };
    for cap in Capability::ALL {
        // Asked of the kernel, not read from /proc, which the setup process may not
        // have mounted.
        match prctl(libc::PR_CAPBSET_READ, cap.number().into(), 0) {
            Ok(0) => {}
            Ok(_) => caps.bounding.insert(cap),
            // A kernel older than this module: it has no capability this high.
            Err(Errno::EINVAL) => break,
            Err(source) => return Err(CapError::ReadBounding { cap, source }),
        }
        match prctl(libc::PR_CAP_AMBIENT, AMBIENT_IS_SET, cap.number().into()) {
            Ok(0) => {}
            Ok(_) => caps.ambient.insert(cap),
            Err(source) => return Err(CapError::ReadAmbient { cap, source }),
        }
    }
    Ok(caps)
}

/// The five sets from the text of `/proc/PID/status`: its `CapInh`, `CapPrm`, `CapEff`,
/// `CapBnd` and `CapAmb` lines, in hex. `None` if one is missing or not hex, except
/// `CapAmb`, which kernels before 4.3 lack because they have no ambient set (so it is
/// empty).
pub fn parse_status(status: &str) -> Option<Capabilities> {
    let line = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
    };
    let set = |key: &str| {
        u64::from_str_radix(line(key)?.trim(), 16)
            .ok()
            .map(CapSet::from_bits)
    };
    Some(Capabilities {
        bounding: set("CapBnd")?,
        effective: set("CapEff")?,
        permitted: set("CapPrm")?,
        inheritable: set("CapInh")?,
        ambient: match line("CapAmb") {
            None => CapSet::EMPTY,
            Some(_) => set("CapAmb")?,
        },
    })
}
