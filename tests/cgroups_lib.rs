//! The cgroup library (`nutshell::cgroups`): the v1 and v2 code paths on fake cgroupfs
//! trees of plain directories in a temp dir, and (as root) a real cgroup on this host.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};
use nutshell::cgroups::layout::detect;
use nutshell::cgroups::{
    Cgroup, CgroupError, CgroupLayout, CgroupVersion, CpuStats, MemoryEvents, PARENT, PidsStats,
    Resources, SwapPolicy, detect_host, plan, quota_from_cpus, standard_controllers,
    swap_accounting,
};

/// A unique cgroup name per call: tests run in parallel, also against the real host.
fn unique_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("cgroups-lib-{test}-{}-{n}", std::process::id())
}

/// `nutshell/<name>`: where a cgroup named `name` goes.
fn at(name: &str) -> String {
    format!("{PARENT}/{name}")
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fake cgroup2 root offering `controllers` and delegating `delegated`.
fn fake_v2(root: &Path, controllers: &str, delegated: &str) -> CgroupLayout {
    fs::create_dir_all(root).expect("fake root");
    write(&root.join("cgroup.controllers"), controllers);
    write(&root.join("cgroup.subtree_control"), delegated);
    let mountinfo = format!("30 25 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    detect(&mountinfo, |p| fs::read_to_string(p)).expect("fake v2 layout")
}

/// Fake v1 hierarchies, one per controller, as on this project's hybrid machines.
fn fake_v1(root: &Path) -> CgroupLayout {
    let mut mountinfo = String::new();
    for (id, controller) in ["cpu", "cpuacct", "cpuset", "memory", "pids"]
        .iter()
        .enumerate()
    {
        let mount = root.join(controller);
        fs::create_dir_all(&mount).expect("fake hierarchy");
        mountinfo += &format!(
            "{} 25 0:{id} / {} rw - cgroup cgroup rw,{controller}\n",
            40 + id,
            mount.display()
        );
    }
    write(&root.join("cpuset/cpuset.cpus"), "0-3\n");
    write(&root.join("cpuset/cpuset.mems"), "0\n");
    write(
        &root.join("memory/memory.memsw.limit_in_bytes"),
        "9223372036854771712\n",
    );
    detect(&mountinfo, |_| unreachable!("no cgroup2 mount")).expect("fake v1 layout")
}

fn sample_resources() -> Resources {
    Resources {
        cpu_quota: Some(quota_from_cpus(0.5, 4).expect("valid")),
        cpu_shares: Some(512),
        memory_bytes: Some(64 << 20),
        swap: SwapPolicy::NoSwap,
        pids_max: Some(32),
        devices: Vec::new(),
        ..Resources::default()
    }
}

#[test]
fn v2_fake_tree_full_lifecycle() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu memory pids\n", "cpu memory pids\n");
    write(
        &root.join("memory.swap.max"),
        "unused: the root has no memory files\n",
    );
    assert!(!swap_accounting(&layout), "only children of the root count");

    let name = unique_name("v2");
    let mut cgroup =
        Cgroup::create(&layout, &at(&name), &["cpu", "memory", "pids"]).expect("create");
    let dir = root.join(PARENT).join(&name);
    assert_eq!(cgroup.name(), name);
    assert_eq!(cgroup.dirs().len(), 1, "one dir in the unified tree");
    assert_eq!(cgroup.dirs()[0].path, dir);
    assert_eq!(cgroup.dirs()[0].version, CgroupVersion::V2);
    assert_eq!(
        read(&root.join(PARENT).join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(
        read(&root.join("cgroup.subtree_control")),
        "cpu memory pids\n",
        "root untouched"
    );

    write(&root.join(PARENT).join("memory.swap.max"), "max\n");
    assert!(swap_accounting(&layout));
    let settings = plan(&sample_resources(), &layout, true).expect("plan");
    cgroup.apply(&settings).expect("apply");
    for (file, value) in [
        ("cpu.max", "50000 100000"),
        ("cpu.weight", "59"),
        ("memory.max", "67108864"),
        ("memory.swap.max", "0"),
        ("pids.max", "32"),
    ] {
        assert_eq!(read(&dir.join(file)), value, "{file}");
    }

    cgroup.add_pid(Pid::from_raw(4242)).expect("add_pid");
    assert_eq!(read(&dir.join("cgroup.procs")), "4242");

    write(
        &dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 250\n",
    );
    write(
        &dir.join("memory.events"),
        "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
    );
    write(&dir.join("memory.peak"), "67100000\n");
    write(&dir.join("pids.current"), "3\n");
    write(&dir.join("pids.events"), "max 12\n");
    let expected = CpuStats {
        usage_ns: 1_500_000,
        nr_periods: 10,
        nr_throttled: 4,
        throttled_ns: 250_000,
    };
    assert_eq!(cgroup.cpu_stats().expect("cpu stats"), expected);
    let memory = MemoryEvents {
        oom_kill: 1,
        limit_hits: 7,
        peak_bytes: Some(67_100_000),
    };
    assert_eq!(cgroup.memory_events().expect("memory events"), memory);
    assert_eq!(
        cgroup.pids_stats().expect("pids"),
        PidsStats {
            current: 3,
            max_hits: 12
        }
    );
    fs::remove_file(dir.join("memory.peak")).expect("rm");
    assert_eq!(
        cgroup.memory_events().expect("memory events").peak_bytes,
        None
    );

    cgroup.remove().expect("remove");
    assert!(
        !root.join(PARENT).exists(),
        "empty nutshell parent removed too"
    );
    assert!(root.join("cgroup.controllers").exists());
    cgroup.remove().expect("remove is idempotent");
}

#[test]
fn v2_parent_stays_while_a_sibling_uses_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu pids\n", "cpu pids\n");
    let first = Cgroup::create(&layout, &at(&unique_name("sib")), &["pids"]).expect("first");
    let second =
        Cgroup::create(&layout, &at(&unique_name("sib")), &["cpu", "pids"]).expect("second");
    drop(first);
    assert!(second.dirs()[0].path.exists());
    drop(second);
    assert!(
        !root.join(PARENT).exists(),
        "the last one out removes the parent"
    );
}

#[test]
fn v2_refuses_what_the_root_does_not_delegate_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu memory pids\n", "memory\n");
    let err = Cgroup::create(&layout, &at(&unique_name("deleg")), &["memory", "cpu"])
        .expect_err("cpu not delegated");
    assert!(matches!(&err, CgroupError::NotDelegated { controller, .. } if controller == "cpu"));
    let file = root.join("cgroup.subtree_control");
    assert_eq!(
        err.to_string(),
        format!(
            "controller cpu is not enabled in {0}: nutshell never writes to a cgroup it did \
             not create; enable it as root with `echo +cpu > {0}`",
            file.display()
        )
    );
    assert!(!root.join(PARENT).exists());
}

#[test]
fn missing_controller_is_an_error_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu memory\n", "cpu memory\n");
    let err = Cgroup::create(&layout, &at(&unique_name("missing")), &["cpu", "pids"])
        .expect_err("no pids");
    assert_eq!(
        err.to_string(),
        "controller pids is not available on this host (cgroup v2 (unified))"
    );
    assert!(!root.join(PARENT).exists());
}

#[test]
fn bad_names_are_rejected_before_anything_is_made() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu\n", "cpu\n");
    for name in [
        "",
        "nutshell",
        "nutshell/..",
        "../escape",
        "other/c1",
        "nutshell//c1",
    ] {
        let err = Cgroup::create(&layout, name, &["cpu"]).expect_err(name);
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{name:?}: {err}"
        );
    }
    assert!(!root.join(PARENT).exists());
}

#[test]
fn an_existing_cgroup_is_not_adopted() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu\n", "cpu\n");
    let name = unique_name("twice");
    let first = Cgroup::create(&layout, &at(&name), &["cpu"]).expect("first");
    let err = Cgroup::create(&layout, &at(&name), &["cpu"]).expect_err("second");
    assert!(matches!(err, CgroupError::AlreadyExists { .. }), "{err}");
    assert!(
        first.dirs()[0].path.exists(),
        "the failed create left the first alone"
    );
}

#[test]
fn v2_nested_path_enables_the_controllers_at_every_level() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu memory pids\n", "cpu memory pids\n");
    let name = unique_name("nested");
    let path = format!("{PARENT}/nodes/node-2/{name}");
    let mut cgroup = Cgroup::create(&layout, &path, &["cpu", "pids"]).expect("create");
    assert_eq!(cgroup.name(), name);
    assert_eq!(cgroup.dirs()[0].path, root.join(&path));
    for level in ["nutshell", "nutshell/nodes", "nutshell/nodes/node-2"] {
        assert_eq!(
            read(&root.join(level).join("cgroup.subtree_control")),
            "+cpu +pids",
            "{level}"
        );
    }
    cgroup.remove().expect("remove");
    assert!(!root.join(PARENT).exists(), "every empty level is removed");
}

#[test]
fn v1_nested_path_copies_the_cpuset_down_every_level_and_keeps_a_busy_level() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_owned();
    let layout = fake_v1(&root);
    let first = format!("{PARENT}/nodes/node-1/{}", unique_name("a"));
    let second = format!("{PARENT}/nodes/node-2/{}", unique_name("b"));
    let mut a = Cgroup::create(&layout, &first, &["cpuset", "pids"]).expect("first");
    let b = Cgroup::create(&layout, &second, &["cpuset", "pids"]).expect("second");
    for level in [
        "nutshell",
        "nutshell/nodes",
        "nutshell/nodes/node-1",
        first.as_str(),
    ] {
        assert_eq!(
            read(&root.join("cpuset").join(level).join("cpuset.cpus")),
            "0-3"
        );
    }
    a.remove().expect("remove");
    // node-1 went with its last container; nodes/ stays for node-2.
    assert!(!root.join("pids/nutshell/nodes/node-1").exists());
    assert!(root.join("pids/nutshell/nodes/node-2").exists());
    drop(b);
    assert!(!root.join("pids").join(PARENT).exists());
}

#[test]
fn v1_fake_tree_full_lifecycle() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_owned();
    let layout = fake_v1(&root);
    assert!(swap_accounting(&layout));
    let name = unique_name("v1");
    let controllers = ["cpu", "cpuacct", "cpuset", "memory", "pids"];
    let mut cgroup = Cgroup::create(&layout, &at(&name), &controllers).expect("create");
    let dir = |c: &str| root.join(c).join(PARENT).join(&name);
    let paths: Vec<PathBuf> = cgroup.dirs().iter().map(|d| d.path.clone()).collect();
    assert_eq!(paths, controllers.map(dir), "one dir per v1 hierarchy");

    // cpuset: the root's CPUs and nodes, copied into nutshell/ and then into the cgroup.
    for path in [root.join("cpuset").join(PARENT), dir("cpuset")] {
        assert_eq!(read(&path.join("cpuset.cpus")), "0-3");
        assert_eq!(read(&path.join("cpuset.mems")), "0");
    }

    cgroup
        .apply(&plan(&sample_resources(), &layout, true).expect("plan"))
        .expect("apply");
    for (controller, file, value) in [
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.shares", "512"),
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.memsw.limit_in_bytes", "67108864"),
        ("pids", "pids.max", "32"),
    ] {
        assert_eq!(read(&dir(controller).join(file)), value, "{file}");
    }
    cgroup.add_pid(Pid::from_raw(4242)).expect("add_pid");
    for controller in controllers {
        assert_eq!(
            read(&dir(controller).join("cgroup.procs")),
            "4242",
            "{controller}"
        );
    }

    write(&dir("cpuacct").join("cpuacct.usage"), "123456789\n");
    write(
        &dir("cpu").join("cpu.stat"),
        "nr_periods 20\nnr_throttled 5\nthrottled_time 777\n",
    );
    write(
        &dir("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    write(&dir("memory").join("memory.failcnt"), "9\n");
    write(
        &dir("memory").join("memory.max_usage_in_bytes"),
        "67108864\n",
    );
    write(&dir("pids").join("pids.current"), "1\n");
    write(&dir("pids").join("pids.events"), "max 0\n");
    let cpu = CpuStats {
        usage_ns: 123_456_789,
        nr_periods: 20,
        nr_throttled: 5,
        throttled_ns: 777,
    };
    assert_eq!(cgroup.cpu_stats().expect("cpu stats"), cpu);
    let memory = MemoryEvents {
        oom_kill: 2,
        limit_hits: 9,
        peak_bytes: Some(64 << 20),
    };
    assert_eq!(cgroup.memory_events().expect("memory"), memory);
    // With no swap allowed, the memory+swap limit is the one hit.
    write(
        &dir("memory").join("memory.memsw.failcnt"),
        "14
",
    );
    assert_eq!(cgroup.memory_events().expect("memory").limit_hits, 14);
    assert_eq!(
        cgroup.pids_stats().expect("pids"),
        PidsStats {
            current: 1,
            max_hits: 0
        }
    );

    cgroup.remove().expect("remove");
    for controller in controllers {
        assert!(!root.join(controller).join(PARENT).exists(), "{controller}");
    }
    assert_eq!(
        read(&root.join("cpuset/cpuset.cpus")),
        "0-3\n",
        "root untouched"
    );
}

#[test]
fn counters_of_a_controller_the_cgroup_lacks_are_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("unified");
    let layout = fake_v2(&root, "cpu pids\n", "cpu pids\n");
    let cgroup = Cgroup::create(&layout, &at(&unique_name("lacks")), &["pids"]).expect("create");
    let err = cgroup.memory_events().expect_err("no memory dir");
    assert!(
        err.to_string()
            .contains("no cgroup v2 directory for controller memory"),
        "{err}"
    );
}

/// Spins on the CPU for `duration`, touching nothing but the clock: safe in a child
/// forked from the multi-threaded test harness.
fn busy_child(duration: Duration) -> ! {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
    // SAFETY: _exit skips the harness's atexit handlers and buffers, as a fork child must.
    unsafe { libc::_exit(0) }
}

/// Every directory named `name` under any `<mount>/nutshell/`.
fn leftovers(name: &str) -> Vec<PathBuf> {
    leftovers_at(&format!("{PARENT}/{name}"))
}

/// Every directory at `<mount>/<path>`, for each hierarchy: under `/sys/fs/cgroup` (a
/// pure v2 host's one tree) and one level below it (v1 and hybrid hierarchies).
fn leftovers_at(path: &str) -> Vec<PathBuf> {
    let mut mounts = vec![PathBuf::from("/sys/fs/cgroup")];
    mounts.extend(
        fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path()),
    );
    mounts
        .into_iter()
        .map(|mount| mount.join(path))
        .filter(|dir| dir.exists())
        .collect()
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn real_cgroup_limits_and_counts_a_busy_child() {
    common::require_root();
    let layout = detect_host(Path::new("/proc")).expect("detect host layout");
    let name = unique_name("real");
    let controllers = standard_controllers(&layout);
    let mut cgroup = Cgroup::create(&layout, &at(&name), &controllers).expect("create");
    let resources = Resources {
        cpu_quota: Some(quota_from_cpus(0.2, 1).expect("valid")),
        memory_bytes: Some(64 << 20),
        pids_max: Some(8),
        ..Resources::default()
    };
    let settings = plan(&resources, &layout, swap_accounting(&layout)).expect("plan");
    cgroup.apply(&settings).expect("apply");

    // SAFETY: the child only spins and calls _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => busy_child(Duration::from_millis(600)),
        ForkResult::Parent { child } => child,
    };
    let added = cgroup.add_pid(child);
    let pids = cgroup.pids_stats();
    thread::sleep(Duration::from_millis(400));
    let cpu = cgroup.cpu_stats();
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    added.expect("add_pid");
    assert_eq!(pids.expect("pids stats").current, 1);
    let cpu = cpu.expect("cpu stats");
    assert!(cpu.usage_ns > 0, "{cpu:?}");
    if layout
        .mount_for("cpu")
        .is_some_and(|m| m.version == CgroupVersion::V1)
    {
        assert!(
            cpu.nr_periods > 0 && cpu.nr_throttled > 0,
            "0.2 CPU throttles a spinner: {cpu:?}"
        );
    }
    cgroup.memory_events().expect("memory events");

    cgroup.remove().expect("remove");
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn real_nested_cgroup_is_made_and_removed_level_by_level() {
    common::require_root();
    let layout = detect_host(Path::new("/proc")).expect("detect host layout");
    let name = unique_name("real-nested");
    let node = unique_name("node");
    let path = format!("{PARENT}/nodes/{node}/{name}");
    let controllers = standard_controllers(&layout);
    let mut cgroup = Cgroup::create(&layout, &path, &controllers).expect("create");
    for dir in cgroup.dirs() {
        assert!(dir.path.is_dir(), "{}", dir.path.display());
        assert!(dir.path.ends_with(&path));
    }
    let resources = Resources {
        pids_max: Some(8),
        ..Resources::default()
    };
    let settings = plan(&resources, &layout, swap_accounting(&layout)).expect("plan");
    cgroup.apply(&settings).expect("apply");
    cgroup.remove().expect("remove");
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
    assert_eq!(
        leftovers_at(&format!("{PARENT}/nodes/{node}")),
        Vec::<PathBuf>::new(),
        "the node level is left"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn real_cgroup2_controller_not_delegated_is_refused_cleanly() {
    common::require_root();
    let layout = detect_host(Path::new("/proc")).expect("detect host layout");
    let Some(unified) = layout.v2_mount() else {
        return;
    };
    let delegated = fs::read_to_string(unified.mount_point.join("cgroup.subtree_control"))
        .expect("read root subtree_control");
    let Some(controller) = unified
        .controllers
        .iter()
        .find(|c| !delegated.split_whitespace().any(|d| d == c.as_str()))
    else {
        return; // everything is delegated: nothing to refuse here
    };
    let name = unique_name("deleg");
    let err = Cgroup::create(&layout, &at(&name), &[controller.as_str()]).expect_err("refused");
    assert!(matches!(err, CgroupError::NotDelegated { .. }), "{err}");
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}
