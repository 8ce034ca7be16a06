//! `nutshell exec`: a new process in a running container, as `runc exec` makes one.
//!
//! It is not a container of its own, but it goes through the same pipeline: a spec whose
//! every namespace is *joined* (`/proc/PID/ns/*` of the container's first process), whose
//! root is the one that mount namespace already has, whose cgroup is the container's
//! (entered, not owned), and whose process comes from `--process` or the command line.
//! So it gets the same steps before its exec as the container's own process: inherited
//! fds closed, the working directory checked to lie inside the root, its capabilities
//! set, `no_new_privs`, and the container's seccomp filter.
//!
//! The PID namespace is the odd one: setns(2) into one changes only where the caller's
//! *children* go, so nutshell joins it itself before the clone.

use std::path::{Path, PathBuf};

use super::config;
use super::runtime::{OciRecord, RuntimeError, pid_file_writer};
use crate::launch::{self, ContainerId, Detached, HostFacts, LaunchError, Status};
use crate::namespaces::Namespace;
use crate::spec::{CgroupSpec, ContainerSpec, EnterRoot, NamespaceMode, Namespaces, Root, RootFs};

/// What to run, and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// An OCI `process` object in a file (podman writes one), instead of the fields below.
    pub process: Option<PathBuf>,
    /// The command, when there is no `--process`.
    pub args: Vec<String>,
    /// More environment, `NAME=value`.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    /// Capabilities to add to the container's.
    pub caps: Vec<String>,
    /// Give it a terminal, sent over the console socket.
    pub tty: bool,
    /// The console socket.
    pub console_socket: Option<PathBuf>,
    /// Return once it runs, instead of waiting for it.
    pub detach: bool,
    /// Write its pid here.
    pub pid_file: Option<PathBuf>,
}

// ANCHOR: exec
/// Run a process in container `id`: with `detach`, return once it runs (its pid in the
/// pid file); without, wait for it and return its exit status.
pub fn exec(id: &str, options: &ExecOptions, facts: &HostFacts) -> Result<i32, RuntimeError> {
    let container = Detached::find(&facts.state_root, &ContainerId::parse(id)?)?;
    let base = bundle_spec(&container)?;
    exec_in(&container, &base, options, facts)
}
// ANCHOR_END: exec

/// Run a process in `container`, made from `base` (the spec its own process was made
/// from: the new one gets its environment and seccomp filter), as [`exec`] does.
pub fn exec_in(
    container: &Detached,
    base: &ContainerSpec,
    options: &ExecOptions,
    facts: &HostFacts,
) -> Result<i32, RuntimeError> {
    let spec = process_spec(container, base, options)?;
    let exec_facts = exec_facts(facts);
    let exec_id = ContainerId::random();
    let write_pid = pid_file_writer(options.pid_file.as_deref());
    if !options.detach {
        let plan = launch::plan(&exec_id, &spec, &exec_facts).map_err(LaunchError::from)?;
        let exit = launch::run_to_end_with(plan, &spec, &exec_facts, write_pid, |_| ());
        remove_if_empty(&exec_facts.state_root);
        return Ok(exit?.code());
    }
    let created = launch::launch(Some(exec_id.clone()), &spec, &exec_facts)?;
    write_pid(&created)?;
    created.detach()?;
    let mut process = Detached::find(&exec_facts.state_root, &exec_id)?;
    let started = process.start();
    // Its state is of no use once it runs (or failed): the container's delete ends it
    // with the rest of the container's cgroup.
    let forgotten = process.forget();
    remove_if_empty(&exec_facts.state_root);
    started?;
    forgotten?;
    Ok(0)
}

/// The spec of a new process in `container`, which must run, made from `base` (the
/// spec the container's own process was made from) and `options`.
pub fn process_spec(
    container: &Detached,
    base: &ContainerSpec,
    options: &ExecOptions,
) -> Result<ContainerSpec, RuntimeError> {
    match (container.status(), container.pid()) {
        (Status::Running | Status::Created, Some(pid)) => exec_spec(container, pid, base, options),
        _ => Err(RuntimeError::Launch(LaunchError::WrongState {
            id: container.id().clone(),
            status: container.status(),
            what: "exec in it (its process has ended)",
        })),
    }
}

/// The facts an exec is launched with: its own launch state lives apart from the
/// containers', so that `list` never shows it.
pub fn exec_facts(facts: &HostFacts) -> HostFacts {
    let mut exec_facts = facts.clone();
    exec_facts.state_root = facts.state_root.join(".exec");
    exec_facts
}

/// Remove the execs' state directory once no exec is in it (rmdir(2) refuses a
/// directory that is not empty).
pub fn remove_if_empty(dir: &std::path::Path) {
    let _ = std::fs::remove_dir(dir);
}

/// The spec of the bundle `container` was created from, which `nutshell create` notes
/// in its `oci.json`.
fn bundle_spec(container: &Detached) -> Result<ContainerSpec, RuntimeError> {
    let record: OciRecord = std::fs::read(container.dir().join("oci.json"))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| {
            RuntimeError::Unsupported(format!(
                "container {} has no oci.json: it was not made by `nutshell create`",
                container.id()
            ))
        })?;
    let oci = config::load(&record.bundle)?;
    Ok(config::to_spec(&oci, &record.bundle)?)
}

/// The spec of a process in `container`, whose first process is `pid` and was made
/// from `base`.
fn exec_spec(
    container: &Detached,
    pid: i32,
    base: &ContainerSpec,
    options: &ExecOptions,
) -> Result<ContainerSpec, RuntimeError> {
    let mut process = match &options.process {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
            let parsed: oci_spec::runtime::Process =
                serde_json::from_str(&text).map_err(|e| config::ConfigError::Load {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            config::map_process(&parsed)?
        }
        None => {
            let mut process = base.process.clone();
            if options.args.is_empty() {
                return Err(RuntimeError::Unsupported(
                    "exec needs a command, or --process FILE".to_string(),
                ));
            }
            process.program = crate::spec::Program::Args(options.args.clone());
            process.terminal = options.tty;
            process
        }
    };
    process.env.extend(options.env.iter().cloned());
    if let Some(cwd) = &options.cwd {
        process.cwd = cwd.clone();
    }
    if let Some(user) = &options.user {
        let (uid, gid) = parse_user(user)?;
        process.user.uid = uid;
        process.user.gid = gid;
        process.user.additional_gids.clear();
    }
    if !options.caps.is_empty() {
        let mut caps = process.capabilities.unwrap_or_default();
        for name in &options.caps {
            let cap = crate::capabilities::Capability::from_name(name).ok_or_else(|| {
                RuntimeError::Unsupported(format!("--cap {name}: no such capability"))
            })?;
            for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                set.insert(cap);
            }
        }
        process.capabilities = Some(caps);
    }
    process.init = false;
    let root = Root {
        fs: RootFs::Host,
        readonly: false,
        enter: EnterRoot::Chroot,
    };
    let mut spec = ContainerSpec::new(root, process);
    spec.namespaces = joined_namespaces(pid)?;
    spec.seccomp = base.seccomp.clone();
    spec.detached = options.detach;
    spec.console_socket = options.console_socket.clone();
    spec.cgroup = container
        .state()
        .owned
        .cgroup
        .as_ref()
        .map(|(path, controllers)| CgroupSpec {
            path: Some(path.clone()),
            existing: true,
            controllers: controllers.clone(),
            ..CgroupSpec::default()
        });
    Ok(spec)
}

/// Every namespace of process `pid` that is not this process's own, to join.
fn joined_namespaces(pid: i32) -> Result<Namespaces, RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let mut namespaces = Namespaces::default();
    for kind in Namespace::ALL {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        let ours = Path::new("/proc/self/ns").join(kind.proc_name());
        let id = |path: &Path| {
            std::fs::metadata(path)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|source| RuntimeError::Io {
                    op: "read the namespace",
                    path: path.to_path_buf(),
                    source,
                })
        };
        if id(&theirs)? != id(&ours)? {
            *namespaces.mode_mut(kind) = NamespaceMode::Join(theirs);
        }
    }
    Ok(namespaces)
}

/// `UID` or `UID:GID`.
fn parse_user(text: &str) -> Result<(u32, u32), RuntimeError> {
    let bad = || RuntimeError::Unsupported(format!("--user {text}: use UID or UID:GID"));
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (uid, gid),
        None => (text, "0"),
    };
    Ok((
        uid.parse().map_err(|_| bad())?,
        gid.parse().map_err(|_| bad())?,
    ))
}
