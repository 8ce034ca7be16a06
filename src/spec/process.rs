//! The process a container runs, and with which ids, privileges and limits.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::capabilities::Capabilities;
use crate::workloads::Builtin;

/// The container's process (OCI `process`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// What it runs.
    pub program: Program,
    /// Its whole environment, `NAME=value` each: nothing of the caller's leaks in.
    #[serde(default)]
    pub env: Vec<String>,
    /// Its working directory inside the container.
    #[serde(default = "root_dir")]
    pub cwd: PathBuf,
    /// Who it runs as, inside the container.
    #[serde(default)]
    pub user: User,
    /// Its capability sets; `None`: every capability the container's root has (the
    /// deliberate weakness of chapters 1 to 3).
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Set `no_new_privs`: no execve(2) can give it more privileges than it has, through
    /// a set-user-ID bit or file capabilities.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// Resource limits, set with prlimit(2) before it starts.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// How eagerly the OOM killer picks it, -1000 to 1000.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// Give it a terminal of its own: a pty made in the container's devpts, its stdio,
    /// the master end sent to [`crate::spec::ContainerSpec::console_socket`].
    #[serde(default)]
    pub terminal: bool,
    /// The terminal's size, rows and columns (OCI `process.consoleSize`).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// Run nutshell's init as PID 1, with the program as its child: the init reaps
    /// orphans and passes on signals (chapter 3).
    #[serde(default)]
    pub init: bool,
}

fn root_dir() -> PathBuf {
    PathBuf::from("/")
}

impl Process {
    /// `program` with the container's standard environment, as root in `/`, with every
    /// capability and nothing else set: chapter 1's process.
    pub fn new(program: Program) -> Process {
        Process {
            program,
            env: standard_env(),
            cwd: root_dir(),
            user: User::default(),
            capabilities: None,
            no_new_privileges: false,
            rlimits: Vec::new(),
            oom_score_adj: None,
            terminal: false,
            console_size: None,
            init: false,
        }
    }
}

/// The `PATH` a container's command is resolved against, as runc and Docker set it.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment a container's command starts with: a fixed `PATH` and `HOME`, and
/// the caller's `TERM` so that interactive tools draw correctly. Nothing else leaks in.
pub fn standard_env() -> Vec<String> {
    let mut env = vec![format!("PATH={CONTAINER_PATH}"), "HOME=/root".to_string()];
    if let Ok(term) = std::env::var("TERM") {
        env.push(format!("TERM={term}"));
    }
    env
}

/// What a container's process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Program {
    /// A program of the container's root, with its arguments: `argv[0]` is looked up in
    /// the container's `PATH` unless it has a `/` (OCI `process.args`).
    Args(Vec<String>),
    /// A demo of nutshell's own, run as nutshell's code inside the container, such as
    /// chapter 5's busy threads: the same whatever the image holds.
    Builtin(Builtin),
}

impl Program {
    /// `sh -c SCRIPT`.
    pub fn shell(script: impl Into<String>) -> Program {
        Program::Args(vec!["sh".into(), "-c".into(), script.into()])
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Args(args) => f.write_str(&crate::cli::shell_line(args)),
            Program::Builtin(builtin) => write!(f, "nutshell's {builtin}"),
        }
    }
}

/// Who the process runs as, inside the container (OCI `process.user`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct User {
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Its supplementary groups; empty: none.
    pub additional_gids: Vec<u32>,
    /// Its umask; `None`: 022.
    pub umask: Option<u32>,
}

/// One resource limit (OCI `process.rlimits[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// Which resource.
    #[serde(rename = "type")]
    pub resource: RlimitResource,
    /// The limit the process meets (it may raise it up to `hard`).
    pub soft: u64,
    /// The ceiling (only CAP_SYS_RESOURCE raises it).
    pub hard: u64,
}

/// The resources setrlimit(2) limits, by their C names as the OCI spec writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // each is described in getrlimit(2)
pub enum RlimitResource {
    #[serde(rename = "RLIMIT_AS")]
    As,
    #[serde(rename = "RLIMIT_CORE")]
    Core,
    #[serde(rename = "RLIMIT_CPU")]
    Cpu,
    #[serde(rename = "RLIMIT_DATA")]
    Data,
    #[serde(rename = "RLIMIT_FSIZE")]
    Fsize,
    #[serde(rename = "RLIMIT_LOCKS")]
    Locks,
    #[serde(rename = "RLIMIT_MEMLOCK")]
    Memlock,
    #[serde(rename = "RLIMIT_MSGQUEUE")]
    Msgqueue,
    #[serde(rename = "RLIMIT_NICE")]
    Nice,
    #[serde(rename = "RLIMIT_NOFILE")]
    Nofile,
    #[serde(rename = "RLIMIT_NPROC")]
    Nproc,
    #[serde(rename = "RLIMIT_RSS")]
    Rss,
    #[serde(rename = "RLIMIT_RTPRIO")]
    Rtprio,
    #[serde(rename = "RLIMIT_RTTIME")]
    Rttime,
    #[serde(rename = "RLIMIT_SIGPENDING")]
    Sigpending,
    #[serde(rename = "RLIMIT_STACK")]
    Stack,
}

impl RlimitResource {
    /// The `RLIMIT_*` constant.
    pub fn raw(self) -> libc::__rlimit_resource_t {
        match self {
            RlimitResource::As => libc::RLIMIT_AS,
            RlimitResource::Core => libc::RLIMIT_CORE,
            RlimitResource::Cpu => libc::RLIMIT_CPU,
            RlimitResource::Data => libc::RLIMIT_DATA,
            RlimitResource::Fsize => libc::RLIMIT_FSIZE,
            RlimitResource::Locks => libc::RLIMIT_LOCKS,
            RlimitResource::Memlock => libc::RLIMIT_MEMLOCK,
            RlimitResource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            RlimitResource::Nice => libc::RLIMIT_NICE,
            RlimitResource::Nofile => libc::RLIMIT_NOFILE,
            RlimitResource::Nproc => libc::RLIMIT_NPROC,
            RlimitResource::Rss => libc::RLIMIT_RSS,
            RlimitResource::Rtprio => libc::RLIMIT_RTPRIO,
            RlimitResource::Rttime => libc::RLIMIT_RTTIME,
            RlimitResource::Sigpending => libc::RLIMIT_SIGPENDING,
            RlimitResource::Stack => libc::RLIMIT_STACK,
        }
    }
}

impl fmt::Display for RlimitResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&name)
    }
}
