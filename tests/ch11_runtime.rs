//! Chapter 11: nutshell as an OCI runtime. A bundle goes through runc's lifecycle —
//! create, start, state, kill, delete — and each step is checked against the runtime
//! spec; bad configs are refused in one line and leave nothing behind.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::oci::{Bundle, Runtime};
use common::{assert_no_cgroup_left, assert_nothing_left, data_dir, require_root};
use serde_json::Value;

/// No container state, directory, mount or cgroup of `id` is left.
fn assert_gone(data: &std::path::Path, id: &str) {
    assert_nothing_left(data);
    assert_no_cgroup_left(id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn create_start_state_kill_delete_follow_the_lifecycle() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["sleep", "30"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("life");
    let pid_file = data.path().join("pid");
    nutshell.ok(&[
        "create",
        "--bundle",
        bundle.path(),
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ]);
    let state = nutshell.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["ociVersion"], "1.0.2");
    assert_eq!(state["bundle"], bundle.path());
    let pid = state["pid"].as_i64().expect("pid");
    let written: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .parse()
        .expect("a number");
    assert_eq!(pid, written, "the pid file names the container's process");
    // Created: the process waits in nutshell-init, before its program's exec.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(
        exe.to_string_lossy().contains("memfd:"),
        "before start it runs the sealed copy, not the program: {}",
        exe.display()
    );
    nutshell.ok(&["start", &id]);
    assert_eq!(nutshell.status(&id), "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(cmdline, b"sleep\x0030\x00", "start exec'd the program");
    // The same list the state shows.
    let list: Value =
        serde_json::from_str(&nutshell.ok(&["list", "--format", "json"])).expect("list JSON");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    let refused = nutshell.call(&["delete", &id]);
    assert!(
        !refused.status.success(),
        "a running container is not deleted"
    );
    nutshell.ok(&["kill", &id, "KILL"]);
    nutshell.wait_for_status(&id, "stopped");
    assert_eq!(nutshell.state(&id)["pid"], 0);
    nutshell.ok(&["delete", &id]);
    assert!(!nutshell.call(&["state", &id]).status.success());
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_missing_program_fails_create_in_one_line_and_leaves_nothing() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["/no/such/program"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("missing");
    let output = nutshell.call(&["create", "--bundle", bundle.path(), &id]);
    assert_eq!(output.status.code(), Some(127), "as a shell exits");
    let stderr = common::stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("/no/such/program"), "{stderr}");
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn run_waits_and_returns_the_programs_exit_status() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["sh", "-c", "exit 3"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("run");
    let output = nutshell.call(&["run", "--bundle", bundle.path(), &id]);
    assert_eq!(output.status.code(), Some(3));
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn start_twice_and_signals_to_a_stopped_container_are_refused() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["true"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("twice");
    nutshell.create(&bundle, &id);
    nutshell.ok(&["start", &id]);
    nutshell.wait_for_status(&id, "stopped");
    let again = nutshell.call(&["start", &id]);
    assert!(!again.status.success());
    assert!(
        common::stderr(&again).contains("Stopped"),
        "{}",
        common::stderr(&again)
    );
    assert!(!nutshell.call(&["kill", &id, "TERM"]).status.success());
    nutshell.ok(&["delete", &id]);
    // Deleting what is gone: an error, unless forced.
    assert!(!nutshell.call(&["delete", &id]).status.success());
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_created_container_is_deleted_without_force() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["sleep", "30"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("created");
    nutshell.create(&bundle, &id);
    // As runc: nothing could ever start it again, so delete ends its waiting process.
    nutshell.ok(&["delete", &id]);
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn kill_names_signals_by_name_or_number_and_all_reaches_every_process() {
    require_root();
    let data = data_dir();
    // The shell ignores TERM; its child sleeps and does not.
    let bundle = Bundle::new(
        data.path(),
        "bundle",
        &["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"],
    );
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("kill");
    nutshell.create(&bundle, &id);
    nutshell.ok(&["start", &id]);
    std::thread::sleep(Duration::from_millis(300));
    nutshell.ok(&["kill", &id, "15"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(nutshell.status(&id), "running", "the shell ignores TERM");
    assert!(!nutshell.call(&["kill", &id, "NOSUCH"]).status.success());
    nutshell.ok(&["kill", "--all", &id, "SIGKILL"]);
    nutshell.wait_for_status(&id, "stopped");
    nutshell.ok(&["delete", &id]);
    assert_gone(data.path(), &id);
}

// ANCHOR: console_test
/// Receive one fd over `listener` (SCM_RIGHTS), with the message that came with it.
fn receive_fd(listener: &UnixListener) -> (String, OwnedFd) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    listener.set_nonblocking(false).expect("blocking");
    let (stream, _) = listener.accept().expect("accept");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buffer = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let fd = message
        .cmsgs()
        .expect("cmsgs")
        .find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("an fd came with the message");
    let len = message.bytes;
    // SAFETY: the fd just received belongs to this process alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    (String::from_utf8_lossy(&buffer[..len]).into_owned(), fd)
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_terminal_goes_to_the_console_socket_and_is_the_containers_own() {
    require_root();
    let data = data_dir();
    let mut bundle = Bundle::new(data.path(), "bundle", &["sh", "-c", "tty; stty size"]);
    bundle.config["process"]["terminal"] = Value::Bool(true);
    bundle.config["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    bundle.write();
    let socket = data.path().join("console.sock");
    let listener = UnixListener::bind(&socket).expect("listen");
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("tty");
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    nutshell.ok(&[
        "create",
        "--bundle",
        bundle.path(),
        "--console-socket",
        socket.to_str().expect("utf-8"),
        &id,
    ]);
    let (name, master) = receiver.join().expect("receiver");
    assert_eq!(name, "/dev/ptmx", "the message runc's recvtty expects");
    nutshell.ok(&["start", &id]);
    nutshell.wait_for_status(&id, "stopped");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 256];
    // The slave end is closed: the master reads what was written, then EIO.
    while let Ok(n) = nix::unistd::read(&master, &mut chunk) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    // A pty of the container's own devpts: numbered from 0, and with the size asked for.
    assert_eq!(text, "/dev/pts/0\r\n30 100\r\n");
    nutshell.ok(&["delete", &id]);
    assert_gone(data.path(), &id);
}
// ANCHOR_END: console_test

/// `create` of `config` (edited by `edit`) fails: its one-line error.
fn refused(edit: impl FnOnce(&mut Value)) -> String {
    let data = data_dir();
    let mut bundle = Bundle::new(data.path(), "bundle", &["true"]);
    edit(&mut bundle.config);
    bundle.write();
    let nutshell = Runtime::nutshell(data.path());
    let output = nutshell.call(&["create", "--bundle", bundle.path(), "bad"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = common::stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_nothing_left(data.path());
    stderr
}

/// A change to a config.
type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn configs_nutshell_cannot_honour_are_refused_in_one_line() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "process.apparmorProfile",
            Box::new(|c| c["process"]["apparmorProfile"] = "docker-default".into()),
        ),
        (
            "process.selinuxLabel",
            Box::new(|c| c["process"]["selinuxLabel"] = "system_u:system_r:container_t".into()),
        ),
        (
            "option nosymfollow",
            Box::new(|c| c["mounts"][0]["options"] = serde_json::json!(["nosymfollow"])),
        ),
        (
            "linux.cgroupsPath",
            Box::new(|c| c["linux"]["cgroupsPath"] = "system.slice:nutshell:x".into()),
        ),
        (
            "linux.resources.blockIO.weightDevice",
            Box::new(|c| {
                c["linux"]["resources"]["blockIO"] =
                    serde_json::json!({"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]})
            }),
        ),
        (
            "mounts[/mnt].type",
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .expect("mounts")
                    .push(serde_json::json!({"destination": "/mnt", "type": "9p", "source": "x"}))
            }),
        ),
        (
            "linux.personality",
            Box::new(|c| c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"})),
        ),
        (
            "process.args",
            Box::new(|c| c["process"]["args"] = serde_json::json!([])),
        ),
        (
            "root.path",
            Box::new(|c| c["root"]["path"] = "no-such-rootfs".into()),
        ),
        (
            "process.oomScoreAdj",
            Box::new(|c| c["process"]["oomScoreAdj"] = 5000.into()),
        ),
        (
            "needs a new uts namespace",
            Box::new(|c| {
                let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
                namespaces.retain(|ns| ns["type"] != "uts");
            }),
        ),
    ];
    for (expected, edit) in cases {
        let error = refused(edit);
        assert!(error.contains(expected), "{expected:?} not in: {error}");
    }
}

#[test]
fn a_malformed_config_and_a_missing_bundle_are_refused() {
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["true"]);
    std::fs::write(bundle.dir.join("config.json"), "{ not json").expect("write");
    let nutshell = Runtime::nutshell(data.path());
    let output = nutshell.call(&["create", "--bundle", bundle.path(), "bad"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(common::stderr(&output).contains("config.json"));
    let output = nutshell.call(&["create", "--bundle", "/no/such/bundle", "bad"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(common::stderr(&output).contains("/no/such/bundle"));
    let output = nutshell.call(&["state", "no-such-container"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(common::stderr(&output).contains("does not exist"));
    let output = nutshell.call(&["--systemd-cgroup", "create", "--bundle", bundle.path(), "x"]);
    assert!(common::stderr(&output).contains("--systemd-cgroup"));
    assert_nothing_left(data.path());
}

#[test]
fn errors_also_go_to_the_log_file_in_runcs_json_format() {
    let data = data_dir();
    let log = data.path().join("log.json");
    let nutshell = Runtime::nutshell(data.path());
    let output = nutshell.call(&[
        "--log",
        log.to_str().expect("utf-8"),
        "--log-format",
        "json",
        "state",
        "nothing-here",
    ]);
    assert!(!output.status.success());
    let text = std::fs::read_to_string(&log).expect("the log was written");
    // podman reads the whole file as one JSON object and shows its msg.
    let entry: Value = serde_json::from_str(text.trim()).expect("one JSON object");
    assert_eq!(entry["level"], "error");
    assert!(
        entry["msg"]
            .as_str()
            .expect("msg")
            .contains("does not exist")
    );
    assert!(entry["time"].as_str().is_some());
}

#[test]
fn spec_writes_a_config_that_nutshell_maps_and_features_says_what_it_does() {
    let data = data_dir();
    let nutshell = Runtime::nutshell(data.path());
    let dir = data.path().join("specs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    nutshell.ok(&["spec", "--bundle", dir.to_str().expect("utf-8")]);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json")).expect("config.json"),
    )
    .expect("JSON");
    assert_eq!(config["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(config["root"]["path"], "rootfs");
    // A second spec would overwrite it: refused.
    assert!(
        !nutshell
            .call(&["spec", "--bundle", dir.to_str().expect("utf-8")])
            .status
            .success()
    );
    let rootless = data.path().join("rootless");
    std::fs::create_dir_all(&rootless).expect("mkdir");
    nutshell.ok(&[
        "spec",
        "--rootless",
        "--bundle",
        rootless.to_str().expect("utf-8"),
    ]);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(rootless.join("config.json")).expect("config.json"),
    )
    .expect("JSON");
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|ns| ns["type"].as_str())
        .collect();
    assert!(namespaces.contains(&"user"), "{namespaces:?}");
    assert!(config["linux"]["uidMappings"].is_array());
    let features: Value = serde_json::from_str(&nutshell.ok(&["features"])).expect("JSON");
    assert_eq!(features["ociVersionMax"], "1.0.2");
    assert_eq!(features["linux"]["cgroup"]["systemd"], false);
    assert!(
        features["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .contains(&Value::from("time"))
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_seccomp_profile_filters_system_calls_by_name_and_argument() {
    require_root();
    let data = data_dir();
    let script = "touch f; mkdir d; echo mkdir=$?; chmod 755 f; echo chmod755=$?; \
                  chmod 777 f; echo chmod777=$?; grep Seccomp: /proc/self/status";
    let mut bundle = Bundle::new(data.path(), "bundle", &["sh", "-c", script]);
    bundle.config["root"]["readonly"] = Value::Bool(false);
    bundle.config["process"]["cwd"] = "/tmp".into();
    bundle.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    bundle.write();
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("seccomp");
    let out = data.path().join("out");
    let output = std::process::Command::new(&nutshell.binary)
        .env("NUTSHELL_DATA", data.path())
        .args(["--root", nutshell.root.to_str().expect("utf-8")])
        .args(["run", "--bundle", bundle.path(), &id])
        .stdout(std::fs::File::create(&out).expect("out file"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let output = common::output_within(output, Duration::from_secs(60));
    assert!(output.status.success(), "{}", common::stderr(&output));
    let text = std::fs::read_to_string(&out).expect("output");
    assert!(text.contains("mkdir=1"), "mkdir is denied: {text}");
    assert!(text.contains("chmod755=0"), "mode 755 is allowed: {text}");
    assert!(text.contains("chmod777=1"), "mode 777 is denied: {text}");
    assert!(text.contains("Seccomp:\t2"), "in filter mode: {text}");
    assert_gone(data.path(), &id);
}

/// The value of `file` in container `id`'s cgroup (`nutshell/<id>`), for `controller`.
fn cgroup_file(id: &str, controller: &str, file: &str) -> String {
    let layout =
        nutshell::cgroups::detect_host(std::path::Path::new("/proc")).expect("cgroup layout");
    let mount = layout.mount_for(controller).expect("the controller");
    let path = mount.mount_point.join("nutshell").join(id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn pause_freezes_the_container_and_resume_thaws_it() {
    require_root();
    let data = data_dir();
    // It counts, a line every 20 ms, into a file the test reads.
    let mut bundle = Bundle::new(
        data.path(),
        "bundle",
        &["sh", "-c", "while :; do echo . >> /ticks; sleep 0.02; done"],
    );
    bundle.config["root"]["readonly"] = Value::Bool(false);
    bundle.write();
    let ticks = bundle.dir.join("rootfs/ticks");
    let count = || std::fs::read_to_string(&ticks).map_or(0, |t| t.lines().count());
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("pause");
    nutshell.create(&bundle, &id);
    assert!(
        !nutshell.call(&["pause", &id]).status.success(),
        "a created container is not paused"
    );
    nutshell.ok(&["start", &id]);
    let wait_for_ticks = |more: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let start = count();
        while count() < start + more {
            assert!(std::time::Instant::now() < deadline, "it does not count");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_ticks(3);
    nutshell.ok(&["pause", &id]);
    assert_eq!(nutshell.status(&id), "paused");
    let frozen = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen, "a frozen container does not run");
    assert!(
        !nutshell.call(&["pause", &id]).status.success(),
        "pausing twice is refused"
    );
    nutshell.ok(&["resume", &id]);
    assert_eq!(nutshell.status(&id), "running");
    wait_for_ticks(3);
    // A paused container is still deleted by force: thawed, then killed.
    nutshell.ok(&["pause", &id]);
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn update_changes_a_running_containers_limits() {
    require_root();
    let data = data_dir();
    let mut bundle = Bundle::new(data.path(), "bundle", &["sleep", "30"]);
    bundle.config["linux"]["resources"] = serde_json::json!({
        "memory": {"limit": 134217728}, "pids": {"limit": 100},
    });
    bundle.write();
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("update");
    nutshell.create(&bundle, &id);
    nutshell.ok(&["start", &id]);
    let memory = if common::oci::on_v2("memory") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(cgroup_file(&id, "memory", memory), "134217728");
    nutshell.ok(&["update", "--memory", "64m", "--pids-limit", "20", &id]);
    assert_eq!(cgroup_file(&id, "memory", memory), "67108864");
    assert_eq!(cgroup_file(&id, "pids", "pids.max"), "20");
    // As podman calls it: an OCI linux.resources object in a file. Raising memory
    // above the old memory+swap limit takes the two in the right order on v1.
    let resources = data.path().join("resources.json");
    std::fs::write(
        &resources,
        r#"{"memory": {"limit": 268435456, "swap": 268435456}, "cpu": {"quota": 20000, "period": 100000}}"#,
    )
    .expect("write resources");
    nutshell.ok(&[
        "update",
        "--resources",
        resources.to_str().expect("utf-8"),
        &id,
    ]);
    assert_eq!(cgroup_file(&id, "memory", memory), "268435456");
    if common::oci::on_v2("cpu") {
        assert_eq!(cgroup_file(&id, "cpu", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(cgroup_file(&id, "cpu", "cpu.cfs_quota_us"), "20000");
    }
    let refused = nutshell.call(&["update", "--memory", "1k", &id]);
    assert!(
        !refused.status.success(),
        "a limit no container can run under"
    );
    assert_eq!(common::stderr(&refused).lines().count(), 1);
    assert_eq!(cgroup_file(&id, "memory", memory), "268435456", "unchanged");
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn ps_lists_the_containers_processes() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(
        data.path(),
        "bundle",
        &["sh", "-c", "sleep 30 & sleep 31 & wait"],
    );
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("ps");
    nutshell.create(&bundle, &id);
    nutshell.ok(&["start", &id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let pids: Vec<i64> =
            serde_json::from_str(&nutshell.ok(&["ps", "--format", "json", &id])).expect("JSON");
        if pids.len() == 3 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), 3, "the shell and its two sleeps: {pids:?}");
    let first = nutshell.state(&id)["pid"].as_i64().expect("pid");
    assert!(pids.contains(&first));
    let table = nutshell.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().expect("a header").contains("PID"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows.iter().any(|r| r.contains("sleep 31")), "{table}");
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
}

// ANCHOR: cve_2019_5736_test
#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_container_cannot_overwrite_the_runtime_binary_cve_2019_5736() {
    require_root();
    let data = data_dir();
    let mut bundle = Bundle::new(data.path(), "bundle", &["sleep", "30"]);
    // Root in the container, with a writable root, tries every process that runs
    // nutshell: its /proc/PID/exe, opened for writing, would be the host's binary.
    let attack = "for p in /proc/[0-9]*; do \
                    exe=$(readlink $p/exe 2>/dev/null) || continue; \
                    case \"$exe\" in *nutshell*) \
                      if printf x 2>/dev/null >> $p/exe; then echo \"overwrote $exe\"; \
                      else echo \"refused $exe\"; fi;; esac; \
                  done";
    bundle.config["root"]["readonly"] = Value::Bool(false);
    bundle.write();
    let binary = std::fs::read(common::cli::NUTSHELL).expect("read nutshell");
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("cve");
    // Created, not started: the container's PID 1 is nutshell-init at its gate, and an
    // exec runs nutshell-init too.
    nutshell.create(&bundle, &id);
    let out = nutshell.ok(&["exec", &id, "sh", "-c", attack]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("refused /memfd:nutshell-init")),
        "the attack reached nutshell's processes, and was refused: {out:?}"
    );
    assert!(!out.contains("overwrote"), "{out}");
    assert!(
        !out.contains(common::cli::NUTSHELL),
        "no process in the container shows the host's binary: {out}"
    );
    nutshell.ok(&["delete", "--force", &id]);
    let after = std::fs::read(common::cli::NUTSHELL).expect("read nutshell");
    assert!(after == binary, "the runtime's binary is unchanged");
    assert_gone(data.path(), &id);
}
// ANCHOR_END: cve_2019_5736_test

const CH11: &str = env!("CARGO_BIN_EXE_ch11-runtime");

/// The snapshot settings of chapter 11's binary: pids, times and the bundle's random
/// name vary from run to run.
fn tour_settings(data: &std::path::Path) -> insta::Settings {
    let mut settings = common::snapshot_settings(data);
    settings.add_filter(r#""pid": [1-9]\d*"#, r#""pid": [PID]"#);
    settings.add_filter(r#""created": "[^"]+""#, r#""created": "[TIME]""#);
    settings.add_filter(r"ch11-bundle-\w+", "ch11-bundle-[RANDOM]");
    settings
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_tour_walks_a_bundle_through_the_lifecycle() {
    require_root();
    let data = data_dir();
    let output = common::binary(CH11, data.path())
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run ch11-runtime");
    let stdout = common::stdout(&output);
    assert!(
        output.status.success(),
        "{stdout}{}",
        common::stderr(&output)
    );
    assert!(stdout.contains(r#""status": "created""#), "{stdout}");
    assert!(
        stdout.contains("exe /memfd:nutshell-init (deleted)"),
        "created: nutshell-init waits, from its sealed copy: {stdout}"
    );
    assert!(stdout.contains("status running: exe /bin/busybox, argv sleep 300"));
    assert!(stdout.contains("status stopped, pid 0"));
    tour_settings(data.path()).bind(|| insta::assert_snapshot!("ch11_tour", stdout));
    assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn break_it_is_refused_in_one_line_each_and_leaves_nothing() {
    require_root();
    let data = data_dir();
    let output = common::binary(CH11, data.path())
        .arg("--break-it")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run ch11-runtime --break-it");
    let stdout = common::stdout(&output);
    assert!(
        output.status.success(),
        "{stdout}{}",
        common::stderr(&output)
    );
    assert_eq!(stdout.matches("refused:").count(), 4, "{stdout}");
    assert!(!stdout.contains("accepted"), "{stdout}");
    tour_settings(data.path()).bind(|| insta::assert_snapshot!("ch11_break_it", stdout));
    assert_nothing_left(data.path());
}

/// A block device of this machine, `major:minor`: the first disk that is not a loop or
/// RAM device.
fn a_block_device() -> Option<(u64, u64)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    let (major, minor) = dev.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn block_io_and_huge_page_limits_reach_the_cgroup_where_the_host_has_them() {
    require_root();
    let data = data_dir();
    let nutshell = Runtime::nutshell(data.path());
    let (major, minor) = a_block_device().expect("a block device");
    let with = |name: &str, resources: Value| {
        let mut bundle = Bundle::new(data.path(), name, &["sleep", "30"]);
        bundle.config["linux"]["resources"] = resources;
        bundle.write();
        let id = common::unique_name(name);
        let output = nutshell.call(&["create", "--bundle", bundle.path(), &id]);
        (id, output)
    };
    // Throttles exist on every layout: v1's blkio.throttle.*, v2's io.max.
    let (id, output) = with(
        "throttle",
        serde_json::json!({"blockIO": {"throttleReadBpsDevice": [
            {"major": major, "minor": minor, "rate": 1048576}]}}),
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    let device = format!("{major}:{minor}");
    if common::oci::on_v2("io") {
        let max = cgroup_file(&id, "io", "io.max");
        assert!(max.contains(&format!("{device} rbps=1048576")), "{max}");
    } else {
        let bps = cgroup_file(&id, "blkio", "blkio.throttle.read_bps_device");
        assert_eq!(bps, format!("{device} 1048576"));
    }
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
    // A weight and huge pages only where the host's kernel has them: applied, or
    // refused in one line that says what is missing, with nothing left.
    for (name, resources, file) in [
        (
            "weight",
            serde_json::json!({"blockIO": {"weight": 500}}),
            "weight",
        ),
        (
            "hugepages",
            serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
            "hugetlb",
        ),
    ] {
        let (id, output) = with(name, resources);
        if output.status.success() {
            nutshell.ok(&["delete", "--force", &id]);
        } else {
            let stderr = common::stderr(&output);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(file), "{name}: {stderr}");
        }
        assert_gone(data.path(), &id);
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn exec_does_not_let_a_leaked_fd_be_its_working_directory_cve_2024_21626() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(data.path(), "bundle", &["sleep", "30"]);
    let nutshell = Runtime::nutshell(data.path());
    let id = common::unique_name("cwd");
    nutshell.create(&bundle, &id);
    nutshell.ok(&["start", &id]);
    let secret = data.path().join("host-only");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::write(secret.join("host-secret"), "x").expect("write");
    // The caller leaks fd 7, a directory of the host's, into nutshell exec, whose
    // process asks for it as its working directory.
    let script = format!(
        "exec 7< {}; exec {} --root {} exec --cwd /proc/self/fd/7 {id} ls",
        secret.display(),
        common::cli::NUTSHELL,
        common::state_dir(data.path()).display()
    );
    let output = std::process::Command::new("timeout")
        .args(["60", "sh", "-c", &script])
        .env("NUTSHELL_DATA", data.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sh");
    let (stdout, stderr) = (common::stdout(&output), common::stderr(&output));
    assert!(
        !stdout.contains("host-secret"),
        "it listed the host's directory: {stdout}"
    );
    assert!(!output.status.success(), "the exec must fail: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("chdir"), "{stderr}");
    nutshell.ok(&["delete", "--force", &id]);
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn preserve_fds_passes_the_callers_fds_above_stdio_and_closes_the_rest() {
    require_root();
    let data = data_dir();
    let bundle = Bundle::new(
        data.path(),
        "bundle",
        &[
            "sh",
            "-c",
            "cat <&3; echo; for fd in 3 4; do [ -e /proc/self/fd/$fd ] && echo \"$fd open\" || echo \"$fd closed\"; done",
        ],
    );
    let passed = data.path().join("passed");
    std::fs::write(&passed, "through fd 3").expect("write");
    let id = common::unique_name("fds");
    // The caller opens fds 3 and 4; only 3 is to reach the container's program.
    let script = format!(
        "exec 3< {passed} 4< {passed}; exec {} --root {} run --preserve-fds 1 --bundle {} {id}",
        common::cli::NUTSHELL,
        common::state_dir(data.path()).display(),
        bundle.path(),
        passed = passed.display(),
    );
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", &script])
        .env("NUTSHELL_DATA", data.path());
    let output = common::oci::output_with_files(command, Duration::from_secs(60), "nutshell run");
    let stdout = common::stdout(&output);
    assert!(
        output.status.success(),
        "{stdout}{}",
        common::stderr(&output)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("through fd 3"));
    assert_eq!(lines.next(), Some("3 open"), "fd 3 is passed: {stdout}");
    assert_eq!(lines.next(), Some("4 closed"), "fd 4 is not: {stdout}");
    assert_gone(data.path(), &id);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_ebpf_device_filter_on_a_cgroup2_directory_enforces_its_rules() {
    require_root();
    // The cgroup2 tree of any layout (a hybrid host's too): the filter is cgroup v2's,
    // whatever runs the other controllers. A pure v1 host has none mounted: the test
    // mounts one of its own, which holds no controller, and unmounts it at the end.
    let layout =
        nutshell::cgroups::detect_host(std::path::Path::new("/proc")).expect("cgroup layout");
    let own_tree = tempfile::tempdir().expect("a mount point");
    let tree = match layout.v2_mount() {
        Some(v2) => v2.mount_point.clone(),
        None => {
            nix::mount::mount(
                Some("cgroup2"),
                own_tree.path(),
                Some("cgroup2"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .expect("mount a cgroup2 tree");
            own_tree.path().to_path_buf()
        }
    };
    let unmount = |tree: &std::path::Path| {
        if tree == own_tree.path() {
            nix::mount::umount(tree).expect("unmount the cgroup2 tree");
        }
    };
    let parent = tree.join("nutshell");
    let made_parent = !parent.exists();
    std::fs::create_dir_all(&parent).expect("make nutshell/ in the cgroup2 tree");
    let leaf = parent.join(common::unique_name("devfilter"));
    std::fs::create_dir(&leaf).expect("make the cgroup");
    let rules = [
        nutshell::cgroups::DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".to_string(),
        },
        nutshell::cgroups::DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rwm".to_string(),
        },
    ];
    let attached = nutshell::cgroups::device_filter::attach(&leaf, &rules);
    // A shell moves itself into the cgroup, then opens /dev/zero (denied) and
    // /dev/null (allowed).
    let script = format!(
        "echo $$ > {}/cgroup.procs && {{ head -c1 /dev/zero > /dev/null 2>&1 && echo zero opened || echo zero denied; echo > /dev/null && echo null opened; }}",
        leaf.display()
    );
    let output = attached.as_ref().ok().map(|()| {
        std::process::Command::new("timeout")
            .args(["30", "sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sh")
    });
    let _ = std::fs::remove_dir(&leaf);
    if made_parent {
        let _ = std::fs::remove_dir(&parent);
    }
    unmount(&tree);
    attached.expect("load and attach the filter");
    let stdout = common::stdout(&output.expect("ran"));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["zero denied", "null opened"]
    );
    assert!(!leaf.exists(), "the cgroup is removed");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn device_rules_deny_what_they_deny_on_every_layout() {
    require_root();
    let data = data_dir();
    // /dev/kmsg's numbers, made in the image as /probe: every kernel has it, and opening
    // it write-only needs no capability, only what the device rules allow.
    let open = |name: &str, rules: Option<Value>| {
        let mut bundle = Bundle::new(
            data.path(),
            name,
            &[
                "sh",
                "-c",
                "(exec 3> /probe) 2> /dev/null && echo opened || echo denied",
            ],
        );
        nix::sys::stat::mknod(
            &bundle.dir.join("rootfs/probe"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 11),
        )
        .expect("mknod");
        if let Some(rules) = rules {
            bundle.config["linux"]["resources"]["devices"] = rules;
        }
        bundle.write();
        let nutshell = Runtime::nutshell(data.path());
        let id = common::unique_name(name);
        let output = nutshell.call(&["run", "--bundle", bundle.path(), &id]);
        assert!(output.status.success(), "{}", common::stderr(&output));
        assert_gone(data.path(), &id);
        common::stdout(&output).trim().to_string()
    };
    assert_eq!(open("free", None), "opened", "without rules the node opens");
    // podman's shape: deny everything, then allow what the container may use. v1 writes
    // devices.deny and devices.allow; v2 attaches an eBPF program.
    let rules = serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]);
    assert_eq!(open("ruled", Some(rules)), "denied");
}
