//! docker's command line for nutshell: the flags of `run`, `ps`, `exec`, `logs`, `stop`,
//! `kill`, `rm`, `inspect`, `port` and `top`, and which command line an invocation
//! means. `run`, `exec`, `kill` and `ps` are runc's commands too (chapter 11);
//! [`is_docker_style`] tells them apart.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::ContainersError;
use super::commands;
use super::logs::{self, LogOptions};
use super::monitor::{self, Attach};
use super::record::{self, Phase, Record, Records};
use crate::cli::{LimitArgs, NetworkArgs};
use crate::image::progress::Reporter;
use crate::image::registry::RegistryOptions;
use crate::image::store::{OciStore, StoreError};
use crate::launch::{ContainerId, Detached, HostFacts};

/// How long `run -d` waits for its monitor to say the container runs.
const READY_WAIT: Duration = Duration::from_secs(120);

/// docker's commands, as nutshell takes them.
#[derive(Debug, Parser)]
#[command(name = "nutshell", version)]
pub struct DockerCli {
    /// The command.
    #[command(subcommand)]
    pub command: DockerCommand,
}

/// One of docker's commands.
#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// Run a command in a new container of an image (pulled if it is not in the store),
    /// as docker run does; `--bundle DIR ID` runs an OCI bundle as runc run does.
    Run(Box<RunArgs>),
    /// List the containers (running ones; -a: all).
    Ps {
        /// All containers, also those that have ended.
        #[arg(short, long)]
        all: bool,
        /// Only their ids.
        #[arg(short, long)]
        quiet: bool,
        /// `json` for JSON, otherwise a table.
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Print a container's log: what it wrote on stdout and stderr.
    Logs {
        /// Keep printing what it writes, until it ends.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Each line after its time.
        #[arg(short, long)]
        timestamps: bool,
        /// The container: a name or an id (prefix).
        container: String,
    },
    /// Stop containers: the stop signal, then SIGKILL after a grace period.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(
            short = 't',
            long = "time",
            default_value_t = 10,
            value_name = "SECONDS"
        )]
        time: u64,
        /// The containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal (SIGKILL unless named) to containers.
    Kill {
        /// The signal: a name (TERM, SIGHUP) or a number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// The containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers that have ended (-f: also running ones, killed first).
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        /// The containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers or images as JSON.
    Inspect {
        /// Containers (by name or id) or images.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List a container's published ports.
    Port {
        /// The container.
        container: String,
    },
    /// Show a container's processes (`ps -ef`, or these ps arguments).
    Top {
        /// The container.
        container: String,
        /// Arguments for ps.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// The monitor of a detached container (started by `run -d`, not by hand).
    #[command(hide = true)]
    Monitor {
        /// The container's id.
        id: String,
    },
}

/// `run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background: print the id and return.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open: the container reads ours.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal (with -i: ours, in raw mode).
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it ends.
    #[arg(long)]
    pub rm: bool,
    /// Its name [default: two words and its id's first digits]
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable, NAME=VALUE (NAME alone: ours).
    #[arg(short, long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of NAME=VALUE lines.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind a host path into the container: HOST:CONTAINER[:ro].
    #[arg(short, long, value_name = "HOST:CONTAINER[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs at this path.
    #[arg(long, value_name = "PATH")]
    pub tmpfs: Vec<PathBuf>,
    /// The network, the published ports.
    #[command(flatten)]
    pub network: NetworkArgs,
    /// The limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Run as USER[:GROUP] (names from the image's /etc/passwd and /etc/group).
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The working directory inside.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Run this in place of the image's Entrypoint.
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// The container's hostname [default: its short id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability (NET_ADMIN, or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// For a pull: verify the registry's TLS certificate [default: yes, except on localhost]
    #[arg(long, value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// The image.
    pub image: String,
    /// The command, in place of the image's Cmd.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `exec`'s flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Return once it runs.
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable, NAME=VALUE.
    #[arg(short, long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Run as USER[:GROUP].
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The working directory.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The container.
    pub container: String,
    /// The command.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

// ANCHOR: route
/// Whether `args` (without the program name) are docker's command line rather than
/// runc's. runc's clients pass `--root` or `--log` first, `run` a `--bundle`, `ps` a
/// container id; docker's `exec` and `kill` name a container in the records.
pub fn is_docker_style(args: &[OsString], records: &Records) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let Some((&command, rest)) = args.split_first() else {
        return false;
    };
    let has = |flags: &[&str]| {
        rest.iter().any(|a| {
            flags
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
        })
    };
    match command {
        "logs" | "stop" | "rm" | "inspect" | "port" | "top" | "monitor" => true,
        "run" => {
            let runc_only = [
                "-b",
                "--bundle",
                "--pid-file",
                "--console-socket",
                "--no-pivot",
                "--preserve-fds",
                "--no-new-keyring",
            ];
            // runc's default bundle is the current directory: `runc run ID` in it.
            let bundle_here = rest.len() == 1 && Path::new("config.json").exists();
            !has(&runc_only) && !bundle_here
        }
        "ps" => positionals(rest, &["--format", "-f"]).is_empty(),
        "exec" | "kill" => {
            let valued = [
                "-e",
                "--env",
                "-u",
                "--user",
                "-w",
                "--workdir",
                "--cwd",
                "-p",
                "--process",
                "--pid-file",
                "--console-socket",
                "-c",
                "--cap",
                "-s",
                "--signal",
            ];
            positionals(rest, &valued)
                .first()
                .is_some_and(|c| records.find(c).is_ok())
        }
        _ => false,
    }
}
// ANCHOR_END: route

/// The arguments that are not flags or flags' values.
fn positionals<'a>(args: &[&'a str], valued: &[&str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
        } else if arg.starts_with('-') {
            skip = valued.contains(arg);
        } else {
            found.push(*arg);
        }
    }
    found
}

/// Run one of docker's commands; returns the exit status.
pub fn dispatch(command: DockerCommand, facts: &HostFacts) -> Result<i32, ContainersError> {
    let records = Records::new(&facts.data_dir);
    let now = crate::launch::now_secs();
    match command {
        DockerCommand::Run(args) => return run(*args, &records, facts),
        DockerCommand::Monitor { id } => return run_monitor(&id, &records, facts),
        DockerCommand::Ps { all, quiet, format } => {
            let shown: Vec<Record> = commands::all(&records, facts)
                .into_iter()
                .filter(|r| all || r.phase_now() == Phase::Running)
                .collect();
            match (quiet, format.as_deref()) {
                (true, _) => shown.iter().for_each(|r| println!("{}", r.short_id())),
                (false, Some("json")) => println!(
                    "{}",
                    serde_json::to_string_pretty(&commands::ps_json(&shown, now))
                        .unwrap_or_default()
                ),
                (false, Some(other)) => {
                    return Err(ContainersError::Flag {
                        flag: "--format",
                        value: other.to_string(),
                        rule: ": use json, or no --format for the table".to_string(),
                    });
                }
                (false, None) => print!("{}", commands::ps_table(&shown, now)),
            }
        }
        DockerCommand::Exec(args) => return exec(args, &records, facts),
        DockerCommand::Logs {
            follow,
            tail,
            timestamps,
            container,
        } => {
            let record = commands::find(&records, &container, facts)?;
            let path = records.dir(&record.id).join("container.log");
            let options = LogOptions { tail, timestamps };
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            let io = |source| ContainersError::Io {
                op: "read",
                path: path.clone(),
                source,
            };
            if follow {
                let running = || records.read(&record.id).is_some_and(|r| r.monitor_alive());
                logs::follow(&path, options, running, &mut out, &mut err).map_err(io)?;
            } else {
                let entries = logs::read_entries(&path).map_err(io)?;
                logs::print(&entries, options, &mut out, &mut err).map_err(io)?;
            }
        }
        DockerCommand::Stop { time, containers } => {
            each(&containers, &records, facts, |record| {
                commands::stop(&records, record, Duration::from_secs(time), facts)
            })?;
        }
        DockerCommand::Kill { signal, containers } => {
            let signal = crate::oci::runtime::parse_signal(&signal)?;
            each(&containers, &records, facts, |record| {
                commands::kill(record, signal, facts)
            })?;
        }
        DockerCommand::Rm { force, containers } => {
            each(&containers, &records, facts, |record| {
                commands::rm(&records, record, force, facts)
            })?;
        }
        DockerCommand::Inspect { targets } => {
            let store = OciStore::new(&facts.data_dir);
            let mut found = Vec::new();
            for target in &targets {
                match commands::find(&records, target, facts) {
                    Ok(record) => found.extend(
                        commands::inspect(&records, &record)
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                    ),
                    Err(ContainersError::NotFound { query }) => {
                        let image = store
                            .get(target)
                            .map_err(|_| ContainersError::NoSuchObject { query })?;
                        found.push(
                            serde_json::to_value(crate::image::listing::ImageInfo::of(&image))
                                .unwrap_or_default(),
                        );
                    }
                    Err(other) => return Err(other),
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&found).unwrap_or_default()
            );
        }
        DockerCommand::Port { container } => {
            let record = commands::find(&records, &container, facts)?;
            print!("{}", commands::port_lines(&record));
        }
        DockerCommand::Top { container, ps_args } => {
            let record = commands::find(&records, &container, facts)?;
            if record.phase_now() != Phase::Running {
                return Err(ContainersError::Phase {
                    name: record.name,
                    why: "is not running: it has no processes".to_string(),
                });
            }
            print!(
                "{}",
                crate::oci::runtime::ps_table(&record.id, &ps_args, facts)?
            );
        }
    }
    Ok(0)
}

/// `action` on each container named, printing each name done (docker's output); the
/// first error is returned after the rest are tried.
fn each(
    names: &[String],
    records: &Records,
    facts: &HostFacts,
    mut action: impl FnMut(&Record) -> Result<(), ContainersError>,
) -> Result<(), ContainersError> {
    let mut first_error = None;
    for name in names {
        match commands::find(records, name, facts).and_then(|r| action(&r)) {
            Ok(()) => println!("{name}"),
            Err(err) => {
                if first_error.is_some() {
                    eprintln!("Error: {}", crate::cli::one_line(&err));
                } else {
                    first_error = Some(err);
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

// ANCHOR: run
/// `run`: the image (pulled if missing), the spec its config and the flags make, the
/// plan checked, a record; then the monitor: this process, or with `-d` one of its own.
fn run(args: RunArgs, records: &Records, facts: &HostFacts) -> Result<i32, ContainersError> {
    let privileged = facts.caller.privileged;
    args.limits.validate(privileged)?;
    args.network.network(privileged)?;
    let image = image_for(&args, facts)?;
    let mut spec = crate::image::run::container_spec(&image, &args.command, privileged)?;
    args.limits.apply(&mut spec, privileged)?;
    args.network.apply(&mut spec, privileged)?;
    super::run::apply(
        &mut spec,
        &image,
        &run_options(&args),
        facts.cap_last_cap,
        |name| std::env::var(name).ok(),
    )?;
    let id = record::new_id();
    if args.hostname.is_none() {
        // docker's default: the short id.
        spec.hostname = Some(id[..12].to_string());
    }
    let name = match &args.name {
        Some(name) => ContainerId::parse(name)?.as_str().to_string(),
        None => record::default_name(&id),
    };
    if spec.process.terminal {
        // Where the monitor listens for the container's terminal.
        spec.console_socket = Some(monitor::console_path(&facts.state_root, &id));
    }
    // Bad input is refused here, before anything is made.
    crate::launch::plan(&ContainerId::parse(&id)?, &spec, facts)?;
    let command = match &spec.process.program {
        crate::spec::Program::Args(argv) => argv.clone(),
        other => vec![format!("{other:?}")],
    };
    let record = Record {
        id: id.clone(),
        name,
        image: args.image.clone(),
        image_digest: image.manifest_digest.to_string(),
        command,
        created: crate::launch::now_secs(),
        started: None,
        finished: None,
        phase: Phase::Created,
        exit_code: None,
        error: None,
        monitor: None,
        pid: None,
        network: format!("{:?}", args.network.mode(privileged)).to_lowercase(),
        address: None,
        ports: args.network.ports()?,
        auto_remove: args.rm,
        stop_signal: image
            .config
            .config
            .as_ref()
            .and_then(|c| c.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".to_string()),
        tty: args.tty,
    };
    records.create(&record, &spec)?;
    if !args.detach {
        let attach = Attach::Attached {
            interactive: args.interactive,
        };
        return monitor::monitor(records, record, spec, facts, attach);
    }
    match start_monitor(&record) {
        Ok(()) => {
            println!("{id}");
            Ok(0)
        }
        Err(err) => {
            let _ = records.remove(&record);
            Err(err)
        }
    }
}
// ANCHOR_END: run

fn run_options(args: &RunArgs) -> super::run::RunOptions {
    super::run::RunOptions {
        command: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env: args.env.clone(),
        env_files: args.env_file.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        volumes: args.volume.clone(),
        tmpfs: args.tmpfs.clone(),
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        hostname: args.hostname.clone(),
        tty: args.tty,
    }
}

/// The image to run: in the store, or pulled (docker's rule); `default` is built on
/// first use, as every chapter's is.
fn image_for(
    args: &RunArgs,
    facts: &HostFacts,
) -> Result<crate::image::store::StoredImage, ContainersError> {
    let store = OciStore::new(&facts.data_dir);
    if args.image == "default" {
        crate::image::ImageStore::new(&facts.data_dir)
            .ensure_default(crate::image::Source::Auto, Path::new("/"))?;
    }
    match store.get(&args.image) {
        Ok(image) => Ok(image),
        Err(StoreError::NoSuchImage { .. }) => {
            let unpacker = crate::launch::images::CallerUnpacker::new(facts)?;
            let options = RegistryOptions {
                tls_verify: args.tls_verify,
                ..RegistryOptions::default()
            };
            Ok(crate::image::distribution::pull(
                &store,
                &args.image,
                &options,
                &unpacker,
                &mut Reporter::stderr(),
            )?)
        }
        Err(err) => Err(err.into()),
    }
}

// ANCHOR: start_monitor
/// Start the monitor of `record` as a process of its own (`nutshell monitor ID`), and
/// wait for the one line it writes once the container runs, or why it could not.
fn start_monitor(record: &Record) -> Result<(), ContainersError> {
    let exe = std::env::current_exe().map_err(|source| ContainersError::Io {
        op: "find",
        path: "/proc/self/exe".into(),
        source,
    })?;
    let mut child = std::process::Command::new(exe)
        .args(["monitor", &record.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|source| ContainersError::Io {
            op: "start the monitor",
            path: "nutshell monitor".into(),
            source,
        })?;
    let mut ready = child
        .stdout
        .take()
        .ok_or_else(|| ContainersError::Monitor("has no stdout to report on".to_string()))?;
    let readable = crate::launch::poll_readable(ready.as_fd(), READY_WAIT).unwrap_or(false);
    let mut line = String::new();
    if readable {
        let _ = ready.read_to_string(&mut line);
    }
    match line.trim() {
        "ok" => Ok(()),
        "" => {
            // Silent past the wait, or dead: end it (the container dies with it) and
            // sweep what it left.
            let _ = child.kill();
            let _ = child.wait();
            Err(ContainersError::Monitor(format!(
                "did not report within {}s that the container runs",
                READY_WAIT.as_secs()
            )))
        }
        error => {
            let _ = child.wait();
            Err(ContainersError::Monitor(format!(
                "could not start it: {error}"
            )))
        }
    }
}
// ANCHOR_END: start_monitor

/// `nutshell monitor ID`: become the detached container's monitor. The ready line goes
/// to stdout (the `run -d` waiting), this process's own errors to `monitor.log`.
fn run_monitor(id: &str, records: &Records, facts: &HostFacts) -> Result<i32, ContainersError> {
    let sys = |op: &'static str| move |source| ContainersError::Sys { op, source };
    // A session of its own: the terminal `run -d` ran in closing sends it no SIGHUP.
    nix::unistd::setsid().map_err(sys("start a session"))?;
    let record = records.read(id).ok_or_else(|| ContainersError::NotFound {
        query: id.to_string(),
    })?;
    let spec = records.spec(id)?;
    let ready = monitor::dup_cloexec(1).map_err(sys("keep the ready pipe"))?;
    let log_path = records.dir(id).join("monitor.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| ContainersError::Io {
            op: "open",
            path: log_path,
            source,
        })?;
    let null = std::fs::File::open("/dev/null").map_err(|source| ContainersError::Io {
        op: "open",
        path: "/dev/null".into(),
        source,
    })?;
    for (from, to) in [(null.as_fd(), 1), (log.as_fd(), 2)] {
        // SAFETY: dup2 of our own fds onto stdio numbers.
        nix::errno::Errno::result(unsafe {
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&from), to)
        })
        .map_err(sys("redirect stdio"))?;
    }
    monitor::monitor(records, record, spec, facts, Attach::Detached { ready })
}

/// `exec`: a process in a running container, made from the spec the container was.
fn exec(args: ExecArgs, records: &Records, facts: &HostFacts) -> Result<i32, ContainersError> {
    let record = commands::find(records, &args.container, facts)?;
    if record.phase_now() != Phase::Running {
        return Err(ContainersError::Phase {
            name: record.name,
            why: "is not running: start a new one with nutshell run".to_string(),
        });
    }
    let container = Detached::find(&facts.state_root, &ContainerId::parse(&record.id)?)?;
    let base = records.spec(&record.id)?;
    let user = match &args.user {
        Some(user) => Some(exec_user(user, &base, &record)?),
        None => None,
    };
    let options = crate::oci::exec::ExecOptions {
        args: args.command.clone(),
        env: args.env.clone(),
        cwd: args.workdir.clone(),
        user,
        detach: args.detach,
        ..Default::default()
    };
    if !args.tty {
        return Ok(crate::oci::exec::exec_in(
            &container, &base, &options, facts,
        )?);
    }
    let spec = crate::oci::exec::process_spec(&container, &base, &options)?;
    let exec_facts = crate::oci::exec::exec_facts(facts);
    let exit =
        monitor::attach_terminal(&ContainerId::random(), spec, &exec_facts, args.interactive);
    crate::oci::exec::remove_if_empty(&exec_facts.state_root);
    exit
}

/// `-u` for exec as `UID:GID`: names looked up in the container's image.
fn exec_user(
    user: &str,
    base: &crate::spec::ContainerSpec,
    record: &Record,
) -> Result<String, ContainersError> {
    let layers: Vec<PathBuf> = match &base.root.fs {
        crate::spec::RootFs::Overlay { lowers, .. } => lowers.iter().rev().cloned().collect(),
        crate::spec::RootFs::Dir { path, .. } => vec![path.clone()],
        crate::spec::RootFs::Host => Vec::new(),
    };
    let tree = crate::build::tree::LayeredTree::new(&layers);
    let resolved = crate::image::run::resolve_user_in(&tree, &record.image, user)?;
    Ok(format!("{}:{}", resolved.uid, resolved.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn runcs_run_ps_exec_and_kill_are_told_from_dockers() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::new(data.path());
        let docker = |line: &str| is_docker_style(&args(line), &records);
        assert!(docker("run -d -p 8080:80 webapp"));
        assert!(docker("run --rm default true"));
        assert!(!docker("run --bundle /b ctr"));
        assert!(!docker("run -b /b -d ctr"));
        assert!(docker("ps -a"));
        assert!(docker("ps --format json"));
        assert!(!docker("ps ctr"));
        assert!(!docker("ps --format json ctr"));
        assert!(!docker("exec ctr ls"), "no record: runc's exec");
        assert!(!docker("kill ctr TERM"));
        assert!(docker("logs web"));
        assert!(!docker("delete ctr"));
        assert!(!docker("--root /run/x create ctr"));
    }
}
