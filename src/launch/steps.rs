//! The steps of a launch plan, as typed data: what nutshell does on the host, and what
//! the container's first process does, each printable as one line of the plan.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::capabilities::{CapSet, Capabilities};
use crate::cgroups::Setting;
use crate::mounts::MountOp;
use crate::namespaces::{self, Namespace, TimeOffsets};
use crate::net::NetStep;
use crate::spec::{Program, Rlimit, User};
use crate::userns::{MapWriter, MappingPlan};

/// How long the host side waits for the container's first process to be ready, or to
/// exec its program: its steps take milliseconds, so this means something is stuck.
pub const CHILD_TIMEOUT_SECS: u64 = 30;

/// Something nutshell does on the host, in order. The steps before [`ParentStep::Clone`]
/// make what the container needs; those after it run while its first process waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentStep {
    /// Remove what containers whose owner was killed left behind.
    SweepStale {
        /// The state directory of this user's containers.
        state_root: PathBuf,
    },
    /// Make the container's state directory, hold its lock, write `state.json`.
    RecordState {
        /// `<state>/<id>`.
        dir: PathBuf,
    },
    /// Make the container's own directories under the data directory.
    CreateContainerDirs {
        /// `<data>/containers/<id>`.
        dir: PathBuf,
        /// The subdirectories to make.
        subdirs: Vec<String>,
        /// Their owner, the container's root as the host knows it.
        owner: Option<(u32, u32)>,
    },
    /// Make an idmapped copy of each directory, through the container's maps.
    IdmapTrees {
        /// The directories.
        sources: Vec<PathBuf>,
    },
    /// Make the container's cgroup.
    CreateCgroup {
        /// Its path below each hierarchy's root.
        path: String,
        /// Its controllers.
        controllers: Vec<String>,
    },
    /// Write one limit into the cgroup.
    WriteCgroup(Setting),
    /// Attach an eBPF program with these device rules to the cgroup (cgroup v2, which
    /// has no `devices.allow`).
    AttachDeviceFilter(Vec<crate::cgroups::DeviceRule>),
    /// Copy this program into a sealed memfd: what the container's first process runs.
    SealInit {
        /// The program, normally `/proc/self/exe`.
        binary: PathBuf,
    },
    /// clone(2) the container's first process into its new namespaces.
    Clone {
        /// The new namespaces.
        namespaces: Vec<Namespace>,
    },
    /// Write the first process's id maps.
    WriteIdMaps(MappingPlan),
    /// Move the first process into another container's cgroup, which it does not own.
    EnterCgroup {
        /// The cgroup's path.
        path: String,
        /// Its controllers.
        controllers: Vec<String>,
    },
    /// Join an existing PID (and time) namespace for the processes this one makes
    /// next: setns(2) of these kinds changes only the namespace of children, so it is
    /// done here, before the clone, and the first process starts inside.
    JoinForChildren {
        /// The namespace files.
        paths: Vec<PathBuf>,
    },
    /// Move the first process into the cgroup.
    JoinCgroup {
        /// The cgroup's path.
        path: String,
    },
    /// Set how eagerly the OOM killer picks the container.
    SetOomScoreAdj(i32),
    /// Set one resource limit of the first process (prlimit(2)).
    SetRlimit(Rlimit),
    /// One step of connecting the container's network namespace.
    Network(NetStep),
    /// Run the hooks of a stage run on the host (prestart, createRuntime), the state
    /// on their stdin.
    RunHooks {
        /// The stage.
        stage: crate::hooks::Stage,
        /// Its hooks' programs, in order (the hooks themselves are the spec's).
        paths: Vec<PathBuf>,
    },
    /// Let the first process go on, and send it its steps.
    Release,
    /// Wait until it reports that it waits at its start gate: created.
    WaitReady,
    /// At start: open the gate, and wait until the program is exec'd.
    Start,
}

impl fmt::Display for ParentStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentStep::SweepStale { state_root } => write!(
                f,
                "remove what killed containers left (their state in {})",
                state_root.display()
            ),
            ParentStep::RecordState { dir } => write!(
                f,
                "make {} (state.json, and a lock held while this runs)",
                dir.display()
            ),
            ParentStep::CreateContainerDirs {
                dir,
                subdirs,
                owner,
            } => {
                write!(f, "make {}/{{{}}}", dir.display(), subdirs.join(","))?;
                if let Some((uid, gid)) = owner {
                    write!(f, ", owned by {uid}:{gid}")?;
                }
                Ok(())
            }
            ParentStep::IdmapTrees { sources } => {
                let names: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
                write!(
                    f,
                    "make an idmapped copy of {} through the container's maps (open_tree, mount_setattr)",
                    names.join(", ")
                )
            }
            ParentStep::CreateCgroup { path, controllers } => {
                write!(f, "create cgroup {path} ({})", controllers.join(", "))
            }
            ParentStep::WriteCgroup(setting) => write!(
                f,
                "write {} to {} ({})",
                setting.value, setting.file, setting.meaning
            ),
            ParentStep::AttachDeviceFilter(rules) => write!(
                f,
                "attach an eBPF device filter of {} rules to its cgroup2 directory (v2 has no devices.allow)",
                rules.len()
            ),
            ParentStep::SealInit { binary } => write!(
                f,
                "copy {} into a sealed memfd, the container's first program (nutshell-init)",
                binary.display()
            ),
            ParentStep::Clone { namespaces } => {
                if namespaces.is_empty() {
                    write!(
                        f,
                        "clone the first process (no new namespaces: a plain fork)"
                    )
                } else {
                    write!(
                        f,
                        "clone the first process into new {} namespaces",
                        namespaces::describe(namespaces)
                    )
                }
            }
            ParentStep::WriteIdMaps(mapping) => {
                let maps = |maps: &[crate::userns::IdMap]| {
                    maps.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let how = match &mapping.writer {
                    MapWriter::Kernel if mapping.deny_setgroups => {
                        "to /proc/PID/{setgroups,uid_map,gid_map}"
                    }
                    MapWriter::Kernel => "to /proc/PID/{uid_map,gid_map}",
                    MapWriter::Helpers { .. } => "with newuidmap and newgidmap",
                };
                write!(
                    f,
                    "write its id maps {how}: uids {}, gids {}",
                    maps(&mapping.maps.uids),
                    maps(&mapping.maps.gids)
                )
            }
            ParentStep::EnterCgroup { path, .. } => {
                write!(
                    f,
                    "move it into its container's cgroup {path} (not its own)"
                )
            }
            ParentStep::JoinForChildren { paths } => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "join {} for the processes made next (setns: its children start inside)",
                    names.join(", ")
                )
            }
            ParentStep::JoinCgroup { path } => {
                write!(f, "move it into cgroup {path} (its cgroup.procs)")
            }
            ParentStep::SetOomScoreAdj(value) => write!(f, "write {value} to its oom_score_adj"),
            ParentStep::SetRlimit(rlimit) => write!(
                f,
                "set its {} to {} (hard {}) with prlimit",
                rlimit.resource, rlimit.soft, rlimit.hard
            ),
            ParentStep::Network(step) => write!(f, "{step}"),
            ParentStep::RunHooks { stage, paths } => write!(
                f,
                "run the {stage} hooks ({}), its state on their stdin",
                describe_paths(paths)
            ),
            ParentStep::Release => write!(f, "let it go on, and send it its steps"),
            ParentStep::WaitReady => write!(
                f,
                "wait (at most {CHILD_TIMEOUT_SECS} s) until it waits at its start gate: the container is created"
            ),
            ParentStep::Start => write!(
                f,
                "start: open the gate, and wait until its program is exec'd"
            ),
        }
    }
}

/// Something the container's first process does, in order. The first few run in the
/// clone itself, before it execs nutshell-init; the rest in nutshell-init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStep {
    /// PR_SET_PDEATHSIG: be killed if the host side dies first.
    DieWithParent,
    /// Wait until the host side has done its steps for it.
    WaitForParent,
    /// setns(2) into an existing user namespace.
    JoinUserNamespace(PathBuf),
    /// Become uid 0 and gid 0 of the new user namespace.
    BecomeRoot {
        /// Whether setgroups(2) is allowed (the map writer did not deny it).
        setgroups: bool,
    },
    /// execveat(2) the sealed copy of nutshell as nutshell-init, with only the
    /// container's environment.
    ExecInit,
    /// Close every fd it inherited but the ones nutshell passes on purpose.
    CloseInheritedFds {
        /// Keep this many fds above stdio, 3 and up, for the program (runc's
        /// `--preserve-fds`, for socket activation).
        #[serde(default)]
        preserve: u32,
    },
    /// setns(2) into an existing namespace.
    JoinNamespace {
        /// Which kind.
        kind: Namespace,
        /// The namespace file.
        path: PathBuf,
    },
    /// Make a time namespace with these offsets and move into it.
    EnterTimeNamespace(TimeOffsets),
    /// Make a cgroup namespace rooted at its cgroup.
    UnshareCgroupNamespace,
    /// Set the hostname.
    SetHostname(String),
    /// Set the NIS domain name.
    SetDomainname(String),
    /// Write one kernel parameter of the container's namespaces to `/proc/sys`.
    Sysctl {
        /// Its name, dotted: `net.ipv4.ip_forward`.
        key: String,
        /// The value.
        value: String,
    },
    /// One operation of the mount plan.
    Mount(MountOp),
    /// Drop every capability outside this set from the bounding set.
    DropBoundingSet(CapSet),
    /// Become the spec's user (groups, gid, uid).
    SetUser {
        /// The user.
        user: User,
        /// Keep the permitted capabilities across the uid change, to set them next.
        keep_caps: bool,
    },
    /// Set the capability sets.
    SetCapabilities(Capabilities),
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivileges,
    /// Set the umask.
    SetUmask(u32),
    /// chdir(2) to the working directory, and check it is inside the root.
    Chdir(PathBuf),
    /// Put every signal's disposition back to its default.
    ResetSignals,
    /// Make the container's terminal: a pty from its own `/dev/ptmx`, the slave end its
    /// stdio and controlling terminal, owned by its user; the master end sent over the
    /// console socket (SCM_RIGHTS), as runc's `recvtty` expects.
    SetUpConsole {
        /// The user who will own the slave end.
        uid: u32,
        /// Rows and columns to set, if given.
        size: Option<(u16, u16)>,
    },
    /// Install the seccomp filter: from here on, the kernel checks every system call.
    Seccomp(crate::seccomp::Filter),
    /// Look the program up in the container's `PATH` now, so that `create` fails for a
    /// program that is not there, as runc's does, rather than a later `start`.
    FindProgram(Vec<String>),
    /// Run the hooks of a stage run in the container (createContainer,
    /// startContainer), the state on their stdin.
    RunHooks {
        /// The stage.
        stage: crate::hooks::Stage,
        /// Its hooks, in order.
        hooks: Vec<crate::hooks::Hook>,
        /// The state's fixed fields.
        state: serde_json::Map<String, serde_json::Value>,
    },
    /// Report ready, and wait at the start gate.
    WaitForStart {
        /// The container outlives its creator: stop dying with it (PR_SET_PDEATHSIG off),
        /// and report the exec to the exec fifo, which `nutshell start` reads.
        detached: bool,
    },
    /// Exec the program, or become the init and start it as a child.
    Exec {
        /// What to run.
        program: Program,
        /// Its environment.
        env: Vec<String>,
        /// Whether nutshell's init runs as PID 1 with the program as its child.
        init: bool,
    },
}

impl fmt::Display for ChildStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildStep::DieWithParent => write!(
                f,
                "ask for SIGKILL when nutshell dies (PR_SET_PDEATHSIG), so it never outlives its owner"
            ),
            ChildStep::WaitForParent => write!(f, "wait for nutshell's steps above"),
            ChildStep::JoinUserNamespace(path) => {
                write!(f, "join the user namespace {}", path.display())
            }
            ChildStep::BecomeRoot { setgroups } => {
                write!(f, "become uid 0, gid 0 of its user namespace")?;
                if !setgroups {
                    write!(f, " (setgroups denied)")?;
                }
                Ok(())
            }
            ChildStep::ExecInit => write!(
                f,
                "exec the sealed copy as nutshell-init, with the container's environment only"
            ),
            ChildStep::CloseInheritedFds { preserve: 0 } => write!(
                f,
                "close every file descriptor above 2 that the caller left open (close_range)"
            ),
            ChildStep::CloseInheritedFds { preserve } => write!(
                f,
                "close every file descriptor above {} that the caller left open (close_range); keep 3 to {0} for the program",
                2 + preserve
            ),
            ChildStep::JoinNamespace { kind, path } => {
                write!(f, "join the {kind} namespace {}", path.display())
            }
            ChildStep::EnterTimeNamespace(offsets) => write!(
                f,
                "make a time namespace, monotonic +{} s, boottime +{} s, and enter it",
                offsets.monotonic_secs, offsets.boottime_secs
            ),
            ChildStep::UnshareCgroupNamespace => write!(
                f,
                "make a cgroup namespace, rooted at the cgroup it is in now"
            ),
            ChildStep::SetHostname(name) => write!(f, "set the hostname to {name}"),
            ChildStep::SetDomainname(name) => write!(f, "set the domain name to {name}"),
            ChildStep::Sysctl { key, value } => write!(
                f,
                "write {value} to /proc/sys/{} (sysctl {key})",
                key.replace('.', "/")
            ),
            ChildStep::Mount(op) => write!(f, "{op}"),
            ChildStep::DropBoundingSet(keep) => write!(
                f,
                "drop every capability but {} from the bounding set",
                if keep.is_empty() {
                    "none".to_string()
                } else {
                    keep.len().to_string()
                }
            ),
            ChildStep::SetUser { user, .. } => {
                write!(f, "become uid {}, gid {}", user.uid, user.gid)?;
                if user.additional_gids.is_empty() {
                    write!(f, ", with no supplementary groups")
                } else {
                    let groups: Vec<String> =
                        user.additional_gids.iter().map(u32::to_string).collect();
                    write!(f, ", groups {}", groups.join(","))
                }
            }
            ChildStep::SetCapabilities(caps) => write!(
                f,
                "set its capabilities: effective {}",
                if caps.effective.is_empty() {
                    "none".to_string()
                } else {
                    caps.effective.to_string()
                }
            ),
            ChildStep::NoNewPrivileges => write!(
                f,
                "set no_new_privs: no exec can add privileges (setuid bits, file capabilities)"
            ),
            ChildStep::SetUmask(mask) => write!(f, "set the umask to {mask:04o}"),
            ChildStep::Chdir(cwd) => write!(
                f,
                "chdir to {}, and check it lies inside the root (CVE-2024-21626)",
                cwd.display()
            ),
            ChildStep::ResetSignals => write!(
                f,
                "reset every signal to its default, so none the caller ignored stays ignored"
            ),
            ChildStep::SetUpConsole { .. } => write!(
                f,
                "make a pty from /dev/ptmx, make it stdio and the controlling terminal, send its master over the console socket"
            ),
            ChildStep::Seccomp(filter) => write!(f, "install {filter} (seccomp(2))"),
            ChildStep::FindProgram(args) => write!(
                f,
                "look up {} in the container's PATH: a missing program fails `create`",
                args.first().map_or("", String::as_str)
            ),
            ChildStep::RunHooks { stage, hooks, .. } => {
                let paths: Vec<PathBuf> = hooks.iter().map(|h| h.path.clone()).collect();
                write!(
                    f,
                    "run the {stage} hooks ({}), its state on their stdin",
                    describe_paths(&paths)
                )
            }
            ChildStep::WaitForStart { detached: false } => {
                write!(f, "report ready, and wait at the start gate")
            }
            ChildStep::WaitForStart { detached: true } => write!(
                f,
                "stop dying with nutshell (PR_SET_PDEATHSIG 0: the container outlives `create`), report ready, wait at the start gate; then report to the exec fifo"
            ),
            ChildStep::Exec { program, init, .. } => {
                if *init {
                    write!(f, "become the init (PID 1), start {program} as its child")
                } else {
                    write!(f, "exec {program}")
                }
            }
        }
    }
}

fn describe_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
