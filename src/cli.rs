//! What every chapter binary shares: its flags as clap types and their conversion into a
//! [`ContainerSpec`], and how output and errors are printed. Nothing here makes anything:
//! a binary turns flags into a spec, and [`crate::launch`] does the rest.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::cgroups::{self, DEFAULT_PERIOD_US, MIN_QUOTA_US, Resources};
use crate::image::{ImageError, ImageStore, Source};
use crate::launch::{ContainerId, HostFacts, InvalidId, LaunchPlan};
use crate::namespaces::TimeOffsets;
use crate::rootfs::{RootfsError, resolve_rootfs};
use crate::spec::{CgroupSpec, ContainerSpec};
use crate::userns::{IdMap, UsernsError};
use crate::uts::DEFAULT_HOSTNAME;

/// Errors in what the user asked for, before any container is planned.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The rootfs cannot be used.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// The default image cannot be built or opened.
    #[error("prepare the default image: {0}")]
    Image(#[from] ImageError),
    /// The hostname would be refused by resolvers.
    #[error(transparent)]
    Hostname(#[from] crate::uts::HostnameError),
    /// A flag's value breaks a rule.
    #[error("{flag} {value}{rule}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// The rule it broke, and what to do, from just after the value: ` is negative:
        /// ...` or `: must ...`.
        rule: String,
    },
    /// An id map flag is malformed or inconsistent.
    #[error(transparent)]
    Userns(#[from] UsernsError),
    /// `--name` is not a valid container id.
    #[error(transparent)]
    Name(#[from] InvalidId),
    /// A CPU limit is out of range.
    #[error(transparent)]
    Cpu(#[from] cgroups::CpuError),
    /// A memory size cannot be read.
    #[error(transparent)]
    Settings(#[from] cgroups::SettingsError),
    /// A normal user asked for limits.
    #[error(
        "--cpus, --memory and --pids-limit need a cgroup, and {}",
        crate::launch::NO_ROOTLESS_CGROUP
    )]
    RootlessLimits,
    /// The container cannot be planned.
    #[error(transparent)]
    Plan(#[from] crate::launch::PlanError),
    /// A `-p` value is malformed.
    #[error(transparent)]
    Port(crate::net::ports::PortError),
    /// `--subnet` is malformed.
    #[error("--{0}")]
    Subnet(crate::net::addr::SubnetError),
    /// The plan could not be printed.
    #[error("print the plan: {0}")]
    Print(#[source] std::io::Error),
    /// The binary needs root.
    #[error(
        "{binary} needs root: {why}; run it as root, e.g. `sudo -E env PATH=\"$PATH\" cargo run --bin {binary}`"
    )]
    NeedsRoot {
        /// The binary.
        binary: String,
        /// What root is needed for.
        why: String,
    },
}

/// The flags of every chapter's container: its root, its name, and `--plan`.
#[derive(Debug, Clone, Args)]
pub struct ContainerArgs {
    /// Root filesystem to run in [default: the default image, built on first use]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// The container's name, which names its state, cgroup and directories [default: random]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Print the launch plan — every step nutshell and the container take — and exit
    #[arg(long)]
    pub plan: bool,
    /// The random id, once drawn: every use of [`ContainerArgs::id`] gets the same one.
    #[arg(skip)]
    random_id: std::sync::OnceLock<ContainerId>,
}

impl ContainerArgs {
    /// The absolute rootfs to use: the one given, or the default image's, which need not
    /// be built yet: a container is planned, and bad input refused, before anything is
    /// made, the default image included (see [`ContainerArgs::prepare_rootfs`]).
    pub fn rootfs(&self) -> Result<PathBuf, CliError> {
        match &self.rootfs {
            Some(dir) => Ok(resolve_rootfs(dir)?),
            None => Ok(ImageStore::new(&crate::store::data_dir())
                .default_image_dir()
                .join("rootfs")),
        }
    }

    // ANCHOR: plan_or_print
    /// Plan `spec`, whose root is `rootfs`, for this machine. With `--plan`, print the
    /// plan and return `None`: nothing is made, not even the default image. Otherwise make
    /// the rootfs ready and return the plan with the facts to carry it out with.
    pub fn plan_or_print(
        &self,
        spec: &ContainerSpec,
        rootfs: &Path,
        needs_shell: bool,
    ) -> Result<Option<(LaunchPlan, HostFacts)>, CliError> {
        let facts = HostFacts::detect();
        let plan = crate::launch::plan(&self.id()?, spec, &facts)?;
        if self.plan {
            print_plan(&plan).map_err(CliError::Print)?;
            return Ok(None);
        }
        self.prepare_rootfs(rootfs, needs_shell)?;
        Ok(Some((plan, facts)))
    }
    // ANCHOR_END: plan_or_print

    /// Make the rootfs ready to run: build the default image if this is its first use
    /// (and say so on stderr), and, for a chapter whose tour runs `sh`, check that the
    /// root has one.
    pub fn prepare_rootfs(&self, rootfs: &Path, needs_shell: bool) -> Result<(), CliError> {
        if self.rootfs.is_none() {
            let store = ImageStore::new(&crate::store::data_dir());
            let (image, built) = store.ensure_default(Source::Auto, Path::new("/"))?;
            if built {
                eprintln!(
                    "built the default image ({}) in {}",
                    image.manifest.source,
                    image.rootfs.display()
                );
            }
        }
        if needs_shell {
            crate::rootfs::require_shell(rootfs)?;
        }
        Ok(())
    }

    /// The container's id: the name given, or a random one, the same on every call (a
    /// chapter names its own directories after it too).
    pub fn id(&self) -> Result<ContainerId, CliError> {
        match &self.name {
            Some(name) => Ok(ContainerId::parse(name)?),
            None => Ok(self.random_id.get_or_init(ContainerId::random).clone()),
        }
    }
}

/// The highest a clock in a time namespace may read, in seconds: the kernel refuses an
/// offset that takes CLOCK_MONOTONIC or CLOCK_BOOTTIME past half of KTIME_SEC_MAX, so
/// that its 64-bit nanoseconds cannot overflow (proc_timens_set_offset, ERANGE).
const TIMENS_CLOCK_MAX_S: i64 = i64::MAX / 1_000_000_000 / 2;

/// The largest uptime offset the kernel takes while the host's boot clock reads
/// `uptime` seconds (CLOCK_BOOTTIME is never behind CLOCK_MONOTONIC, so it is the bound).
fn max_uptime_offset(uptime: f64) -> i64 {
    TIMENS_CLOCK_MAX_S - uptime.ceil() as i64
}

/// The flags of chapter 2's namespaces, flattened into every chapter from 2 on.
#[derive(Debug, Clone, Args)]
pub struct NamespaceArgs {
    /// Hostname inside the container (it has its own UTS namespace)
    #[arg(long, value_name = "NAME", default_value = DEFAULT_HOSTNAME)]
    pub hostname: String,
    /// Move the container's CLOCK_MONOTONIC and CLOCK_BOOTTIME forward (its /proc/uptime)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub uptime_offset: i64,
}

impl NamespaceArgs {
    /// Check the values, before anything is made: bad input leaves nothing behind.
    pub fn validate(&self) -> Result<(), CliError> {
        crate::uts::validate_hostname(&self.hostname)?;
        if self.uptime_offset < 0 {
            return Err(CliError::Flag {
                flag: "--uptime-offset",
                value: self.uptime_offset.to_string(),
                rule: " is negative: a container's uptime can only be moved forward (0 or more seconds)".to_string(),
            });
        }
        let uptime = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let most = max_uptime_offset(uptime);
        if self.uptime_offset > most {
            return Err(CliError::Flag {
                flag: "--uptime-offset",
                value: self.uptime_offset.to_string(),
                rule: format!(
                    " is too large: the kernel keeps a time namespace's clocks under \
                     {TIMENS_CLOCK_MAX_S} s (146 years), and the host has been up {uptime:.0} s, \
                     so at most {most}"
                ),
            });
        }
        Ok(())
    }

    /// Put the hostname and the clock offsets into `spec` (which has a UTS and a time
    /// namespace of its own).
    pub fn apply(&self, spec: &mut ContainerSpec) -> Result<(), CliError> {
        self.validate()?;
        spec.hostname = Some(self.hostname.clone());
        spec.time_offsets = Some(TimeOffsets::uptime(self.uptime_offset));
        Ok(())
    }
}

/// The user namespace flags, flattened into every chapter from 6 on.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// Map container uids to host uids, INSIDE:OUTSIDE:COUNT, repeatable [default: for root
    /// 65536 ids from the nutshell range in /etc/subuid; for a normal user their own uid as
    /// 0, plus their /etc/subuid range]
    #[arg(long = "uid-map", value_name = "IN:OUT:N", allow_hyphen_values = true)]
    pub uid_map: Vec<String>,
    /// Map container gids to host gids, like --uid-map [default: as the uid map]
    #[arg(long = "gid-map", value_name = "IN:OUT:N", allow_hyphen_values = true)]
    pub gid_map: Vec<String>,
}

impl UserArgs {
    /// The uid and gid maps asked for, checked; none: the planner picks the caller's
    /// default.
    pub fn maps(&self) -> Result<(Vec<IdMap>, Vec<IdMap>), CliError> {
        let parse = |flag, values: &[String]| -> Result<Vec<IdMap>, CliError> {
            Ok(values
                .iter()
                .map(|v| IdMap::parse(flag, v))
                .collect::<Result<_, _>>()?)
        };
        let uids = parse("--uid-map", &self.uid_map)?;
        let gids = parse("--gid-map", &self.gid_map)?;
        if uids.is_empty() && !gids.is_empty() {
            return Err(CliError::Flag {
                flag: "--gid-map",
                value: self.gid_map.join(" "),
                rule: ": needs --uid-map too: give both, or neither for the default".to_string(),
            });
        }
        Ok((uids, gids))
    }

    /// Check the maps, before anything is made.
    pub fn validate(&self) -> Result<(), CliError> {
        self.maps().map(drop)
    }

    /// Put the maps asked for into `spec`.
    pub fn apply(&self, spec: &mut ContainerSpec) -> Result<(), CliError> {
        (spec.uid_maps, spec.gid_maps) = self.maps()?;
        Ok(())
    }
}

/// The cgroup limits of chapter 5, flattened into every chapter from 5 on.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// CPUs the container may use, as in Docker: 0.5 = 50 ms of every 100 ms
    #[arg(long, value_name = "CPUS", allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// CPU time the container may use per period, in microseconds (instead of --cpus)
    #[arg(
        long,
        value_name = "US",
        allow_negative_numbers = true,
        conflicts_with = "cpus"
    )]
    pub cpu_quota: Option<i64>,
    /// The period of --cpu-quota, in microseconds, 1000 to 1000000 [default: 100000]
    #[arg(
        long,
        value_name = "US",
        allow_negative_numbers = true,
        conflicts_with = "cpus"
    )]
    pub cpu_period: Option<i64>,
    /// Relative CPU weight under contention, in v1 shares (2 to 262144, default 1024)
    #[arg(long, value_name = "SHARES", allow_negative_numbers = true)]
    pub cpu_shares: Option<i64>,
    /// Memory limit, e.g. 64M (k, m, g are binary multiples); no swap beyond it
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Most processes and threads the container may have at once
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
}

impl LimitArgs {
    /// Whether any limit was asked for.
    pub fn any(&self) -> bool {
        self.cpus.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cpu_shares.is_some()
            || self.memory.is_some()
            || self.pids_limit.is_some()
    }

    // ANCHOR: resources
    /// The limits, checked against what the kernel accepts and this machine has.
    pub fn resources(&self) -> Result<Resources, CliError> {
        let online = cgroups::online_cpus();
        let quota = non_negative("--cpu-quota", self.cpu_quota)?;
        let period = non_negative("--cpu-period", self.cpu_period)?;
        let cpu_quota = match (self.cpus, quota, period) {
            (Some(cpus), _, _) => Some(cgroups::quota_from_cpus(cpus, online)?),
            (None, Some(quota), period) => {
                let quota = cgroups::quota_from_parts(quota, period.unwrap_or(DEFAULT_PERIOD_US))?;
                if quota.cpus() > online as f64 {
                    return Err(CliError::Flag {
                        flag: "--cpu-quota",
                        value: quota.quota_us.to_string(),
                        rule: format!(
                            " per --cpu-period {} is {:.2} CPUs: this machine has {online}",
                            quota.period_us,
                            quota.cpus()
                        ),
                    });
                }
                Some(quota)
            }
            (None, None, Some(period)) => {
                cgroups::quota_from_parts(MIN_QUOTA_US, period)?;
                return Err(CliError::Flag {
                    flag: "--cpu-period",
                    value: period.to_string(),
                    rule: " needs --cpu-quota: a period alone limits nothing".to_string(),
                });
            }
            (None, None, None) => None,
        };
        let resources = Resources {
            cpu_quota,
            cpu_shares: non_negative("--cpu-shares", self.cpu_shares)?
                .map(cgroups::validate_shares)
                .transpose()?,
            memory_bytes: self
                .memory
                .as_deref()
                .map(cgroups::parse_size)
                .transpose()?,
            pids_max: non_negative("--pids-limit", self.pids_limit)?,
            ..Resources::default()
        };
        resources.validate()?;
        Ok(resources)
    }
    // ANCHOR_END: resources

    /// The limit flags as given, as they were typed: ` --cpus 0.5 --memory 64M`.
    pub fn describe(&self) -> String {
        [
            ("--cpus", self.cpus.map(|c| c.to_string())),
            ("--cpu-quota", self.cpu_quota.map(|q| q.to_string())),
            ("--cpu-period", self.cpu_period.map(|p| p.to_string())),
            ("--cpu-shares", self.cpu_shares.map(|s| s.to_string())),
            ("--memory", self.memory.clone()),
            ("--pids-limit", self.pids_limit.map(|p| p.to_string())),
        ]
        .into_iter()
        .filter_map(|(flag, value)| value.map(|v| format!(" {flag} {v}")))
        .collect()
    }

    /// Check the limits, and that this caller may have them, before anything is made.
    pub fn validate(&self, privileged: bool) -> Result<(), CliError> {
        self.resources()?;
        if !privileged && self.any() {
            return Err(CliError::RootlessLimits);
        }
        Ok(())
    }

    /// A cgroup with these limits for `spec`, for root (`privileged`): root's containers
    /// from chapter 5 on have one that counts, limits or not. A normal user who asks for
    /// limits gets an error: nutshell makes no cgroups for one.
    pub fn apply(&self, spec: &mut ContainerSpec, privileged: bool) -> Result<(), CliError> {
        self.validate(privileged)?;
        if privileged {
            spec.cgroup = Some(CgroupSpec {
                path: None,
                resources: self.resources()?,
                ..Default::default()
            });
        }
        Ok(())
    }
}

/// How a chapter 8 container is connected (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    /// A veth to a bridge, an address, NAT (root's default, docker's and podman's)
    Bridge,
    /// A network namespace with only `lo`
    None,
    /// The host's network namespace: no isolation
    Host,
    /// A user-mode network through pasta (a normal user's default, podman's rootless)
    Pasta,
}

/// The network flags of chapter 8, flattened into every chapter from 8 on.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    /// How the container is connected [default: bridge as root, pasta as a normal user]
    #[arg(long, value_enum, value_name = "MODE")]
    pub network: Option<NetworkMode>,
    /// Publish a container port on the host, as docker run -p: [hostIP:]hostPort:containerPort[/tcp|/udp]; repeatable
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,
    /// The bridge network's subnet; the bridge is its .1
    #[arg(long, value_name = "CIDR", default_value = crate::net::DEFAULT_SUBNET)]
    pub subnet: String,
    /// The bridge's name, which is also the network's
    #[arg(long, value_name = "NAME", default_value = crate::net::DEFAULT_BRIDGE)]
    pub bridge: String,
}

impl NetworkArgs {
    /// The mode asked for, or the caller's default.
    pub fn mode(&self, privileged: bool) -> NetworkMode {
        self.network.unwrap_or(if privileged {
            NetworkMode::Bridge
        } else {
            NetworkMode::Pasta
        })
    }

    /// The published ports, checked.
    pub fn ports(&self) -> Result<Vec<crate::net::PortMapping>, CliError> {
        self.publish
            .iter()
            .map(|p| p.parse().map_err(CliError::Port))
            .collect()
    }

    /// The network `spec` gets, checked before anything is made.
    pub fn network(&self, privileged: bool) -> Result<Option<crate::net::Network>, CliError> {
        use crate::net::{BridgeNetwork, Network};
        let ports = self.ports()?;
        let mode = self.mode(privileged);
        if !ports.is_empty() && matches!(mode, NetworkMode::None | NetworkMode::Host) {
            return Err(CliError::Flag {
                flag: "-p",
                value: self.publish.join(" -p "),
                rule: format!(
                    ": nothing to publish with --network {}: ports are published on a bridge or through pasta",
                    if mode == NetworkMode::None {
                        "none"
                    } else {
                        "host"
                    }
                ),
            });
        }
        let subnet = self.subnet.parse().map_err(CliError::Subnet)?;
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ']) {
            return Err(CliError::Flag {
                flag: "--bridge",
                value: self.bridge.clone(),
                rule: ": an interface name is 1 to 15 characters, without / or spaces".to_string(),
            });
        }
        Ok(match mode {
            NetworkMode::Host => None,
            NetworkMode::None => Some(Network::Loopback),
            NetworkMode::Pasta => Some(Network::Pasta { ports }),
            NetworkMode::Bridge => Some(Network::Bridge(BridgeNetwork {
                bridge: self.bridge.clone(),
                subnet,
                ports,
                ..BridgeNetwork::default()
            })),
        })
    }

    /// Give `spec` its network: a network namespace of its own, connected as asked, or
    /// the host's.
    pub fn apply(&self, spec: &mut ContainerSpec, privileged: bool) -> Result<(), CliError> {
        let network = self.network(privileged)?;
        *spec.namespaces.mode_mut(crate::namespaces::Namespace::Net) =
            if self.mode(privileged) == NetworkMode::Host {
                crate::spec::NamespaceMode::Host
            } else {
                crate::spec::NamespaceMode::New
            };
        spec.network = network;
        Ok(())
    }
}

/// `nutshell build`'s flags, docker build's names (chapter 10).
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The image's name, NAME[:TAG]
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tag: String,
    /// The Containerfile [default: CONTEXT/Containerfile, then CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument for an ARG, NAME=VALUE; repeatable
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Run every step, whatever the cache holds
    #[arg(long)]
    pub no_cache: bool,
    /// Build this stage (FROM ... AS NAME) and what it needs, not the last one
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The network of RUN steps: none (only lo) or bridge (chapter 8's, root only)
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub network: String,
    /// The build context: the directory COPY and ADD read from
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

impl BuildArgs {
    /// The build these flags ask for, checked.
    pub fn options(&self) -> Result<crate::build::engine::BuildOptions, CliError> {
        use crate::build::engine::{BuildNetwork, BuildOptions};
        let build_args = parse_build_args(&self.build_args)?;
        let network = match self.network.as_str() {
            "none" => BuildNetwork::None,
            "bridge" => BuildNetwork::Bridge,
            other => {
                return Err(CliError::Flag {
                    flag: "--network",
                    value: other.to_string(),
                    rule: ": a build's RUN steps take none or bridge".to_string(),
                });
            }
        };
        Ok(BuildOptions {
            context: self.context.clone(),
            file: self.file.clone(),
            tag: self.tag.clone(),
            build_args,
            no_cache: self.no_cache,
            target: self.target.clone(),
            network,
            epoch: crate::image::pack::source_date_epoch(),
        })
    }
}

/// `--build-arg`s as a map: `NAME=VALUE`, or `NAME` alone, which takes `NAME`'s value
/// from the environment (and is left out if it has none), as docker does.
pub fn parse_build_args(
    args: &[String],
) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    let mut build_args = std::collections::BTreeMap::new();
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => match std::env::var(arg) {
                Ok(value) => (arg.clone(), value),
                Err(_) => continue,
            },
        };
        if name.is_empty() {
            return Err(CliError::Flag {
                flag: "--build-arg",
                value: arg.clone(),
                rule: ": want NAME=VALUE".to_string(),
            });
        }
        build_args.insert(name, value);
    }
    Ok(build_args)
}

/// A flag that takes a count or a size: a negative one is an error, not "unlimited".
pub fn non_negative(flag: &'static str, value: Option<i64>) -> Result<Option<u64>, CliError> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| CliError::Flag {
                flag,
                value: v.to_string(),
                rule: ": must not be negative; leave the flag out for no limit".to_string(),
            })
        })
        .transpose()
}

/// A command line as a shell would need it typed: an argument with spaces or other
/// special characters is single-quoted, so `sh -c 'id; ls'` reads back as it was given.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A tour as one shell script, for `sh -c`: each command is echoed like a transcript
/// (`$ command`), then run with its errors on stdout, so that they show in order.
pub fn transcript(commands: &[&str]) -> String {
    commands
        .iter()
        .map(|command| {
            // Inside single quotes only a quote needs care: end them, add \', reopen.
            let shown = command.replace('\'', r"'\''");
            format!("echo; echo '$ {shown}'; {{ {command}; }} 2>&1")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Stop with a clear message unless running as root, saying what root is needed for.
pub fn require_root(binary: &str, why: &str) -> Result<(), CliError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(CliError::NeedsRoot {
        binary: binary.to_string(),
        why: why.to_string(),
    })
}

/// Print `plan` on stdout. A reader who pipes it into `head` has seen what they wanted:
/// a closed pipe is not an error.
pub fn print_plan(plan: &LaunchPlan) -> std::io::Result<()> {
    match std::io::stdout().write_all(plan.to_string().as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// An error and its causes on one line, each cause once even when a message already
/// quotes its source.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = cause {
        let text = err.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = err.source();
    }
    line
}

/// 1, or what a [`crate::launch::LaunchError`] in the chain asks for (127 for a
/// container program that was not found).
pub fn exit_status(err: &(dyn std::error::Error + 'static)) -> u8 {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = cause {
        if let Some(status) = err
            .downcast_ref::<crate::launch::LaunchError>()
            .and_then(crate::launch::LaunchError::exit_status)
        {
            return status;
        }
        // Transparent: its source is the launch error's source, so it is asked itself.
        if let Some(status) = err
            .downcast_ref::<crate::oci::runtime::RuntimeError>()
            .and_then(crate::oci::runtime::RuntimeError::exit_status)
        {
            return status;
        }
        cause = err.source();
    }
    1
}

// ANCHOR: main_with
/// The `main` of every nutshell binary: if this process is a container's first process
/// re-executed as `nutshell-init` (see [`crate::launch`]), be that; otherwise run `body`,
/// print an error as one line prefixed with the binary's name, and exit with the status
/// `body` chose (1 on error).
pub fn main_with<E>(binary: &str, body: impl FnOnce() -> Result<i32, E>) -> std::process::ExitCode
where
    E: Into<anyhow::Error>,
{
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| argv0 == crate::launch::INIT_ARGV0)
    {
        crate::launch::init_main();
    }
    quiet_on_a_closed_stdout();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(code)) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Ok(Err(err)) => {
            // anyhow's Deref gives the error itself, first in the chain (a Box<dyn
            // Error> made from it would hide it behind anyhow's wrapper).
            let err: anyhow::Error = err.into();
            let err: &(dyn std::error::Error + 'static) = &*err;
            eprintln!("{binary}: error: {}", one_line(err));
            std::process::ExitCode::from(exit_status(err))
        }
        // The reader went away (`--plan | head`): the unwinding has torn down what the
        // run made, and the exit is the one a shell shows for a death by SIGPIPE.
        Err(_) if stdout_is_closed() => std::process::ExitCode::from(128 + libc::SIGPIPE as u8),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
// ANCHOR_END: main_with

/// Rust ignores SIGPIPE, so a write to a pipe whose reader has gone fails with EPIPE,
/// and `println!` panics on it. Coreutils die of the signal instead, and quietly. A
/// container runtime must not die mid-run (it would leave the container's cgroup and
/// mounts behind), so nutshell keeps ignoring the signal, lets the panic unwind through
/// the teardown, and only keeps the panic's message off stderr when it was the pipe.
fn quiet_on_a_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !stdout_is_closed() {
            default(info);
        }
    }));
}

/// Whether stdout is a pipe or socket whose other end is closed: poll(2) reports
/// POLLERR on a pipe's write end once no reader is left (POLLHUP on a socket).
fn stdout_is_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace_args(hostname: &str, uptime_offset: i64) -> NamespaceArgs {
        NamespaceArgs {
            hostname: hostname.to_string(),
            uptime_offset,
        }
    }

    fn spec() -> ContainerSpec {
        crate::spec::chapters::for_chapter(
            2,
            Path::new("/rootfs"),
            crate::spec::Program::Args(vec!["true".into()]),
        )
    }

    #[test]
    fn a_negative_uptime_offset_is_refused() {
        let err = namespace_args("box", -5)
            .apply(&mut spec())
            .expect_err("negative");
        assert!(
            err.to_string()
                .starts_with("--uptime-offset -5 is negative"),
            "{err}"
        );
    }

    #[test]
    fn an_uptime_offset_past_the_kernels_clock_limit_is_refused_naming_the_flag() {
        assert_eq!(TIMENS_CLOCK_MAX_S, 4_611_686_018);
        assert_eq!(max_uptime_offset(1000.2), 4_611_685_017);
        let err = namespace_args("box", TIMENS_CLOCK_MAX_S)
            .apply(&mut spec())
            .expect_err("too large");
        assert!(
            err.to_string().starts_with(
                "--uptime-offset 4611686018 is too large: the kernel keeps a time namespace's \
                 clocks under 4611686018 s (146 years), and the host has been up"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_hostname_is_refused_and_a_valid_one_lands_in_the_spec() {
        assert!(namespace_args("bad_name", 0).apply(&mut spec()).is_err());
        let mut spec = spec();
        namespace_args("good-name", 3600)
            .apply(&mut spec)
            .expect("valid");
        assert_eq!(spec.hostname.as_deref(), Some("good-name"));
        assert_eq!(spec.time_offsets, Some(TimeOffsets::uptime(3600)));
    }

    #[test]
    fn a_shell_line_quotes_what_a_shell_would_split() {
        let argv: Vec<String> = ["sh", "-c", "id; echo 'x'", "", "/bin/ls"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_line(&argv), r"sh -c 'id; echo '\''x'\''' '' /bin/ls");
    }

    #[test]
    fn a_transcript_echoes_each_command_even_with_quotes() {
        assert_eq!(
            transcript(&["id", "echo 'hi'"]),
            "echo; echo '$ id'; { id; } 2>&1\necho; echo '$ echo '\\''hi'\\'''; { echo 'hi'; } 2>&1"
        );
    }

    #[test]
    fn one_line_does_not_repeat_a_quoted_source() {
        let io = std::io::Error::from_raw_os_error(2);
        let err = CliError::Rootfs(RootfsError::Unusable {
            path: "/x".into(),
            source: io,
        });
        assert_eq!(
            one_line(&err),
            "rootfs /x cannot be used: No such file or directory (os error 2)"
        );
    }
}
