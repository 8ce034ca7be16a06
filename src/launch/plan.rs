//! Planning: a [`ContainerSpec`] and the [`HostFacts`] in, a [`LaunchPlan`] out. Pure:
//! nothing here touches the system, so every chapter's plan is snapshot-tested anywhere
//! and printed by its `--plan`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::facts::HostFacts;
use super::id::ContainerId;
use super::root::{RootPlan, plan_root};
use super::rules::{check_namespaces, plan_cgroup, plan_mapping, plan_privileges};
use super::steps::{ChildStep, ParentStep};
use crate::capabilities::CapSet;
use crate::cgroups::{self};
use crate::hooks::Stage;
use crate::mounts::{self, MountContext, MountOp};
use crate::namespaces::Namespace;
use crate::net::{self, NetStep, Network, OwnedNetwork};
use crate::overlay::OverlayLayers;
use crate::spec::{ContainerSpec, MountKind, NamespaceMode, Propagation, RootFs};
use crate::userns::{self, MappingPlan};

/// What nutshell will do to start one container, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The container's id.
    pub id: ContainerId,
    /// `<state>/<id>`.
    pub state_dir: PathBuf,
    /// nutshell's steps on the host, in order, ending with [`ParentStep::Start`].
    pub parent: Vec<ParentStep>,
    /// The container's first process's steps, in order.
    pub child: Vec<ChildStep>,
    /// What the reader should know about this container's limits.
    pub notes: Vec<String>,
    /// What the container owns on the host, to remove with it.
    pub owned: Owned,
    /// The id maps, for a container with a user namespace of its own.
    pub mapping: Option<MappingPlan>,
    /// The overlay, for a container with an overlay root: to explain a refused mount.
    pub overlay: Option<OverlayLayers>,
}

/// What a container owns on the host besides its processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owned {
    /// Its cgroup's path below each hierarchy's root, and its controllers.
    pub cgroup: Option<(String, Vec<String>)>,
    /// `<data>/containers/<id>`.
    pub container_dir: Option<PathBuf>,
    /// Keep the container dir's `upper` when removing it.
    pub keep_upper: bool,
    /// Remove the container dir as the container's root, through these maps: a rootless
    /// container with subordinate ids leaves files its user cannot remove from outside.
    pub remove_as: Option<MappingPlan>,
    /// Its network: veth, NAT rules, lease, reserved ports, pasta.
    #[serde(default)]
    pub network: Option<OwnedNetwork>,
}

/// A spec that cannot be run, here or at all, and why.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A feature that needs a namespace the spec does not make.
    #[error("{what} needs a new {namespace} namespace of the container's own")]
    NeedsNamespace {
        /// The feature.
        what: &'static str,
        /// The namespace kind.
        namespace: Namespace,
    },
    /// A hostname the kernel or the resolvers would refuse.
    #[error(transparent)]
    Hostname(#[from] crate::uts::HostnameError),
    /// Something nutshell does not do (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A path that must be absolute is not.
    #[error("{what} {path}: must be an absolute path")]
    Relative {
        /// What the path is.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The id maps cannot be made for this caller.
    #[error(transparent)]
    Mapping(#[from] userns::UsernsError),
    /// The container asks for a cgroup, and this caller or host cannot make one.
    #[error("{0}")]
    NoCgroup(String),
    /// The subordinate id ranges the default maps would use are unusable (root's
    /// `nutshell` range overlaps a user's): the reason.
    #[error("{0}")]
    SubIds(String),
    /// The cgroup path is not one nutshell may use.
    #[error(transparent)]
    CgroupPath(#[from] cgroups::CgroupError),
    /// The limits cannot be written on this host.
    #[error(transparent)]
    Settings(#[from] cgroups::SettingsError),
    /// The overlay's layers cannot be stacked.
    #[error(transparent)]
    Overlay(#[from] crate::overlay::OverlayError),
    /// The seccomp profile cannot be compiled.
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The capability sets are inconsistent.
    #[error(transparent)]
    Capabilities(#[from] crate::capabilities::CapError),
    /// The spec asks for capabilities the caller does not have to give.
    #[error(
        "the container asks for {caps}, which this process's bounding set does not hold: no process it starts can have them"
    )]
    BeyondBounding {
        /// The capabilities.
        caps: CapSet,
    },
}

/// Why a rootless container gets no cgroup.
pub const NO_ROOTLESS_CGROUP: &str = "a normal user can make cgroups only in a cgroup v2 subtree delegated to it (systemd does that for user sessions on pure v2 machines); rootless, a container runs in no cgroup of its own, with no limits";

// ANCHOR: plan
/// Plan the launch of container `id` from `spec` on the host `facts` describes. Every
/// check that can be made before anything exists is made here, so that bad input leaves
/// nothing behind.
pub fn plan(
    id: &ContainerId,
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<LaunchPlan, PlanError> {
    check_namespaces(spec)?;
    let mapping = plan_mapping(spec, facts)?;
    let in_user_namespace = spec.namespaces.user != NamespaceMode::Host;
    let mut notes = Vec::new();
    let mut owned = Owned::default();
    let state_dir = facts.state_root.join(id.as_str());
    let mut parent = vec![
        ParentStep::SweepStale {
            state_root: facts.state_root.clone(),
        },
        ParentStep::RecordState {
            dir: state_dir.clone(),
        },
    ];

    let net_steps = plan_network(id, spec, facts, &state_dir, &mut owned)?;
    // What can fail on the host's state (a taken port, a full subnet) before anything
    // else is made.
    parent.extend(
        net_steps
            .iter()
            .filter(|s| s.before_clone())
            .cloned()
            .map(ParentStep::Network),
    );
    let root = plan_root(id, spec, facts, mapping.as_ref(), &mut owned)?;
    parent.extend(root.parent_steps.iter().cloned());
    // Another container's cgroup is entered once the first process exists; one of its
    // own is made now.
    let (enter_cgroup, cgroup_steps): (Vec<ParentStep>, Vec<ParentStep>) =
        plan_cgroup(id, spec, facts, &mut owned)?
            .into_iter()
            .partition(|s| matches!(s, ParentStep::EnterCgroup { .. }));
    parent.extend(cgroup_steps);
    parent.push(ParentStep::SealInit {
        binary: facts.init_binary.clone(),
    });
    // Not the time and cgroup namespaces: the first process makes those itself (see
    // the child steps below). CLONE_NEWTIME is not even a clone(2) flag: its bit is in
    // the byte that holds the exit signal.
    let cloned = spec
        .namespaces
        .new_kinds()
        .into_iter()
        .filter(|kind| !matches!(kind, Namespace::Time | Namespace::Cgroup))
        .collect();
    let mut for_children: Vec<PathBuf> = [Namespace::Pid, Namespace::Time]
        .into_iter()
        .filter_map(|kind| match spec.namespaces.mode(kind) {
            NamespaceMode::Join(path) => Some(path.clone()),
            _ => None,
        })
        .collect();
    // ANCHOR: join_user_first
    // A normal user may join a PID namespace only from inside the user namespace that
    // owns it (setns(2) wants CAP_SYS_ADMIN there), so nutshell joins that one first,
    // and its children start inside it; root joins from outside.
    let user_joined_here = match &spec.namespaces.user {
        NamespaceMode::Join(path) if !for_children.is_empty() && !facts.caller.privileged => {
            for_children.insert(0, path.clone());
            true
        }
        _ => false,
    };
    // ANCHOR_END: join_user_first
    if !for_children.is_empty() {
        parent.push(ParentStep::JoinForChildren {
            paths: for_children,
        });
    }
    parent.push(ParentStep::Clone { namespaces: cloned });
    parent.extend(enter_cgroup);
    if let Some(mapping) = mapping
        .as_ref()
        .filter(|_| spec.namespaces.user == NamespaceMode::New)
    {
        parent.push(ParentStep::WriteIdMaps(mapping.clone()));
    }
    if let Some((path, _)) = &owned.cgroup {
        parent.push(ParentStep::JoinCgroup { path: path.clone() });
    }
    if let Some(value) = spec.process.oom_score_adj {
        parent.push(ParentStep::SetOomScoreAdj(value));
    }
    parent.extend(
        spec.process
            .rlimits
            .iter()
            .map(|r| ParentStep::SetRlimit(*r)),
    );
    // The network namespace exists from the clone on, and its user namespace has its
    // maps: connect it while the first process waits.
    parent.extend(
        net_steps
            .into_iter()
            .filter(|s| !s.before_clone())
            .map(ParentStep::Network),
    );
    // The namespaces exist, the network is connected, the root not yet entered: what
    // the runtime spec asks of prestart and createRuntime.
    for stage in [Stage::Prestart, Stage::CreateRuntime] {
        let hooks = spec.hooks.of(stage);
        if !hooks.is_empty() {
            parent.push(ParentStep::RunHooks {
                stage,
                paths: hooks.iter().map(|h| h.path.clone()).collect(),
            });
        }
    }
    parent.extend([
        ParentStep::Release,
        ParentStep::WaitReady,
        ParentStep::Start,
    ]);

    // The clone's own steps, before it execs nutshell-init: no allocation, raw calls.
    let mut child = vec![ChildStep::DieWithParent, ChildStep::WaitForParent];
    match &spec.namespaces.user {
        NamespaceMode::Join(path) => {
            if !user_joined_here {
                child.push(ChildStep::JoinUserNamespace(path.clone()));
            }
            child.push(ChildStep::BecomeRoot { setgroups: true });
        }
        NamespaceMode::New => child.push(ChildStep::BecomeRoot {
            setgroups: !mapping.as_ref().is_some_and(|m| m.deny_setgroups),
        }),
        NamespaceMode::Host => {}
    }
    child.extend([
        ChildStep::ExecInit,
        ChildStep::CloseInheritedFds {
            preserve: spec.preserve_fds,
        },
    ]);
    // The mount namespace last: once in it, a path like /proc/PID/ns/net is looked up in
    // the container's /proc, where that PID is another process or none.
    let mut kinds: Vec<Namespace> = Namespace::ALL
        .into_iter()
        .filter(|&k| k != Namespace::Mount)
        .collect();
    kinds.push(Namespace::Mount);
    for kind in kinds {
        // The user namespace is joined in the prelude; PID and time by nutshell, for it.
        let joined_elsewhere = matches!(kind, Namespace::User | Namespace::Pid | Namespace::Time);
        if let (NamespaceMode::Join(path), false) = (spec.namespaces.mode(kind), joined_elsewhere) {
            child.push(ChildStep::JoinNamespace {
                kind,
                path: path.clone(),
            });
        }
    }
    if let Some(offsets) = spec.time_offsets {
        child.push(ChildStep::EnterTimeNamespace(offsets));
    }
    if spec.namespaces.cgroup == NamespaceMode::New {
        // Not a clone flag: cloned with CLONE_NEWCGROUP, the namespace would be rooted
        // at the caller's cgroup, before the host side moved the child into its own.
        child.push(ChildStep::UnshareCgroupNamespace);
    }
    if let Some(name) = &spec.hostname {
        child.push(ChildStep::SetHostname(name.clone()));
    }
    if let Some(name) = &spec.domainname {
        child.push(ChildStep::SetDomainname(name.clone()));
    }
    let ctx = MountContext {
        rootfs: &root.rootfs,
        user_namespace: in_user_namespace,
        net_namespace: spec.namespaces.net != NamespaceMode::Host,
        cgroups: facts.cgroups.as_ref(),
    };
    let mount_ops = mount_plan(spec, &root, &ctx, mapping.as_ref(), &state_dir, &mut notes);
    for op in mount_ops {
        // createContainer: the mounts made, before the root is entered.
        if matches!(op, MountOp::PivotRoot { .. } | MountOp::Chroot { .. }) {
            child.extend(hook_step(spec, Stage::CreateContainer));
        }
        child.push(ChildStep::Mount(op));
    }
    // After /proc is mounted, before /proc/sys is made read-only, as runc does.
    child.extend(spec.sysctl.iter().map(|(key, value)| ChildStep::Sysctl {
        key: key.clone(),
        value: value.clone(),
    }));
    child.extend(
        mounts::protect_section(&spec.masked_paths, &spec.readonly_paths, spec.root.readonly)
            .into_iter()
            .map(ChildStep::Mount),
    );
    if spec.process.terminal {
        // As root still, in the container's root: the pty belongs to its devpts.
        child.push(ChildStep::SetUpConsole {
            uid: spec.process.user.uid,
            size: spec.process.console_size,
        });
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: before the
    // capabilities go, as runc does; with it, as late as possible.
    let seccomp = match &spec.seccomp {
        Some(profile) => {
            let filter = crate::seccomp::compile(profile)?;
            if !filter.skipped.is_empty() {
                notes.push(format!(
                    "seccomp: {} system calls the profile names are unknown on this architecture, skipped: {}",
                    filter.skipped.len(),
                    filter.skipped.join(", ")
                ));
            }
            Some(ChildStep::Seccomp(filter))
        }
        None => None,
    };
    if !spec.process.no_new_privileges {
        child.extend(seccomp.clone());
    }
    child.extend(plan_privileges(spec, facts, mapping.as_ref(), &mut notes)?);
    if spec.process.no_new_privileges {
        child.extend(seccomp);
    }
    child.push(ChildStep::Chdir(spec.process.cwd.clone()));
    child.push(ChildStep::ResetSignals);
    if let (true, crate::spec::Program::Args(args)) = (spec.detached, &spec.process.program) {
        child.push(ChildStep::FindProgram(args.clone()));
    }
    child.extend([ChildStep::WaitForStart {
        detached: spec.detached,
    }]);
    child.extend(hook_step(spec, Stage::StartContainer));
    child.push(ChildStep::Exec {
        program: spec.process.program.clone(),
        env: spec.process.env.clone(),
        init: spec.process.init,
    });
    if spec.namespaces.pid == NamespaceMode::Host {
        notes.push(
            "no PID namespace of its own: a process the command starts can outlive the container and a killed nutshell (chapter 3 fixes this)"
                .to_string(),
        );
    }
    Ok(LaunchPlan {
        id: id.clone(),
        state_dir,
        parent,
        child,
        notes,
        owned,
        mapping,
        overlay: root.overlay,
    })
}
// ANCHOR_END: plan

// ANCHOR: mount_plan
/// The mount plan, section by section: propagation, the root, the spec's mounts, the
/// devices of a fresh /dev, the step into the root. The protected paths follow it, after
/// the sysctls.
fn mount_plan(
    spec: &ContainerSpec,
    root: &RootPlan,
    ctx: &MountContext,
    mapping: Option<&MappingPlan>,
    state_dir: &Path,
    notes: &mut Vec<String>,
) -> Vec<MountOp> {
    let mut ops = Vec::new();
    // pivot_root refuses a shared root: a shared one is a slave until it is entered.
    let shared = spec.root_propagation == Propagation::Shared;
    if spec.namespaces.mount == NamespaceMode::New {
        let first = if shared {
            Propagation::Slave
        } else {
            spec.root_propagation
        };
        ops.extend(mounts::propagation_section(first));
    }
    ops.extend(root.mounts.iter().cloned());
    let spec_mounts = tty_group_mapped(spec, mapping, notes);
    ops.extend(mounts::mounts_section(&spec_mounts, ctx));
    if spec.network.is_some() {
        // The container's own /etc/hostname, hosts and resolv.conf over the image's.
        ops.extend(
            net::name_file_binds(state_dir)
                .into_iter()
                .map(|(source, target)| MountOp::Bind {
                    source,
                    target: ctx.host(&target),
                    recursive: false,
                    readonly: false,
                }),
        );
    }
    let fresh_dev = spec_mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && m.kind == MountKind::Tmpfs);
    if fresh_dev {
        let with_pts = spec_mounts.iter().any(|m| m.kind == MountKind::Devpts);
        ops.extend(mounts::devices_section(&spec.devices, with_pts, ctx));
    }
    if !matches!(spec.root.fs, RootFs::Host) {
        ops.extend(mounts::enter_section(spec.root.enter, ctx));
        if shared && spec.namespaces.mount == NamespaceMode::New {
            ops.extend(mounts::propagation_section(Propagation::Shared));
        }
    }
    ops
}
// ANCHOR_END: mount_plan

/// The spec's mounts with devpts's `gid=` dropped where the user namespace has no such
/// gid: devpts refuses it (with a note, since terminals then belong to root's group).
fn tty_group_mapped(
    spec: &ContainerSpec,
    mapping: Option<&MappingPlan>,
    notes: &mut Vec<String>,
) -> Vec<crate::spec::Mount> {
    let Some(mapping) = mapping else {
        return spec.mounts.clone();
    };
    let mut mounts = spec.mounts.clone();
    for mount in mounts.iter_mut().filter(|m| m.kind == MountKind::Devpts) {
        let unmapped = |option: &String| {
            option
                .strip_prefix("gid=")
                .and_then(|gid| gid.parse().ok())
                .is_some_and(|gid| mapping.maps.host_gid(gid).is_none())
        };
        if mount.options.data.iter().any(unmapped) {
            mount.options.data.retain(|o| !unmapped(o));
            notes.push(
                "the image's tty group is not mapped into the user namespace: new terminals belong to group 0".to_string(),
            );
        }
    }
    mounts
}

// ANCHOR: plan_network
/// The network steps: none without a network namespace of the container's own to
/// connect. A bridge needs root (a veth in the host's namespace); pasta is for the
/// rootless.
fn plan_network(
    id: &ContainerId,
    spec: &ContainerSpec,
    facts: &HostFacts,
    state_dir: &Path,
    owned: &mut Owned,
) -> Result<Vec<NetStep>, PlanError> {
    let Some(network) = &spec.network else {
        return Ok(Vec::new());
    };
    if spec.namespaces.net != NamespaceMode::New {
        return Err(PlanError::NeedsNamespace {
            what: "a network of its own",
            namespace: Namespace::Net,
        });
    }
    match (network, facts.caller.privileged) {
        (Network::Bridge(_), false) => return Err(PlanError::Unsupported(
            "a normal user cannot connect a container to a bridge: a veth and a bridge in the host's network namespace need CAP_NET_ADMIN there, which only root has; use --network pasta".to_string(),
        )),
        (Network::Pasta { .. }, true) => return Err(PlanError::Unsupported(
            "--network pasta is for rootless containers (pasta refuses to run as root); as root use --network bridge".to_string(),
        )),
        _ => {}
    }
    let hostname = spec.hostname.as_deref().unwrap_or(id.as_str());
    let (steps, owned_network) =
        net::plan(id.as_str(), network, hostname, state_dir, &facts.data_dir);
    owned.network = Some(owned_network);
    Ok(steps)
}
// ANCHOR_END: plan_network

impl LaunchPlan {
    /// The mount plan part of the child's steps, for the chapters that show it alone.
    pub fn mount_ops(&self) -> impl Iterator<Item = &MountOp> {
        self.child.iter().filter_map(|step| match step {
            ChildStep::Mount(op) => Some(op),
            _ => None,
        })
    }

    /// The index of the first step nutshell-init runs (after [`ChildStep::ExecInit`]).
    pub fn init_steps_start(&self) -> usize {
        self.child
            .iter()
            .position(|step| matches!(step, ChildStep::ExecInit))
            .map_or(0, |i| i + 1)
    }
}

impl fmt::Display for LaunchPlan {
    /// The plan as two numbered checklists, nutshell's and the first process's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "container {}", self.id)?;
        writeln!(f, "\nnutshell, on the host:")?;
        for (n, step) in self.parent.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", n + 1)?;
        }
        writeln!(f, "\nthe container's first process:")?;
        for (n, step) in self.child.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", n + 1)?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        Ok(())
    }
}

/// The step that runs `stage`'s hooks in the container, if it has any.
fn hook_step(spec: &ContainerSpec, stage: Stage) -> Option<ChildStep> {
    let hooks = spec.hooks.of(stage);
    (!hooks.is_empty()).then(|| ChildStep::RunHooks {
        stage,
        hooks: hooks.to_vec(),
        state: spec.hooks.state.clone(),
    })
}
