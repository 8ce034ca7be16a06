//! Docker's workflow on nutshell's runtime: `nutshell run IMAGE`, `ps`, `logs`, `exec`,
//! `stop`, `kill`, `rm`, `inspect`, `port` and `top`, with docker's flags and meanings.
//!
//! Each container has a record (its id, name, image, ports, how it ended: see
//! [`record`]) and, while it runs, a monitor that owns it (see [`monitor`]): the
//! process that launched it through the one pipeline, logs its output and tears it down
//! when it ends. Every command other than `run` is a new process that finds the
//! container by name or id prefix in the records, and acts on it through its launch
//! state, as chapter 11's runtime commands do.
//!
//! Introduced by the book's closing page, *Putting it together*.

pub mod cli;
pub mod commands;
pub mod logs;
pub mod monitor;
pub mod record;
pub mod run;

use std::path::PathBuf;

use nix::errno::Errno;

/// What a docker-style command could not do.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// No container has that name or id.
    #[error("no container with name or ID {query:?} found")]
    NotFound {
        /// What was asked for.
        query: String,
    },
    /// Neither a container nor an image has that name.
    #[error(
        "no such object: {query:?} (neither a container nor an image: see nutshell ps -a and nutshell images)"
    )]
    NoSuchObject {
        /// What was asked for.
        query: String,
    },
    /// More than one id starts with the prefix.
    #[error(
        "more than one container has an ID starting with {query:?}: give more of it, or the name"
    )]
    Ambiguous {
        /// The prefix.
        query: String,
    },
    /// The name belongs to another container.
    #[error(
        "the container name {name:?} is already in use by {id}: remove that container (nutshell rm {name}) to reuse the name"
    )]
    NameInUse {
        /// The name.
        name: String,
        /// The id of the container that has it.
        id: String,
    },
    /// The container is in the wrong phase for the command.
    #[error("container {name} {why}")]
    Phase {
        /// Its name.
        name: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// A flag's value breaks a rule.
    #[error("{flag} {value}{rule}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// The rule, from just after the value.
        rule: String,
    },
    /// The monitor of a `run -d` did not report.
    #[error("the container's monitor {0}")]
    Monitor(String),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// The operation.
        op: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The container could not be launched or reached.
    #[error(transparent)]
    Launch(#[from] crate::launch::LaunchError),
    /// The container's id is not one.
    #[error(transparent)]
    Id(#[from] crate::launch::InvalidId),
    /// The image is not in the store, or cannot be read.
    #[error(transparent)]
    Store(#[from] crate::image::store::StoreError),
    /// The image could not be pulled.
    #[error(transparent)]
    Pull(#[from] crate::image::distribution::DistributionError),
    /// The default image could not be built.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// The image's config cannot be run.
    #[error(transparent)]
    RunConfig(#[from] crate::image::run::RunConfigError),
    /// A runtime command failed.
    #[error(transparent)]
    Runtime(#[from] crate::oci::runtime::RuntimeError),
    /// A flag shared with the chapters is wrong.
    #[error(transparent)]
    Cli(#[from] crate::cli::CliError),
}

impl From<crate::launch::PlanError> for ContainersError {
    fn from(err: crate::launch::PlanError) -> ContainersError {
        ContainersError::Launch(err.into())
    }
}
