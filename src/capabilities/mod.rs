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

mod apply;
mod names;
mod sets;

pub use apply::{
    CapError, apply, cap_last_cap, current, drop_bounding, parse_status, set_keep_caps,
};
pub use names::Capability;
pub use sets::{CapRule, CapSet, Capabilities, DOCKER_DEFAULT};

#[cfg(test)]
mod tests;
