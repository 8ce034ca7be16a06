//! A container's whole life, whatever happens to its owner: a chapter binary killed with
//! SIGKILL at any moment leaves nothing once the next run or `nutshell cleanup` has
//! passed; twenty first runs at once all succeed and build the default image once.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nutshell::launch::{State, Status};

use common::{
    assert_no_cgroup_left, assert_nothing_left, binary, data_dir, output_within, require_root,
    state_dir, stderr, unique_name,
};

const CH05: &str = env!("CARGO_BIN_EXE_ch05-cgroups");
const CH07: &str = env!("CARGO_BIN_EXE_ch07-overlayfs");
const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");

/// Long enough for a slow machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `binary --name NAME -- sh -c 'sleep 30; : MARKER'` started in the background.
fn start(binary_path: &str, data: &Path, name: &str, marker: &str) -> Child {
    Command::new(binary_path)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .args(["--name", name, "--", "sh", "-c"])
        .arg(format!("sleep 30; : {marker}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the chapter binary")
}

/// The pids of processes whose command line or cgroup names `needle`.
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cgroup = fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) || cgroup.contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Wait until no process names `needle`, for at most `TIMEOUT`; those left, if any.
fn wait_until_gone(needle: &str) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = processes_naming(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kill `binary` with SIGKILL `delay` into a run, then let `nutshell cleanup` pass and
/// check that nothing of the container is left; then a next run succeeds and leaves no
/// half-built image either.
fn killed_at(binary_path: &str, delay: Duration) {
    let data = data_dir();
    let name = unique_name("killed");
    let marker = format!("marker-{name}");
    let mut child = start(binary_path, data.path(), &name, &marker);
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL the chapter binary");
    child.wait().expect("reap it");

    let cleanup = binary(NUTSHELL, data.path())
        .arg("cleanup")
        .timeout(TIMEOUT)
        .output()
        .expect("run nutshell cleanup");
    assert!(cleanup.status.success(), "{delay:?}: {}", stderr(&cleanup));
    assert_eq!(
        wait_until_gone(&marker),
        Vec::<String>::new(),
        "{delay:?}: processes left"
    );
    assert_eq!(
        wait_until_gone(&name),
        Vec::<String>::new(),
        "{delay:?}: processes left"
    );
    assert_no_cgroup_left(&name);
    assert_nothing_left(data.path());

    let next = binary(binary_path, data.path())
        .args(["--", "true"])
        .timeout(TIMEOUT)
        .output()
        .expect("the next run");
    assert!(next.status.success(), "{delay:?}: {}", stderr(&next));
    let partial: Vec<_> = fs::read_dir(data.path().join("images"))
        .expect("images")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .map(|e| e.path())
        .collect();
    assert!(
        partial.is_empty(),
        "{delay:?}: a half-built image is left: {partial:?}"
    );
    assert_nothing_left(data.path());
}

/// The moments the owner is killed at: while the default image is built, while the
/// container is made, while it runs.
const DELAYS_MS: [u64; 4] = [5, 50, 500, 2000];

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_ch07_killed_at_any_moment_leaves_nothing_once_cleanup_has_run() {
    require_root();
    for ms in DELAYS_MS {
        killed_at(CH07, Duration::from_millis(ms));
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_ch05_killed_at_any_moment_leaves_nothing_once_cleanup_has_run() {
    require_root();
    for ms in DELAYS_MS {
        killed_at(CH05, Duration::from_millis(ms));
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_next_run_sweeps_what_a_killed_owner_left() {
    require_root();
    let data = data_dir();
    let name = unique_name("swept");
    let marker = format!("marker-{name}");
    let mut child = start(CH07, data.path(), &name, &marker);
    // Long enough that the container runs, with its cgroup, dirs and state.
    let deadline = Instant::now() + TIMEOUT;
    while !state_dir(data.path())
        .join(&name)
        .join("state.json")
        .exists()
    {
        assert!(Instant::now() < deadline, "the container never got a state");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // No cleanup: the next launch sweeps before it makes anything of its own.
    let next = binary(CH07, data.path())
        .args(["--", "true"])
        .timeout(TIMEOUT)
        .output()
        .expect("the next run");
    assert!(next.status.success(), "{}", stderr(&next));
    assert_eq!(wait_until_gone(&marker), Vec::<String>::new());
    assert_no_cgroup_left(&name);
    assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn cleanup_says_what_a_killed_owner_left_and_removes_it() {
    require_root();
    let data = data_dir();
    let name = unique_name("cleaned");
    let marker = format!("marker-{name}");
    let mut child = start(CH07, data.path(), &name, &marker);
    // Until the container's program runs: then its cgroup, its state and its first
    // process all exist.
    let state = state_dir(data.path()).join(&name).join("state.json");
    let read = || {
        fs::read_to_string(&state)
            .ok()
            .and_then(|text| serde_json::from_str::<State>(&text).ok())
    };
    let deadline = Instant::now() + TIMEOUT;
    let init = loop {
        if let Some(State {
            status: Status::Running,
            init: Some(init),
            ..
        }) = read()
        {
            break init;
        }
        assert!(Instant::now() < deadline, "the container never ran");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL the owner");
    child.wait().expect("reap it");
    // Its first process dies with it (PR_SET_PDEATHSIG), a moment later; what it made
    // stays behind.
    let deadline = Instant::now() + TIMEOUT;
    // Until it is gone, or a zombie its new parent has yet to reap.
    while init.alive() {
        assert!(
            Instant::now() < deadline,
            "the first process outlived its owner"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wait_until_gone(&marker), Vec::<String>::new());
    assert!(state_dir(data.path()).join(&name).exists());
    let cleanup = |data: &Path| {
        let output = binary(NUTSHELL, data)
            .arg("cleanup")
            .timeout(TIMEOUT)
            .output()
            .expect("run nutshell cleanup");
        assert!(output.status.success(), "{}", stderr(&output));
        format!(
            "# nutshell cleanup\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    };
    let text = cleanup(data.path()) + "\n" + &cleanup(data.path());
    assert!(text.contains(&format!("cgroup nutshell/{name}")), "{text}");
    assert_no_cgroup_left(&name);
    assert_nothing_left(data.path());
    let settings = common::snapshot_settings(data.path());
    settings.bind(|| insta::assert_snapshot!("cleanup_after_a_killed_owner", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn twenty_first_runs_at_once_all_succeed_and_build_the_image_once() {
    require_root();
    let data = data_dir();
    let children: Vec<Child> = (0..20)
        .map(|_| {
            Command::new(CH07)
                .env("NUTSHELL_DATA", data.path())
                .env("NUTSHELL_ROOT", state_dir(data.path()))
                .args(["--", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ch07")
        })
        .collect();
    let mut built = 0;
    for child in children {
        let output = output_within(child, TIMEOUT);
        let err = stderr(&output);
        assert!(output.status.success(), "{err}");
        built += err.matches("built the default image").count();
    }
    assert_eq!(built, 1, "the default image was built {built} times");
    let mut images: Vec<String> = fs::read_dir(data.path().join("images"))
        .expect("images")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    images.sort();
    // The default image, and its name in the OCI store (chapter 9).
    assert_eq!(images, [".build.lock", "default", "tags.json"]);
    assert_nothing_left(data.path());
}
