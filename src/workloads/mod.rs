//! Programs of nutshell's own that a container can run: the chapters' demos.
//!
//! Most containers run a program of their image (`sh -c ...`). The chapters also need
//! code the reader can read running inside the container: chapter 1's chroot escape,
//! chapter 2's look at IPC queues and clocks, chapter 5's busy threads, memory hog and
//! fork bomb, chapter 6's attempts on the host. Each is a [`Builtin`]: plain data in the
//! [`crate::spec::Program`], which the container's first process — a copy of nutshell
//! itself, see [`crate::launch`] — runs as its last step instead of exec'ing a program.
//! So a builtin runs with exactly the container's environment, ids, capabilities and
//! file descriptors, like any program would. Each prints what it does, prefixed
//! `[inside]`, and returns the process's exit code.

mod demos;
mod limits;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ipc::QueueNames;
use crate::namespaces::Clocks;
use crate::rootfs::DirId;

pub use demos::{
    escape, look_at_clocks, look_at_queues, remove_trees, report_queues, try_the_host, upper_report,
};
pub use limits::{allocate, burn, fork_loop};

/// A demo nutshell runs inside a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Builtin {
    /// Chapter 1's chroot escape, tried from inside (chapters 1 and 4).
    Escape {
        /// The scratch directory to make at the top of the root.
        scratch: String,
        /// The host's `/`, to tell honestly whether the walk got there.
        host_root: DirId,
        /// Whether this container is expected to let it out: exit 0 when it does what
        /// was expected.
        expect_escape: bool,
    },
    /// Chapter 2: look up the host's queues, make queues of the container's own.
    Queues {
        /// The host's queues.
        host: QueueNames,
        /// The queues to make inside.
        inside: QueueNames,
    },
    /// Chapter 2: the uptime and the clocks inside, against the host's.
    Clocks {
        /// The host's clocks, read just before the container started.
        host: Clocks,
    },
    /// Chapter 5's tour: busy threads.
    Burn {
        /// How many threads.
        threads: u64,
        /// For how long, in seconds.
        seconds: u64,
    },
    /// Chapter 12's pods: one busy thread for `seconds`, printing nothing (a dozen
    /// containers share one terminal).
    Spin {
        /// For how long, in seconds.
        seconds: u64,
    },
    /// Chapter 5's `--oom`: allocate until the OOM killer stops it.
    Allocate {
        /// The memory limit, in bytes.
        limit: u64,
    },
    /// Chapter 5's `--fork-bomb`: fork until pids.max refuses.
    ForkLoop {
        /// The pids limit.
        limit: u64,
    },
    /// Chapter 6's break-it: root inside tries to act on the host.
    TryTheHost {
        /// A file of the host's root, bound into the container.
        host_file: PathBuf,
        /// A file only the host's root may read.
        host_secret: PathBuf,
        /// A directory to mount a tmpfs on.
        scratch: PathBuf,
    },
    /// Chapter 7: list what a container left in its upper dir.
    UpperReport {
        /// The upper dir.
        upper: PathBuf,
        /// The lower dirs, top first.
        lowers: Vec<PathBuf>,
    },
    /// Chapter 9: unpack an image layer as the root of a user namespace, so that its
    /// files belong to the image's owners as the rootless user's containers map them.
    UnpackLayer {
        /// The layer blob.
        blob: PathBuf,
        /// Its digest.
        blob_digest: crate::image::digest::Digest,
        /// The digest its tar must have.
        diff_id: crate::image::digest::Digest,
        /// The directory to make.
        dest: PathBuf,
    },
    /// Chapter 10, rootless: pack a RUN step's upper into a layer tar, as the user
    /// namespace's root, who may read every file in it (its user, outside, may not
    /// read what the container gave to its other ids).
    PackUpper {
        /// The upper directory.
        upper: PathBuf,
        /// The tar to write (made new).
        output: PathBuf,
        /// The mtime to clamp to.
        epoch: u64,
    },
    /// Remove directory trees, as the user namespace's root: what a rootless container
    /// gave to its subordinate ids, its user cannot remove from outside.
    RemoveTrees {
        /// The trees.
        paths: Vec<PathBuf>,
    },
}

impl Builtin {
    /// Run it, in the container's process; returns the exit code.
    pub fn run(&self) -> i32 {
        match self {
            Builtin::Escape {
                scratch,
                host_root,
                expect_escape,
            } => escape(scratch, *host_root, *expect_escape),
            Builtin::Queues { host, inside } => look_at_queues(host, inside),
            Builtin::Clocks { host } => look_at_clocks(*host),
            Builtin::Burn { threads, seconds } => burn(*threads, *seconds),
            Builtin::Spin { seconds } => limits::spin(*seconds),
            Builtin::Allocate { limit } => allocate(*limit),
            Builtin::ForkLoop { limit } => fork_loop(*limit),
            Builtin::TryTheHost {
                host_file,
                host_secret,
                scratch,
            } => try_the_host(host_file, host_secret, scratch),
            Builtin::UpperReport { upper, lowers } => upper_report(upper, lowers),
            Builtin::UnpackLayer {
                blob,
                blob_digest,
                diff_id,
                dest,
            } => {
                use crate::image::extract::{Limits, Privilege};
                match crate::image::layer::unpack_blob(
                    blob,
                    blob_digest,
                    diff_id,
                    dest,
                    Privilege::MappedRoot,
                    Limits::default(),
                ) {
                    Ok(_) => 0,
                    Err(err) => {
                        eprintln!("nutshell: {}", crate::cli::one_line(&err));
                        1
                    }
                }
            }
            Builtin::PackUpper {
                upper,
                output,
                epoch,
            } => {
                let packed = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(output)
                    .map_err(|e| format!("create {}: {e}", output.display()))
                    .and_then(|file| {
                        crate::build::layer::pack_upper(
                            upper,
                            std::io::BufWriter::new(file),
                            *epoch,
                            crate::build::layer::Owners::AsTheyAre,
                        )
                        .map_err(|e| crate::cli::one_line(&e))
                        .and_then(|(out, _)| {
                            out.into_inner()
                                .map_err(|e| e.to_string())
                                .and_then(|f| f.sync_all().map_err(|e| e.to_string()))
                        })
                    });
                match packed {
                    Ok(()) => 0,
                    Err(err) => {
                        eprintln!("nutshell: {err}");
                        1
                    }
                }
            }
            Builtin::RemoveTrees { paths } => remove_trees(paths),
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Builtin::Escape { .. } => write!(f, "chroot escape"),
            Builtin::Queues { .. } => write!(f, "look at IPC queues"),
            Builtin::Clocks { .. } => write!(f, "look at the clocks"),
            Builtin::Burn { threads, seconds } => {
                write!(f, "busy threads ({threads} for {seconds} s)")
            }
            Builtin::Spin { seconds } => write!(f, "a busy thread ({seconds} s)"),
            Builtin::Allocate { limit } => write!(f, "memory hog (to 4 x {} MiB)", limit >> 20),
            Builtin::ForkLoop { limit } => write!(f, "fork loop ({} forks)", 2 * limit),
            Builtin::TryTheHost { .. } => write!(f, "attempts on the host"),
            Builtin::UpperReport { upper, .. } => {
                write!(f, "list the changes in {}", upper.display())
            }
            Builtin::UnpackLayer { diff_id, .. } => {
                write!(f, "unpack layer {diff_id} as the namespace's root")
            }
            Builtin::PackUpper { upper, .. } => {
                write!(
                    f,
                    "pack {} into a layer as the namespace's root",
                    upper.display()
                )
            }
            Builtin::RemoveTrees { paths } => write!(
                f,
                "remove {}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
