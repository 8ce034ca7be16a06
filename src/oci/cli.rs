//! runc's command line, as clap flags: the global flags every OCI client passes, and
//! the subcommands, each handed to [`super::runtime`].

use std::io::Write;
use std::path::PathBuf;

use super::runtime::{self, CreateOptions, RuntimeError};
use crate::launch::HostFacts;

/// The global flags of runc's command line, accepted before or after the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// The directory of the containers' state [default: /run/nutshell; rootless:
    /// $XDG_RUNTIME_DIR/nutshell]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write errors to this file (what podman's conmon reads when a command fails).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The format of --log: text or json.
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Log more (accepted for runc's clients; nutshell's messages are the same).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd: refused, nutshell writes cgroupfs itself.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
}

/// How `--log` lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `time="…" level=error msg="…"`, as runc's text logs.
    #[default]
    Text,
    /// `{"level":"error","msg":"…","time":"…"}`, one object a line.
    Json,
}

/// The bundle flags of `create` and `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct BundleArgs {
    /// The bundle: a directory with config.json and the root filesystem.
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write the container's first process's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master fd to (process.terminal).
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Enter the root with chroot(2) instead of pivot_root(2).
    #[arg(long)]
    pub no_pivot: bool,
    /// Pass this many fds above stdio on to the container's process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Accepted for runc's clients: nutshell keeps no keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
}

impl BundleArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
        }
    }
}

/// runc's subcommands (chapter 11).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RuntimeCommand {
    /// Create a container from an OCI bundle, left waiting for `start` (runc create).
    Create {
        /// The container's id.
        id: String,
        /// The bundle and what to do with it.
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Start a created container's program (runc start).
    Start {
        /// The container's id.
        id: String,
    },
    /// Print a container's state as JSON (runc state).
    State {
        /// The container's id.
        id: String,
    },
    /// Send a signal to a container's process, TERM unless named (runc kill).
    Kill {
        /// The container's id.
        id: String,
        /// The signal: a name (TERM, SIGKILL) or a number.
        #[arg(default_value = "TERM")]
        signal: String,
        /// Signal every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
    },
    /// Remove a container: its processes, cgroup, directories, state (runc delete).
    Delete {
        /// The container's id.
        id: String,
        /// Kill it first if it runs; no error if it does not exist.
        #[arg(short, long)]
        force: bool,
    },
    /// Create and start a container, wait for it and delete it (runc run).
    Run {
        /// The container's id.
        id: String,
        /// The bundle and what to do with it.
        #[command(flatten)]
        bundle: BundleArgs,
        /// Return once it runs, without waiting.
        #[arg(short, long)]
        detach: bool,
    },
    /// Run a process in a running container (runc exec).
    Exec {
        /// The container's id.
        id: String,
        /// The command and its arguments (unless --process).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        /// An OCI process object (JSON) describing what to run.
        #[arg(short, long, value_name = "FILE")]
        process: Option<PathBuf>,
        /// Give it a terminal, sent over --console-socket.
        #[arg(short, long)]
        tty: bool,
        /// Return once it runs, without waiting for it.
        #[arg(short, long)]
        detach: bool,
        /// Write its pid to this file.
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// A unix socket to send its terminal's master fd to.
        #[arg(long, value_name = "PATH")]
        console_socket: Option<PathBuf>,
        /// More environment: NAME=value.
        #[arg(short, long, value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Its working directory.
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// UID[:GID] to run as.
        #[arg(short, long, value_name = "UID[:GID]")]
        user: Option<String>,
        /// A capability to add (CAP_NET_ADMIN).
        #[arg(short, long, value_name = "CAP")]
        cap: Vec<String>,
    },
    /// List the containers (runc list).
    List {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print the ids only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a running container (runc pause).
    Pause {
        /// The container's id.
        id: String,
    },
    /// Thaw a paused container (runc resume).
    Resume {
        /// The container's id.
        id: String,
    },
    /// List a container's processes: `ps` (with these arguments, -ef if none),
    /// filtered (runc ps).
    Ps {
        /// The container's id.
        id: String,
        /// table, or json: the pids only.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Arguments for ps.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change a running container's limits (runc update).
    Update {
        /// The container's id.
        id: String,
        /// The new limits as an OCI linux.resources JSON object, from this file (- for
        /// stdin); the flags below are ignored then.
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        /// Memory limit, in bytes or with a unit (512m).
        #[arg(short, long)]
        memory: Option<String>,
        /// Memory reclaimed last, in bytes or with a unit.
        #[arg(long)]
        memory_reservation: Option<String>,
        /// Memory plus swap, in bytes or with a unit; -1: unlimited swap.
        #[arg(long, allow_hyphen_values = true)]
        memory_swap: Option<String>,
        /// The CFS period, in microseconds.
        #[arg(long)]
        cpu_period: Option<u64>,
        /// The CFS quota, in microseconds.
        #[arg(long)]
        cpu_quota: Option<i64>,
        /// The relative CPU share.
        #[arg(long)]
        cpu_share: Option<u64>,
        /// The CPUs it may use (0-1,3).
        #[arg(long)]
        cpuset_cpus: Option<String>,
        /// The memory nodes it may use.
        #[arg(long)]
        cpuset_mems: Option<String>,
        /// The most tasks it may have.
        #[arg(long)]
        pids_limit: Option<i64>,
    },
    /// Write a default config.json to the bundle directory (runc spec).
    Spec {
        /// A config for a normal user: a user namespace mapping it to root.
        #[arg(long)]
        rootless: bool,
        /// The bundle directory to write it in.
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
    /// Print what this runtime implements, as JSON (runc features).
    Features,
}

/// Run one of runc's commands with `global`'s flags; returns the exit status. An error
/// is also written to `--log`.
pub fn run(global: &GlobalArgs, command: &RuntimeCommand) -> anyhow::Result<i32> {
    let result = dispatch(global, command);
    if let (Err(err), Some(log)) = (&result, &global.log) {
        let _ = write_log(
            log,
            global.log_format,
            &crate::cli::one_line(err as &(dyn std::error::Error + 'static)),
        );
    }
    result.map_err(anyhow::Error::from)
}

fn dispatch(global: &GlobalArgs, command: &RuntimeCommand) -> Result<i32, RuntimeError> {
    if global.systemd_cgroup
        && matches!(
            command,
            RuntimeCommand::Create { .. } | RuntimeCommand::Run { .. }
        )
    {
        return Err(RuntimeError::Unsupported(
            "--systemd-cgroup: nutshell manages cgroups through cgroupfs only; drop the flag (podman: --cgroup-manager cgroupfs)".to_string(),
        ));
    }
    let mut facts = HostFacts::detect();
    if let Some(root) = &global.root {
        facts.state_root = root.clone();
    }
    match command {
        RuntimeCommand::Create { id, bundle } => runtime::create(id, &bundle.options(), &facts)?,
        RuntimeCommand::Start { id } => runtime::start(id, &facts)?,
        RuntimeCommand::State { id } => {
            let state = runtime::state(id, &facts)?;
            println!("{}", to_json(&state)?);
        }
        RuntimeCommand::Kill { id, signal, all } => runtime::kill(id, signal, *all, &facts)?,
        RuntimeCommand::Delete { id, force } => runtime::delete(id, *force, &facts)?,
        RuntimeCommand::Run { id, bundle, detach } => {
            return runtime::run(id, &bundle.options(), *detach, &facts);
        }
        RuntimeCommand::Exec {
            id,
            command,
            process,
            tty,
            detach,
            pid_file,
            console_socket,
            env,
            cwd,
            user,
            cap,
        } => {
            let options = super::exec::ExecOptions {
                process: process.clone(),
                args: command.clone(),
                env: env.clone(),
                cwd: cwd.clone(),
                user: user.clone(),
                caps: cap.clone(),
                tty: *tty,
                console_socket: console_socket.clone(),
                detach: *detach,
                pid_file: pid_file.clone(),
            };
            return super::exec::exec(id, &options, &facts);
        }
        RuntimeCommand::List { format, quiet } => {
            let states = runtime::list(&facts)?;
            match (format.as_str(), quiet) {
                (_, true) => states.iter().for_each(|s| println!("{}", s.id)),
                ("json", _) => println!("{}", to_json(&states)?),
                ("table", _) => print!("{}", runtime::list_table(&states)),
                (other, _) => {
                    return Err(RuntimeError::Unsupported(format!(
                        "--format {other}: use table or json"
                    )));
                }
            }
        }
        RuntimeCommand::Pause { id } => runtime::pause(id, true, &facts)?,
        RuntimeCommand::Resume { id } => runtime::pause(id, false, &facts)?,
        RuntimeCommand::Ps {
            id,
            format,
            ps_args,
        } => match format.as_str() {
            "json" => println!("{}", to_json(&runtime::pids(id, &facts)?)?),
            "table" => print!("{}", runtime::ps_table(id, ps_args, &facts)?),
            other => {
                return Err(RuntimeError::Unsupported(format!(
                    "--format {other}: use table or json"
                )));
            }
        },
        RuntimeCommand::Update { id, resources, .. } => {
            let resources = match resources {
                Some(path) => read_resources(path)?,
                None => resources_from_flags(command)?,
            };
            runtime::update(id, &resources, &facts)?;
        }
        RuntimeCommand::Spec { rootless, bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(RuntimeError::Unsupported(format!(
                    "{} exists already: remove it first",
                    path.display()
                )));
            }
            let json = to_json(&runtime::default_config(*rootless))?;
            std::fs::write(&path, json + "\n").map_err(|source| RuntimeError::Io {
                op: "write",
                path,
                source,
            })?;
        }
        RuntimeCommand::Features => println!("{}", to_json(&runtime::features())?),
    }
    Ok(0)
}

/// `update --resources FILE`: an OCI `linux.resources` object.
fn read_resources(
    path: &std::path::Path,
) -> Result<oci_spec::runtime::LinuxResources, RuntimeError> {
    let text = if path == std::path::Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| RuntimeError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        RuntimeError::Unsupported(format!(
            "{}: not an OCI linux.resources object: {e}",
            path.display()
        ))
    })
}

/// `update`'s flags as an OCI `linux.resources` object, only what they set.
fn resources_from_flags(
    command: &RuntimeCommand,
) -> Result<oci_spec::runtime::LinuxResources, RuntimeError> {
    let RuntimeCommand::Update {
        memory,
        memory_reservation,
        memory_swap,
        cpu_period,
        cpu_quota,
        cpu_share,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        ..
    } = command
    else {
        return Ok(Default::default());
    };
    let size = |flag: &str, value: &Option<String>| -> Result<Option<i64>, RuntimeError> {
        match value.as_deref() {
            None => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(text) => crate::cgroups::parse_size(text)
                .map(|b| Some(b as i64))
                .map_err(|e| RuntimeError::Unsupported(format!("{flag} {text}: {e}"))),
        }
    };
    let mut json = serde_json::Map::new();
    let mut memory_json = serde_json::Map::new();
    for (key, flag, value) in [
        ("limit", "--memory", memory),
        ("reservation", "--memory-reservation", memory_reservation),
        ("swap", "--memory-swap", memory_swap),
    ] {
        if let Some(bytes) = size(flag, value)? {
            memory_json.insert(key.into(), bytes.into());
        }
    }
    if !memory_json.is_empty() {
        json.insert("memory".into(), memory_json.into());
    }
    let mut cpu = serde_json::Map::new();
    if let Some(v) = cpu_period {
        cpu.insert("period".into(), (*v).into());
    }
    if let Some(v) = cpu_quota {
        cpu.insert("quota".into(), (*v).into());
    }
    if let Some(v) = cpu_share {
        cpu.insert("shares".into(), (*v).into());
    }
    if let Some(v) = cpuset_cpus {
        cpu.insert("cpus".into(), v.clone().into());
    }
    if let Some(v) = cpuset_mems {
        cpu.insert("mems".into(), v.clone().into());
    }
    if !cpu.is_empty() {
        json.insert("cpu".into(), cpu.into());
    }
    if let Some(limit) = pids_limit {
        json.insert("pids".into(), serde_json::json!({ "limit": limit }));
    }
    serde_json::from_value(json.into())
        .map_err(|e| RuntimeError::Unsupported(format!("update: {e}")))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, RuntimeError> {
    serde_json::to_string_pretty(value).map_err(|e| RuntimeError::Io {
        op: "encode",
        path: PathBuf::from("JSON"),
        source: std::io::Error::other(e),
    })
}

/// Append one error line to the log file, as runc writes them.
fn write_log(path: &std::path::Path, format: LogFormat, message: &str) -> std::io::Result<()> {
    let time = crate::image::pack::rfc3339(crate::launch::now_secs());
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={message:?}"),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}
