//! Writing a [`MappingPlan`] for a waiting child, and reading a process's ids back from
//! `/proc/PID/status`.

use std::path::Path;

use nix::unistd::Pid;

use super::UsernsError;
use super::plan::{IdMap, MapWriter, MappingPlan, render_map};

// ANCHOR: write_id_maps
/// Write `plan`'s maps for process `pid`, which must be waiting in its new user
/// namespace for them. `proc_dir` is normally `/proc`.
///
/// Each map file takes exactly one write(2), all lines at once: a second write fails
/// with EPERM, so the whole map is rendered first. An unprivileged writer must write
/// `deny` to `setgroups` before the gid map, or the kernel refuses the gid map.
pub fn write_id_maps(pid: Pid, plan: &MappingPlan, proc_dir: &Path) -> Result<(), UsernsError> {
    match &plan.writer {
        MapWriter::Kernel => {
            let dir = proc_dir.join(pid.to_string());
            let write = |file: &str, text: &str| {
                let path = dir.join(file);
                std::fs::write(&path, text).map_err(|source| UsernsError::Write { path, source })
            };
            if plan.deny_setgroups {
                write("setgroups", "deny")?;
            }
            write("uid_map", &render_map(&plan.maps.uids))?;
            write("gid_map", &render_map(&plan.maps.gids))
        }
        MapWriter::Helpers {
            newuidmap,
            newgidmap,
        } => {
            run_helper(newuidmap, pid, &plan.maps.uids)?;
            run_helper(newgidmap, pid, &plan.maps.gids)
        }
    }
}
// ANCHOR_END: write_id_maps

/// How long newuidmap or newgidmap may take: they read two small files and write one.
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `newuidmap PID INSIDE OUTSIDE COUNT...`: the setuid helper checks each range against
/// /etc/subuid (or /etc/subgid) and writes the map for us.
fn run_helper(helper: &Path, pid: Pid, maps: &[IdMap]) -> Result<(), UsernsError> {
    let mut command = std::process::Command::new(helper);
    command.arg(pid.to_string());
    for map in maps {
        command.args([
            map.inside.to_string(),
            map.outside.to_string(),
            map.count.to_string(),
        ]);
    }
    let failed = |message: String| UsernsError::Helper {
        helper: helper.to_path_buf(),
        message,
    };
    let output = crate::process::run_within(&mut command, b"", HELPER_TIMEOUT)
        .map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(failed(if said.is_empty() {
        output.status.to_string()
    } else {
        said
    }))
}

/// Check that host uid `uid` (gid `gid`) — the container's root — may walk to `path`:
/// every directory from `/` down to it must grant it search (x) permission. The
/// container resolves these paths itself, as that uid, and a directory made with mode
/// 0700 (as `mktemp -d` makes them) would stop it with a bare EACCES.
pub fn check_searchable(path: &Path, uid: u32, gid: u32) -> Result<(), UsernsError> {
    use std::os::unix::fs::MetadataExt;
    for dir in path.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        if meta.is_dir() && meta.mode() & bit == 0 {
            return Err(UsernsError::NotSearchable {
                dir: dir.to_path_buf(),
                path: path.to_path_buf(),
                uid,
                gid,
            });
        }
    }
    Ok(())
}

impl MappingPlan {
    /// [`check_searchable`] for the container's root under this plan.
    pub fn check_reachable(&self, path: &Path) -> Result<(), UsernsError> {
        match self.maps.host_root() {
            Some((uid, gid)) => check_searchable(path, uid, gid),
            None => Ok(()),
        }
    }
}

/// A process's ids and effective capabilities, as its `/proc/PID/status` shows them to
/// the reader: in the reader's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcIds {
    /// Real, effective, saved and filesystem uid.
    pub uids: Vec<u32>,
    /// Real, effective, saved and filesystem gid.
    pub gids: Vec<u32>,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The effective capability set, as a bitmask.
    pub cap_eff: u64,
}

impl ProcIds {
    /// Parse the text of a `/proc/PID/status` file.
    pub fn parse(status: &str) -> Option<ProcIds> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let ids = |name: &str| -> Option<Vec<u32>> {
            field(name)?
                .split_whitespace()
                .map(|id| id.parse().ok())
                .collect()
        };
        Some(ProcIds {
            uids: ids("Uid")?,
            gids: ids("Gid")?,
            groups: ids("Groups")?,
            cap_eff: u64::from_str_radix(field("CapEff")?, 16).ok()?,
        })
    }

    /// How many capabilities are in the effective set.
    pub fn capability_count(&self) -> u32 {
        self.cap_eff.count_ones()
    }
}

/// Read process `pid`'s ids from `<proc_dir>/<pid>/status`.
pub fn read_status_ids(proc_dir: &Path, pid: &str) -> std::io::Result<ProcIds> {
    let path = proc_dir.join(pid).join("status");
    let text = std::fs::read_to_string(&path)?;
    ProcIds::parse(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: no Uid, Gid, Groups or CapEff line", path.display()),
        )
    })
}

/// `uid=100000 gid=100000 groups=(none) capabilities=41 (000001ffffffffff)`: one line
/// for the chapter to print beside what `id` says inside.
pub fn describe_ids(ids: &ProcIds) -> String {
    let first = |v: &[u32]| v.first().map_or("?".to_string(), u32::to_string);
    let groups = if ids.groups.is_empty() {
        "(none)".to_string()
    } else {
        ids.groups
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "uid={} gid={} groups={groups} effective capabilities: {} ({:016x})",
        first(&ids.uids),
        first(&ids.gids),
        ids.capability_count(),
        ids.cap_eff
    )
}
