//! The maps and a process's ids as the chapters print them.

use std::path::Path;

use super::apply::{ProcIds, describe_ids, read_status_ids};
use super::plan::{MapWriter, MappingPlan};

/// The maps, one line each, and who writes them.
pub fn describe_mapping(mapping: &MappingPlan) -> String {
    let mut text = String::new();
    for (kind, maps) in [("uid", &mapping.maps.uids), ("gid", &mapping.maps.gids)] {
        for map in maps.iter() {
            let meaning = if map.count == 1 {
                format!(
                    "container {kind} {} is host {kind} {}",
                    map.inside, map.outside
                )
            } else {
                format!(
                    "container {kind}s {}-{} are host {kind}s {}-{}",
                    map.inside,
                    u64::from(map.inside) + u64::from(map.count) - 1,
                    map.outside,
                    u64::from(map.outside) + u64::from(map.count) - 1,
                )
            };
            text.push_str(&format!(
                "{kind} map: {:>5} {:>10} {:>6}   ({meaning})\n",
                map.inside, map.outside, map.count
            ));
        }
    }
    let writer = match (&mapping.writer, mapping.deny_setgroups) {
        (MapWriter::Kernel, false) => "nutshell, to /proc/PID/uid_map and gid_map (root may map any host ids)".to_string(),
        (MapWriter::Kernel, true) => "nutshell, to /proc/PID/uid_map and gid_map, after \"deny\" to /proc/PID/setgroups (a normal user may map only their own ids)".to_string(),
        (MapWriter::Helpers { newuidmap, newgidmap }, _) => format!(
            "{} and {}, which check /etc/subuid and /etc/subgid",
            newuidmap.display(),
            newgidmap.display()
        ),
    };
    text.push_str(&format!("written by: {writer}\n"));
    for note in &mapping.notes {
        text.push_str(&format!("note:    {note}\n"));
    }
    text
}

/// What the host sees of process `pid`: its ids and capabilities from /proc/PID/status,
/// and which user namespace it is in.
pub fn host_view(pid: i32) -> std::io::Result<Vec<String>> {
    let proc_dir = Path::new("/proc");
    let ids: ProcIds = read_status_ids(proc_dir, &pid.to_string())?;
    let ns = |pid: &str| {
        std::fs::read_link(proc_dir.join(pid).join("ns/user"))
            .map(|link| link.display().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    Ok(vec![
        "the same process, seen from the host's /proc/PID/status:".to_string(),
        format!("  {}", describe_ids(&ids)),
        format!(
            "  in user namespace {}; the host's is {}",
            ns(&pid.to_string()),
            ns("self")
        ),
    ])
}
