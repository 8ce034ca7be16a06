//! An OCI bundle's `config.json`, read with the `oci-spec` crate and mapped field by field
//! onto nutshell's [`ContainerSpec`].
//!
//! The rule is the one runc and youki follow: a field this runtime honours is mapped; a
//! field it cannot honour is *refused*, with the field's name and the reason, never
//! dropped. A container started without the seccomp filter or the AppArmor profile its
//! config asks for would look confined and not be. Fields the spec marks optional that
//! change nothing about confinement are mapped or refused the same way, so that what runs
//! is what the config says.
//!
//! Unknown fields are ignored, as the runtime spec requires (`oci-spec` parses leniently),
//! so configs written for newer spec versions still load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, LinuxResources, Mount as OciMount, Spec,
};

use crate::capabilities::{CapSet, Capabilities, Capability};
use crate::cgroups::{DeviceRule, IoLimit, IoThrottle, Resources, SwapPolicy};
use crate::namespaces::{Namespace, TimeOffsets};
use crate::spec::{
    Atime, CgroupSpec, ContainerSpec, Device, EnterRoot, Mount, MountKind, MountOptions,
    NamespaceMode, Namespaces, Process, Program, Propagation, Rlimit, RlimitResource, Root, RootFs,
    User,
};
use crate::userns::IdMap;

// ANCHOR: config_error
/// Why a `config.json` cannot be run by nutshell.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or is not a valid runtime config.
    #[error("{path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What `oci-spec` said.
        reason: String,
    },
    /// A field is missing or has a value no runtime could run.
    #[error("config.json: {field}: {reason}")]
    Invalid {
        /// The field, as the spec names it (`process.args`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A field nutshell does not honour.
    #[error("config.json: {field} is not supported by nutshell: {reason}")]
    Unsupported {
        /// The field.
        field: String,
        /// Why, and what to do.
        reason: String,
    },
}
// ANCHOR_END: config_error

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Read `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| ConfigError::Load {
        path,
        reason: e.to_string(),
    })
}

// ANCHOR: to_spec
/// The container `config` (from the bundle at `bundle`, an absolute path) describes, as
/// a [`ContainerSpec`]: refused with the first field nutshell cannot honour.
pub fn to_spec(config: &Spec, bundle: &Path) -> Result<ContainerSpec, ConfigError> {
    let process = config
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing: there is nothing to run"))?;
    let linux = config.linux().clone().unwrap_or_default();
    let root = config
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing: the container needs a root filesystem"))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !root_path.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{} is not a directory", root_path.display()),
        ));
    }
    let mut spec = ContainerSpec::new(
        Root {
            fs: RootFs::Dir {
                path: root_path,
                idmap: false,
            },
            readonly: root.readonly().unwrap_or(false),
            enter: EnterRoot::PivotRoot,
        },
        map_process(process)?,
    );
    spec.namespaces = map_namespaces(&linux)?;
    spec.hostname = config.hostname().clone().filter(|h| !h.is_empty());
    spec.domainname = config.domainname().clone().filter(|d| !d.is_empty());
    if (spec.hostname.is_some() || spec.domainname.is_some())
        && !spec.namespaces.is_new(Namespace::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting a hostname or domainname needs a new uts namespace (linux.namespaces)",
        ));
    }
    spec.uid_maps = map_ids(linux.uid_mappings());
    spec.gid_maps = map_ids(linux.gid_mappings());
    if !spec.uid_maps.is_empty() && !spec.namespaces.is_new(Namespace::User) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace (linux.namespaces)",
        ));
    }
    spec.mounts = config
        .mounts()
        .iter()
        .flatten()
        .map(|m| map_mount(m, bundle))
        .collect::<Result<_, _>>()?;
    spec.devices = map_devices(&linux)?;
    spec.masked_paths = linux
        .masked_paths()
        .iter()
        .flatten()
        .map(PathBuf::from)
        .collect();
    spec.readonly_paths = linux
        .readonly_paths()
        .iter()
        .flatten()
        .map(PathBuf::from)
        .collect();
    spec.root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") | Some("private") | Some("rprivate") => Propagation::Private,
        Some("slave") | Some("rslave") => Propagation::Slave,
        Some("shared") | Some("rshared") => Propagation::Shared,
        Some(other) => {
            return Err(unsupported(
                "linux.rootfsPropagation",
                format!("{other:?}: nutshell makes the root private, slave or shared"),
            ));
        }
    };
    spec.sysctl = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<BTreeMap<_, _>>();
    if let Some(offsets) = linux.time_offsets() {
        spec.time_offsets = Some(map_time_offsets(offsets)?);
    }
    let mut cgroup = map_cgroup(&linux)?;
    if !cgroup.resources.devices.is_empty() {
        cgroup
            .resources
            .devices
            .extend(allowed_devices(&spec.devices));
    }
    spec.cgroup = Some(cgroup);
    if let Some(seccomp) = linux.seccomp() {
        let profile = crate::seccomp::Profile::from_oci(seccomp)
            .map_err(|e| invalid("linux.seccomp", e.to_string()))?;
        // Compiled once here too, so that a profile no kernel could take is a config
        // error, before anything is made.
        crate::seccomp::compile(&profile).map_err(|e| invalid("linux.seccomp", e.to_string()))?;
        spec.seccomp = Some(profile);
    }
    if let Some(hooks) = config.hooks() {
        spec.hooks = map_hooks(hooks)?;
    }
    refuse_linux_extras(&linux)?;
    Ok(spec)
}
// ANCHOR_END: to_spec

/// The config's hooks: each path absolute, each timeout positive, and the hooks the
/// container's first process runs short enough for nutshell to wait for them.
fn map_hooks(hooks: &oci_spec::runtime::Hooks) -> Result<crate::hooks::Hooks, ConfigError> {
    let stage = |field: &'static str, list: &Option<Vec<oci_spec::runtime::Hook>>| {
        list.iter()
            .flatten()
            .map(|hook| {
                if !hook.path().is_absolute() {
                    return Err(invalid(
                        field,
                        format!("{}: a hook's path must be absolute", hook.path().display()),
                    ));
                }
                let timeout_secs = match hook.timeout() {
                    None => None,
                    Some(secs) if secs > 0 => Some(u32::try_from(secs).unwrap_or(u32::MAX)),
                    Some(secs) => {
                        return Err(invalid(
                            field,
                            format!("timeout {secs}: a hook's timeout must be more than 0 s"),
                        ));
                    }
                };
                Ok(crate::hooks::Hook {
                    path: hook.path().clone(),
                    args: hook.args().clone().unwrap_or_default(),
                    env: hook.env().clone().unwrap_or_default(),
                    timeout_secs,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()
    };
    let mapped = crate::hooks::Hooks {
        prestart: stage("hooks.prestart", hooks.prestart())?,
        create_runtime: stage("hooks.createRuntime", hooks.create_runtime())?,
        create_container: stage("hooks.createContainer", hooks.create_container())?,
        start_container: stage("hooks.startContainer", hooks.start_container())?,
        poststart: stage("hooks.poststart", hooks.poststart())?,
        poststop: stage("hooks.poststop", hooks.poststop())?,
        state: serde_json::Map::new(),
    };
    for (field, list) in [
        ("hooks.createContainer", &mapped.create_container),
        ("hooks.startContainer", &mapped.start_container),
    ] {
        let total: u64 = list
            .iter()
            .map(|h| u64::from(h.timeout_secs.unwrap_or(crate::hooks::DEFAULT_TIMEOUT_SECS)))
            .sum();
        if total > u64::from(crate::hooks::CHILD_STAGE_LIMIT_SECS) {
            return Err(unsupported(
                field,
                format!(
                    "these hooks may take {total} s together, and nutshell waits at most {} s for the container's first process to run them: give them shorter timeouts",
                    crate::hooks::CHILD_STAGE_LIMIT_SECS
                ),
            ));
        }
    }
    Ok(mapped)
}

pub(crate) fn map_process(process: &oci_spec::runtime::Process) -> Result<Process, ConfigError> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(invalid("process.args", "empty: there is nothing to run"));
    }
    if process.command_line().is_some() {
        return Err(unsupported("process.commandLine", "it is for Windows"));
    }
    if let Some(profile) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        return Err(unsupported(
            "process.apparmorProfile",
            format!(
                "nutshell applies no AppArmor profile ({profile} asked); remove the field, or run with a runtime that does"
            ),
        ));
    }
    if let Some(label) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        return Err(unsupported(
            "process.selinuxLabel",
            format!("nutshell sets no SELinux label ({label} asked)"),
        ));
    }
    for (present, field) in [
        (process.io_priority().is_some(), "process.ioPriority"),
        (process.scheduler().is_some(), "process.scheduler"),
        (
            process.exec_cpu_affinity().is_some(),
            "process.execCPUAffinity",
        ),
    ] {
        if present {
            return Err(unsupported(field, "not implemented"));
        }
    }
    let user = process.user();
    if user.username().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported("process.user.username", "it is for Windows"));
    }
    let cwd = process.cwd().clone();
    if !cwd.is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{}: must be absolute", cwd.display()),
        ));
    }
    let mut mapped = Process::new(Program::Args(args));
    mapped.env = process.env().clone().unwrap_or_default();
    mapped.cwd = cwd;
    mapped.user = User {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
    };
    // No capabilities field: an empty set, as the spec reads it (runc does the same).
    mapped.capabilities = Some(map_capabilities(process.capabilities().as_ref())?);
    mapped.no_new_privileges = process.no_new_privileges().unwrap_or(false);
    mapped.rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            Ok(Rlimit {
                resource: map_rlimit_type(r.typ())?,
                soft: r.soft(),
                hard: r.hard(),
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    mapped.oom_score_adj = process.oom_score_adj();
    if let Some(adj) = mapped.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
        return Err(invalid(
            "process.oomScoreAdj",
            format!("{adj}: must be -1000 to 1000"),
        ));
    }
    mapped.terminal = process.terminal().unwrap_or(false);
    if let Some(size) = process.console_size() {
        let fit = |n: u64, what| {
            u16::try_from(n)
                .map_err(|_| invalid("process.consoleSize", format!("{what} {n}: too large")))
        };
        mapped.console_size = Some((fit(size.height(), "height")?, fit(size.width(), "width")?));
    }
    Ok(mapped)
}

fn map_capabilities(
    caps: Option<&oci_spec::runtime::LinuxCapabilities>,
) -> Result<Capabilities, ConfigError> {
    let Some(caps) = caps else {
        return Ok(Capabilities::default());
    };
    let set = |field: &'static str, names: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = CapSet::default();
        for cap in names.iter().flatten() {
            let name = cap.to_string();
            let name = if name.starts_with("CAP_") {
                name
            } else {
                format!("CAP_{name}")
            };
            let parsed = Capability::from_name(&name)
                .ok_or_else(|| invalid(field, format!("{name}: no such capability")))?;
            set.insert(parsed);
        }
        Ok::<CapSet, ConfigError>(set)
    };
    Ok(Capabilities {
        bounding: set("process.capabilities.bounding", caps.bounding())?,
        effective: set("process.capabilities.effective", caps.effective())?,
        permitted: set("process.capabilities.permitted", caps.permitted())?,
        inheritable: set("process.capabilities.inheritable", caps.inheritable())?,
        ambient: set("process.capabilities.ambient", caps.ambient())?,
    })
}

fn map_rlimit_type(typ: oci_spec::runtime::PosixRlimitType) -> Result<RlimitResource, ConfigError> {
    use oci_spec::runtime::PosixRlimitType as T;
    Ok(match typ {
        T::RlimitAs => RlimitResource::As,
        T::RlimitCore => RlimitResource::Core,
        T::RlimitCpu => RlimitResource::Cpu,
        T::RlimitData => RlimitResource::Data,
        T::RlimitFsize => RlimitResource::Fsize,
        T::RlimitLocks => RlimitResource::Locks,
        T::RlimitMemlock => RlimitResource::Memlock,
        T::RlimitMsgqueue => RlimitResource::Msgqueue,
        T::RlimitNice => RlimitResource::Nice,
        T::RlimitNofile => RlimitResource::Nofile,
        T::RlimitNproc => RlimitResource::Nproc,
        T::RlimitRss => RlimitResource::Rss,
        T::RlimitRtprio => RlimitResource::Rtprio,
        T::RlimitRttime => RlimitResource::Rttime,
        T::RlimitSigpending => RlimitResource::Sigpending,
        T::RlimitStack => RlimitResource::Stack,
        #[allow(unreachable_patterns)]
        other => {
            return Err(unsupported(
                "process.rlimits",
                format!("{other:?} is not a Linux resource limit"),
            ));
        }
    })
}

// ANCHOR: map_namespaces
/// `linux.namespaces`: a kind listed without a path is new, with a path joined; a kind
/// not listed is the host's.
fn map_namespaces(linux: &oci_spec::runtime::Linux) -> Result<Namespaces, ConfigError> {
    let mut namespaces = Namespaces::default();
    for ns in linux.namespaces().iter().flatten() {
        let kind = match ns.typ() {
            LinuxNamespaceType::Mount => Namespace::Mount,
            LinuxNamespaceType::Uts => Namespace::Uts,
            LinuxNamespaceType::Ipc => Namespace::Ipc,
            LinuxNamespaceType::Pid => Namespace::Pid,
            LinuxNamespaceType::Network => Namespace::Net,
            LinuxNamespaceType::User => Namespace::User,
            LinuxNamespaceType::Cgroup => Namespace::Cgroup,
            LinuxNamespaceType::Time => Namespace::Time,
        };
        let mode = namespaces.mode_mut(kind);
        if *mode != NamespaceMode::Host {
            return Err(invalid(
                "linux.namespaces",
                format!("the {kind} namespace is listed twice"),
            ));
        }
        *mode = match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                if !path.is_absolute() {
                    return Err(invalid(
                        "linux.namespaces",
                        format!("{}: a namespace path must be absolute", path.display()),
                    ));
                }
                NamespaceMode::Join(path.clone())
            }
            _ => NamespaceMode::New,
        };
    }
    if namespaces.mount == NamespaceMode::Host {
        return Err(unsupported(
            "linux.namespaces",
            "a container without a mount namespace of its own would pivot the host's root; list the mount namespace",
        ));
    }
    Ok(namespaces)
}
// ANCHOR_END: map_namespaces

fn map_ids(maps: &Option<Vec<LinuxIdMapping>>) -> Vec<IdMap> {
    maps.iter()
        .flatten()
        .map(|m| IdMap {
            inside: m.container_id(),
            outside: m.host_id(),
            count: m.size(),
        })
        .collect()
}

// ANCHOR: map_mount
/// One entry of `mounts`: its type and options. Bind mounts take a source relative to
/// the bundle; the flags nutshell does not set are refused.
fn map_mount(mount: &OciMount, bundle: &Path) -> Result<Mount, ConfigError> {
    let destination = mount.destination().clone();
    let field = || format!("mounts[{}]", destination.display());
    if !destination.is_absolute() {
        return Err(invalid(
            "mounts.destination",
            format!("{}: must be absolute", destination.display()),
        ));
    }
    if mount.uid_mappings().is_some() || mount.gid_mappings().is_some() {
        return Err(unsupported(
            format!("{}.uidMappings", field()),
            "idmapped bind mounts from config.json are not implemented",
        ));
    }
    let options = mount.options().clone().unwrap_or_default();
    let mut mapped = MountOptions::default();
    let mut bind = None;
    for option in &options {
        match option.as_str() {
            "ro" => mapped.readonly = true,
            "rw" => mapped.readonly = false,
            "nosuid" => mapped.nosuid = true,
            "suid" => mapped.nosuid = false,
            "nodev" => mapped.nodev = true,
            "dev" => mapped.nodev = false,
            "noexec" => mapped.noexec = true,
            "exec" => mapped.noexec = false,
            "bind" => bind = Some(false),
            "rbind" => bind = Some(true),
            // What the kernel does anyway: relatime is the default for a new mount, and
            // every mount in the container's namespace starts private (its root's
            // propagation section makes the whole tree so).
            "relatime" | "private" | "rprivate" | "defaults" => {}
            "strictatime" => mapped.atime = Atime::Strict,
            "noatime" => mapped.atime = Atime::Never,
            "nodiratime" => mapped.nodiratime = true,
            "norelatime" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" | "sync" | "async" | "dirsync" | "remount" | "mand" | "nomand"
            | "silent" | "loud" | "iversion" | "noiversion" | "lazytime" | "nolazytime"
            | "idmap" | "ridmap" | "tmpcopyup" | "nosymfollow" | "symfollow" | "rro" | "rrw"
            | "rnosuid" | "rsuid" | "rnodev" | "rdev" | "rnoexec" | "rexec" | "rnoatime"
            | "ratime" | "rstrictatime" | "rnostrictatime" | "rnodiratime" | "rdiratime"
            | "rrelatime" | "rnorelatime" | "rnosymfollow" | "rsymfollow" | "diratime"
            | "atime" | "nostrictatime" => {
                return Err(unsupported(
                    format!("{} option {option}", field()),
                    "nutshell sets ro, nosuid, nodev, noexec, the atime flags, bind and rbind; this flag is not implemented",
                ));
            }
            data => mapped.data.push(data.to_string()),
        }
    }
    let typ = mount.typ().clone().unwrap_or_default();
    let kind = if let Some(recursive) = bind.or((typ == "bind").then_some(false)) {
        let source = mount.source().clone().ok_or_else(|| {
            invalid(
                "mounts.source",
                format!("{}: a bind mount needs a source", field()),
            )
        })?;
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        if !mapped.data.is_empty() {
            return Err(invalid(
                "mounts.options",
                format!(
                    "{}: a bind mount takes no data options ({})",
                    field(),
                    mapped.data.join(",")
                ),
            ));
        }
        MountKind::Bind { source, recursive }
    } else {
        match typ.as_str() {
            "proc" => MountKind::Proc,
            "tmpfs" => MountKind::Tmpfs,
            "sysfs" => MountKind::Sysfs,
            "devpts" => MountKind::Devpts,
            "mqueue" => MountKind::Mqueue,
            "cgroup" | "cgroup2" => MountKind::Cgroup,
            "" => {
                return Err(invalid(
                    "mounts.type",
                    format!("{}: no type, and not a bind mount", field()),
                ));
            }
            other => {
                return Err(unsupported(
                    format!("{}.type", field()),
                    format!(
                        "{other}: nutshell mounts proc, tmpfs, sysfs, devpts, mqueue, cgroup and binds"
                    ),
                ));
            }
        }
    };
    Ok(Mount {
        destination,
        kind,
        options: mapped,
    })
}
// ANCHOR_END: map_mount

fn map_devices(linux: &oci_spec::runtime::Linux) -> Result<Vec<Device>, ConfigError> {
    let mut devices = Device::defaults();
    for device in linux.devices().iter().flatten() {
        let path = device.path().clone();
        if !path.starts_with("/dev") {
            return Err(invalid(
                "linux.devices",
                format!("{}: a device lives under /dev", path.display()),
            ));
        }
        match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => {}
            other => {
                return Err(unsupported(
                    format!("linux.devices[{}]", path.display()),
                    format!("type {other:?}: nutshell makes character devices only"),
                ));
            }
        }
        if device.uid().is_some_and(|u| u != 0) || device.gid().is_some_and(|g| g != 0) {
            return Err(unsupported(
                format!("linux.devices[{}].uid", path.display()),
                "devices owned by another user than root are not implemented",
            ));
        }
        let (Ok(major), Ok(minor)) = (u64::try_from(device.major()), u64::try_from(device.minor()))
        else {
            return Err(invalid(
                "linux.devices",
                format!("{}: negative device number", path.display()),
            ));
        };
        devices.retain(|d| d.path != path);
        devices.push(Device {
            path,
            major,
            minor,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
        });
    }
    Ok(devices)
}

// ANCHOR: allowed_devices
/// What runc allows after the config's own device rules: the device nodes the container
/// gets (the spec's defaults and `linux.devices`), its terminals (`/dev/pts/*`,
/// `/dev/ptmx`, `/dev/console`), and mknod of any device, which the nodes' own rules
/// then govern. podman's config denies everything and counts on this.
fn allowed_devices(devices: &[Device]) -> Vec<DeviceRule> {
    let rule = |kind, major, minor: Option<u64>, access: &str| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access: access.to_string(),
    };
    let mut rules = vec![rule('c', None, None, "m"), rule('b', None, None, "m")];
    rules.extend(
        devices
            .iter()
            .map(|d| rule('c', Some(d.major), Some(d.minor), "rwm")),
    );
    rules.extend([
        rule('c', Some(136), None, "rwm"),
        rule('c', Some(5), Some(2), "rwm"),
        rule('c', Some(5), Some(1), "rwm"),
    ]);
    rules
}
// ANCHOR_END: allowed_devices

fn map_time_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<TimeOffsets, ConfigError> {
    let mut mapped = TimeOffsets::default();
    for (clock, offset) in offsets {
        if offset.nanosecs().is_some_and(|n| n != 0) {
            return Err(unsupported(
                "linux.timeOffsets",
                "nanosecond offsets are not implemented",
            ));
        }
        let secs = offset.secs().unwrap_or(0);
        match clock.as_str() {
            "monotonic" => mapped.monotonic_secs = secs,
            "boottime" => mapped.boottime_secs = secs,
            other => {
                return Err(invalid(
                    "linux.timeOffsets",
                    format!("{other}: no such clock"),
                ));
            }
        }
    }
    Ok(mapped)
}

// ANCHOR: map_cgroup
/// `linux.cgroupsPath` and `linux.resources`. The path is placed below nutshell's own
/// subtree (`/libpod_parent/ctr` becomes `nutshell/libpod_parent/ctr`): nutshell writes
/// to no cgroup it did not make. systemd's `slice:prefix:name` form is refused.
fn map_cgroup(linux: &oci_spec::runtime::Linux) -> Result<CgroupSpec, ConfigError> {
    let path = match linux.cgroups_path() {
        None => None,
        Some(path) => {
            let text = path.to_string_lossy();
            if text.contains(':') {
                return Err(unsupported(
                    "linux.cgroupsPath",
                    format!(
                        "{text}: systemd's slice:prefix:name form needs --systemd-cgroup, which nutshell does not implement; use cgroupfs (podman --cgroup-manager cgroupfs)"
                    ),
                ));
            }
            let relative = text.trim_start_matches('/');
            let relative = relative.strip_prefix("nutshell/").unwrap_or(relative);
            Some(format!("nutshell/{relative}"))
        }
    };
    let resources = match linux.resources() {
        Some(resources) => map_resources(resources)?,
        None => Resources::default(),
    };
    Ok(CgroupSpec {
        path,
        resources,
        ..Default::default()
    })
}
// ANCHOR_END: map_cgroup

/// `linux.resources.blockIO`: the weight and the throttles; per-device weights and the
/// leaf weight are refused (no cgroup version nutshell writes has both).
fn map_block_io(
    io: &oci_spec::runtime::LinuxBlockIo,
    mapped: &mut Resources,
) -> Result<(), ConfigError> {
    mapped.blkio_weight = io.weight();
    for (set, field) in [
        (
            io.leaf_weight().is_some(),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            io.weight_device().as_ref().is_some_and(|d| !d.is_empty()),
            "linux.resources.blockIO.weightDevice",
        ),
    ] {
        if set {
            return Err(unsupported(field, "not implemented"));
        }
    }
    for (list, kind) in [
        (io.throttle_read_bps_device(), IoLimit::ReadBps),
        (io.throttle_write_bps_device(), IoLimit::WriteBps),
        (io.throttle_read_iops_device(), IoLimit::ReadIops),
        (io.throttle_write_iops_device(), IoLimit::WriteIops),
    ] {
        for device in list.iter().flatten() {
            let number = |n: i64| {
                u64::try_from(n).map_err(|_| {
                    invalid(
                        "linux.resources.blockIO",
                        format!("device number {n}: must not be negative"),
                    )
                })
            };
            mapped.blkio_throttle.push(IoThrottle {
                major: number(device.major())?,
                minor: number(device.minor())?,
                kind,
                rate: device.rate(),
            });
        }
    }
    Ok(())
}

pub(crate) fn map_resources(res: &LinuxResources) -> Result<Resources, ConfigError> {
    let mut mapped = Resources::default();
    if let Some(cpu) = res.cpu() {
        for (set, field) in [
            (
                cpu.realtime_runtime().is_some(),
                "linux.resources.cpu.realtimeRuntime",
            ),
            (
                cpu.realtime_period().is_some(),
                "linux.resources.cpu.realtimePeriod",
            ),
            (
                cpu.idle().is_some_and(|i| i != 0),
                "linux.resources.cpu.idle",
            ),
            (cpu.burst().is_some(), "linux.resources.cpu.burst"),
        ] {
            if set {
                return Err(unsupported(field, "not implemented"));
            }
        }
        if let Some(quota) = cpu.quota().filter(|&q| q > 0) {
            let period = cpu.period().unwrap_or(100_000);
            mapped.cpu_quota = Some(
                crate::cgroups::quota_from_parts(quota as u64, period)
                    .map_err(|e| invalid("linux.resources.cpu.quota", e.to_string()))?,
            );
        }
        mapped.cpuset_cpus = cpu.cpus().clone().filter(|c| !c.is_empty());
        mapped.cpuset_mems = cpu.mems().clone().filter(|m| !m.is_empty());
        if let Some(shares) = cpu.shares() {
            mapped.cpu_shares = Some(
                crate::cgroups::validate_shares(shares)
                    .map_err(|e| invalid("linux.resources.cpu.shares", e.to_string()))?,
            );
        }
    }
    if let Some(memory) = res.memory() {
        if let Some(limit) = memory.limit().filter(|&l| l > 0) {
            mapped.memory_bytes = Some(limit as u64);
            mapped.swap = match memory.swap() {
                None => SwapPolicy::NoSwap,
                Some(-1) => SwapPolicy::Unlimited,
                Some(swap) if swap == limit => SwapPolicy::NoSwap,
                Some(swap) if swap > limit => SwapPolicy::Total(swap as u64),
                Some(swap) => {
                    return Err(invalid(
                        "linux.resources.memory.swap",
                        format!("{swap}: memory+swap must be at least the memory limit, {limit}"),
                    ));
                }
            };
        }
        mapped.memory_reservation = memory.reservation().filter(|&r| r > 0).map(|r| r as u64);
        for (set, field) in [
            (memory.kernel().is_some(), "linux.resources.memory.kernel"),
            (
                memory.kernel_tcp().is_some(),
                "linux.resources.memory.kernelTCP",
            ),
            (
                memory.swappiness().is_some(),
                "linux.resources.memory.swappiness",
            ),
            (
                memory.disable_oom_killer().unwrap_or(false),
                "linux.resources.memory.disableOOMKiller",
            ),
        ] {
            if set {
                return Err(unsupported(field, "not implemented"));
            }
        }
    }
    if let Some(pids) = res.pids().as_ref().filter(|p| p.limit() > 0) {
        mapped.pids_max = Some(pids.limit() as u64);
    }
    for rule in res.devices().iter().flatten() {
        let number = |n: Option<i64>| match n {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            None | Some(-1) => Ok(None),
            Some(n) => Err(invalid(
                "linux.resources.devices",
                format!("device number {n}"),
            )),
        };
        let kind = match rule.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(other) => {
                return Err(invalid(
                    "linux.resources.devices",
                    format!("type {other:?}: the devices controller knows a, c and b"),
                ));
            }
        };
        mapped.devices.push(DeviceRule {
            allow: rule.allow(),
            kind,
            major: number(rule.major())?,
            minor: number(rule.minor())?,
            access: rule.access().clone().unwrap_or_else(|| "rwm".to_string()),
        });
    }
    if let Some(io) = res.block_io() {
        map_block_io(io, &mut mapped)?;
    }
    for limit in res.hugepage_limits().iter().flatten() {
        let bytes = u64::try_from(limit.limit()).map_err(|_| {
            invalid(
                "linux.resources.hugepageLimits",
                format!("limit {}: must not be negative", limit.limit()),
            )
        })?;
        mapped
            .hugepage_limits
            .push((limit.page_size().clone(), bytes));
    }
    for (set, field) in [
        (res.network().is_some(), "linux.resources.network"),
        (
            res.rdma().as_ref().is_some_and(|r| !r.is_empty()),
            "linux.resources.rdma",
        ),
        (
            res.unified().as_ref().is_some_and(|u| !u.is_empty()),
            "linux.resources.unified",
        ),
    ] {
        if set {
            return Err(unsupported(field, "not implemented"));
        }
    }
    Ok(mapped)
}

fn refuse_linux_extras(linux: &oci_spec::runtime::Linux) -> Result<(), ConfigError> {
    if let Some(label) = linux.mount_label().as_ref().filter(|l| !l.is_empty()) {
        return Err(unsupported(
            "linux.mountLabel",
            format!("nutshell sets no SELinux label ({label} asked)"),
        ));
    }
    for (set, field) in [
        (linux.intel_rdt().is_some(), "linux.intelRdt"),
        (linux.memory_policy().is_some(), "linux.memoryPolicy"),
        (linux.personality().is_some(), "linux.personality"),
        (
            linux.net_devices().as_ref().is_some_and(|n| !n.is_empty()),
            "linux.netDevices",
        ),
    ] {
        if set {
            return Err(unsupported(field, "not implemented"));
        }
    }
    Ok(())
}
