//! Capabilities: root's power cut into pieces, and the five sets that say which pieces a
//! process holds.
//!
//! The classic UNIX rule was one test: effective uid 0 may do anything. Linux splits that
//! power into *capabilities* (41 since Linux 5.9, numbered 0 to 40;
//! `/proc/sys/kernel/cap_last_cap` says how many this kernel has), each checked on its
//! own: `CAP_CHOWN` to chown a file, `CAP_NET_BIND_SERVICE` to bind a port below 1024,
//! `CAP_SYS_ADMIN` to mount. A container's root is root, uid 0, but holds only some of
//! them, and this module is how the runtime takes the rest away. Chapter 4 (ch04-mount)
//! introduces it, because a root that keeps `CAP_SYS_ADMIN` could simply undo the mount
//! namespace's masked and read-only paths.
//!
//! # The five sets
//!
//! Every thread holds five bitmasks, bit N for capability N (`/proc/PID/status` prints
//! them in hex as `CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`):
//!
//! - **effective**: what the kernel checks when the thread acts. Nothing else counts.
//! - **permitted**: the ceiling for effective. A thread may raise into effective what is
//!   permitted, and drop capabilities from permitted, but never add one back.
//! - **inheritable**: what may pass through execve(2) to a program whose file lists the
//!   same capabilities in its own inheritable set; and, with permitted, the ceiling for
//!   ambient.
//! - **bounding**: the limit on what execve(2) can ever grant, from a setuid-root program
//!   or from file capabilities (`setcap cap_net_raw+ep /bin/ping`). It can only be
//!   lowered, and every child inherits it.
//! - **ambient** (Linux 4.3): capabilities that survive execve(2) of an ordinary program.
//!   Always a subset of permitted ∩ inheritable.
//!
//! # What execve(2) does to them
//!
//! With P the sets before the exec, F the program file's capabilities (its
//! `security.capability` xattr) and P′ the sets after, capabilities(7) gives:
//!
//! ```text
//! P′(ambient)     = F has capabilities, or is setuid/setgid ? ∅ : P(ambient)
//! P′(permitted)   = (P(inheritable) ∩ F(inheritable)) ∪ (F(permitted) ∩ P(bounding)) ∪ P′(ambient)
//! P′(effective)   = F(effective) ? P′(permitted) : P′(ambient)
//! P′(inheritable) = P(inheritable)
//! P′(bounding)    = P(bounding)
//! ```
//!
//! The permitted and effective sets from before the exec appear nowhere on the right:
//! what a runtime sets with capset(2) governs only its own last steps, and the exec
//! computes the container's sets afresh.
//!
//! **Root** keeps its old meaning by a special case: when the real or effective uid is 0
//! the kernel treats every program as if F(inheritable) and F(permitted) were full, and
//! F(effective) set when the effective uid is 0 (unless the `SECBIT_NOROOT` securebit is
//! set). So a container's root gets P′(permitted) = P′(effective) = P(bounding) ∪
//! P(inheritable): exactly its bounding set, since inheritable is empty or within
//! bounding. The bounding set is what really limits root in a container.
//!
//! **Any other user** running a program without file capabilities has F empty, so
//! P′(permitted) = P′(effective) = P′(ambient): only ambient capabilities survive, which
//! is why the ambient set was added. Docker leaves it empty, so `docker run --user 1000`
//! runs with no capabilities at all, although the runtime set effective and permitted to
//! the defaults just before the exec (`CapBnd` still shows them, as the ceiling for
//! setuid-root and file-capability programs).
//!
//! # The order a runtime applies them
//!
//! In the container's setup process, after the mounts and just before the exec:
//!
//! 1. [`drop_bounding`]: `prctl(PR_CAPBSET_DROP)` needs `CAP_SETPCAP` in the *effective*
//!    set, so it comes first, while the setup process still holds everything; the
//!    container's own sets may leave `CAP_SETPCAP` out.
//! 2. [`set_keep_caps`]`(true)`, setuid(2) to the container's user,
//!    [`set_keep_caps`]`(false)`: going from uid 0 to a non-zero uid empties effective
//!    and ambient, and permitted too unless keep-caps is set.
//! 3. [`apply`]: capset(2) sets effective, permitted and inheritable, then `prctl`
//!    empties ambient and raises each ambient capability.
//! 4. execve(2), which recomputes all of them as above.
//!
//! [`Capabilities::check`] holds the sets to the kernel's rules for steps 3 and 4 before
//! anything is applied, so that a bad configuration gets a reason instead of `EPERM`.
//!
//! # Docker's default, and what it drops
//!
//! [`Capabilities::docker_default`] keeps the 14 capabilities an ordinary image's root
//! uses: package managers chown files, set setuid bits and file capabilities, and switch to
//! service users (`CHOWN`, `DAC_OVERRIDE`, `FOWNER`, `FSETID`, `SETUID`, `SETGID`,
//! `SETFCAP`); a web server binds port 80 (`NET_BIND_SERVICE`); `ping` opens a raw socket
//! (`NET_RAW`); root signals services that run as other users (`KILL`); daemons chroot
//! (`SYS_CHROOT`), log in users (`AUDIT_WRITE`), drop their own capabilities
//! (`SETPCAP`), and images create device nodes (`MKNOD`). The other 27 go, and the worst
//! of them would undo the container:
//!
//! - `CAP_SYS_ADMIN`, "the new root": mount anything, including a cgroup v1 hierarchy
//!   whose `release_agent` the host kernel runs as root (CVE-2022-0492), or the host's
//!   disk; plus setns, swapon, quotas and a long tail of admin work.
//! - `CAP_SYS_MODULE`: load a kernel module, which is running any code in the host's
//!   kernel.
//! - `CAP_SYS_PTRACE`: trace any process it can see and write into its memory; with the
//!   host's PID namespace, that is the host's processes.
//! - `CAP_NET_ADMIN`: reconfigure interfaces, routes and firewall rules — its own in a
//!   network namespace, the host's with `--net=host`.
//! - `CAP_DAC_READ_SEARCH`: open_by_handle_at(2) opens a file by its handle (on ext4,
//!   little more than the inode number) anywhere on a filesystem the container has any
//!   file of, past the container's mounts: the 2014 "shocker" exploit read the host's
//!   `/etc/shadow` this way from Docker 0.x.
//! - `CAP_SYS_RAWIO` (`/dev/mem`, I/O ports), `CAP_SYS_TIME` (the host's clock, which no
//!   namespace covers), `CAP_MAC_ADMIN` and `CAP_MAC_OVERRIDE` (the AppArmor, SELinux or
//!   Smack policy that confines the container), `CAP_SYSLOG` (kernel addresses, which
//!   defeat KASLR), `CAP_BPF` with `CAP_PERFMON` (tracing programs that read kernel
//!   memory).
//!
//! `CAP_MKNOD` is harmless only where something stops the *use* of a node: a device
//! cgroup refuses to open devices not on its list, and in a user namespace the kernel
//! refuses mknod(2) of devices outright (`CAP_MKNOD` counts only in the host's user
//! namespace) and filesystems mounted there are `nodev`. Nutshell has no device cgroup
//! yet, so a container whose root is the host's root, with `CAP_MKNOD`, can
//! `mknod /sda b 8 0` and read and write the host's disk: without a user namespace, drop
//! it.
//!
//! `CAP_NET_RAW` is in the list for `ping`, but also lets a container forge packets to its
//! neighbours on the bridge (ARP and DNS spoofing), and packet sockets have had kernel
//! bugs (CVE-2020-14386). Kubernetes' "restricted" Pod Security Standard drops it, with
//! everything else but `NET_BIND_SERVICE`.
//!
//! See also [capabilities(7)](https://man7.org/linux/man-pages/man7/capabilities.7.html),
//! [capset(2)](https://man7.org/linux/man-pages/man2/capset.2.html),
//! [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html) (`PR_CAPBSET_DROP`,
//! `PR_CAP_AMBIENT`, `PR_SET_KEEPCAPS`) and the OCI runtime spec's
//! [`process.capabilities`](https://github.com/opencontainers/runtime-spec/blob/main/config.md#linux-process).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The bits that name a capability this module knows (0..=40).
const KNOWN_BITS: u64 = (1 << Capability::ALL.len()) - 1;

/// A set of capabilities, stored as the kernel stores it: bit N is capability N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// No capabilities.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set whose mask is `bits`, as `/proc/PID/status` and capget(2) give it. Bits
    /// above 40 name no capability this module knows, and are dropped.
    pub fn from_bits(bits: u64) -> CapSet {
        CapSet(bits & KNOWN_BITS)
    }

    /// The mask: bit N is set when capability N is in the set.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & bit(cap) != 0
    }

    /// Add `cap`.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= bit(cap);
    }

    /// Take `cap` out.
    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !bit(cap);
    }

    /// The capabilities in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |cap| self.contains(*cap))
    }

    /// Whether every capability here is also in `other`.
    pub fn is_subset(self, other: CapSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The capabilities in either set.
    pub fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// The capabilities in both sets.
    pub fn intersection(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// The capabilities here that are not in `other`: what breaks `self ⊆ other`.
    pub fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Every capability numbered 0 to `last_cap`, the host's
    /// `/proc/sys/kernel/cap_last_cap` (see [`cap_last_cap`]); numbers above 40 add nothing.
    pub fn all_up_to(last_cap: u32) -> CapSet {
        match last_cap.checked_add(1) {
            Some(count) if count < 64 => CapSet::from_bits((1 << count) - 1),
            _ => CapSet(KNOWN_BITS),
        }
    }

    /// How many capabilities are in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The mask as `/proc/PID/status` prints it (`CapEff:`): 16 hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

fn bit(cap: Capability) -> u64 {
    1 << cap.number()
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(caps: I) -> CapSet {
        let mut set = CapSet::EMPTY;
        for cap in caps {
            set.insert(cap);
        }
        set
    }
}

/// The names, lowest number first, separated by spaces, or `none`.
impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, cap) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(cap.name())?;
        }
        Ok(())
    }
}

/// A list of names, `["CAP_CHOWN", "CAP_KILL"]`, as the OCI runtime spec's
/// `process.capabilities` holds each set.
impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A list of names, in any order, repeats allowed; an unknown name is an error that
/// names it, so that a typo cannot silently drop a capability the container needs.
///
/// The OCI runtime spec is laxer: since runtime-spec PR 1094 (2021) a runtime SHOULD NOT
/// fail on a capability it cannot grant but log a warning, and runc and crun skip unknown
/// names, so that a config written for a newer kernel runs on an older one. A front end
/// for third-party `config.json` files that wants that must filter the names first.
impl<'de> Deserialize<'de> for CapSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CapSet, D::Error> {
        Ok(Vec::<Capability>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// The five capability sets of a process (see capabilities(7)), named as the OCI runtime
/// spec's `process.capabilities` names them; a set missing from JSON is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// The ceiling on what any later execve(2) can grant; for root, what it gets.
    pub bounding: CapSet,
    /// What the kernel checks.
    pub effective: CapSet,
    /// The ceiling for effective.
    pub permitted: CapSet,
    /// What may pass through execve(2) to programs with matching file capabilities.
    pub inheritable: CapSet,
    /// What survives execve(2) of an ordinary program, also for non-root users.
    pub ambient: CapSet,
}

// ANCHOR: docker_default
/// Docker's default capabilities, in moby's order: `DefaultCapabilities()` in
/// `daemon/pkg/oci/caps/defaults.go` (in older releases `oci/caps/defaults.go`) of
/// <https://github.com/moby/moby>, the same 14 for years.
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

impl Capabilities {
    /// What Docker gives a container: [`DOCKER_DEFAULT`] as bounding, effective and
    /// permitted, no inheritable and no ambient capabilities.
    pub fn docker_default() -> Capabilities {
        let default: CapSet = DOCKER_DEFAULT.into_iter().collect();
        Capabilities {
            bounding: default,
            effective: default,
            permitted: default,
            // Empty, as the kernel itself never fills it. Docker before 20.10.14 copied
            // the defaults here too, and a program with inheritable file capabilities
            // then gained them on exec even when run by an unprivileged user.
            // Ref: https://osv.dev/vulnerability/CVE-2022-24769
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }
    }
}
// ANCHOR_END: docker_default

impl Capabilities {
    /// What root has on the host: every capability 0 to `last_cap` (see
    /// [`cap_last_cap`]) in bounding, effective and permitted; inheritable and ambient
    /// empty.
    pub fn all(last_cap: u32) -> Capabilities {
        let all = CapSet::all_up_to(last_cap);
        Capabilities {
            bounding: all,
            effective: all,
            permitted: all,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }
    }

    /// Checks the sets against the rules the kernel holds them to when the runtime
    /// applies them — the bounding drop first, then capset(2), then the ambient raises —
    /// and names the first rule broken and the capabilities that break it, instead of
    /// the kernel's bare `EPERM`. In that order:
    ///
    /// 1. inheritable ⊆ bounding: capset(2) refuses an inheritable capability that is
    ///    neither in the (just lowered) bounding set nor inheritable already. The setup
    ///    process normally has no inheritable capabilities; and one kept inheritable
    ///    outside the bounding set would get past it, since P(inheritable) ∩
    ///    F(inheritable) reaches the permitted set on exec without meeting the bounding
    ///    set. So this holds to the strict rule.
    /// 2. effective ⊆ permitted: capset(2)'s last check.
    /// 3. ambient ⊆ permitted, then 4. ambient ⊆ inheritable:
    ///    `prctl(PR_CAP_AMBIENT_RAISE)` refuses anything else.
    ///
    /// Not checked, because they are not rules: permitted or effective capabilities
    /// outside the bounding set (the kernel takes them, and the exec ends them: root gets
    /// bounding ∪ inheritable, others only ambient). Not checkable here, because they
    /// depend on the applying process, not on the sets: capset(2) lets permitted only
    /// shrink, and without `CAP_SETPCAP` in effective lets inheritable gain only what is
    /// permitted. [`apply`] reports those with the errno and what it most likely means.
    pub fn check(&self) -> Result<(), CapError> {
        for rule in CapRule::IN_ORDER {
            let (inner, outer) = rule.sets(self);
            let caps = inner.difference(outer);
            if !caps.is_empty() {
                return Err(CapError::Invalid { rule, caps });
            }
        }
        Ok(())
    }
}

/// The five sets, one per line, for a plan to print.
impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bounding     {}", self.bounding)?;
        writeln!(f, "effective    {}", self.effective)?;
        writeln!(f, "permitted    {}", self.permitted)?;
        writeln!(f, "inheritable  {}", self.inheritable)?;
        write!(f, "ambient      {}", self.ambient)
    }
}

/// A rule the kernel holds capability sets to, as [`Capabilities::check`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapRule {
    /// capset(2) adds no inheritable capability outside the bounding set.
    InheritableWithinBounding,
    /// capset(2) makes nothing effective that is not permitted.
    EffectiveWithinPermitted,
    /// `PR_CAP_AMBIENT_RAISE` raises only a permitted capability.
    AmbientWithinPermitted,
    /// `PR_CAP_AMBIENT_RAISE` raises only an inheritable capability.
    AmbientWithinInheritable,
}

impl CapRule {
    /// The rules in the order [`drop_bounding`] and [`apply`] meet them.
    pub const IN_ORDER: [CapRule; 4] = [
        CapRule::InheritableWithinBounding,
        CapRule::EffectiveWithinPermitted,
        CapRule::AmbientWithinPermitted,
        CapRule::AmbientWithinInheritable,
    ];

    /// The set that must fit, and the set it must fit in.
    fn sets(self, caps: &Capabilities) -> (CapSet, CapSet) {
        match self {
            CapRule::InheritableWithinBounding => (caps.inheritable, caps.bounding),
            CapRule::EffectiveWithinPermitted => (caps.effective, caps.permitted),
            CapRule::AmbientWithinPermitted => (caps.ambient, caps.permitted),
            CapRule::AmbientWithinInheritable => (caps.ambient, caps.inheritable),
        }
    }

    /// The set that must be the smaller, the set it must fit in, and who refuses.
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            CapRule::InheritableWithinBounding => ("inheritable", "bounding", "capset(2)"),
            CapRule::EffectiveWithinPermitted => ("effective", "permitted", "capset(2)"),
            CapRule::AmbientWithinPermitted => {
                ("ambient", "permitted", "prctl(PR_CAP_AMBIENT_RAISE)")
            }
            CapRule::AmbientWithinInheritable => {
                ("ambient", "inheritable", "prctl(PR_CAP_AMBIENT_RAISE)")
            }
        }
    }

    fn explain(self, caps: CapSet) -> String {
        let (inner, outer, refuser) = self.parts();
        let is = if caps.len() == 1 { "is" } else { "are" };
        format!(
            "{inner} must be within {outer}, but {caps} {is} in {inner} and not in {outer} \
             ({refuser} would refuse with EPERM)"
        )
    }
}

impl fmt::Display for CapRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (inner, outer, _) = self.parts();
        write!(f, "{inner} ⊆ {outer}")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    const DOCKER_ROOT_STATUS: &str =
        include_str!("../tests/fixtures/proc-status/docker-default-root.txt");

    fn set(caps: &[Capability]) -> CapSet {
        caps.iter().copied().collect()
    }

    #[test]
    fn every_capabilitys_number_is_its_position_in_all() {
        for (position, cap) in Capability::ALL.into_iter().enumerate() {
            assert_eq!(cap.number() as usize, position, "{cap}");
            assert_eq!(Capability::from_number(cap.number()), Some(cap));
        }
        assert_eq!(Capability::from_number(41), None);
        assert_eq!(Capability::from_number(u32::MAX), None);
    }

    #[test]
    fn names_are_spelled_as_in_capabilities_7_and_round_trip() {
        assert_eq!(Chown.name(), "CAP_CHOWN");
        assert_eq!(SysAdmin.to_string(), "CAP_SYS_ADMIN");
        assert_eq!(CheckpointRestore.name(), "CAP_CHECKPOINT_RESTORE");
        for cap in Capability::ALL {
            assert_eq!(Capability::from_name(cap.name()), Some(cap));
            assert_eq!(cap.name().parse::<Capability>().ok(), Some(cap));
        }
    }

    #[test]
    fn from_name_takes_any_case_with_or_without_the_cap_prefix() {
        for name in ["chown", "CAP_CHOWN", "cap_chown", "Cap_Chown", "CHOWN"] {
            assert_eq!(Capability::from_name(name), Some(Chown), "{name}");
        }
        assert_eq!(
            Capability::from_name("net_bind_service"),
            Some(NetBindService)
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        for name in [
            "",
            "CAP_",
            "CAP_CAP_CHOWN",
            "chown ",
            "CAP_FOO",
            "all",
            "çap_x",
        ] {
            assert_eq!(Capability::from_name(name), None, "{name:?}");
        }
        assert_eq!(
            "CAP_FOO".parse::<Capability>().unwrap_err().to_string(),
            "unknown capability \"CAP_FOO\": capabilities(7) lists the names, such as \
             CAP_CHOWN (or chown)"
        );
    }

    #[test]
    fn docker_default_is_mobys_fourteen_in_bounding_effective_and_permitted() {
        let caps = Capabilities::docker_default();
        let expected = set(&[
            Chown,
            DacOverride,
            Fsetid,
            Fowner,
            Mknod,
            NetRaw,
            Setgid,
            Setuid,
            Setfcap,
            Setpcap,
            NetBindService,
            SysChroot,
            Kill,
            AuditWrite,
        ]);
        assert_eq!(expected.len(), 14);
        assert_eq!(caps.bounding, expected);
        assert_eq!(caps.effective, expected);
        assert_eq!(caps.permitted, expected);
        assert_eq!(caps.inheritable, CapSet::EMPTY);
        assert_eq!(caps.ambient, CapSet::EMPTY);
        assert!(!caps.bounding.contains(SysAdmin));
        assert_eq!(caps.check().ok(), Some(()));
    }

    #[test]
    fn docker_default_is_a80425fb_as_proc_status_shows_it() {
        // Bits 0 1 3 4 5 6 7 8 = 0x1fb, 10 = 0x400, 13 = 0x2000, 18 = 0x40000,
        // 27 = 0x0800_0000, 29 = 0x2000_0000, 31 = 0x8000_0000.
        assert_eq!(
            Capabilities::docker_default().effective.hex(),
            "00000000a80425fb"
        );
        assert_eq!(
            parse_status(DOCKER_ROOT_STATUS),
            Some(Capabilities::docker_default())
        );
    }

    #[test]
    fn all_up_to_40_has_41_capabilities_and_numbers_above_add_nothing() {
        assert_eq!(CapSet::all_up_to(40).len(), 41);
        assert_eq!(CapSet::all_up_to(40).hex(), "000001ffffffffff");
        assert_eq!(CapSet::all_up_to(0), set(&[Chown]));
        assert_eq!(CapSet::all_up_to(37).len(), 38);
        assert_eq!(CapSet::all_up_to(63), CapSet::all_up_to(40));
        assert_eq!(CapSet::all_up_to(u32::MAX), CapSet::all_up_to(40));
    }

    #[test]
    fn all_is_roots_host_sets_full_but_no_inheritable_or_ambient() {
        let caps = Capabilities::all(40);
        assert_eq!(caps.bounding.len(), 41);
        assert_eq!(caps.effective, caps.bounding);
        assert_eq!(caps.permitted, caps.bounding);
        assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
        assert_eq!(caps.check().ok(), Some(()));
    }

    #[test]
    fn sets_insert_remove_and_compare_as_bitmasks() {
        let mut caps = CapSet::EMPTY;
        assert!(caps.is_empty());
        caps.insert(Kill);
        caps.insert(Kill);
        caps.insert(MacAdmin);
        assert_eq!(caps.bits(), (1 << 5) | (1 << 33));
        assert_eq!(caps.len(), 2);
        assert!(caps.contains(MacAdmin) && !caps.contains(Chown));
        assert_eq!(caps.iter().collect::<Vec<_>>(), [Kill, MacAdmin]);
        let both = set(&[Kill, Chown]);
        assert_eq!(caps.union(both), set(&[Chown, Kill, MacAdmin]));
        assert_eq!(caps.intersection(both), set(&[Kill]));
        assert_eq!(caps.difference(both), set(&[MacAdmin]));
        assert!(set(&[Kill]).is_subset(caps) && !caps.is_subset(both));
        assert!(CapSet::EMPTY.is_subset(CapSet::EMPTY));
        caps.remove(Kill);
        caps.remove(Kill);
        assert_eq!(caps, set(&[MacAdmin]));
    }

    #[test]
    fn from_bits_keeps_only_bits_that_name_a_capability() {
        assert_eq!(CapSet::from_bits(u64::MAX), CapSet::all_up_to(40));
        assert_eq!(CapSet::from_bits(1 << 41), CapSet::EMPTY);
    }

    #[test]
    fn a_set_prints_as_its_names_lowest_first_or_none() {
        assert_eq!(set(&[Kill, Chown]).to_string(), "CAP_CHOWN CAP_KILL");
        assert_eq!(CapSet::EMPTY.to_string(), "none");
        assert_eq!(CapSet::EMPTY.hex(), "0000000000000000");
    }

    #[test]
    fn the_five_sets_print_one_per_line() {
        let caps = Capabilities {
            bounding: set(&[Chown, Kill]),
            effective: set(&[Kill]),
            permitted: set(&[Kill]),
            ..Capabilities::default()
        };
        assert_eq!(
            caps.to_string(),
            "bounding     CAP_CHOWN CAP_KILL\n\
             effective    CAP_KILL\n\
             permitted    CAP_KILL\n\
             inheritable  none\n\
             ambient      none"
        );
    }

    #[test]
    fn sets_serialize_as_oci_name_lists_and_round_trip() {
        let caps = Capabilities {
            bounding: set(&[Kill, Chown, NetBindService]),
            effective: set(&[Chown]),
            permitted: set(&[Chown, NetBindService]),
            inheritable: set(&[NetBindService]),
            ambient: set(&[NetBindService]),
        };
        let json = serde_json::to_string(&caps).unwrap();
        assert_eq!(
            json,
            r#"{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}"#
        );
        assert_eq!(serde_json::from_str::<Capabilities>(&json).unwrap(), caps);
    }

    #[test]
    fn an_oci_capabilities_object_reads_with_missing_sets_empty() {
        let caps: Capabilities = serde_json::from_str(
            r#"{"bounding": ["CAP_KILL", "CAP_AUDIT_WRITE", "CAP_KILL"], "effective": ["cap_kill"]}"#,
        )
        .unwrap();
        assert_eq!(caps.bounding, set(&[Kill, AuditWrite]));
        assert_eq!(caps.effective, set(&[Kill]));
        assert_eq!(caps.permitted, CapSet::EMPTY);
        assert_eq!(caps.ambient, CapSet::EMPTY);
    }

    #[test]
    fn an_unknown_name_in_json_is_an_error_naming_it() {
        let err =
            serde_json::from_str::<Capabilities>(r#"{"effective": ["CAP_CHOWN", "CAP_FLY"]}"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with(
                "invalid value: string \"CAP_FLY\", expected a capability name from \
                 capabilities(7), such as CAP_CHOWN"
            ),
            "{err}"
        );
        assert!(serde_json::from_str::<CapSet>(r#""CAP_CHOWN""#).is_err());
    }

    fn broken(caps: Capabilities) -> (CapRule, CapSet) {
        match caps.check() {
            Err(CapError::Invalid { rule, caps }) => (rule, caps),
            other => panic!("expected a broken rule, got {other:?}"),
        }
    }

    #[test]
    fn check_refuses_inheritable_outside_bounding() {
        let mut caps = Capabilities::docker_default();
        caps.inheritable = set(&[Chown, NetAdmin, SysAdmin]);
        assert_eq!(
            broken(caps),
            (
                CapRule::InheritableWithinBounding,
                set(&[NetAdmin, SysAdmin])
            )
        );
        assert_eq!(
            caps.check().unwrap_err().to_string(),
            "invalid capability sets: inheritable must be within bounding, but CAP_NET_ADMIN \
             CAP_SYS_ADMIN are in inheritable and not in bounding (capset(2) would refuse \
             with EPERM)"
        );
    }

    #[test]
    fn check_refuses_effective_outside_permitted() {
        let mut caps = Capabilities::docker_default();
        caps.permitted.remove(Kill);
        assert_eq!(
            broken(caps),
            (CapRule::EffectiveWithinPermitted, set(&[Kill]))
        );
        assert_eq!(
            caps.check().unwrap_err().to_string(),
            "invalid capability sets: effective must be within permitted, but CAP_KILL is in \
             effective and not in permitted (capset(2) would refuse with EPERM)"
        );
    }

    #[test]
    fn check_refuses_ambient_outside_permitted_then_outside_inheritable() {
        let mut caps = Capabilities::docker_default();
        caps.ambient = set(&[NetBindService]);
        assert_eq!(
            broken(caps),
            (CapRule::AmbientWithinInheritable, set(&[NetBindService]))
        );
        caps.inheritable = set(&[NetBindService]);
        assert_eq!(caps.check().ok(), Some(()));
        caps.permitted.remove(NetBindService);
        caps.effective.remove(NetBindService);
        assert_eq!(
            broken(caps),
            (CapRule::AmbientWithinPermitted, set(&[NetBindService]))
        );
        assert!(
            caps.check()
                .unwrap_err()
                .to_string()
                .ends_with("(prctl(PR_CAP_AMBIENT_RAISE) would refuse with EPERM)")
        );
    }

    #[test]
    fn check_reports_the_first_rule_in_the_order_they_are_applied() {
        let caps = Capabilities {
            inheritable: set(&[Kill]),
            effective: set(&[Kill]),
            ambient: set(&[Kill]),
            ..Capabilities::default()
        };
        assert_eq!(broken(caps).0, CapRule::InheritableWithinBounding);
        assert_eq!(
            CapRule::InheritableWithinBounding.to_string(),
            "inheritable ⊆ bounding"
        );
    }

    #[test]
    fn check_allows_permitted_and_effective_outside_bounding() {
        // Not a kernel rule: the exec recomputes both from the bounding set anyway.
        let caps = Capabilities {
            bounding: set(&[Chown]),
            effective: set(&[Chown, SysAdmin]),
            permitted: set(&[Chown, SysAdmin]),
            ..Capabilities::default()
        };
        assert_eq!(caps.check().ok(), Some(()));
    }

    #[test]
    fn parse_status_reads_the_five_cap_lines() {
        let status = "Name:\tsleep\nCapInh:\t0000000000000400\nCapPrm:\t0000000000000401\n\
                      CapEff:\t0000000000000001\nCapBnd:\t000001ffffffffff\n\
                      CapAmb:\t0000000000000400\nNoNewPrivs:\t1\n";
        assert_eq!(
            parse_status(status),
            Some(Capabilities {
                bounding: CapSet::all_up_to(40),
                effective: set(&[Chown]),
                permitted: set(&[Chown, NetBindService]),
                inheritable: set(&[NetBindService]),
                ambient: set(&[NetBindService]),
            })
        );
    }

    #[test]
    fn parse_status_without_capamb_has_no_ambient_but_needs_the_other_four() {
        let old_kernel = "CapInh:\t0\nCapPrm:\t20\nCapEff:\t20\nCapBnd:\t3fffffffff\n";
        assert_eq!(
            parse_status(old_kernel).map(|caps| caps.ambient),
            Some(CapSet::EMPTY)
        );
        assert_eq!(
            parse_status("CapPrm:\t20\nCapEff:\t20\nCapBnd:\t20\n"),
            None
        );
        assert_eq!(parse_status(&format!("{old_kernel}CapAmb:\tzz\n")), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn cap_last_cap_reads_proc_sys_kernel() {
        let proc_dir = tempfile::tempdir().unwrap();
        let kernel = proc_dir.path().join("sys/kernel");
        let err = cap_last_cap(proc_dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("read {}: ", kernel.join("cap_last_cap").display())),
            "{err}"
        );
        std::fs::create_dir_all(&kernel).unwrap();
        std::fs::write(kernel.join("cap_last_cap"), "40\n").unwrap();
        assert_eq!(cap_last_cap(proc_dir.path()).ok(), Some(40));
        std::fs::write(kernel.join("cap_last_cap"), "forty\n").unwrap();
        assert!(matches!(
            cap_last_cap(proc_dir.path()),
            Err(CapError::ParseLastCap { value, .. }) if value == "forty"
        ));
    }

    #[test]
    fn errors_of_the_syscalls_name_the_operation_and_keep_the_errno() {
        let drop = CapError::DropBounding {
            cap: 21,
            source: Errno::EPERM,
        };
        assert_eq!(
            drop.to_string(),
            "drop capability 21 (CAP_SYS_ADMIN) from the bounding set (prctl \
             PR_CAPBSET_DROP): EPERM: Operation not permitted: dropping needs CAP_SETPCAP in \
             the effective set, so drop the bounding set before capset lowers it"
        );
        assert!(
            CapError::DropBounding {
                cap: 41,
                source: Errno::EINVAL
            }
            .to_string()
            .starts_with("drop capability 41 from the bounding set")
        );
        let raise = CapError::Ambient {
            cap: NetBindService,
            source: Errno::EPERM,
        };
        assert!(
            raise
                .to_string()
                .starts_with("raise CAP_NET_BIND_SERVICE in the ambient set")
        );
        assert_eq!(
            std::error::Error::source(&raise).map(ToString::to_string),
            Some(Errno::EPERM.to_string())
        );
    }

    #[test]
    fn current_reads_this_thread_with_effective_within_permitted() {
        let caps = current().unwrap();
        assert!(caps.effective.is_subset(caps.permitted), "{caps}");
        assert!(
            caps.ambient
                .is_subset(caps.permitted.intersection(caps.inheritable)),
            "{caps}"
        );
    }

    #[test]
    fn current_agrees_with_proc_thread_self_status() {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert_eq!(Some(current().unwrap()), parse_status(&status));
    }
}
