//! The 41 capabilities by number and by name.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::apply::CapError;

/// One Linux capability. The discriminant is the kernel's capability number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Change a file's owner and group (chown(2)).
    Chown = 0,
    /// Bypass file read, write and execute permission checks.
    DacOverride = 1,
    /// Bypass read checks on files and search checks on directories; open_by_handle_at(2).
    DacReadSearch = 2,
    /// Bypass the checks that the caller owns the file: chmod(2), utimes, ACLs.
    Fowner = 3,
    /// Keep setuid and setgid bits when a file is modified.
    Fsetid = 4,
    /// Send signals to other users' processes.
    Kill = 5,
    /// Change group ids: setgid(2), setgroups(2), a gid map.
    Setgid = 6,
    /// Change user ids: setuid(2), a uid map.
    Setuid = 7,
    /// Drop from the bounding set, make any bounding capability inheritable, set
    /// securebits.
    Setpcap = 8,
    /// Set the immutable and append-only file attributes.
    LinuxImmutable = 9,
    /// Bind ports below 1024.
    NetBindService = 10,
    /// Broadcast and listen to multicast (unused by the kernel).
    NetBroadcast = 11,
    /// Configure interfaces, addresses, routes and firewall rules.
    NetAdmin = 12,
    /// Open raw and packet sockets (ping, packet capture).
    NetRaw = 13,
    /// Lock memory beyond `RLIMIT_MEMLOCK` (mlock(2)).
    IpcLock = 14,
    /// Bypass permission checks on System V IPC objects.
    IpcOwner = 15,
    /// Load and unload kernel modules.
    SysModule = 16,
    /// Raw I/O: iopl(2), ioperm(2), `/dev/mem`.
    SysRawio = 17,
    /// Call chroot(2).
    SysChroot = 18,
    /// Trace any process with ptrace(2) and read or write its memory.
    SysPtrace = 19,
    /// Switch process accounting on and off (acct(2)).
    SysPacct = 20,
    /// The catch-all: mount(2), setns(2), swapon(2), sethostname(2) and much more.
    SysAdmin = 21,
    /// Reboot (reboot(2)) and load a new kernel (kexec_load(2)).
    SysBoot = 22,
    /// Raise priorities and set real-time scheduling or CPU affinity of any process.
    SysNice = 23,
    /// Exceed resource limits and disk quotas; raise hard rlimits.
    SysResource = 24,
    /// Set the system clock, which no namespace covers.
    SysTime = 25,
    /// vhangup(2) and privileged terminal ioctls.
    SysTtyConfig = 26,
    /// Create device nodes with mknod(2).
    Mknod = 27,
    /// Take leases on files the caller does not own.
    Lease = 28,
    /// Write records to the kernel's audit log.
    AuditWrite = 29,
    /// Configure kernel auditing: rules, on and off.
    AuditControl = 30,
    /// Set file capabilities (the `security.capability` xattr).
    Setfcap = 31,
    /// Override mandatory access control (Smack).
    MacOverride = 32,
    /// Change mandatory access control policy (Smack, SELinux).
    MacAdmin = 33,
    /// Privileged syslog(2) operations; kernel addresses in `/proc` and `dmesg`.
    Syslog = 34,
    /// Set timers that wake the system from suspend.
    WakeAlarm = 35,
    /// Keep the system from suspending.
    BlockSuspend = 36,
    /// Read the audit log over netlink.
    AuditRead = 37,
    /// Performance monitoring with perf_event_open(2) (Linux 5.8).
    Perfmon = 38,
    /// Privileged BPF operations (Linux 5.8).
    Bpf = 39,
    /// Checkpoint and restore: choose PIDs with clone3(2), `ns_last_pid` (Linux 5.9).
    CheckpointRestore = 40,
}

/// The names, as capabilities(7) and the OCI spec spell them, indexed by number.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

impl Capability {
    /// Every capability, in number order: `ALL[n].number() == n`.
    pub const ALL: [Capability; 41] = {
        use Capability::*;
        [
            Chown,
            DacOverride,
            DacReadSearch,
            Fowner,
            Fsetid,
            Kill,
            Setgid,
            Setuid,
            Setpcap,
            LinuxImmutable,
            NetBindService,
            NetBroadcast,
            NetAdmin,
            NetRaw,
            IpcLock,
            IpcOwner,
            SysModule,
            SysRawio,
            SysChroot,
            SysPtrace,
            SysPacct,
            SysAdmin,
            SysBoot,
            SysNice,
            SysResource,
            SysTime,
            SysTtyConfig,
            Mknod,
            Lease,
            AuditWrite,
            AuditControl,
            Setfcap,
            MacOverride,
            MacAdmin,
            Syslog,
            WakeAlarm,
            BlockSuspend,
            AuditRead,
            Perfmon,
            Bpf,
            CheckpointRestore,
        ]
    };

    /// The kernel's number for it: its bit in every set.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The name as capabilities(7) and the OCI runtime spec spell it: `CAP_CHOWN`.
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The capability named `name`, in any case, with or without the `CAP_` prefix:
    /// `"CAP_CHOWN"`, `"cap_chown"` and `"chown"` are all [`Capability::Chown`], since
    /// Docker's `--cap-add` takes the short form and the OCI spec the long one.
    pub fn from_name(name: &str) -> Option<Capability> {
        let bare = match name.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("CAP_") => &name[4..],
            _ => name,
        };
        Capability::ALL
            .into_iter()
            .find(|cap| cap.name()["CAP_".len()..].eq_ignore_ascii_case(bare))
    }

    /// The capability numbered `n`, if this module knows one.
    pub fn from_number(n: u32) -> Option<Capability> {
        Capability::ALL.get(usize::try_from(n).ok()?).copied()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = CapError;

    fn from_str(name: &str) -> Result<Capability, CapError> {
        Capability::from_name(name).ok_or_else(|| CapError::UnknownName {
            name: name.to_string(),
        })
    }
}

/// What a serde error says it wanted instead of an unknown name.
const EXPECTED_NAME: &str = "a capability name from capabilities(7), such as CAP_CHOWN";

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Capability, D::Error> {
        let name = String::deserialize(deserializer)?;
        Capability::from_name(&name)
            .ok_or_else(|| de::Error::invalid_value(Unexpected::Str(&name), &EXPECTED_NAME))
    }
}
