//! `/etc/subuid` and `/etc/subgid`: which host ids each user may give its containers.
//!
//! A line `alice:100000:65536` lets newuidmap(1) map host ids 100000..165536 into
//! alice's user namespaces. useradd(8) hands such ranges out from 100000 up, in steps of
//! 65536, so the first normal user gets exactly 100000..165535.
//!
//! Root may map any host ids, but must still pick some: if root's containers used
//! 100000..165535 too, a root container's files would belong to the same host ids as
//! alice's rootless containers, and each could reach the other's. So root's containers
//! take their ids from an entry of their own, `nutshell`, as podman's rootful containers
//! take theirs from `containers`. `just setup` adds it where it is missing, and nutshell
//! refuses to start a root container when it overlaps another user's range.
//!
//! See also [subuid(5)](https://man7.org/linux/man-pages/man5/subuid.5.html),
//! [useradd(8)](https://man7.org/linux/man-pages/man8/useradd.8.html).

use std::fmt;

use super::UsernsError;

/// The user whose `/etc/subuid` and `/etc/subgid` ranges root's containers use.
pub const ROOT_RANGE_OWNER: &str = "nutshell";

/// The range `just setup` gives [`ROOT_RANGE_OWNER`] when the files have none: above
/// what useradd hands out (up to 600100000 by default) and what systemd-nspawn picks
/// from (524288 to 1879048191), below podman's suggested `containers` range.
pub const SUGGESTED_ROOT_RANGE: SubIdRange = SubIdRange {
    start: 2_000_000_000,
    count: 65_536,
};

/// A range of subordinate ids from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubIdRange {
    /// The first host id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

impl SubIdRange {
    /// One past the last id.
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }

    /// Whether `map`'s host ids all lie in this range.
    pub(super) fn covers(&self, map: &super::IdMap) -> bool {
        map.outside >= self.start && map.outside_end() <= self.end()
    }

    /// Whether the two ranges share an id.
    pub fn overlaps(&self, other: &SubIdRange) -> bool {
        u64::from(self.start) < other.end() && u64::from(other.start) < self.end()
    }
}

impl fmt::Display for SubIdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end() - 1)
    }
}

/// One line of `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubIdEntry {
    /// The user, by name or by number.
    pub owner: String,
    /// The range.
    pub range: SubIdRange,
}

/// Every well-formed line of `/etc/subuid` (or `/etc/subgid`) text. Malformed lines and
/// empty ranges are skipped, as the shadow tools skip them.
pub fn parse_subid_entries(text: &str) -> Vec<SubIdEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?.to_string();
            let start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            (count > 0 && fields.next().is_none()).then_some(SubIdEntry {
                owner,
                range: SubIdRange { start, count },
            })
        })
        .collect()
}

/// The ranges the text gives a user, who is named by `user` or by the number `uid`, as
/// subuid(5) allows.
pub fn parse_subid(text: &str, user: Option<&str>, uid: u32) -> Vec<SubIdRange> {
    let uid = uid.to_string();
    parse_subid_entries(text)
        .into_iter()
        .filter(|entry| entry.owner == uid || Some(entry.owner.as_str()) == user)
        .map(|entry| entry.range)
        .collect()
}

// ANCHOR: root_ranges
/// The [`ROOT_RANGE_OWNER`] ranges of `file`'s text, checked against every other user's:
/// an overlap would let root's containers and that user's rootless ones share host ids.
pub fn root_ranges(file: &'static str, text: &str) -> Result<Vec<SubIdRange>, UsernsError> {
    let entries = parse_subid_entries(text);
    let ours: Vec<SubIdRange> = entries
        .iter()
        .filter(|entry| entry.owner == ROOT_RANGE_OWNER)
        .map(|entry| entry.range)
        .collect();
    for entry in entries.iter().filter(|e| e.owner != ROOT_RANGE_OWNER) {
        if let Some(range) = ours.iter().find(|range| range.overlaps(&entry.range)) {
            return Err(UsernsError::RangeOverlap {
                file,
                ours: range.to_string(),
                owner: entry.owner.clone(),
                theirs: entry.range.to_string(),
            });
        }
    }
    Ok(ours)
}
// ANCHOR_END: root_ranges

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nutshell_range_is_found_among_users() {
        let text = "alice:100000:65536\nnutshell:2000000000:65536\n";
        assert_eq!(
            root_ranges("/etc/subuid", text).expect("no overlap"),
            [SUGGESTED_ROOT_RANGE]
        );
        assert!(
            root_ranges("/etc/subuid", "alice:100000:65536\n")
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn a_nutshell_range_overlapping_a_users_is_refused() {
        let text = "alice:100000:65536\nnutshell:150000:65536\n";
        let err = root_ranges("/etc/subuid", text).expect_err("overlap");
        assert_eq!(
            err.to_string(),
            "/etc/subuid: the nutshell range 150000-215535 overlaps alice's range 100000-165535: root's containers would share host ids with alice's rootless containers and could reach their files; give nutshell a range of its own"
        );
    }

    #[test]
    fn ranges_that_only_touch_do_not_overlap() {
        let a = SubIdRange {
            start: 100_000,
            count: 65_536,
        };
        let b = SubIdRange {
            start: 165_536,
            count: 10,
        };
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&SubIdRange {
            start: 165_535,
            count: 1
        }));
    }
}
