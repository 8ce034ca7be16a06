//! The user namespace: user and group ids, and capabilities, of the container's own.
//!
//! A process in a new user namespace has every capability — but only over the
//! namespace's own resources: the namespaces it owns (its UTS, mount, PID... namespaces,
//! made together with it), and files whose owner is mapped into it. Which host ids the
//! namespace's ids stand for is written once, from outside, to `/proc/PID/uid_map` and
//! `/proc/PID/gid_map`: a line `0 2000000000 65536` says "ids 0..65536 inside are
//! 2000000000..2000065536 on the host". Root in the container is then uid 2000000000 to
//! the kernel:
//! a file the host's root owns is owned by nobody the container knows, and no capability
//! inside reaches it. Module loading, the wall clock, device nodes and the host's network
//! stay out of reach, because those need capabilities in the *host's* user namespace.
//!
//! Who may write which map: a writer with CAP_SETUID (CAP_SETGID) over the parent
//! namespace — root — may map any host ids. Anyone else may map only their own uid and
//! gid, one id each, and only after writing `deny` to `/proc/PID/setgroups`: otherwise
//! a user could drop a supplementary group that a file's permissions deny them by
//! (CVE-2014-8989). Ranges beyond one's own ids come from the setuid helpers
//! newuidmap(1) and newgidmap(1), which grant what `/etc/subuid` and `/etc/subgid` list.
//!
//! Introduced in chapter 6 (ch06-user). The work is split in two: [`plan_mapping`] decides
//! which maps to write and how, as data (pure, tested anywhere); [`write_id_maps`] writes
//! them, and the container's first process then becomes root of its namespace (see
//! [`crate::launch`]).
//!
//! See also [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html),
//! [capabilities(7)](https://man7.org/linux/man-pages/man7/capabilities.7.html),
//! [newuidmap(1)](https://man7.org/linux/man-pages/man1/newuidmap.1.html),
//! [subuid(5)](https://man7.org/linux/man-pages/man5/subuid.5.html).

mod apply;
mod attempts;
mod describe;
mod idmapped;
mod plan;
mod subid;

pub use apply::{ProcIds, check_searchable, describe_ids, read_status_ids, write_id_maps};
pub use attempts::{Attempt, try_host_actions};
pub use describe::{describe_mapping, host_view};
pub use idmapped::idmapped_tree;
pub use plan::{
    Caller, IdMap, IdMaps, MAX_MAP_LINES, MapWriter, MappingPlan, find_helpers, plan_mapping,
    render_map,
};
pub use subid::{
    ROOT_RANGE_OWNER, SUGGESTED_ROOT_RANGE, SubIdEntry, SubIdRange, parse_subid,
    parse_subid_entries, root_ranges,
};

use std::path::PathBuf;

/// Errors from planning or writing a user namespace's id maps.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// An `--uid-map`/`--gid-map` value is not `INSIDE:OUTSIDE:COUNT`.
    #[error("{flag} {value:?}: expected INSIDE:OUTSIDE:COUNT, e.g. 0:100000:65536")]
    BadMapSyntax {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// A map is empty, overlaps itself, overflows, or is too long for the kernel.
    #[error("{kind} map {map}: {problem}")]
    InvalidMap {
        /// `uid` or `gid`.
        kind: &'static str,
        /// The map, as the kernel would read it.
        map: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Root asked for the default maps, and `/etc/subuid` (or `subgid`) names no range
    /// for nutshell.
    #[error(
        "{file} has no range for {ROOT_RANGE_OWNER}, which root's containers take their ids from: run `just setup`, which adds one (a line `{ROOT_RANGE_OWNER}:{start}:{count}` in /etc/subuid and /etc/subgid), or give --uid-map",
        start = SUGGESTED_ROOT_RANGE.start,
        count = SUGGESTED_ROOT_RANGE.count
    )]
    NoRootRange {
        /// `/etc/subuid` or `/etc/subgid`.
        file: &'static str,
    },
    /// The nutshell range overlaps a range another user's rootless containers use.
    #[error(
        "{file}: the {ROOT_RANGE_OWNER} range {ours} overlaps {owner}'s range {theirs}: root's containers would share host ids with {owner}'s rootless containers and could reach their files; give {ROOT_RANGE_OWNER} a range of its own"
    )]
    RangeOverlap {
        /// `/etc/subuid` or `/etc/subgid`.
        file: &'static str,
        /// The nutshell range, `start-end`.
        ours: String,
        /// The other user.
        owner: String,
        /// Their range, `start-end`.
        theirs: String,
    },
    /// A normal user asked for ids they cannot map.
    #[error("{0}")]
    NotAllowed(String),
    /// Writing `/proc/PID/{setgroups,uid_map,gid_map}` failed.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Making an idmapped copy of a tree failed.
    #[error("make an idmapped mount of {path}: {step}: {source} ({hint})")]
    IdmappedMount {
        /// The tree.
        path: PathBuf,
        /// The system call that failed.
        step: &'static str,
        /// The errno.
        #[source]
        source: nix::errno::Errno,
        /// What the kernel and the tree's filesystem allow, and what to do.
        hint: String,
    },
    /// A directory on the way to the container's root that its root may not enter.
    #[error(
        "{dir} is not searchable by the container's root (host uid {uid}, gid {gid}), which must reach {path} through it: chmod o+x {dir}, or keep images and containers somewhere others may enter (NUTSHELL_DATA)"
    )]
    NotSearchable {
        /// The directory.
        dir: PathBuf,
        /// What the container needs to reach.
        path: PathBuf,
        /// The container root's host uid.
        uid: u32,
        /// Its host gid.
        gid: u32,
    },
    /// newuidmap or newgidmap failed or could not be run.
    #[error("{helper} failed: {message}")]
    Helper {
        /// The helper's path.
        helper: PathBuf,
        /// What it said (its stderr), or why it could not run.
        message: String,
    },
}
