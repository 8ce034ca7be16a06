//! Chapter 11: containerd drives nutshell as its OCI runtime. Debian's containerd and
//! `ctr`, with the runc shim (`io.containerd.runc.v2`) pointed at nutshell as its
//! binary (`ctr run --runc-binary`): a command's output and exit code, and a detached
//! task with exec, kill and delete.
//!
//! containerd keeps some state at fixed paths under `/run/containerd` (the shims'
//! sockets), so the whole run happens in a mount and PID namespace of the test's own,
//! with a tmpfs over `/run`: when the script ends, every process it started (containerd,
//! its shims, the containers) ends with its PID namespace, and every mount with its
//! mount namespace.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cli::{NUTSHELL, save_image};
use common::{data_dir, require_root};

/// The script run in the namespaces: containerd on a socket in `$DIR`, then the
/// client's calls. Every wait has a timeout; each result is one `name: value` line.
const SCRIPT: &str = r#"
set -u
mount -t tmpfs tmpfs /run
cat > "$DIR/config.toml" <<EOF
version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$DIR/containerd.sock"
[ttrpc]
  address = "$DIR/containerd.sock.ttrpc"
EOF
containerd --config "$DIR/config.toml" > "$DIR/containerd.log" 2>&1 &
for _ in $(seq 200); do [ -S "$DIR/containerd.sock" ] && break; sleep 0.05; done
CTR=$(command -v ctr)
ctr() { timeout 60 "$CTR" -a "$DIR/containerd.sock" "$@"; }
run() { ctr run --snapshotter native --runc-binary "$NUTSHELL" --runc-root "$DIR/runc" --fifo-dir "$DIR/fifo" "$@"; }
ctr images import --snapshotter native "$DIR/default.tar" > /dev/null || echo "import: failed"
echo "echo: $(run --rm default:latest c1 echo hello from containerd)"
run --rm default:latest c2 sh -c 'exit 4'
echo "exit code: $?"
run -d default:latest c3 sleep 300 > /dev/null
echo "task: $(ctr task ls | awk '$1 == "c3" { print $3 }')"
echo "exec: $(ctr task exec --exec-id e1 c3 sh -c 'echo inside; exit 3')"
ctr task exec --exec-id e2 c3 sh -c 'exit 3'
echo "exec exit code: $?"
ctr task kill -s KILL c3
for _ in $(seq 200); do ctr task ls | grep -q '^c3 .*STOPPED' && break; sleep 0.05; done
echo "killed: $(ctr task ls | awk '$1 == "c3" { print $3 }')"
ctr task delete c3 > /dev/null && ctr container delete c3 && echo "deleted: yes"
echo "left: $(ctr container ls -q | wc -l) containers, $(ls "$DIR/runc/default" 2>/dev/null | wc -l) runtime states"
ctr images rm default:latest > /dev/null
"#;

#[test]
#[ignore = "needs root: run `just test-all`"]
fn containerd_runs_tasks_through_nutshell_with_the_runc_shim() {
    require_root();
    let data = data_dir();
    common::cli::nutshell(data.path(), &["image", "default"]);
    save_image(data.path(), "default", &data.path().join("default.tar"));
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .args(["bash", "-c", SCRIPT])
        .env("DIR", data.path())
        .env("NUTSHELL", NUTSHELL)
        .env("NUTSHELL_DATA", data.path().join("nutshell"));
    let output = common::oci::output_with_files(
        command,
        Duration::from_secs(300),
        "containerd and ctr, in namespaces of their own",
    );
    let (status, stdout, stderr) = (
        output.status,
        common::stdout(&output),
        common::stderr(&output),
    );
    let log = std::fs::read_to_string(data.path().join("containerd.log")).unwrap_or_default();
    let context = format!("{stdout}\n--- stderr\n{stderr}\n--- containerd\n{log}");
    assert!(status.success(), "{context}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("echo"), "hello from containerd", "{context}");
    assert_eq!(field("exit code"), "4", "{context}");
    assert_eq!(field("task"), "RUNNING", "{context}");
    assert_eq!(field("exec"), "inside", "{context}");
    assert_eq!(field("exec exit code"), "3", "{context}");
    assert_eq!(field("killed"), "STOPPED", "{context}");
    assert_eq!(field("deleted"), "yes", "{context}");
    assert_eq!(field("left"), "0 containers, 0 runtime states", "{context}");
    assert!(!stdout.contains("import: failed"), "{context}");
    // The namespaces are gone with the script; so is everything nutshell made.
    common::assert_nothing_left(&data.path().join("nutshell"));
    assert!(
        common::cgroups_named("c3").is_empty() && common::cgroups_named("c1").is_empty(),
        "no cgroup of the tasks is left"
    );
}
