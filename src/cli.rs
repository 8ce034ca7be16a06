//! What every chapter binary shares: the `--rootfs` flag, the default image behind it,
//! and how errors are printed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::image::{ImageStore, Source};
use crate::namespaces::{Namespace, TimeOffsets};
use crate::process::Isolation;
use crate::rootfs::resolve_rootfs;
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
