//! Tests for exercise ch06-user. The statement is at the top of `id_maps.rs`.
//!
//! Each test runs in a process of its own (support::in_child), which plays the runtime:
//! it forks a "container" that unshares a user namespace and waits on a pipe, calls
//! `write_id_maps` with the container's pid, then lets it go. (The container is forked
//! because unshare(CLONE_NEWUSER) refuses a process of more than one thread, and the
//! check's process has two: the test's, and libtest's main thread waiting for it.) The
//! container checks from inside what it became and reports through a second pipe; the
//! runtime checks from outside, then reaps it.
//!
//! The unprivileged tests need no root: run as root, they first drop to nobody (65534)
//! in the check's process. The privileged test maps a whole range of ids, which only root
//! may do: run as a normal user, it says so and passes.

#[cfg_attr(not(feature = "solution"), path = "id_maps.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch06-user/id_maps.rs")]
mod id_maps;
#[path = "../support.rs"]
#[allow(dead_code)] // these tests run without root too
mod support;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use id_maps::write_id_maps;
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe};
use support::in_child;

/// The first host uid and gid of the privileged test's ranges; 65536 ids from each.
/// They differ, so that a map written to the wrong file shows.
const HOST_UID_BASE: u32 = 100_000;
const HOST_GID_BASE: u32 = 200_000;

/// The unprivileged user and group the tests become when they run as root: nobody, and
/// a gid other than its uid, so that a map written to the wrong file shows.
const NOBODY_UID: u32 = 65534;
const NOBODY_GID: u32 = 65533;

/// Read one whole pipe end, to EOF.
fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    let _ = File::from(fd).read_to_string(&mut text);
    text
}

/// The container's side: unshare a user namespace, say so, wait to be let go, run
/// `inside`, report, then wait for the runtime to finish looking before it exits.
fn container(
    ready: OwnedFd,
    go: OwnedFd,
    verdict: OwnedFd,
    inside: impl FnOnce() -> Result<(), String>,
) -> ! {
    let mut verdict = File::from(verdict);
    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
        let _ = write!(
            verdict,
            "unshare(CLONE_NEWUSER) failed: {e}. This machine refuses user namespaces to \
             this user (see sysctl user.max_user_namespaces, and \
             kernel.apparmor_restrict_unprivileged_userns on Ubuntu); run as root"
        );
        // SAFETY: ends only this forked container.
        unsafe { libc::_exit(0) }
    }
    let _ = File::from(ready).write_all(b"r");
    let mut go = File::from(go);
    let mut byte = [0u8; 1];
    // EOF instead of a byte: the maps were not written; nothing to check.
    if go.read(&mut byte).unwrap_or(0) == 1 {
        // A panic must not unwind out of the container into the runtime's code.
        let message = match catch_unwind(AssertUnwindSafe(inside)) {
            Ok(Ok(())) => String::new(),
            Ok(Err(message)) => message,
            Err(_) => "the check inside the container panicked".to_string(),
        };
        let _ = verdict.write_all(message.as_bytes());
        drop(verdict);
        // Stay alive (and in the namespace) until the runtime has looked from outside.
        let _ = go.read(&mut byte);
    }
    // SAFETY: ends only this forked container.
    unsafe { libc::_exit(0) }
}

/// Play the runtime: fork a container in a new user namespace, let `write_maps` give it
/// its maps (the learner's code), then check it from `inside` and from `outside`. The
/// container is reaped however this ends, a panic in `write_maps` included.
fn with_container(
    write_maps: impl FnOnce(Pid) -> Result<(), String>,
    inside: impl FnOnce() -> Result<(), String>,
    outside: impl FnOnce(Pid) -> Result<(), String>,
) -> Result<(), String> {
    let (ready_read, ready_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (go_read, go_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (verdict_read, verdict_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: besides this thread the process has only libtest's main thread, which waits
    // for the test to end holding no lock (support.rs); the container runs only
    // `container`, which leaves with _exit.
    let pid = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop((ready_read, go_write, verdict_read));
            container(ready_write, go_read, verdict_write, inside)
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_write, go_read, verdict_write));
    let mut go = File::from(go_write);
    let mut byte = [0u8; 1];
    let ready = File::from(ready_read).read(&mut byte).unwrap_or(0) == 1;
    let result = if !ready {
        let reported = read_all(verdict_read);
        Err(if reported.is_empty() {
            "the container ended before its user namespace was ready".to_string()
        } else {
            reported
        })
    } else {
        match catch_unwind(AssertUnwindSafe(|| write_maps(pid))) {
            Ok(Ok(())) => {
                let _ = go.write_all(b"g");
                let reported = read_all(verdict_read);
                let inside = if reported.is_empty() {
                    Ok(())
                } else {
                    Err(reported)
                };
                inside.and_then(|()| outside(pid))
            }
            Ok(Err(message)) => Err(message),
            Err(panic) => {
                // Let the container go (EOF), reap it, then let support::in_child report.
                drop(go);
                let _ = waitpid(pid, None);
                resume_unwind(panic)
            }
        }
    };
    drop(go);
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, 0)) => result,
        other => result.and(Err(format!("the container ended badly: {other:?}"))),
    }
}

/// Become nobody (with gid 65533) if this process is root, so that it writes the maps without privilege.
/// Returns the (uid, gid) this process now has.
fn drop_to_unprivileged() -> Result<(u32, u32), String> {
    if Uid::effective().is_root() {
        let nobody_uid = Uid::from_raw(NOBODY_UID);
        let nobody_gid = Gid::from_raw(NOBODY_GID);
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups([]): {e}"))?;
        nix::unistd::setresgid(nobody_gid, nobody_gid, nobody_gid)
            .map_err(|e| format!("setresgid(nobody): {e}"))?;
        nix::unistd::setresuid(nobody_uid, nobody_uid, nobody_uid)
            .map_err(|e| format!("setresuid(nobody): {e}"))?;
        // Changing uid made this process non-dumpable, which makes its /proc files (and
        // its children's, which inherit the flag) root's: nobody could not write the
        // container's maps. A runtime that execs after dropping privileges is dumpable
        // again; this test does not exec, so it says so itself.
        nix::sys::prctl::set_dumpable(true).map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    }
    Ok((Uid::effective().as_raw(), Gid::effective().as_raw()))
}

/// The (inside, outside, count) ranges of a map file's contents.
fn ranges(map: &str) -> Vec<(u32, u32, u32)> {
    map.lines()
        .filter_map(|line| {
            let numbers: Vec<u32> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            match numbers[..] {
                [inside, outside, count] => Some((inside, outside, count)),
                _ => None,
            }
        })
        .collect()
}

fn read_file(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}

/// Inside: the namespace's maps and setgroups file are what the runtime wrote.
fn check_maps_inside(
    uid_ranges: &[(u32, u32, u32)],
    gid_ranges: &[(u32, u32, u32)],
    setgroups: &str,
) -> Result<(), String> {
    let uid_map = read_file("/proc/self/uid_map")?;
    if ranges(&uid_map) != uid_ranges {
        return Err(format!(
            "inside, /proc/self/uid_map is {uid_map:?}, expected the ranges {uid_ranges:?}"
        ));
    }
    let gid_map = read_file("/proc/self/gid_map")?;
    if ranges(&gid_map) != gid_ranges {
        return Err(format!(
            "inside, /proc/self/gid_map is {gid_map:?}, expected the ranges {gid_ranges:?}: \
             did you write the gid map to gid_map (and not the uid map twice)?"
        ));
    }
    let found = read_file("/proc/self/setgroups")?;
    if found.trim() != setgroups {
        return Err(format!(
            "inside, /proc/self/setgroups is {:?}, expected {setgroups:?}{}",
            found.trim(),
            if setgroups == "allow" {
                ": with deny_setgroups false, leave setgroups alone"
            } else {
                ": with deny_setgroups true, write \"deny\" to it, before gid_map"
            }
        ));
    }
    Ok(())
}

/// Inside: getuid(2) and getgid(2) say root.
fn check_root_inside() -> Result<(), String> {
    let (uid, gid) = (Uid::current().as_raw(), Gid::current().as_raw());
    if (uid, gid) != (0, 0) {
        return Err(format!(
            "inside, this process is uid {uid} gid {gid}, expected 0 and 0 (65534 is the \
             overflow id: an id the maps do not cover)"
        ));
    }
    Ok(())
}

/// Outside: the container's real, effective, saved and filesystem ids in
/// /proc/PID/status, read from the parent namespace, are all `uid` and `gid`.
fn check_ids_outside(pid: Pid, uid: u32, gid: u32) -> Result<(), String> {
    let status = read_file(&format!("/proc/{pid}/status"))?;
    for (field, expected) in [("Uid:", uid), ("Gid:", gid)] {
        let ids: Vec<&str> = status
            .lines()
            .find(|line| line.starts_with(field))
            .map(|line| line.split_whitespace().skip(1).collect())
            .unwrap_or_default();
        let wanted = expected.to_string();
        if ids.is_empty() || ids.iter().any(|id| *id != wanted) {
            return Err(format!(
                "seen from the host, the container's {field} ids are {ids:?}, expected all \
                 {expected}"
            ));
        }
    }
    Ok(())
}

/// Explain the likely causes of an error from `write_id_maps`.
fn explain(e: &io::Error, unprivileged: bool) -> String {
    match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
        Errno::EPERM if unprivileged => format!(
            "write_id_maps failed: {e}. An unprivileged writer's gid_map is refused until \
             \"deny\" is written to /proc/PID/setgroups: write it FIRST, before gid_map (once \
             gid_map is written, setgroups cannot change). An unprivileged writer may also \
             map only its own ids: write each map, as given, to its own file"
        ),
        Errno::EPERM => format!(
            "write_id_maps failed: {e}. The kernel takes a map file's contents from ONE \
             write(2) and refuses a later write through a new open with EPERM (the map is \
             set): write the whole map at once (std::fs::write), once, to its own file"
        ),
        Errno::EINVAL => format!(
            "write_id_maps failed: {e}. The kernel takes a map only from the FIRST write(2) on \
             the open file, at offset 0, and refuses a second one with EINVAL: writeln!/write! \
             on a File may make several write(2)s (one for the text, one for the newline). \
             Write each whole map with one std::fs::write, as given"
        ),
        _ => format!("write_id_maps failed: {e}"),
    }
}

#[test]
fn an_unprivileged_writer_maps_itself_to_root_after_denying_setgroups() {
    let verdict = in_child(|| {
        let (uid, gid) = drop_to_unprivileged()?;
        let (uid_map, gid_map) = (format!("0 {uid} 1\n"), format!("0 {gid} 1\n"));
        with_container(
            |pid| {
                write_id_maps(pid.as_raw(), &uid_map, &gid_map, true).map_err(|e| explain(&e, true))
            },
            || {
                check_root_inside()?;
                check_maps_inside(&[(0, uid, 1)], &[(0, gid, 1)], "deny")?;
                match nix::unistd::setgroups(&[]) {
                    Err(Errno::EPERM) => Ok(()),
                    other => Err(format!(
                        "inside, with setgroups denied, setgroups(2) should fail with EPERM; \
                         it gave {other:?}"
                    )),
                }
            },
            |pid| check_ids_outside(pid, uid, gid),
        )
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn without_deny_an_unprivileged_gid_map_is_refused_and_setgroups_is_left_alone() {
    let verdict = in_child(|| {
        let (uid, gid) = drop_to_unprivileged()?;
        let (uid_map, gid_map) = (format!("0 {uid} 1\n"), format!("0 {gid} 1\n"));
        with_container(
            |pid| match write_id_maps(pid.as_raw(), &uid_map, &gid_map, false) {
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
                Err(e) => Err(format!(
                    "with deny_setgroups false, an unprivileged writer's gid_map should fail \
                     with EPERM, and write_id_maps return that error; it returned {e}"
                )),
                Ok(()) => Err(
                    "with deny_setgroups false, write_id_maps succeeded for an unprivileged \
                     writer: it must not write \"deny\" to setgroups unless asked (the kernel \
                     then refuses the gid_map, and that error is what to return)"
                        .to_string(),
                ),
            },
            || {
                // uid_map went through before gid_map was refused; gid 0 is unmapped.
                if !Uid::current().is_root() {
                    return Err("inside, the uid map was not written: write uid_map before \
                        gid_map, and return the error gid_map gives"
                        .to_string());
                }
                check_maps_inside(&[(0, uid, 1)], &[], "allow")
            },
            |_| Ok(()),
        )
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn root_inside_is_an_unprivileged_range_outside() {
    if !Uid::effective().is_root() {
        eprintln!(
            "skipped: mapping a range of 65536 ids needs root (a normal user may map only \
             itself); run `sudo just exercise ch06-user` to run this test too"
        );
        return;
    }
    // Two lines, so that a writer that sends the map line by line is caught: the kernel
    // refuses the second write(2).
    let range = |base: u32| {
        (
            format!("0 {base} 1\n1 {} 65535\n", base + 1),
            [(0, base, 1), (1, base + 1, 65535)],
        )
    };
    let (uid_map, uid_ranges) = range(HOST_UID_BASE);
    let (gid_map, gid_ranges) = range(HOST_GID_BASE);
    let verdict = in_child(|| {
        with_container(
            |pid| {
                write_id_maps(pid.as_raw(), &uid_map, &gid_map, false)
                    .map_err(|e| explain(&e, false))
            },
            || {
                // The container is still host root, which the map does not cover; it has
                // every capability in its namespace, so it can become the mapped root.
                let root = (Uid::from_raw(0), Gid::from_raw(0));
                nix::unistd::setresgid(root.1, root.1, root.1)
                    .map_err(|e| format!("inside, setresgid(0): {e}: is gid 0 mapped?"))?;
                nix::unistd::setresuid(root.0, root.0, root.0)
                    .map_err(|e| format!("inside, setresuid(0): {e}: is uid 0 mapped?"))?;
                check_root_inside()?;
                check_maps_inside(&uid_ranges, &gid_ranges, "allow")?;
                nix::unistd::setgroups(&[]).map_err(|e| {
                    format!("inside, setgroups(2) should be allowed (a privileged writer need not deny it): {e}")
                })
            },
            |pid| check_ids_outside(pid, HOST_UID_BASE, HOST_GID_BASE),
        )
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}
