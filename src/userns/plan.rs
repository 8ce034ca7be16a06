//! Which id maps a container gets, and who writes them: computed as data from who is
//! asking, what they asked for, and what `/etc/subuid`, `/etc/subgid` and the setuid
//! helpers allow. Nothing here touches the system.

use std::fmt;
use std::path::{Path, PathBuf};

use super::UsernsError;
use super::subid::SubIdRange;

/// One line of a uid or gid map: `count` ids from `inside` in the namespace are the
/// host's ids from `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    /// The first id inside the namespace.
    pub inside: u32,
    /// The host id it stands for.
    pub outside: u32,
    /// How many consecutive ids.
    pub count: u32,
}

/// The most lines a map file takes (since Linux 4.15; 5 before).
pub const MAX_MAP_LINES: usize = 340;

impl IdMap {
    /// Parse `INSIDE:OUTSIDE:COUNT`, as podman's `--uidmap` takes it.
    pub fn parse(flag: &'static str, value: &str) -> Result<IdMap, UsernsError> {
        let bad = || UsernsError::BadMapSyntax {
            flag,
            value: value.to_string(),
        };
        let fields: Vec<u32> = value
            .split(':')
            .map(|field| field.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match fields[..] {
            [inside, outside, count] => Ok(IdMap {
                inside,
                outside,
                count,
            }),
            _ => Err(bad()),
        }
    }

    /// The host id of `inside`, if this line maps it.
    pub fn to_host(&self, inside: u32) -> Option<u32> {
        let offset = inside.checked_sub(self.inside)?;
        (offset < self.count).then(|| self.outside + offset)
    }

    /// The container id of host id `outside`, if this line maps it.
    pub fn to_inside(&self, outside: u32) -> Option<u32> {
        let offset = outside.checked_sub(self.outside)?;
        (offset < self.count).then(|| self.inside + offset)
    }

    pub(super) fn inside_end(&self) -> u64 {
        u64::from(self.inside) + u64::from(self.count)
    }

    pub(super) fn outside_end(&self) -> u64 {
        u64::from(self.outside) + u64::from(self.count)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
    }
}

/// A map as the kernel reads it from `/proc/PID/uid_map`: one `inside outside count`
/// line per range.
pub fn render_map(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
        .collect()
}

/// A container's uid map and gid map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMaps {
    /// The uid map.
    pub uids: Vec<IdMap>,
    /// The gid map.
    pub gids: Vec<IdMap>,
}

impl IdMaps {
    /// The host uid of container uid `inside`.
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        self.uids.iter().find_map(|m| m.to_host(inside))
    }

    /// The host gid of container gid `inside`.
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        self.gids.iter().find_map(|m| m.to_host(inside))
    }

    /// The container uid of host uid `outside`: whose a file the container made is.
    pub fn inside_uid(&self, outside: u32) -> Option<u32> {
        self.uids.iter().find_map(|m| m.to_inside(outside))
    }

    /// The container gid of host gid `outside`.
    pub fn inside_gid(&self, outside: u32) -> Option<u32> {
        self.gids.iter().find_map(|m| m.to_inside(outside))
    }

    /// The host uid and gid of the container's root, which owns what the container makes.
    pub fn host_root(&self) -> Option<(u32, u32)> {
        Some((self.host_uid(0)?, self.host_gid(0)?))
    }

    /// Whether the host's root user is one of the container's users: then root inside
    /// owns the host root's files, and the isolation this chapter shows is gone.
    pub fn maps_host_root(&self) -> bool {
        self.uids.iter().any(|m| m.outside == 0)
    }

    /// How many ids the uid map gives the container.
    pub fn uid_count(&self) -> u64 {
        self.uids.iter().map(|m| u64::from(m.count)).sum()
    }
}

/// Who starts the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The effective uid.
    pub uid: u32,
    /// The effective gid.
    pub gid: u32,
    /// The user's name, for `/etc/subuid` lines that name it.
    pub user: Option<String>,
    /// Whether the caller may write any map itself (root, with CAP_SETUID and
    /// CAP_SETGID in the host's user namespace).
    pub privileged: bool,
}

impl Caller {
    /// This process.
    pub fn current() -> Caller {
        let uid = nix::unistd::geteuid();
        Caller {
            uid: uid.as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            user: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|user| user.name),
            privileged: uid.is_root(),
        }
    }

    fn describe(&self) -> String {
        match &self.user {
            Some(name) => format!("user {name} ({})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// How the maps get written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MapWriter {
    /// The parent writes `/proc/PID/uid_map` and `gid_map` itself.
    Kernel,
    /// The setuid helpers write them, after checking `/etc/subuid` and `/etc/subgid`.
    Helpers {
        /// newuidmap(1).
        newuidmap: PathBuf,
        /// newgidmap(1).
        newgidmap: PathBuf,
    },
}

/// What to write, how, and what the reader should know about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MappingPlan {
    /// The maps.
    pub maps: IdMaps,
    /// Who writes them.
    pub writer: MapWriter,
    /// Write `deny` to `/proc/PID/setgroups` before the gid map: required of an
    /// unprivileged writer, and it leaves the container unable to call setgroups(2).
    pub deny_setgroups: bool,
    /// Limits of this mapping, one sentence each, for the binary to print.
    pub notes: Vec<String>,
}

/// `newuidmap` and `newgidmap` in the first of `dirs` that has both.
pub fn find_helpers(dirs: &[&Path]) -> Option<(PathBuf, PathBuf)> {
    dirs.iter().find_map(|dir| {
        let (uid, gid) = (dir.join("newuidmap"), dir.join("newgidmap"));
        (uid.is_file() && gid.is_file()).then_some((uid, gid))
    })
}

// ANCHOR: plan_mapping
/// Decide the maps for `caller`. `uids`/`gids` are what the user asked for (empty:
/// the default; a uid map alone is used for gids too, as podman does), `subuids` and
/// `subgids` the caller's ranges — for root, those of the [`super::ROOT_RANGE_OWNER`]
/// entry — and `helpers` newuidmap/newgidmap if installed.
///
/// Root gets what it asks for, by default 65536 ids from its `nutshell` range: ids that
/// no account and no user's rootless containers have. A normal user gets their
/// own uid and gid as root inside, plus their subordinate ranges as ids 1 and up when
/// the helpers can map them; without the helpers only the one id each, with setgroups
/// denied, because that is all the kernel lets an unprivileged writer map.
pub fn plan_mapping(
    caller: &Caller,
    uids: &[IdMap],
    gids: &[IdMap],
    subuids: &[SubIdRange],
    subgids: &[SubIdRange],
    helpers: Option<(PathBuf, PathBuf)>,
) -> Result<MappingPlan, UsernsError> {
    let gids = if gids.is_empty() { uids } else { gids };
    let plan = if caller.privileged {
        let or_default = |m: &[IdMap], ranges: &[SubIdRange], file| match (m, ranges.first()) {
            ([], Some(range)) => Ok(vec![IdMap {
                inside: 0,
                outside: range.start,
                count: range.count.min(65_536),
            }]),
            ([], None) => Err(UsernsError::NoRootRange { file }),
            (m, _) => Ok(m.to_vec()),
        };
        let maps = IdMaps {
            uids: or_default(uids, subuids, "/etc/subuid")?,
            gids: or_default(gids, subgids, "/etc/subgid")?,
        };
        let mut notes = Vec::new();
        if maps.maps_host_root() {
            notes.push(
                "the host's root (uid 0) is mapped into the container: root inside owns the host root's files"
                    .to_string(),
            );
        }
        MappingPlan {
            maps,
            writer: MapWriter::Kernel,
            deny_setgroups: false,
            notes,
        }
    } else if uids.is_empty() {
        unprivileged_default(caller, subuids, subgids, helpers)
    } else {
        unprivileged_requested(caller, uids, gids, subuids, subgids, helpers)?
    };
    check("uid", &plan.maps.uids)?;
    check("gid", &plan.maps.gids)?;
    Ok(plan)
}
// ANCHOR_END: plan_mapping

/// A normal user's default: their own ids as root, plus up to 65535 subordinate ids.
fn unprivileged_default(
    caller: &Caller,
    subuids: &[SubIdRange],
    subgids: &[SubIdRange],
    helpers: Option<(PathBuf, PathBuf)>,
) -> MappingPlan {
    let own = |id| IdMap {
        inside: 0,
        outside: id,
        count: 1,
    };
    let rest = |range: &SubIdRange| IdMap {
        inside: 1,
        outside: range.start,
        count: range.count.min(65_535),
    };
    match (helpers, subuids.first(), subgids.first()) {
        (Some((newuidmap, newgidmap)), Some(subuid), Some(subgid)) => MappingPlan {
            maps: IdMaps {
                uids: vec![own(caller.uid), rest(subuid)],
                gids: vec![own(caller.gid), rest(subgid)],
            },
            writer: MapWriter::Helpers {
                newuidmap,
                newgidmap,
            },
            deny_setgroups: false,
            notes: vec![],
        },
        (helpers, subuid, subgid) => {
            let name = caller.user.as_deref().unwrap_or("USER");
            let mut missing = Vec::new();
            if helpers.is_none() {
                missing.push(
                    "install newuidmap and newgidmap (Debian, Ubuntu: apt-get install uidmap)"
                        .to_string(),
                );
            }
            if subuid.is_none() || subgid.is_none() {
                missing.push(format!(
                    "give {name} a range in /etc/subuid and /etc/subgid (a line `{name}:100000:65536`)"
                ));
            }
            MappingPlan {
                maps: IdMaps {
                    uids: vec![own(caller.uid)],
                    gids: vec![own(caller.gid)],
                },
                writer: MapWriter::Kernel,
                deny_setgroups: true,
                notes: vec![format!(
                    "only the uid and gid of {} are mapped (to root); every other id shows as 65534 (nobody) inside. For 65536 ids, {}",
                    caller.describe(),
                    missing.join(" and ")
                )],
            }
        }
    }
}

/// A normal user's own maps: each line must be their own id, or lie in their
/// subordinate ranges, which only the helpers can map.
fn unprivileged_requested(
    caller: &Caller,
    uids: &[IdMap],
    gids: &[IdMap],
    subuids: &[SubIdRange],
    subgids: &[SubIdRange],
    helpers: Option<(PathBuf, PathBuf)>,
) -> Result<MappingPlan, UsernsError> {
    let mut needs_helpers = false;
    for (kind, maps, own, ranges, file) in [
        ("uid", uids, caller.uid, subuids, "/etc/subuid"),
        ("gid", gids, caller.gid, subgids, "/etc/subgid"),
    ] {
        for map in maps {
            if map.outside == own && map.count == 1 {
                continue;
            }
            if !ranges.iter().any(|range| range.covers(map)) {
                let given = match ranges {
                    [] => "nothing".to_string(),
                    ranges => ranges
                        .iter()
                        .map(|r| {
                            format!(
                                "{}-{}",
                                r.start,
                                u64::from(r.start) + u64::from(r.count) - 1
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                return Err(UsernsError::NotAllowed(format!(
                    "{kind} map {map} uses host {kind}s {}-{}, which {} does not own: only its own {kind} {own}, and what {file} gives it ({given})",
                    map.outside,
                    map.outside_end() - 1,
                    caller.describe()
                )));
            }
            needs_helpers = true;
        }
    }
    let maps = IdMaps {
        uids: uids.to_vec(),
        gids: gids.to_vec(),
    };
    match (needs_helpers, helpers) {
        (false, _) => Ok(MappingPlan {
            maps,
            writer: MapWriter::Kernel,
            deny_setgroups: true,
            notes: vec![],
        }),
        (true, Some((newuidmap, newgidmap))) => Ok(MappingPlan {
            maps,
            writer: MapWriter::Helpers {
                newuidmap,
                newgidmap,
            },
            deny_setgroups: false,
            notes: vec![],
        }),
        (true, None) => Err(UsernsError::NotAllowed(format!(
            "mapping ids beyond {}'s own needs the setuid helpers newuidmap and newgidmap, which are not installed (Debian, Ubuntu: apt-get install uidmap)",
            caller.describe()
        ))),
    }
}

/// Refuse what the kernel would refuse, with a reason instead of EINVAL, and one map the
/// kernel takes but nutshell does not: one without the container's root, whose first
/// process could not become uid 0 before exec and so would lose every capability it
/// needs to mount and pivot.
fn check(kind: &'static str, maps: &[IdMap]) -> Result<(), UsernsError> {
    let invalid = |problem: String| UsernsError::InvalidMap {
        kind,
        map: render_map(maps).trim_end().replace('\n', ", "),
        problem,
    };
    if maps.len() > MAX_MAP_LINES {
        return Err(invalid(format!(
            "{} lines, the kernel takes at most {MAX_MAP_LINES}",
            maps.len()
        )));
    }
    for (i, map) in maps.iter().enumerate() {
        if map.count == 0 {
            return Err(invalid(format!("{map} maps no ids (count 0)")));
        }
        // Exclusive ends: id 4294967295 is (uid_t)-1, "no id", and cannot be mapped.
        if map.inside_end() > u64::from(u32::MAX) || map.outside_end() > u64::from(u32::MAX) {
            return Err(invalid(format!(
                "{map} runs past the largest id, 4294967294"
            )));
        }
        for other in &maps[..i] {
            if map.inside_end() > u64::from(other.inside)
                && other.inside_end() > u64::from(map.inside)
            {
                return Err(invalid(format!("{map} and {other} overlap inside")));
            }
            if map.outside_end() > u64::from(other.outside)
                && other.outside_end() > u64::from(map.outside)
            {
                return Err(invalid(format!("{map} and {other} overlap on the host")));
            }
        }
    }
    if !maps.iter().any(|m| m.to_host(0).is_some()) {
        return Err(invalid(
            "the container's root (0) is not mapped, so nothing inside could act as root"
                .to_string(),
        ));
    }
    Ok(())
}
