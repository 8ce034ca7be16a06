//! The planner's rules: what a spec may ask for, with which namespaces, from which
//! caller; which maps, which cgroup, which privileges in which order.

use super::facts::HostFacts;
use super::id::ContainerId;
use super::plan::{NO_ROOTLESS_CGROUP, Owned, PlanError};
use super::steps::{ChildStep, ParentStep};
use crate::capabilities::Capability;
use crate::cgroups::{self, PARENT};
use crate::namespaces::Namespace;
use crate::spec::{ContainerSpec, EnterRoot, NamespaceMode, Program, RootFs};
use crate::userns::{self, MappingPlan};

/// Features that need a namespace of the container's own, and joins nutshell cannot do.
pub(super) fn check_namespaces(spec: &ContainerSpec) -> Result<(), PlanError> {
    let ns = &spec.namespaces;
    let needs = |what, namespace: Namespace, needed: bool| -> Result<(), PlanError> {
        if needed && !ns.is_new(namespace) {
            return Err(PlanError::NeedsNamespace { what, namespace });
        }
        Ok(())
    };
    needs("a hostname", Namespace::Uts, spec.hostname.is_some())?;
    needs("time offsets", Namespace::Time, spec.time_offsets.is_some())?;
    needs(
        "id maps",
        Namespace::User,
        !spec.uid_maps.is_empty() || !spec.gid_maps.is_empty(),
    )?;
    let mounts_something = !spec.mounts.is_empty()
        || !spec.devices.is_empty()
        || !spec.masked_paths.is_empty()
        || !spec.readonly_paths.is_empty()
        || matches!(spec.root.fs, RootFs::Overlay { .. })
        || (spec.root.enter == EnterRoot::PivotRoot && !matches!(spec.root.fs, RootFs::Host));
    needs(
        "mounts, pivot_root or an overlay root",
        Namespace::Mount,
        mounts_something,
    )?;
    if ns.time == NamespaceMode::New && spec.time_offsets.is_none() {
        return Err(PlanError::Unsupported(
            "a new time namespace needs time_offsets (zero offsets are fine)".to_string(),
        ));
    }
    if let Some(name) = &spec.hostname {
        crate::uts::validate_hostname(name)?;
    }
    for kind in Namespace::ALL {
        if let NamespaceMode::Join(path) = ns.mode(kind)
            && !path.is_absolute()
        {
            return Err(PlanError::Relative {
                what: "namespace",
                path: path.clone(),
            });
        }
    }
    if spec.process.terminal && spec.console_socket.is_none() {
        return Err(PlanError::Unsupported(
            "a terminal for the container (process.terminal) needs a console socket to send it to (--console-socket)"
                .to_string(),
        ));
    }
    if spec.console_socket.is_some() && !spec.process.terminal {
        return Err(PlanError::Unsupported(
            "a console socket is for a container with a terminal (process.terminal: true)"
                .to_string(),
        ));
    }
    if !spec.process.cwd.is_absolute() {
        return Err(PlanError::Relative {
            what: "the working directory",
            path: spec.process.cwd.clone(),
        });
    }
    if let Program::Args(args) = &spec.process.program
        && args.first().is_none_or(|a| a.is_empty())
    {
        return Err(PlanError::Unsupported(
            "an empty command: give the program to run".to_string(),
        ));
    }
    Ok(())
}

/// The id maps of a new user namespace, for this caller.
pub(super) fn plan_mapping(
    spec: &ContainerSpec,
    facts: &HostFacts,
) -> Result<Option<MappingPlan>, PlanError> {
    if spec.namespaces.user != NamespaceMode::New {
        return Ok(None);
    }
    // The caller's ranges matter only for the default maps; an unusable nutshell range
    // (overlapping a user's) is an error only then.
    let ranges = |ranges: &Result<Vec<userns::SubIdRange>, String>| match ranges {
        Ok(ranges) => Ok(ranges.clone()),
        Err(_) if !spec.uid_maps.is_empty() => Ok(Vec::new()),
        Err(problem) => Err(PlanError::SubIds(problem.clone())),
    };
    let plan = userns::plan_mapping(
        &facts.caller,
        &spec.uid_maps,
        &spec.gid_maps,
        &ranges(&facts.subuids)?,
        &ranges(&facts.subgids)?,
        facts.id_map_helpers.clone(),
    )?;
    Ok(Some(plan))
}

/// The cgroup's host steps, or none: a cgroup needs root (or a delegated v2 subtree, which
/// nutshell does not use) and a host with cgroups.
pub(super) fn plan_cgroup(
    id: &ContainerId,
    spec: &ContainerSpec,
    facts: &HostFacts,
    owned: &mut Owned,
) -> Result<Vec<ParentStep>, PlanError> {
    let Some(cgroup) = &spec.cgroup else {
        return Ok(Vec::new());
    };
    if cgroup.existing {
        let layout = facts.cgroups.as_ref().ok_or_else(|| {
            PlanError::NoCgroup("no cgroup hierarchy is mounted on this host".to_string())
        })?;
        let path = cgroup.path.clone().ok_or_else(|| {
            PlanError::Unsupported("joining an existing cgroup needs its path".to_string())
        })?;
        cgroups::validate_path(&path)?;
        let controllers = if cgroup.controllers.is_empty() {
            cgroups::standard_controllers(layout)
                .into_iter()
                .filter(|c| layout.mount_for(c).is_some())
                .map(String::from)
                .collect()
        } else {
            cgroup.controllers.clone()
        };
        return Ok(vec![ParentStep::EnterCgroup { path, controllers }]);
    }
    if !facts.caller.privileged {
        let what = if cgroup.resources == Default::default() {
            "a cgroup of the container's own needs root"
        } else {
            "limits need a cgroup, and a cgroup needs root"
        };
        return Err(PlanError::NoCgroup(format!("{what}: {NO_ROOTLESS_CGROUP}")));
    }
    let layout = facts.cgroups.as_ref().ok_or_else(|| {
        PlanError::NoCgroup("no cgroup hierarchy is mounted on this host".to_string())
    })?;
    let path = cgroup
        .path
        .clone()
        .unwrap_or_else(|| format!("{PARENT}/{id}"));
    cgroups::validate_path(&path)?;
    let settings = cgroups::plan(&cgroup.resources, layout, facts.swap_accounting)?;
    // The standard set counts usage whatever the limits; a limit's controller must exist.
    let mut controllers: Vec<String> = cgroups::standard_controllers(layout)
        .into_iter()
        .filter(|c| layout.mount_for(c).is_some())
        .map(String::from)
        .collect();
    for setting in &settings {
        if !controllers.contains(&setting.controller) {
            controllers.push(setting.controller.clone());
        }
    }
    // A detached container can be paused (chapter 11): on v1 that takes the freezer
    // hierarchy; on v2 every cgroup has cgroup.freeze.
    if spec.detached && layout.v1_mount_for("freezer").is_some() {
        controllers.push("freezer".to_string());
    }
    // cgroup v2 takes device rules as an eBPF program on the cgroup's v2 directory.
    let devices = &cgroup.resources.devices;
    let filter = !devices.is_empty() && layout.v1_mount_for("devices").is_none();
    if filter && layout.v2_mount().is_none() {
        return Err(cgroups::SettingsError::NoDeviceControl.into());
    }
    owned.cgroup = Some((path.clone(), controllers.clone()));
    let mut steps = vec![ParentStep::CreateCgroup { path, controllers }];
    if filter {
        steps.push(ParentStep::AttachDeviceFilter(devices.clone()));
    }
    steps.extend(settings.into_iter().map(ParentStep::WriteCgroup));
    Ok(steps)
}

/// The steps that take privileges away, in the only order that works: the bounding set
/// while CAP_SETPCAP is still effective, the uid change with the permitted set kept, the
/// sets themselves, then no_new_privs and the umask.
pub(super) fn plan_privileges(
    spec: &ContainerSpec,
    facts: &HostFacts,
    mapping: Option<&MappingPlan>,
    notes: &mut Vec<String>,
) -> Result<Vec<ChildStep>, PlanError> {
    let process = &spec.process;
    let mut steps = Vec::new();
    let setgroups_denied = mapping.is_some_and(|m| m.deny_setgroups);
    if setgroups_denied && !process.user.additional_gids.is_empty() {
        return Err(PlanError::Unsupported(
            "additional gids in a user namespace whose setgroups is denied (a normal user's own ids only): setgroups(2) is refused there".to_string(),
        ));
    }
    if let Some(caps) = &process.capabilities {
        caps.check()?;
        let wanted = caps.bounding.union(caps.permitted).union(caps.inheritable);
        let missing = wanted.difference(facts.bounding);
        if !missing.is_empty() && spec.namespaces.user == NamespaceMode::Host {
            return Err(PlanError::BeyondBounding { caps: missing });
        }
        let device_rules = spec
            .cgroup
            .as_ref()
            .is_some_and(|c| !c.resources.devices.is_empty());
        if caps.bounding.contains(Capability::Mknod)
            && spec.namespaces.user == NamespaceMode::Host
            && !device_rules
        {
            notes.push(
                "CAP_MKNOD without a user namespace: a device node for the host's disk could be made and opened (the container's cgroup has no device rules)".to_string(),
            );
        }
        steps.push(ChildStep::DropBoundingSet(caps.bounding));
    }
    let changes_user = process.user.uid != 0
        || process.user.gid != 0
        || !process.user.additional_gids.is_empty()
        || !setgroups_denied;
    if changes_user {
        steps.push(ChildStep::SetUser {
            user: process.user.clone(),
            keep_caps: process.capabilities.is_some(),
        });
    }
    if let Some(caps) = &process.capabilities {
        steps.push(ChildStep::SetCapabilities(*caps));
    }
    if process.no_new_privileges {
        steps.push(ChildStep::NoNewPrivileges);
    }
    steps.push(ChildStep::SetUmask(process.user.umask.unwrap_or(0o022)));
    Ok(steps)
}
