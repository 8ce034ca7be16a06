//! The demos of chapters 1, 2, 6 and 7 that run inside the container.

use std::path::{Path, PathBuf};

use crate::ipc::{Found, QueueNames};
use crate::namespaces::{Clocks, read_uptime};
use crate::rootfs::{DirId, chroot_escape, list_dir};

// ANCHOR: escape
/// Chapter 1's escape from inside the container, step by step: it gets out of a plain
/// chroot (chapter 1), and ends at the container's own root after pivot_root (chapter 4).
/// Exit 0 when the outcome is `expect_escape`.
pub fn escape(scratch: &str, host_root: DirId, expect_escape: bool) -> i32 {
    let inside = list_dir(Path::new("/")).unwrap_or_default();
    println!("[inside]  / holds: {}", inside.join(" "));
    let report = match chroot_escape(&Path::new("/").join(scratch), host_root) {
        Ok(report) => report,
        Err(e) => {
            println!("[inside]  the escape failed with an error: {e}");
            return i32::from(expect_escape);
        }
    };
    println!("[inside]  mkdir(\"/{scratch}\")  — a directory inside the root");
    println!(
        "[inside]  chroot(\"/{scratch}\")  — the root moves down into it; the working directory stays above it"
    );
    println!(
        "[inside]  chdir(\"..\") x {}  — until \".\" is its own parent",
        report.steps_up
    );
    println!("[inside]  chroot(\".\")  — make where we stand the root");
    if report.escaped {
        println!("ESCAPED: \"/\" is now the host's real root (the same device and inode).");
        println!("[outside] / holds: {}", report.root_entries.join(" "));
    } else {
        println!("[inside]  / holds: {}", report.root_entries.join(" "));
        println!("NOT ESCAPED: the walk ended at the container's own root.");
    }
    i32::from(report.escaped != expect_escape)
}
// ANCHOR_END: escape

// ANCHOR: look_at_queues
/// Chapter 2, inside: look up the host's queues, then make queues of the container's own.
pub fn look_at_queues(host: &QueueNames, inside: &QueueNames) -> i32 {
    if report_queues("[inside]", host).is_none() {
        return 1;
    }
    if let Err(err) = inside.create() {
        println!("[inside]  {err}");
        return 1;
    }
    println!("[inside]  made {inside}");
    report_queues("[inside]", inside).map_or(1, |_| 0)
}
// ANCHOR_END: look_at_queues

/// Look `names` up and print what was found, each line prefixed with `who`.
pub fn report_queues(who: &str, names: &QueueNames) -> Option<Found> {
    let found = match names.lookup() {
        Ok(found) => found,
        Err(err) => {
            println!("{who:9} {err}");
            return None;
        }
    };
    let seen = |yes: bool| if yes { "found" } else { "not found" };
    println!(
        "{who:9} System V key {:#010x}: {}",
        names.sysv_key,
        seen(found.sysv_id.is_some())
    );
    println!("{who:9} POSIX {}: {}", names.posix_name, seen(found.posix));
    Some(found)
}

// ANCHOR: look_at_clocks
/// Chapter 2, inside: the uptime, and how far each clock is from the host's.
pub fn look_at_clocks(host: Clocks) -> i32 {
    // The container's own /proc.
    match read_uptime(Path::new("/proc")) {
        Ok(uptime) => println!("[inside]  /proc/uptime: up {uptime:.2} s"),
        Err(err) => println!("[inside]  read /proc/uptime: {err}"),
    }
    let Ok(inside) = Clocks::now() else {
        return 1;
    };
    // Whole seconds: the few milliseconds between the two readings are not the point.
    let shift = |inside: f64, host: f64| format!("{:+.0} s", inside - host);
    println!("[inside]  clock            container - host");
    println!(
        "[inside]  CLOCK_MONOTONIC  {}",
        shift(inside.monotonic, host.monotonic)
    );
    println!(
        "[inside]  CLOCK_BOOTTIME   {}  (what /proc/uptime shows)",
        shift(inside.boottime, host.boottime)
    );
    println!(
        "[inside]  CLOCK_REALTIME   {}  (the wall clock, what `date` shows: never moved)",
        shift(inside.realtime, host.realtime)
    );
    0
}
// ANCHOR_END: look_at_clocks

/// Chapter 6's break-it, inside: root tries to act on the host; exit 1 if anything that
/// would reach the host was allowed.
pub fn try_the_host(host_file: &Path, host_secret: &Path, scratch: &Path) -> i32 {
    let attempts = crate::userns::try_host_actions(host_file, host_secret, scratch);
    let mut escaped = false;
    for attempt in &attempts {
        println!("[inside]  {attempt}");
        escaped |= attempt.escaped();
    }
    if escaped {
        println!("ESCAPED: root in the container acted on the host");
        return 1;
    }
    println!("\nNOT ESCAPED: every attempt on the host was refused.");
    0
}

/// Chapter 7: what the container left in its upper dir, one change a line.
pub fn upper_report(upper: &Path, lowers: &[PathBuf]) -> i32 {
    println!("\nThe upper dir, {}:", upper.display());
    match crate::overlay::upper_changes(upper, lowers) {
        Ok(changes) if changes.is_empty() => {
            println!("  (empty: the container changed nothing)");
            0
        }
        Ok(changes) => {
            for change in changes {
                println!("  {change}");
            }
            0
        }
        Err(err) => {
            eprintln!("nutshell: {err}");
            1
        }
    }
}

/// Remove each tree, never following a symlink out of it; exit 1 on the first failure.
pub fn remove_trees(paths: &[PathBuf]) -> i32 {
    for path in paths {
        if let Err(err) = crate::overlay::remove_tree(path) {
            eprintln!("nutshell: {err}");
            return 1;
        }
    }
    0
}
