//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use assert_cmd::Command;

/// A fresh data directory, so each test builds and uses its own images.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nutshell-test-")
        .tempdir()
        .expect("temp data dir")
}

/// A chapter binary (or `nutshell`) with its data directory set to `data`.
pub fn binary(path: &str, data: &Path) -> Command {
    let mut command = Command::new(path);
    command.env("NUTSHELL_DATA", data);
    command
}

/// The settings every snapshot of a chapter's output uses: the temporary data directory
/// becomes `[DATA]`.
pub fn snapshot_settings(data: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&data.display().to_string()), "[DATA]");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
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
