//! # Reference solution: ch06-user, write a user namespace's id maps

use std::fs;
use std::io;

/// Give the user namespace of process `pid` its maps: `deny` to setgroups first if
/// `deny_setgroups`, then `uid_map`, then `gid_map`, each file in one write.
pub fn write_id_maps(
    pid: i32,
    uid_map: &str,
    gid_map: &str,
    deny_setgroups: bool,
) -> io::Result<()> {
    let proc_dir = format!("/proc/{pid}");
    // FIX: an unprivileged writer's gid_map is refused (EPERM) until setgroups is
    // denied, and setgroups can no longer change once gid_map is written: deny first.
    if deny_setgroups {
        fs::write(format!("{proc_dir}/setgroups"), "deny")?;
    }
    // FIX: fs::write hands the whole map to one write(2); the kernel refuses a second
    // write to a map file, so a line-by-line writer fails on the second range.
    fs::write(format!("{proc_dir}/uid_map"), uid_map)?;
    fs::write(format!("{proc_dir}/gid_map"), gid_map)
}
