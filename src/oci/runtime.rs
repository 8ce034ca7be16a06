//! runc's commands, one function each: what `nutshell create`, `start`, `state`, `kill`,
//! `delete`, `run`, `list`, `spec` and `features` do. The command line in `main.rs` only
//! parses flags and calls these.
//!
//! Between commands, everything a later one needs is in the container's state dir:
//! launch's `state.json` (status, first process, what it owns), and `oci.json`, what the
//! OCI side adds (bundle, annotations, the creation time). `nutshell state` prints the two
//! as runc does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::config::{self, ConfigError};
use crate::hooks::Stage;
use crate::launch::{self, ContainerId, Detached, HostFacts, LaunchError, Status};

/// The runtime spec version this runtime implements, as `state` and `features` report it.
pub const OCI_VERSION: &str = "1.0.2";

/// Why a runtime command failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle's config cannot be run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The container could not be made, started, signalled or removed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// An id that is not a valid container name.
    #[error(transparent)]
    Id(#[from] launch::InvalidId),
    /// A signal name or number that is not one.
    #[error("{0:?} is not a signal: use a name (TERM, SIGKILL) or a number (15)")]
    Signal(String),
    /// A flag that cannot be honoured.
    #[error("{0}")]
    Unsupported(String),
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// The exit status for this error: a container program that could not be exec'd
    /// exits as a shell would (127 not found, 126 not runnable).
    pub fn exit_status(&self) -> Option<u8> {
        match self {
            RuntimeError::Launch(err) => err.exit_status(),
            _ => None,
        }
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io { op, path, source }
}

/// What the OCI side keeps in the state dir beside launch's `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OciRecord {
    /// The bundle, an absolute path.
    pub bundle: PathBuf,
    /// The root filesystem, an absolute path.
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339 with nanoseconds.
    pub created: String,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The hooks later commands run: poststart (`start`) and poststop (`delete`).
    #[serde(default)]
    pub hooks: crate::hooks::Hooks,
}

// ANCHOR: oci_state
/// The state of a container as runc prints it, field for field: the runtime spec's
/// `state` (ociVersion, id, status, pid, bundle, annotations) and runc's additions
/// (rootfs, created, owner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// The spec version.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// creating, created, running or stopped.
    pub status: String,
    /// Its first process as the host sees it; 0 once stopped.
    pub pid: i32,
    /// The bundle.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// When it was created.
    pub created: String,
    /// Who created it: empty for root, as runc writes it.
    pub owner: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
// ANCHOR_END: oci_state

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Creating => "creating",
        Status::Created => "created",
        Status::Running => "running",
        Status::Stopped => "stopped",
    }
}

/// The state of `container`, with what `oci.json` adds: `paused` is a running
/// container whose cgroup is frozen.
pub fn oci_state(container: &Detached, facts: &HostFacts) -> OciState {
    let record = record(container);
    let status = container.status();
    let paused = status == Status::Running
        && container
            .cgroup(facts)
            .is_some_and(|cgroup| cgroup.is_frozen());
    OciState {
        oci_version: OCI_VERSION.to_string(),
        id: container.id().to_string(),
        status: if paused {
            "paused"
        } else {
            status_name(status)
        }
        .to_string(),
        pid: match status {
            Status::Stopped => 0,
            _ => container.pid().unwrap_or(0),
        },
        bundle: record.bundle,
        rootfs: record.rootfs,
        created: record.created,
        owner: String::new(),
        annotations: record.annotations,
    }
}

/// How to create a container from a bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory (runc's `--bundle`, default the working directory).
    pub bundle: PathBuf,
    /// Write the first process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Where to send the terminal's master fd, for a config with `process.terminal`.
    pub console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (for a root on a ramfs, where pivot_root fails).
    pub no_pivot: bool,
    /// Pass this many fds above stdio on to the container's process.
    pub preserve_fds: u32,
}

// ANCHOR: create
/// `nutshell create ID`: the bundle's container, left waiting at its start gate. The
/// process that runs this exits; the container does not.
pub fn create(id: &str, options: &CreateOptions, facts: &HostFacts) -> Result<(), RuntimeError> {
    let id = ContainerId::parse(id)?;
    let (mut spec, config) = prepare(&id, options)?;
    spec.detached = true;
    let bundle = absolute(&options.bundle)?;
    let container = launch::launch(Some(id.clone()), &spec, facts)?;
    let record = OciRecord {
        hooks: crate::hooks::Hooks {
            poststart: spec.hooks.poststart.clone(),
            poststop: spec.hooks.poststop.clone(),
            state: spec.hooks.state.clone(),
            ..Default::default()
        },
        rootfs: match &spec.root.fs {
            crate::spec::RootFs::Dir { path, .. } => path.clone(),
            _ => PathBuf::new(),
        },
        bundle,
        created: now_rfc3339(),
        annotations: config
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let dir = facts.state_root.join(id.as_str());
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other);
    json.and_then(|json| std::fs::write(dir.join("oci.json"), json))
        .map_err(io("write", &dir.join("oci.json")))?;
    if let (Some(path), Some(pid)) = (&options.pid_file, container.pid()) {
        write_pid_file(path, pid.as_raw())?;
    }
    container.detach()?;
    Ok(())
}
// ANCHOR_END: create

/// The bundle's config, and it as container `id`'s spec with the command-line options
/// applied.
fn prepare(
    id: &ContainerId,
    options: &CreateOptions,
) -> Result<(crate::spec::ContainerSpec, oci_spec::runtime::Spec), RuntimeError> {
    let bundle = absolute(&options.bundle)?;
    let config = config::load(&bundle)?;
    let mut spec = config::to_spec(&config, &bundle)?;
    // What every hook reads of the state, whatever the stage.
    let state = &mut spec.hooks.state;
    state.insert("ociVersion".into(), OCI_VERSION.into());
    state.insert("id".into(), id.as_str().into());
    state.insert("bundle".into(), bundle.display().to_string().into());
    if let Some(annotations) = config.annotations().as_ref().filter(|a| !a.is_empty()) {
        let map = annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        state.insert("annotations".into(), serde_json::Value::Object(map));
    }
    if options.no_pivot {
        spec.root.enter = crate::spec::EnterRoot::Chroot;
    }
    spec.preserve_fds = options.preserve_fds;
    spec.console_socket = options.console_socket.clone();
    Ok((spec, config))
}

fn absolute(path: &Path) -> Result<PathBuf, RuntimeError> {
    std::fs::canonicalize(path).map_err(io("find the bundle", path))
}

/// Write `pid` to `path`, atomically, as runc does (podman's conmon reads it).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), LaunchError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io {
            op: "write",
            path,
            source,
        }
    };
    let temp = path.with_extension("nutshell-tmp");
    std::fs::write(&temp, pid.to_string()).map_err(failed(&temp))?;
    std::fs::rename(&temp, path).map_err(failed(path))
}

/// What to do once a foreground container is created: write its pid to `path`, if
/// one is given.
pub(crate) fn pid_file_writer(
    path: Option<&Path>,
) -> impl FnOnce(&launch::Container) -> Result<(), LaunchError> + '_ {
    move |container| match (path, container.pid()) {
        (Some(path), Some(pid)) => write_pid_file(path, pid.as_raw()),
        _ => Ok(()),
    }
}

// ANCHOR: start_command
/// `nutshell start ID`.
pub fn start(id: &str, facts: &HostFacts) -> Result<(), RuntimeError> {
    let mut container = find(id, facts)?;
    container.start()?;
    let hooks = record(&container).hooks;
    warn_on_failure(
        Stage::Poststart,
        hooks.run(Stage::Poststart, container.pid().unwrap_or(0)),
    );
    Ok(())
}
// ANCHOR_END: start_command

/// What the OCI side keeps for `container`; the default for a container of nutshell's
/// own commands, which has none.
fn record(container: &Detached) -> OciRecord {
    std::fs::read(container.dir().join("oci.json"))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

// ANCHOR: warn_on_failure
/// A failed poststart or poststop hook: the runtime spec has the runtime warn, and
/// the lifecycle go on as if it had succeeded.
fn warn_on_failure(stage: Stage, result: Result<(), crate::hooks::HookError>) {
    if let Err(err) = result {
        eprintln!("nutshell: warning: {stage} {err}");
    }
}
// ANCHOR_END: warn_on_failure

/// `nutshell state ID`, as JSON.
pub fn state(id: &str, facts: &HostFacts) -> Result<OciState, RuntimeError> {
    Ok(oci_state(&find(id, facts)?, facts))
}

/// `nutshell kill ID SIGNAL`.
pub fn kill(id: &str, signal: &str, all: bool, facts: &HostFacts) -> Result<(), RuntimeError> {
    let signal = parse_signal(signal)?;
    find(id, facts)?.kill(signal, all, facts)?;
    Ok(())
}

/// `nutshell delete ID`.
pub fn delete(id: &str, force: bool, facts: &HostFacts) -> Result<(), RuntimeError> {
    let container = match find(id, facts) {
        // runc: deleting what is not there, with --force, is not an error.
        Err(RuntimeError::Launch(LaunchError::NotFound { .. })) if force => return Ok(()),
        other => other?,
    };
    let hooks = record(&container).hooks;
    if force && let Some(cgroup) = container.cgroup(facts) {
        // A frozen process takes no signal until thawed: runc thaws before it kills.
        if cgroup.is_frozen() {
            cgroup.freeze(false).map_err(LaunchError::from)?;
        }
    }
    container.delete(force, facts)?;
    warn_on_failure(Stage::Poststop, hooks.run(Stage::Poststop, 0));
    Ok(())
}

/// `nutshell run ID`: create, start, wait in the foreground (passing signals on), then
/// delete; returns the exit status. With `detach`, create and start only.
pub fn run(
    id: &str,
    options: &CreateOptions,
    detach: bool,
    facts: &HostFacts,
) -> Result<i32, RuntimeError> {
    if detach {
        create(id, options, facts)?;
        if let Err(err) = start(id, facts) {
            let _ = delete(id, true, facts);
            return Err(err);
        }
        return Ok(0);
    }
    let id = ContainerId::parse(id)?;
    let (spec, _) = prepare(&id, options)?;
    let plan = launch::plan(&id, &spec, facts).map_err(LaunchError::from)?;
    let pid_file = pid_file_writer(options.pid_file.as_deref());
    let poststart = |container: &launch::Container| {
        let pid = container.pid().map_or(0, |p| p.as_raw());
        warn_on_failure(Stage::Poststart, spec.hooks.run(Stage::Poststart, pid));
    };
    let exit = launch::run_to_end_with(plan, &spec, facts, pid_file, poststart);
    warn_on_failure(Stage::Poststop, spec.hooks.run(Stage::Poststop, 0));
    Ok(exit?.code())
}

// ANCHOR: pause
/// `nutshell pause ID` (`resume` with `frozen` false): freeze every process of a
/// running container in its cgroup, or thaw them. A frozen process is not stopped by a
/// signal it could see, as SIGSTOP would: it just gets no CPU until thawed.
pub fn pause(id: &str, frozen: bool, facts: &HostFacts) -> Result<(), RuntimeError> {
    let container = find(id, facts)?;
    let what = if frozen { "pause" } else { "resume" };
    let state = oci_state(&container, facts);
    let expected = if frozen { "running" } else { "paused" };
    if state.status != expected {
        return Err(RuntimeError::Unsupported(format!(
            "container {id} is {}: cannot {what}, only a {expected} container",
            state.status
        )));
    }
    let cgroup = container.cgroup(facts).ok_or_else(|| {
        RuntimeError::Unsupported(format!("container {id} has no cgroup: cannot {what} it"))
    })?;
    cgroup.freeze(frozen).map_err(LaunchError::from)?;
    Ok(())
}
// ANCHOR_END: pause

/// `nutshell ps ID --format json`: the pids of the container's processes.
pub fn pids(id: &str, facts: &HostFacts) -> Result<Vec<i32>, RuntimeError> {
    let container = find(id, facts)?;
    Ok(match container.status() {
        Status::Stopped => Vec::new(),
        _ => container.processes(facts),
    })
}

/// `nutshell ps ID [ARGS]`: `ps ARGS` (`-ef` if none), only the lines of the
/// container's processes, as runc prints them.
pub fn ps_table(id: &str, args: &[String], facts: &HostFacts) -> Result<String, RuntimeError> {
    let pids = pids(id, facts)?;
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(io("run", Path::new("ps")))?;
    if !output.status.success() {
        return Err(RuntimeError::Unsupported(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|name| name == "PID")
        .ok_or_else(|| {
            RuntimeError::Unsupported(format!("ps {} prints no PID column", args.join(" ")))
        })?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

// ANCHOR: update
/// `nutshell update ID`: new limits for a running container, written into its cgroup
/// at once. `resources` is an OCI `linux.resources` object, from `--resources FILE` or
/// the flags; only what it sets changes.
pub fn update(
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
    facts: &HostFacts,
) -> Result<(), RuntimeError> {
    let container = find(id, facts)?;
    if container.status() == Status::Stopped {
        return Err(RuntimeError::Unsupported(format!(
            "container {id} is stopped: cannot update it"
        )));
    }
    let cgroup = container.cgroup(facts).ok_or_else(|| {
        RuntimeError::Unsupported(format!("container {id} has no cgroup to update"))
    })?;
    let layout = facts.cgroups.as_ref().ok_or_else(|| {
        RuntimeError::Unsupported("no cgroup hierarchy is mounted on this host".to_string())
    })?;
    let mapped = config::map_resources(resources)?;
    let settings = crate::cgroups::plan(&mapped, layout, facts.swap_accounting)
        .map_err(|e| LaunchError::Plan(launch::PlanError::from(e)))?;
    if cgroup.apply(&settings).is_err() {
        // v1 refuses a memory limit above memory+swap, and memory+swap below memory:
        // raising both takes memory+swap first.
        let (memsw, rest): (Vec<_>, Vec<_>) = settings
            .into_iter()
            .partition(|s| s.file == "memory.memsw.limit_in_bytes");
        let reordered: Vec<_> = memsw.into_iter().chain(rest).collect();
        cgroup.apply(&reordered).map_err(LaunchError::from)?;
    }
    Ok(())
}
// ANCHOR_END: update

/// The containers under the state root, as `nutshell list` shows them.
pub fn list(facts: &HostFacts) -> Result<Vec<OciState>, RuntimeError> {
    Ok(Detached::list(&facts.state_root)?
        .iter()
        .map(|container| oci_state(container, facts))
        .collect())
}

/// `nutshell list`'s table: runc's columns.
pub fn list_table(states: &[OciState]) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:<10} {:<40} {:<30} {}\n",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"
    );
    for s in states {
        out.push_str(&format!(
            "{:<12} {:<8} {:<10} {:<40} {:<30} {}\n",
            s.id,
            s.pid,
            s.status,
            s.bundle.display(),
            s.created,
            if s.owner.is_empty() { "root" } else { &s.owner }
        ));
    }
    out
}

fn find(id: &str, facts: &HostFacts) -> Result<Detached, RuntimeError> {
    let id = ContainerId::parse(id)?;
    Ok(Detached::find(&facts.state_root, &id)?)
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(text: &str) -> Result<Signal, RuntimeError> {
    let bad = || RuntimeError::Signal(text.to_string());
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Now, in RFC 3339 with nanoseconds, as runc writes `created`.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::image::pack::rfc3339(now.as_secs());
    match seconds.strip_suffix('Z') {
        Some(base) => format!("{base}.{:09}Z", now.subsec_nanos()),
        None => seconds,
    }
}

// ANCHOR: default_config
/// `nutshell spec`: runc's default `config.json` (`sh` on a terminal, the default
/// capabilities, masked paths and mounts), or with `rootless` one for a normal user:
/// a user namespace mapping it to root, and no cgroup limits.
pub fn default_config(rootless: bool) -> oci_spec::runtime::Spec {
    let mut config = if rootless {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    // oci-spec's default is its sister project's name; runc's is its own.
    config.set_hostname(Some("nutshell".to_string()));
    config
}
// ANCHOR_END: default_config

/// `nutshell features`: what this runtime implements, in the runtime spec's
/// `features.md` format, for clients that ask before they write a config.
pub fn features() -> serde_json::Value {
    let namespaces = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    let capabilities: Vec<String> = crate::capabilities::CapSet::all_up_to(
        crate::capabilities::cap_last_cap(Path::new("/proc")).unwrap_or(40),
    )
    .iter()
    .map(|cap| cap.to_string())
    .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
            "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev",
            "noexec", "exec", "relatime", "private", "rprivate", "defaults"],
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": [crate::seccomp::syscalls::native().map_or("", |t| t.oci_name)],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
        },
        "annotations": { "org.opencontainers.runtime.name": "nutshell" },
    })
}
