//! What every chapter binary shares: the `--rootfs` flag, the default image behind it,
//! and how errors are printed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::cgroups::{self, Cgroup, CpuQuota, Resources};
use crate::image::{ImageStore, Source};
use crate::namespaces::{Namespace, TimeOffsets};
use crate::process::Isolation;
use crate::rootfs::resolve_rootfs;
use crate::userns::{self, Caller, IdMap, MappingPlan};
use crate::uts::{DEFAULT_HOSTNAME, validate_hostname};

/// The root filesystem flag, flattened into every chapter's arguments.
#[derive(Debug, Clone, Args)]
pub struct RootfsArgs {
    /// Root filesystem to run in [default: the default image, built on first use]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
}

impl RootfsArgs {
    /// The absolute rootfs to use: the one given, or the default image, built (and said
    /// so on stderr) if this is its first use.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.rootfs {
            return Ok(resolve_rootfs(dir)?);
        }
        let store = ImageStore::new(&crate::store::data_dir());
        let (image, built) = store
            .ensure_default(Source::Auto, Path::new("/"))
            .context("prepare the default image")?;
        if built {
            eprintln!(
                "built the default image ({}) in {}",
                image.manifest.source,
                image.rootfs.display()
            );
        }
        Ok(image.rootfs)
    }
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
    /// Check the values before anything is created, so bad input leaves nothing behind.
    pub fn validate(&self) -> anyhow::Result<()> {
        validate_hostname(&self.hostname)?;
        if self.uptime_offset < 0 {
            anyhow::bail!(
                "--uptime-offset {} is negative: a container's uptime can only be moved forward (0 or more seconds)",
                self.uptime_offset
            );
        }
        Ok(())
    }

    /// The time namespace offsets the flags ask for.
    pub fn time_offsets(&self) -> TimeOffsets {
        TimeOffsets::uptime(self.uptime_offset)
    }

    /// A container cloned into `namespaces`, plus a time namespace with the offsets the
    /// flags ask for (made by the parent before the clone: see [`Isolation`]).
    pub fn isolation(&self, namespaces: &[Namespace]) -> Isolation {
        Isolation {
            namespaces: namespaces.to_vec(),
            time_offsets: Some(self.time_offsets()),
        }
    }
}

/// The user namespace flags, flattened into every chapter from 6 on.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// Map container uids to host uids, INSIDE:OUTSIDE:COUNT, repeatable [default: for root
    /// 65536 ids from the nutshell range in /etc/subuid; for a normal user their own uid as
    /// 0, plus their /etc/subuid range]
    #[arg(long = "uid-map", value_name = "IN:OUT:N")]
    pub uid_map: Vec<String>,
    /// Map container gids to host gids, like --uid-map [default: as the uid map]
    #[arg(long = "gid-map", value_name = "IN:OUT:N")]
    pub gid_map: Vec<String>,
}

/// Where newuidmap and newgidmap are looked for: distributions install them in /usr/bin.
pub const ID_MAP_HELPER_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

impl UserArgs {
    /// The id maps for this process to write for its container, from the flags,
    /// `/etc/subuid`, `/etc/subgid` and the helpers installed; checked before anything is
    /// created.
    pub fn plan(&self) -> anyhow::Result<MappingPlan> {
        let parse = |flag, values: &[String]| -> anyhow::Result<Vec<IdMap>> {
            Ok(values
                .iter()
                .map(|v| IdMap::parse(flag, v))
                .collect::<Result<_, _>>()?)
        };
        let uids = parse("--uid-map", &self.uid_map)?;
        let gids = parse("--gid-map", &self.gid_map)?;
        if uids.is_empty() && !gids.is_empty() {
            anyhow::bail!("--gid-map needs --uid-map too: give both, or neither for the default");
        }
        let caller = Caller::current();
        // Root's containers take their ids from the nutshell entry; a user's, from theirs.
        let subids = |file: &'static str| -> anyhow::Result<Vec<userns::SubIdRange>> {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            Ok(if caller.privileged {
                userns::root_ranges(file, &text)?
            } else {
                userns::parse_subid(&text, caller.user.as_deref(), caller.uid)
            })
        };
        let dirs: Vec<&Path> = ID_MAP_HELPER_DIRS.iter().map(Path::new).collect();
        Ok(userns::plan_mapping(
            &caller,
            &uids,
            &gids,
            &subids("/etc/subuid")?,
            &subids("/etc/subgid")?,
            userns::find_helpers(&dirs),
        )?)
    }
}

/// The cgroup limits of chapter 5, flattened into every chapter from 6 on (chapter 5
/// itself has the full set, and the demos).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// CPUs the container may use, as in Docker: 0.5 = 50 ms of every 100 ms
    #[arg(long, value_name = "CPUS", allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// Memory limit, e.g. 64M (k, m, g are binary multiples); no swap beyond it
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Most processes and threads the container may have at once
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
}

impl LimitArgs {
    /// Whether any limit was asked for.
    pub fn any(&self) -> bool {
        self.cpus.is_some() || self.memory.is_some() || self.pids_limit.is_some()
    }

    /// `--cpus` as a CFS quota, checked against the CPUs this machine has.
    pub fn cpu_quota(&self) -> anyhow::Result<Option<CpuQuota>> {
        Ok(self
            .cpus
            .map(|cpus| cgroups::quota_from_cpus(cpus, cgroups::online_cpus()))
            .transpose()?)
    }

    /// `--memory` in bytes.
    pub fn memory_bytes(&self) -> anyhow::Result<Option<u64>> {
        Ok(self
            .memory
            .as_deref()
            .map(cgroups::parse_size)
            .transpose()?)
    }

    /// `--pids-limit`, refused when negative.
    pub fn pids_max(&self) -> anyhow::Result<Option<u64>> {
        non_negative("--pids-limit", self.pids_limit)
    }

    /// The limits, checked against what the kernel accepts and this machine has.
    pub fn resources(&self) -> anyhow::Result<Resources> {
        Ok(Resources {
            cpu_quota: self.cpu_quota()?,
            memory_bytes: self.memory_bytes()?,
            pids_max: self.pids_max()?,
            ..Resources::default()
        })
    }

    /// Check the limits, and that this process may have them, before anything is
    /// created: a normal user gets an error when limits were asked for, since creating
    /// cgroups needs root, or a cgroup v2 subtree delegated to the user, which these
    /// chapters do not use.
    pub fn check(&self, privileged: bool) -> anyhow::Result<Resources> {
        let resources = self.resources()?;
        if !privileged && self.any() {
            anyhow::bail!(
                "--cpus, --memory and --pids-limit need a cgroup, and {NO_ROOTLESS_CGROUP}"
            );
        }
        Ok(resources)
    }

    /// The container's cgroup, `<mount>/nutshell/<name>`, with the limits applied, for
    /// root. A normal user gets `None` and the reason, to print (see [`LimitArgs::check`]).
    pub fn cgroup(
        &self,
        name: &str,
        privileged: bool,
    ) -> anyhow::Result<(Option<Cgroup>, Option<String>)> {
        let resources = self.check(privileged)?;
        if !privileged {
            return Ok((None, Some(NO_ROOTLESS_CGROUP.to_string())));
        }
        let layout =
            cgroups::detect_host(Path::new("/proc")).context("detect the cgroup layout")?;
        let settings = cgroups::plan(&resources, &layout, cgroups::swap_accounting(&layout))?;
        let path = format!("{}/{name}", cgroups::PARENT);
        let cgroup = Cgroup::create(&layout, &path, &cgroups::standard_controllers(&layout))?;
        cgroup.apply(&settings)?;
        Ok((Some(cgroup), None))
    }
}

/// A flag that takes a count or a size: a negative one is an error, not "unlimited".
pub fn non_negative(flag: &str, value: Option<i64>) -> anyhow::Result<Option<u64>> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| {
                anyhow::anyhow!("{flag} {v}: must not be negative; leave the flag out for no limit")
            })
        })
        .transpose()
}

/// Why a rootless container gets no cgroup.
const NO_ROOTLESS_CGROUP: &str = "a normal user can make cgroups only in a cgroup v2 subtree delegated to it (systemd does that for user sessions on pure v2 machines); rootless, this container runs in no cgroup of its own, with no limits";

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
pub fn require_root(binary: &str, why: &str) -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    anyhow::bail!(
        "{binary} needs root: {why}; run it as root, e.g. `sudo -E env PATH=\"$PATH\" cargo run --bin {binary}`"
    )
}

/// An error and its causes on one line, each cause once even when a message already
/// quotes its source.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// The `main` of a chapter binary: run `body`, print an error as one line prefixed with
/// the binary's name, and exit with the status `body` chose (1 on error).
pub fn main_with(
    binary: &str,
    body: impl FnOnce() -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    match body() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("{binary}: error: {}", one_line(&err));
            std::process::ExitCode::from(1)
        }
    }
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

    #[test]
    fn a_negative_uptime_offset_is_refused() {
        let err = namespace_args("box", -5).validate().expect_err("negative");
        assert!(
            err.to_string()
                .starts_with("--uptime-offset -5 is negative"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_hostname_is_refused() {
        assert!(namespace_args("bad_name", 0).validate().is_err());
        assert!(namespace_args("good-name", 3600).validate().is_ok());
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
        let err = anyhow::Error::new(crate::rootfs::RootfsError::Unusable {
            path: "/x".into(),
            source: io,
        })
        .context("start");
        assert_eq!(
            one_line(&err),
            "start: rootfs /x cannot be used: No such file or directory (os error 2)"
        );
    }
}
