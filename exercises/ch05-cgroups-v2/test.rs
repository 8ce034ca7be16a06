//! Tests for exercise ch05-cgroups-v2. The statement is at the top of `v2_setup.rs`.
//!
//! No root and no real cgroup: each test hands `setup_v2` a fake cgroup2 tree of plain
//! files in a temp dir, made the way the kernel would show it (the root and `nutshell`
//! with their interface files). inotify(7) watches the root and `nutshell` while your
//! code runs, so the tests see not only what ends up in the files but in which order
//! they were written.

#[cfg_attr(not(feature = "solution"), path = "v2_setup.rs")]
#[cfg_attr(
    feature = "solution",
    path = "../solutions/ch05-cgroups-v2/v2_setup.rs"
)]
mod v2_setup;

use std::fs;
use std::io;
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use v2_setup::setup_v2;

/// The pid moved in: any number does on a fake tree.
const PID: u32 = 4242;

/// The interface files every cgroup2 directory has, empty as in a fresh cgroup.
fn interface_files(dir: &Path, controllers: &str) {
    fs::create_dir_all(dir).expect("mkdir");
    fs::write(dir.join("cgroup.controllers"), controllers).expect("write cgroup.controllers");
    fs::write(dir.join("cgroup.subtree_control"), "").expect("write cgroup.subtree_control");
    fs::write(dir.join("cgroup.procs"), "").expect("write cgroup.procs");
}

/// A fake cgroup2 mount: its root, and `nutshell` if `with_parent`.
fn fake_tree(with_parent: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    interface_files(root.path(), "cpu memory pids io");
    fs::write(
        root.path().join("cgroup.subtree_control"),
        "cpu memory pids io",
    )
    .expect("write the root's cgroup.subtree_control");
    if with_parent {
        interface_files(&root.path().join("nutshell"), "cpu memory pids io");
    }
    root
}

/// What happened in a watched directory: (directory, entry, "create" or "write").
type Event = (&'static str, String, &'static str);

/// Run `setup_v2` on the tree while inotify watches the root and `nutshell`; return its
/// result and the events, in order.
fn watched_setup(root: &Path, name: &str) -> (io::Result<std::path::PathBuf>, Vec<Event>) {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify_init");
    let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MODIFY;
    let root_watch = inotify.add_watch(root, flags).expect("watch the root");
    let parent_watch = inotify
        .add_watch(&root.join("nutshell"), flags)
        .expect("watch nutshell");
    let result = setup_v2(root, name, PID);
    let mut events = Vec::new();
    while let Ok(batch) = inotify.read_events() {
        for event in batch {
            let dir = if event.wd == root_watch {
                "<root>"
            } else if event.wd == parent_watch {
                "<root>/nutshell"
            } else {
                continue;
            };
            let what = if event.mask.contains(AddWatchFlags::IN_CREATE) {
                "create"
            } else {
                "write"
            };
            let entry = event
                .name
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            events.push((dir, entry, what));
        }
    }
    (result, events)
}

fn position(events: &[Event], dir: &str, entry: &str, what: &str) -> Option<usize> {
    events
        .iter()
        .position(|(d, e, w)| *d == dir && e == entry && *w == what)
}

#[test]
fn the_pid_ends_up_in_the_child_with_the_controllers_enabled_in_the_parent() {
    let tree = fake_tree(true);
    let (result, _) = watched_setup(tree.path(), "box");
    let cgroup = result.unwrap_or_else(|e| panic!("setup_v2 failed: {e}"));
    let expected = tree.path().join("nutshell/box");
    assert_eq!(cgroup, expected, "return the path of the new cgroup");
    let procs = fs::read_to_string(expected.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("read nutshell/box/cgroup.procs: {e}: write the pid there"));
    assert_eq!(
        procs.trim(),
        PID.to_string(),
        "nutshell/box/cgroup.procs should hold the pid"
    );
    let enabled = fs::read_to_string(tree.path().join("nutshell/cgroup.subtree_control"))
        .expect("read nutshell/cgroup.subtree_control");
    assert_eq!(
        enabled.trim(),
        "+cpu +memory +pids",
        "nutshell/cgroup.subtree_control should get \"+cpu +memory +pids\" in one write \
         (the fake file keeps only the last write; the kernel accepts all three at once)"
    );
}

#[test]
fn the_controllers_are_enabled_before_the_child_is_created() {
    let tree = fake_tree(true);
    let (result, events) = watched_setup(tree.path(), "box");
    result.unwrap_or_else(|e| panic!("setup_v2 failed: {e}"));
    let enabled = position(
        &events,
        "<root>/nutshell",
        "cgroup.subtree_control",
        "write",
    )
    .unwrap_or_else(|| {
        panic!("nutshell/cgroup.subtree_control was never written (events: {events:?})")
    });
    let created = position(&events, "<root>/nutshell", "box", "create")
        .unwrap_or_else(|| panic!("nutshell/box was never created (events: {events:?})"));
    assert!(
        enabled < created,
        "nutshell/box was created before the controllers were enabled in \
         nutshell/cgroup.subtree_control: enable first, so that the cgroup is born with \
         cpu.max, memory.max and pids.max (events in order: {events:?})"
    );
}

#[test]
fn nothing_is_written_outside_nutshell_and_no_pid_goes_into_the_parent() {
    let tree = fake_tree(true);
    let (result, events) = watched_setup(tree.path(), "box");
    result.unwrap_or_else(|e| panic!("setup_v2 failed: {e}"));
    let outside: Vec<&Event> = events
        .iter()
        .filter(|(dir, entry, _)| *dir == "<root>" && entry != "nutshell")
        .collect();
    assert!(
        outside.is_empty(),
        "setup_v2 changed the root cgroup, which belongs to whoever booted the machine: \
         {outside:?}"
    );
    assert!(
        position(&events, "<root>/nutshell", "cgroup.procs", "write").is_none(),
        "a pid was written to nutshell/cgroup.procs: the parent hands controllers to its \
         children, so by v2's \"no internal processes\" rule it holds no process itself"
    );
}

#[test]
fn the_parent_is_created_when_it_is_missing() {
    let tree = fake_tree(false);
    let cgroup = setup_v2(tree.path(), "first", PID)
        .unwrap_or_else(|e| panic!("setup_v2 failed on a tree without nutshell/: {e}"));
    assert_eq!(cgroup, tree.path().join("nutshell/first"));
    let procs = fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("read nutshell/first/cgroup.procs: {e}"));
    assert_eq!(procs.trim(), PID.to_string());
}

#[test]
fn an_existing_cgroup_is_an_error_and_left_alone() {
    let tree = fake_tree(true);
    let theirs = tree.path().join("nutshell/taken");
    interface_files(&theirs, "cpu memory pids");
    fs::write(theirs.join("cgroup.procs"), "77\n").expect("a process of theirs");
    match setup_v2(tree.path(), "taken", PID) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("expected an AlreadyExists error for an existing cgroup, got {e}"),
        Ok(_) => panic!(
            "setup_v2 adopted nutshell/taken, which existed already: use fs::create_dir, \
             which fails on an existing directory"
        ),
    }
    let procs = fs::read_to_string(theirs.join("cgroup.procs")).expect("read cgroup.procs");
    assert_eq!(
        procs, "77\n",
        "the existing cgroup's cgroup.procs was changed"
    );
}
