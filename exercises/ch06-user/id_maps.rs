//! # Exercise ch06-user: write a user namespace's id maps
//!
//! A process that has just called `unshare(CLONE_NEWUSER)` is in a user namespace with
//! no id maps: inside, it is uid 65534 ("nobody", the overflow id), and can do nothing
//! that needs an id. Its parent, outside, gives the namespace its maps by writing to
//! three files of the child's /proc directory. Write `write_id_maps`: given the pid of
//! that process, the two maps, and whether the writer is unprivileged, do, in this order:
//!
//! 1. if `deny_setgroups`, write `deny` to `/proc/<pid>/setgroups`; otherwise leave that
//!    file alone;
//! 2. write `uid_map` to `/proc/<pid>/uid_map`;
//! 3. write `gid_map` to `/proc/<pid>/gid_map`.
//!
//! If a step fails, return its error (do not panic). A map is lines of three numbers,
//! `inside outside count` — `0 100000 65536\n` makes ids 0..65535 inside the namespace
//! ids 100000..165535 outside. Write the strings as you are given them.
//!
//! Why `deny` first: an unprivileged writer (no CAP_SETGID in the parent namespace) may
//! map only its own gid, and the kernel accepts that gid_map only once setgroups(2) is
//! denied for the namespace — otherwise root inside could drop a supplementary group
//! that was keeping it out of a file (a "negative" group permission like `rw----r--`).
//! Denying after gid_map is too late: the write to gid_map has already failed with
//! EPERM, and setgroups can no longer be changed once gid_map is written.
//!
//! Why ONE write per file: the kernel takes a map file's contents from a single
//! write(2) — a map is set once, whole. A second write on the same open file fails with
//! EINVAL (it is not at offset 0), one through a new open with EPERM (the map is set).
//! `std::fs::write` hands the whole string to one write(2) (it would only loop on a
//! short write, which these files never make). Writing line by line fails on the second
//! line, and so does `writeln!` on an unbuffered `File` even for one line: it makes one
//! write(2) for the text and another for the newline.
//!
//! Read book/src/ch06-user.md first. Check your work with `just exercise ch06-user`:
//! no root needed for the unprivileged tests; as root, the tests also map a whole
//! range of ids.

use std::io;

/// Give the user namespace of process `pid` its maps: `deny` to setgroups first if
/// `deny_setgroups`, then `uid_map`, then `gid_map`, each file in one write.
pub fn write_id_maps(
    pid: i32,
    uid_map: &str,
    gid_map: &str,
    deny_setgroups: bool,
) -> io::Result<()> {
    // TODO: if deny_setgroups, std::fs::write "deny" to /proc/<pid>/setgroups. It must
    //       come before gid_map; when deny_setgroups is false, do not touch the file.
    // TODO: std::fs::write the whole uid_map to /proc/<pid>/uid_map: one call, one write.
    // TODO: the same for gid_map and /proc/<pid>/gid_map. Use `?` on each write.
    let _ = (pid, uid_map, gid_map, deny_setgroups);
    todo!("write_id_maps: setgroups (if asked), uid_map, gid_map")
}
