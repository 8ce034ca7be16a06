//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod background;
pub mod cli;
pub mod netns;
pub mod oci;
pub mod registry;

use std::path::Path;

use assert_cmd::Command;

/// A fresh data directory, so each test builds and uses its own images.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nutshell-test-")
        .tempdir()
        .expect("temp data dir")
}

/// A fresh data directory a container's mapped root can walk into (0755): one whose
/// layers it reads through the overlay.
pub fn open_data_dir() -> tempfile::TempDir {
    let data = data_dir();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make the data dir 0755");
    data
}

/// A chapter binary (or `nutshell`) with its data directory set to `data`, and its state
/// directory to `data/state` (see [`state_dir`]).
pub fn binary(path: &str, data: &Path) -> Command {
    let mut command = Command::new(path);
    command
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data));
    command
}

/// The state directory of the containers a test runs with data directory `data`: its
/// own, so that what one test leaves is never swept by another.
pub fn state_dir(data: &Path) -> std::path::PathBuf {
    data.join("state")
}

/// A container name unique to this test run: `t-<test>-<pid>-<n>`.
pub fn unique_name(test: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t-{test}-{}-{n}", std::process::id())
}

/// Nothing a container run with data directory `data` made is left: no state, no
/// container directory, no mount under `data`.
pub fn assert_nothing_left(data: &Path) {
    for dir in [
        state_dir(data),
        data.join("containers"),
        data.join("break-it"),
    ] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let data = data.display().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&data)).collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// The settings every snapshot of a chapter's output uses: the temporary data directory
/// becomes `[DATA]`.
pub fn snapshot_settings(data: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&data.display().to_string()), "[DATA]");
    // Container ids: random ones (12 hex digits, as Docker shows them) and the tests' own.
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[ID]");
    settings.add_filter(r"\bt-[a-z0-9-]+?-\d+-\d+\b", "[ID]");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

/// The host's cgroup layout as snapshot names spell it: `v1`, `v2` or `hybrid`.
pub fn layout_name() -> &'static str {
    let layout =
        nutshell::cgroups::detect_host(Path::new("/proc")).expect("detect the cgroup layout");
    match layout.layout {
        nutshell::cgroups::Layout::V1 => "v1",
        nutshell::cgroups::Layout::V2 => "v2",
        nutshell::cgroups::Layout::Hybrid => "hybrid",
    }
}

/// Compare `text` with the snapshot `<name>_<layout>`, under `settings`.
///
/// Output that names cgroup files or mounts differs by layout, so each layout has its
/// own snapshot: the host's (hybrid) recorded on the development machines, pure v2's and
/// pure v1's in the guests of `just test-layouts` (`tests/layouts/lane --record`).
pub fn assert_snapshot_for_layout(mut settings: insta::Settings, name: &str, text: &str) {
    let snapshot = format!("{name}_{}", layout_name());
    // Beside every other snapshot, not in tests/common/snapshots beside this file.
    settings.set_snapshot_path("../snapshots");
    settings.bind(|| insta::assert_snapshot!(snapshot, text));
}

/// Fail unless running as root: privileged tests are ignored by default and run by
/// `just test-all`, which checks this too; this catches `--include-ignored` as a user.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run `just test-all`"
    );
}

/// Stdout of a finished command, as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Run `binary` as `nobody` (setpriv is util-linux, on every distribution) and return its
/// stderr after checking it exited 1: every chapter refuses a normal user up front.
pub fn stderr_as_nobody(binary: &str, data: &Path) -> String {
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", binary])
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .output()
        .expect("run setpriv");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stderr(&output)
}

/// Check that `binary --help` succeeds and mentions each of `needles`.
pub fn assert_help_mentions(binary: &str, needles: &[&str]) {
    let output = std::process::Command::new(binary)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    for needle in needles {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

/// Check that `binary --rootfs /nonexistent/rootfs` fails with exactly one line naming the
/// path, exits 1, and builds no image.
pub fn assert_missing_rootfs_refused(binary_path: &str, name: &str) {
    let data = data_dir();
    let output = binary(binary_path, data.path())
        .args(["--rootfs", "/nonexistent/rootfs"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "{name}: error: rootfs /nonexistent/rootfs cannot be used: No such file or directory (os error 2)\n"
        )
    );
    assert!(!data.path().join("images").exists());
}

/// A data directory `nobody` can build its image in.
pub fn data_dir_for_nobody() -> tempfile::TempDir {
    let data = data_dir();
    std::os::unix::fs::chown(data.path(), Some(65534), Some(65534))
        .expect("chown the data dir to nobody");
    data
}

/// Run `binary` as `nobody` (uid and gid 65534, no supplementary groups) with `args`,
/// in a private mount namespace whose /etc/subuid and /etc/subgid are `subuid` and
/// `subgid`: what newuidmap reads, without touching the host's files.
pub fn run_as_nobody(
    binary: &str,
    data: &Path,
    subuid: &str,
    subgid: &str,
    args: &[&str],
) -> std::process::Output {
    for file in ["/etc/subuid", "/etc/subgid"] {
        assert!(
            Path::new(file).exists(),
            "{file} is missing: `just setup` installs uidmap, which provides it"
        );
    }
    let files = tempfile::tempdir().expect("temp dir");
    let (uid_file, gid_file) = (files.path().join("subuid"), files.path().join("subgid"));
    std::fs::write(&uid_file, subuid).expect("write subuid");
    std::fs::write(&gid_file, subgid).expect("write subgid");
    let script = r#"mount --make-rprivate / && mount --bind "$1" /etc/subuid && mount --bind "$2" /etc/subgid && shift 2 && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@""#;
    std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", script, "sh"])
        .arg(&uid_file)
        .arg(&gid_file)
        .arg(binary)
        .args(args)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .current_dir("/")
        .output()
        .expect("run the binary as nobody")
}

/// Run `binary` with `args` and `--name NAME` (a fresh [`unique_name`]) to the end, with
/// its data directory set to `data`; return its output and the name, which names its
/// cgroup, state and container directory.
pub fn run_named(
    binary: &str,
    data: &Path,
    test: &str,
    args: &[&str],
) -> (std::process::Output, String) {
    let name = unique_name(test);
    // --name goes before a trailing `-- CMD`.
    let (flags, command) = match args.iter().position(|a| *a == "--") {
        Some(at) => args.split_at(at),
        None => (args, &[][..]),
    };
    let output = std::process::Command::new(binary)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .args(flags)
        .args(["--name", &name])
        .args(command)
        .output()
        .expect("run the binary");
    (output, name)
}

/// Every cgroup directory named `name`, in any hierarchy, at any depth below nutshell/.
pub fn cgroups_named(name: &str) -> Vec<String> {
    let output = std::process::Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "6", "-name", name])
        .output()
        .expect("run find");
    stdout(&output).lines().map(str::to_string).collect()
}

/// No cgroup named `name` is left in any hierarchy.
pub fn assert_no_cgroup_left(name: &str) {
    let left = cgroups_named(name);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// The value of extended attribute `name` on `path` itself (a symlink is not followed),
/// if it has one: read here directly, not through the code under test.
pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let c_name = std::ffi::CString::new(name).expect("name");
    let mut value = [0u8; 64];
    // SAFETY: NUL-terminated strings and a buffer passed with its length.
    let len = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    usize::try_from(len).ok().map(|len| value[..len].to_vec())
}

/// Wait for `child` (started with piped or null output) for at most `timeout`, then
/// collect its output; stop it (SIGTERM first, so that a chapter binary tears its
/// container down) and fail if it takes longer.
pub fn output_within(
    child: std::process::Child,
    timeout: std::time::Duration,
) -> std::process::Output {
    background::Background::new(child)
        .wait(timeout)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Run `binary` with `args` and data directory `data`, its stdout a pipe whose reader has
/// already gone (as `| head` leaves it), to the end; return its exit code and stderr.
pub fn run_into_a_closed_pipe(binary: &str, data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = std::process::Command::new(binary)
        .args(args)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let output = output_within(child, std::time::Duration::from_secs(60));
    (output.status.code(), stderr(&output))
}
