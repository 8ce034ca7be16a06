//! Running `nutshell`'s own commands from a test: with the test's data directory, a
//! timeout, and the output checked.

use std::path::Path;
use std::time::Duration;

use super::binary;

/// The `nutshell` binary.
pub const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
/// Long enough for a build with a few RUN steps on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Run `nutshell ARGS` with data dir `data` and the environment `env`: its stdout, or a
/// panic with its stderr.
pub fn nutshell_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = binary(NUTSHELL, data);
    command.envs(env.iter().copied());
    let output = command
        .args(args)
        .timeout(TIMEOUT)
        .output()
        .expect("run nutshell");
    assert!(
        output.status.success(),
        "nutshell {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Run `nutshell ARGS` with data dir `data`: its stdout, or a panic with its stderr.
pub fn nutshell(data: &Path, args: &[&str]) -> String {
    nutshell_with(data, args, &[])
}

/// `nutshell ARGS` that must fail: its stderr.
pub fn nutshell_fails(data: &Path, args: &[&str]) -> String {
    let output = binary(NUTSHELL, data)
        .args(args)
        .timeout(TIMEOUT)
        .output()
        .expect("run nutshell");
    assert!(!output.status.success(), "nutshell {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `nutshell image inspect NAME`, parsed.
pub fn image_json(data: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&nutshell(data, &["image", "inspect", name])).expect("inspect JSON")
}

/// `nutshell image save NAME -o OUT`: a layout directory, or an archive for `*.tar`.
pub fn save_image(data: &Path, name: &str, out: &Path) {
    nutshell(
        data,
        &["image", "save", name, "-o", out.to_str().expect("utf-8")],
    );
}
