//! Chapter 11: conformance with the OCI runtime spec, side by side with runc. Each test
//! is named after one of runtime-tools' validation tests (`validation/<name>`), checks
//! what the spec requires of it, and runs the same bundle under nutshell and under
//! Debian's runc. nutshell must pass every one; runc must do what the table says, so
//! that the book's table (the snapshot `ch11_conformance`) is what these tests found.

mod common;

use std::path::Path;
use std::time::Duration;

use common::oci::{Bundle, Runtime};
use common::{data_dir, require_root};
use serde_json::{Value, json};

/// What a runtime did in one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// What the spec requires.
    Pass,
    /// Not what the spec requires.
    Fail,
}

/// One check: its runtime-tools name, what it checks, what runc does, and why runc
/// differs where it does.
struct Check {
    name: &'static str,
    what: &'static str,
    runc: Outcome,
    note: &'static str,
    run: fn(&Runtime, &Path) -> Result<(), String>,
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

// ANCHOR: checks
/// Every check, in runtime-tools' order.
const CHECKS: &[Check] = &[
    Check {
        name: "create",
        what: "create leaves the process created, waiting before the program",
        runc: Outcome::Pass,
        note: "",
        run: check_create,
    },
    Check {
        name: "start",
        what: "start runs the program; a second start is an error",
        runc: Outcome::Pass,
        note: "",
        run: check_start,
    },
    Check {
        name: "state",
        what: "state has ociVersion, id, status, pid and the absolute bundle",
        runc: Outcome::Pass,
        note: "",
        run: check_state,
    },
    Check {
        name: "kill",
        what: "kill sends the signal; the container stops",
        runc: Outcome::Pass,
        note: "",
        run: check_kill,
    },
    Check {
        name: "delete",
        what: "delete removes a stopped container; its state is gone",
        runc: Outcome::Pass,
        note: "",
        run: check_delete,
    },
    Check {
        name: "hooks",
        what: "the six hook stages run, in the spec's order",
        runc: Outcome::Pass,
        note: "",
        run: check_hooks,
    },
    Check {
        name: "hooks_stdin",
        what: "each hook reads the state on stdin, with the stage's status",
        runc: Outcome::Fail,
        note: "runc 1.1 runs poststart hooks during create, before the program (runc#1710), so they read status created; nutshell's run once it runs, and read running",
        run: check_hooks_stdin,
    },
    Check {
        name: "hostname",
        what: "hostname is set in the new uts namespace",
        runc: Outcome::Pass,
        note: "",
        run: check_hostname,
    },
    Check {
        name: "pidfile",
        what: "--pid-file holds the container's pid",
        runc: Outcome::Pass,
        note: "",
        run: check_pidfile,
    },
    Check {
        name: "process",
        what: "args, env and cwd are the config's",
        runc: Outcome::Pass,
        note: "",
        run: check_process,
    },
    Check {
        name: "process_user",
        what: "uid, gid and additionalGids are the config's",
        runc: Outcome::Pass,
        note: "",
        run: check_process_user,
    },
    Check {
        name: "process_capabilities",
        what: "the capability sets are the config's",
        runc: Outcome::Pass,
        note: "",
        run: check_process_capabilities,
    },
    Check {
        name: "process_rlimits",
        what: "rlimits are set, soft and hard",
        runc: Outcome::Pass,
        note: "",
        run: check_process_rlimits,
    },
    Check {
        name: "process_oom_score_adj",
        what: "oomScoreAdj is set",
        runc: Outcome::Pass,
        note: "",
        run: check_process_oom_score_adj,
    },
    Check {
        name: "mounts",
        what: "a tmpfs with options and a read-only bind are mounted",
        runc: Outcome::Pass,
        note: "",
        run: check_mounts,
    },
    Check {
        name: "root_readonly_true",
        what: "a read-only root cannot be written",
        runc: Outcome::Pass,
        note: "",
        run: check_root_readonly_true,
    },
    Check {
        name: "linux_masked_paths",
        what: "a masked file reads empty, a masked directory is empty",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_masked_paths,
    },
    Check {
        name: "linux_readonly_paths",
        what: "a read-only path cannot be written",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_readonly_paths,
    },
    Check {
        name: "linux_ns_path",
        what: "a namespace given by path is joined",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_ns_path,
    },
    Check {
        name: "linux_uid_mappings",
        what: "the uid and gid maps are the config's",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_uid_mappings,
    },
    Check {
        name: "linux_rootfs_propagation",
        what: "rootfsPropagation shared makes the root a shared mount",
        runc: Outcome::Fail,
        note: "runc's root comes out private (no shared peer group in its mountinfo); nutshell's is shared, as the spec asks",
        run: check_linux_rootfs_propagation,
    },
    Check {
        name: "linux_sysctl",
        what: "a namespaced sysctl is written",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_sysctl,
    },
    Check {
        name: "linux_devices",
        what: "a device node is made with its type, numbers and mode",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_devices,
    },
    Check {
        name: "linux_seccomp",
        what: "a seccomp rule makes a system call fail with its errno",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_seccomp,
    },
    Check {
        name: "linux_cgroups_cpus",
        what: "cpu quota, period and shares reach the cgroup",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_cgroups_cpus,
    },
    Check {
        name: "linux_cgroups_memory",
        what: "the memory limit and reservation reach the cgroup",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_cgroups_memory,
    },
    Check {
        name: "linux_cgroups_pids",
        what: "the pids limit reaches the cgroup",
        runc: Outcome::Pass,
        note: "",
        run: check_linux_cgroups_pids,
    },
    Check {
        name: "prestart",
        what: "a prestart hook runs during create",
        runc: Outcome::Pass,
        note: "",
        run: check_prestart,
    },
    Check {
        name: "prestart_fail",
        what: "a failing prestart hook fails create; nothing is left",
        runc: Outcome::Pass,
        note: "",
        run: check_prestart_fail,
    },
    Check {
        name: "poststart",
        what: "a poststart hook runs during start",
        runc: Outcome::Pass,
        note: "",
        run: check_poststart,
    },
    Check {
        name: "poststart_fail",
        what: "a failing poststart hook is a warning; the container runs on",
        runc: Outcome::Fail,
        note: "runc 1.1 runs the hook during create, and fails create; spec 1.0.2 says to warn and go on, as nutshell does",
        run: check_poststart_fail,
    },
    Check {
        name: "poststop",
        what: "a poststop hook runs during delete",
        runc: Outcome::Pass,
        note: "",
        run: check_poststop,
    },
    Check {
        name: "poststop_fail",
        what: "a failing poststop hook is a warning; delete succeeds",
        runc: Outcome::Pass,
        note: "",
        run: check_poststop_fail,
    },
    Check {
        name: "misc_props",
        what: "a relative bundle path is made absolute; an exited container is stopped and deletable",
        runc: Outcome::Pass,
        note: "",
        run: check_misc_props,
    },
];
// ANCHOR_END: checks

/// The book's table: every check, and what each runtime does.
fn table() -> String {
    let mark = |o: Outcome| match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "**differs**",
    };
    let mut out = String::from(
        "| runtime-tools test | what the spec requires | nutshell | runc 1.1 |\n|---|---|---|---|\n",
    );
    for check in CHECKS {
        let runc = if check.note.is_empty() {
            mark(check.runc).to_string()
        } else {
            format!("{}: {}", mark(check.runc), check.note)
        };
        out.push_str(&format!(
            "| `{}` | {} | pass | {} |\n",
            check.name, check.what, runc
        ));
    }
    out
}

#[test]
fn the_books_table_lists_every_check_and_what_runc_does() {
    let settings = common::snapshot_settings(Path::new("/nonexistent"));
    settings.bind(|| insta::assert_snapshot!("ch11_conformance", table()));
}

/// Run check `name` under nutshell and under runc, each with its own data: nutshell
/// must pass, runc must do what the table says.
fn conform(name: &str) {
    require_root();
    let check = CHECKS
        .iter()
        .find(|c| c.name == name)
        .expect("a check of that name");
    let data = data_dir();
    for runtime in Runtime::both(data.path()) {
        let result = (check.run)(&runtime, data.path());
        let outcome = if result.is_ok() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        let expected = match runtime.name {
            "nutshell" => Outcome::Pass,
            _ => check.runc,
        };
        assert_eq!(
            outcome, expected,
            "{name} under {}: {result:?} (the table says {expected:?})",
            runtime.name
        );
    }
    common::assert_nothing_left(data.path());
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = "needs root: run `just test-all`"]
            fn $name() {
                conform(stringify!($name));
            }
        )*

        #[test]
        fn every_check_has_its_test() {
            let tests = [$(stringify!($name)),*];
            let names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
            assert_eq!(names, tests);
        }
    };
}

conformance_tests!(
    create,
    start,
    state,
    kill,
    delete,
    hooks,
    hooks_stdin,
    hostname,
    pidfile,
    process,
    process_user,
    process_capabilities,
    process_rlimits,
    process_oom_score_adj,
    mounts,
    root_readonly_true,
    linux_masked_paths,
    linux_readonly_paths,
    linux_ns_path,
    linux_uid_mappings,
    linux_rootfs_propagation,
    linux_sysctl,
    linux_devices,
    linux_seccomp,
    linux_cgroups_cpus,
    linux_cgroups_memory,
    linux_cgroups_pids,
    prestart,
    prestart_fail,
    poststart,
    poststart_fail,
    poststop,
    poststop_fail,
    misc_props,
);

// The checks. Each makes its own bundle, named after the check and the runtime, and
// removes its containers whatever happens.

/// A bundle for `runtime` running `args`.
fn bundle(runtime: &Runtime, data: &Path, check: &str, args: &[&str]) -> Bundle {
    let mut bundle = Bundle::new(data, &format!("{check}-{}", runtime.name), args);
    // The default config's hostname is an example's; no check depends on it.
    bundle.config["hostname"] = json!(check.replace('_', "-"));
    bundle.write();
    bundle
}

/// A container id for this check and runtime.
fn id(runtime: &Runtime, check: &str) -> String {
    common::unique_name(&format!("{}-{}", check.replace('_', "-"), runtime.name))
}

/// `run` the bundle in the foreground; its exit status and stdout. The container is
/// deleted afterwards whatever happened.
fn run(runtime: &Runtime, bundle: &Bundle, id: &str) -> (Option<i32>, String, String) {
    let output = runtime.call(&["run", "--bundle", bundle.path(), id]);
    runtime.force_delete(id);
    (
        output.status.code(),
        common::stdout(&output),
        common::stderr(&output),
    )
}

/// Run `args` with `edit` applied to the config: its stdout, if it exited 0.
fn output_of(
    runtime: &Runtime,
    data: &Path,
    check: &str,
    args: &[&str],
    edit: impl FnOnce(&mut Value, &Path),
) -> Result<String, String> {
    let mut bundle = bundle(runtime, data, check, args);
    edit(&mut bundle.config, &bundle.dir);
    bundle.write();
    let id = id(runtime, check);
    match run(runtime, &bundle, &id) {
        (Some(0), out, _) => Ok(out),
        (code, out, err) => Err(format!("exited {code:?}: {out}{err}")),
    }
}

/// A container that sleeps, created (not started), deleted when the guard drops.
struct Created<'a> {
    runtime: &'a Runtime,
    id: String,
    bundle: Bundle,
}

impl<'a> Created<'a> {
    fn new(runtime: &'a Runtime, data: &Path, check: &str) -> Result<Created<'a>, String> {
        Created::with(runtime, data, check, &["sleep", "30"], |_, _| ())
    }

    fn with(
        runtime: &'a Runtime,
        data: &Path,
        check: &str,
        args: &[&str],
        edit: impl FnOnce(&mut Value, &Path),
    ) -> Result<Created<'a>, String> {
        let mut bundle = bundle(runtime, data, check, args);
        edit(&mut bundle.config, &bundle.dir);
        bundle.write();
        let id = id(runtime, check);
        let output = runtime.call(&["create", "--bundle", bundle.path(), &id]);
        let created = Created {
            runtime,
            id,
            bundle,
        };
        ensure!(
            output.status.success(),
            "create failed: {}",
            common::stderr(&output)
        );
        Ok(created)
    }

    fn call(&self, command: &str) -> std::process::Output {
        self.runtime.call(&[command, &self.id])
    }

    fn state(&self) -> Result<Value, String> {
        let output = self.call("state");
        ensure!(output.status.success(), "state failed");
        serde_json::from_slice(&output.stdout).map_err(|e| format!("state is not JSON: {e}"))
    }

    fn status(&self) -> String {
        self.state()
            .ok()
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Wait until the state says `status`, at most 10 s.
    fn wait_for(&self, status: &str) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.status() != status {
            ensure!(
                std::time::Instant::now() < deadline,
                "still {}, not {status}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        self.runtime.force_delete(&self.id);
    }
}

fn check_create(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let c = Created::new(runtime, data, "create")?;
    let state = c.state()?;
    ensure!(state["status"] == "created", "status {}", state["status"]);
    let pid = state["pid"].as_i64().unwrap_or(0);
    ensure!(pid > 0, "pid {pid}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    ensure!(
        cmdline != b"sleep\x0030\x00",
        "the program runs before start"
    );
    Ok(())
}

fn check_start(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let c = Created::new(runtime, data, "start")?;
    ensure!(c.call("start").status.success(), "start failed");
    ensure!(c.status() == "running", "status {}", c.status());
    let pid = c.state()?["pid"].as_i64().unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    ensure!(cmdline == b"sleep\x0030\x00", "the program does not run");
    ensure!(
        !c.call("start").status.success(),
        "a second start succeeded"
    );
    Ok(())
}

fn check_state(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let c = Created::new(runtime, data, "state")?;
    let state = c.state()?;
    for field in ["ociVersion", "id", "status", "pid", "bundle"] {
        ensure!(state.get(field).is_some(), "no {field}");
    }
    ensure!(state["id"] == c.id.as_str(), "id {}", state["id"]);
    let bundle = std::fs::canonicalize(&c.bundle.dir).map_err(|e| e.to_string())?;
    ensure!(
        state["bundle"] == bundle.to_string_lossy().as_ref(),
        "bundle {}",
        state["bundle"]
    );
    Ok(())
}

fn check_kill(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let c = Created::new(runtime, data, "kill")?;
    ensure!(c.call("start").status.success(), "start failed");
    let output = runtime.call(&["kill", &c.id, "KILL"]);
    ensure!(output.status.success(), "kill failed");
    c.wait_for("stopped")
}

fn check_delete(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let c = Created::with(runtime, data, "delete", &["true"], |_, _| ())?;
    ensure!(c.call("start").status.success(), "start failed");
    c.wait_for("stopped")?;
    ensure!(c.call("delete").status.success(), "delete failed");
    ensure!(
        !c.call("state").status.success(),
        "state of a deleted container"
    );
    Ok(())
}

/// A hook that appends its stage and its stdin, one line, to `log`.
fn logging_hook(log: &Path, stage: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("printf '{stage} ' >> {0}; cat >> {0}; echo >> {0}", log.display())],
    })
}

/// The hooks' log: (stage, state) per line.
fn hook_log(log: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (stage, json) = line.split_once(' ')?;
            Some((stage.to_string(), serde_json::from_str(json).ok()?))
        })
        .collect()
}

const HOST_STAGES: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// Create, start, kill and delete a container with a logging hook at every stage; the
/// host side's log, and what startContainer (which runs in the container) wrote.
fn all_hooks(
    runtime: &Runtime,
    data: &Path,
    check: &str,
) -> Result<(Vec<(String, Value)>, String), String> {
    let log = data.join(format!("{check}-{}.log", runtime.name));
    let c = Created::new_with_hooks(runtime, data, check, &log)?;
    ensure!(c.call("start").status.success(), "start failed");
    let _ = runtime.call(&["kill", &c.id, "KILL"]);
    c.wait_for("stopped")?;
    ensure!(c.call("delete").status.success(), "delete failed");
    let inside = std::fs::read_to_string(c.bundle.dir.join("rootfs/start-container.log"))
        .unwrap_or_default();
    Ok((hook_log(&log), inside))
}

impl<'a> Created<'a> {
    fn new_with_hooks(
        runtime: &'a Runtime,
        data: &Path,
        check: &str,
        log: &Path,
    ) -> Result<Created<'a>, String> {
        Created::with(runtime, data, check, &["sleep", "30"], |config, _| {
            let mut hooks = serde_json::Map::new();
            for stage in HOST_STAGES {
                hooks.insert(stage.into(), json!([logging_hook(log, stage)]));
            }
            // startContainer runs in the container: its path and log are the container's.
            hooks.insert(
                "startContainer".into(),
                json!([logging_hook(
                    Path::new("/start-container.log"),
                    "startContainer"
                )]),
            );
            config["hooks"] = Value::Object(hooks);
            // Where startContainer writes its log.
            config["root"]["readonly"] = json!(false);
        })
    }
}

fn check_hooks(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let (log, inside) = all_hooks(runtime, data, "hooks")?;
    let stages: Vec<&str> = log.iter().map(|(s, _)| s.as_str()).collect();
    ensure!(
        stages == HOST_STAGES,
        "the host side's hooks ran as {stages:?}"
    );
    ensure!(
        inside.starts_with("startContainer "),
        "startContainer did not run in the container: {inside:?}"
    );
    Ok(())
}

fn check_hooks_stdin(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let (log, inside) = all_hooks(runtime, data, "hooks_stdin")?;
    let status = |stage: &str| match stage {
        "prestart" | "createRuntime" | "createContainer" => "creating",
        "poststart" => "running",
        _ => "stopped",
    };
    for (stage, state) in &log {
        ensure!(state["id"].as_str().is_some(), "{stage}: no id in {state}");
        ensure!(
            state["bundle"].as_str().is_some_and(|b| b.starts_with('/')),
            "{stage}: bundle {}",
            state["bundle"]
        );
        ensure!(
            state["ociVersion"].as_str().is_some(),
            "{stage}: no ociVersion"
        );
        ensure!(
            state["status"] == status(stage),
            "{stage}: status {}",
            state["status"]
        );
    }
    let started: Value = inside
        .strip_prefix("startContainer ")
        .and_then(|json| serde_json::from_str(json.trim()).ok())
        .ok_or_else(|| format!("startContainer read no state: {inside:?}"))?;
    ensure!(
        started["status"] == "created",
        "startContainer: status {}",
        started["status"]
    );
    Ok(())
}

fn check_hostname(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(runtime, data, "hostname", &["hostname"], |config, _| {
        config["hostname"] = json!("conformance-host");
    })?;
    ensure!(out.trim() == "conformance-host", "hostname {out:?}");
    Ok(())
}

fn check_pidfile(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let bundle = bundle(runtime, data, "pidfile", &["sleep", "30"]);
    let id = id(runtime, "pidfile");
    let file = data.join(format!("{}.pid", runtime.name));
    let path = file.to_str().expect("utf-8");
    let output = runtime.call(&["create", "--bundle", bundle.path(), "--pid-file", path, &id]);
    let state = runtime.call(&["state", &id]);
    runtime.force_delete(&id);
    ensure!(output.status.success(), "create failed");
    let state: Value = serde_json::from_slice(&state.stdout).map_err(|e| e.to_string())?;
    let written = std::fs::read_to_string(&file).map_err(|e| format!("no pid file: {e}"))?;
    ensure!(
        written.trim().parse::<i64>().ok() == state["pid"].as_i64(),
        "pid file {written:?}, state {}",
        state["pid"]
    );
    Ok(())
}

fn check_process(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "process",
        &["sh", "-c", "echo \"$0 $1 $GREETING $(pwd)\"", "zero", "one"],
        |config, _| {
            config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "GREETING=hello"]);
            config["process"]["cwd"] = json!("/tmp");
        },
    )?;
    ensure!(out.trim() == "zero one hello /tmp", "got {out:?}");
    Ok(())
}

/// /proc/self/status as the container's program sees it.
fn status_lines(
    runtime: &Runtime,
    data: &Path,
    check: &str,
    edit: impl FnOnce(&mut Value, &Path),
) -> Result<String, String> {
    output_of(runtime, data, check, &["cat", "/proc/self/status"], edit)
}

fn field<'t>(status: &'t str, name: &str) -> &'t str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_default()
}

fn check_process_user(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let status = status_lines(runtime, data, "process_user", |config, _| {
        config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6]});
    })?;
    ensure!(
        field(&status, "Uid:")
            .split_whitespace()
            .all(|u| u == "1000"),
        "Uid {}",
        field(&status, "Uid:")
    );
    ensure!(
        field(&status, "Gid:")
            .split_whitespace()
            .all(|g| g == "1001"),
        "Gid {}",
        field(&status, "Gid:")
    );
    let groups: Vec<&str> = field(&status, "Groups:").split_whitespace().collect();
    ensure!(groups == ["5", "6"], "Groups {groups:?}");
    Ok(())
}

fn check_process_capabilities(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let status = status_lines(runtime, data, "process_capabilities", |config, _| {
        let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set] = caps.clone();
        }
        config["process"]["capabilities"]["inheritable"] = json!([]);
        config["process"]["capabilities"]["ambient"] = json!([]);
    })?;
    // CAP_CHOWN is bit 0, CAP_KILL bit 5.
    for (name, want) in [
        ("CapBnd:", 0x21u64),
        ("CapEff:", 0x21),
        ("CapPrm:", 0x21),
        ("CapInh:", 0),
        ("CapAmb:", 0),
    ] {
        let got = u64::from_str_radix(field(&status, name), 16).unwrap_or(u64::MAX);
        ensure!(got == want, "{name} {got:x}, not {want:x}");
    }
    Ok(())
}

fn check_process_rlimits(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let limits = output_of(
        runtime,
        data,
        "process_rlimits",
        &["cat", "/proc/self/limits"],
        |config, _| {
            config["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            ]);
        },
    )?;
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    ensure!(
        line("Max open files")[3..5] == ["512", "768"],
        "{:?}",
        line("Max open files")
    );
    ensure!(
        line("Max core file size")[4..6] == ["0", "0"],
        "{:?}",
        line("Max core file size")
    );
    Ok(())
}

fn check_process_oom_score_adj(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "process_oom_score_adj",
        &["cat", "/proc/self/oom_score_adj"],
        |config, _| config["process"]["oomScoreAdj"] = json!(500),
    )?;
    ensure!(out.trim() == "500", "oom_score_adj {out:?}");
    Ok(())
}

fn check_mounts(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let share = data.join(format!("share-{}", runtime.name));
    std::fs::create_dir_all(&share).map_err(|e| e.to_string())?;
    std::fs::write(share.join("note"), "from the host").map_err(|e| e.to_string())?;
    let script = "grep ' /mnt/scratch ' /proc/self/mountinfo; cat /mnt/share/note; echo; \
                  if touch /mnt/share/x 2>/dev/null; then echo writable; else echo read-only; fi";
    let out = output_of(
        runtime,
        data,
        "mounts",
        &["sh", "-c", script],
        |config, _| {
            let mounts = config["mounts"].as_array_mut().expect("mounts");
            mounts.push(json!({
                "destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "size=1m", "mode=700"],
            }));
            mounts.push(json!({
                "destination": "/mnt/share", "type": "bind", "source": share,
                "options": ["rbind", "ro"],
            }));
        },
    )?;
    let mut lines = out.lines();
    let scratch = lines.next().unwrap_or_default();
    ensure!(
        scratch.contains("nosuid") && scratch.contains("nodev") && scratch.contains("tmpfs"),
        "the tmpfs: {scratch:?}"
    );
    ensure!(
        scratch.contains("size=1024k") && scratch.contains("mode=700"),
        "the tmpfs's options: {scratch:?}"
    );
    ensure!(
        lines.next() == Some("from the host"),
        "the bind mount: {out:?}"
    );
    ensure!(lines.next() == Some("read-only"), "ro: {out:?}");
    Ok(())
}

fn check_root_readonly_true(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let script = "if touch /probe 2>/dev/null; then echo writable; else echo read-only; fi";
    let out = output_of(
        runtime,
        data,
        "root_readonly_true",
        &["sh", "-c", script],
        |config, _| config["root"]["readonly"] = json!(true),
    )?;
    ensure!(out.trim() == "read-only", "{out:?}");
    Ok(())
}

fn check_linux_masked_paths(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let script = "cat /secret-file; echo; ls -A /secret-dir | wc -l";
    let out = output_of(
        runtime,
        data,
        "linux_masked_paths",
        &["sh", "-c", script],
        |config, dir| {
            std::fs::write(dir.join("rootfs/secret-file"), "secret").expect("write");
            std::fs::create_dir_all(dir.join("rootfs/secret-dir")).expect("mkdir");
            std::fs::write(dir.join("rootfs/secret-dir/key"), "key").expect("write");
            config["linux"]["maskedPaths"] = json!(["/secret-file", "/secret-dir"]);
        },
    )?;
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    ensure!(lines == ["", "0"], "masked: {lines:?}");
    Ok(())
}

fn check_linux_readonly_paths(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let script = "if touch /kept/x 2>/dev/null; then echo writable; else echo read-only; fi";
    let out = output_of(
        runtime,
        data,
        "linux_readonly_paths",
        &["sh", "-c", script],
        |config, dir| {
            std::fs::create_dir_all(dir.join("rootfs/kept")).expect("mkdir");
            config["linux"]["readonlyPaths"] = json!(["/kept"]);
        },
    )?;
    ensure!(out.trim() == "read-only", "{out:?}");
    Ok(())
}

fn check_linux_ns_path(runtime: &Runtime, data: &Path) -> Result<(), String> {
    // A process of the test's own in a new uts namespace, named `elsewhere`.
    let mut holder = std::process::Command::new("unshare")
        .args(["--uts", "sh", "-c", "hostname elsewhere; exec sleep 30"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let path = format!("/proc/{}/ns/uts", holder.id());
    // Wait until it has set the name, in its own namespace.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let own = std::fs::read_link("/proc/self/ns/uts").ok();
    while std::fs::read_link(&path).ok() == own
        || std::fs::read_to_string(format!("/proc/{}/cmdline", holder.id()))
            .is_ok_and(|c| !c.starts_with("sleep"))
    {
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = output_of(
        runtime,
        data,
        "linux_ns_path",
        &["hostname"],
        |config, _| {
            config.as_object_mut().expect("object").remove("hostname");
            for ns in config["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
            {
                if ns["type"] == "uts" {
                    ns["path"] = json!(path);
                }
            }
        },
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let out = result?;
    ensure!(out.trim() == "elsewhere", "hostname {out:?}");
    Ok(())
}

fn check_linux_uid_mappings(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "linux_uid_mappings",
        &["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"],
        |config, _| {
            let namespaces = config["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces");
            namespaces.push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 2_000_000_000u32, "size": 65536}]);
            config["linux"]["uidMappings"] = map.clone();
            config["linux"]["gidMappings"] = map;
            // A user namespace may not mount a cgroup hierarchy it does not own.
            let mounts = config["mounts"].as_array_mut().expect("mounts");
            mounts.retain(|m| m["type"] != "cgroup");
        },
    )?;
    let maps: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want = vec!["0", "2000000000", "65536"];
    ensure!(maps == [want.clone(), want], "maps {maps:?}");
    Ok(())
}

fn check_linux_rootfs_propagation(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "linux_rootfs_propagation",
        &["awk", "$5 == \"/\"", "/proc/self/mountinfo"],
        |config, _| config["linux"]["rootfsPropagation"] = json!("shared"),
    )?;
    ensure!(out.contains(" shared:"), "the root: {out:?}");
    Ok(())
}

fn check_linux_sysctl(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "linux_sysctl",
        &["cat", "/proc/sys/net/ipv4/ip_forward"],
        |config, _| config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}),
    )?;
    ensure!(out.trim() == "1", "ip_forward {out:?}");
    Ok(())
}

fn check_linux_devices(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let out = output_of(
        runtime,
        data,
        "linux_devices",
        &["stat", "-c", "%F %t:%T %a %u:%g", "/dev/conformance"],
        |config, _| {
            config["linux"]["devices"] = json!([{
                "path": "/dev/conformance", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o640, "uid": 0, "gid": 0,
            }]);
        },
    )?;
    ensure!(
        out.trim() == "character special file 1:3 640 0:0",
        "the node: {out:?}"
    );
    Ok(())
}

fn check_linux_seccomp(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let script = "if mkdir /tmp/probe 2>/dev/null; then echo made; else echo refused; fi; echo still running";
    let out = output_of(
        runtime,
        data,
        "linux_seccomp",
        &["sh", "-c", script],
        |config, _| {
            config["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            });
        },
    )?;
    ensure!(
        out.lines().collect::<Vec<_>>() == ["refused", "still running"],
        "{out:?}"
    );
    Ok(())
}

/// Run a sleeping container under cgroupsPath `nutshell/<id>` with `resources`, and
/// read these files of its cgroup from the host: (controller, file) each.
fn cgroup_files(
    runtime: &Runtime,
    data: &Path,
    check: &str,
    resources: Value,
    files: &[(&str, &str)],
) -> Result<Vec<String>, String> {
    let name = id(runtime, check);
    let path = format!("/nutshell/{name}");
    let c = Created::with(runtime, data, check, &["sleep", "30"], |config, _| {
        config["linux"]["cgroupsPath"] = json!(path);
        config["linux"]["resources"] = resources;
    })?;
    let layout = nutshell::cgroups::detect_host(Path::new("/proc")).map_err(|e| e.to_string())?;
    files
        .iter()
        .map(|(controller, file)| {
            let mount = layout
                .mount_for(controller)
                .ok_or_else(|| format!("no {controller} hierarchy"))?;
            let full = mount.mount_point.join(&path[1..]).join(file);
            std::fs::read_to_string(&full)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("{}: {e} (for {})", full.display(), c.id))
        })
        .collect()
}

fn check_linux_cgroups_cpus(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let resources = json!({"cpu": {"quota": 50000, "period": 100000, "shares": 512}});
    if common::oci::on_v2("cpu") {
        let got = cgroup_files(
            runtime,
            data,
            "linux_cgroups_cpus",
            resources,
            &[("cpu", "cpu.max"), ("cpu", "cpu.weight")],
        )?;
        ensure!(got[0] == "50000 100000", "cpu.max {}", got[0]);
        ensure!(got[1] != "100", "cpu.weight is still the default");
    } else {
        let got = cgroup_files(
            runtime,
            data,
            "linux_cgroups_cpus",
            resources,
            &[
                ("cpu", "cpu.cfs_quota_us"),
                ("cpu", "cpu.cfs_period_us"),
                ("cpu", "cpu.shares"),
            ],
        )?;
        ensure!(got == ["50000", "100000", "512"], "{got:?}");
    }
    Ok(())
}

fn check_linux_cgroups_memory(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let resources = json!({"memory": {"limit": 67108864, "reservation": 33554432}});
    let files: &[(&str, &str)] = if common::oci::on_v2("memory") {
        &[("memory", "memory.max"), ("memory", "memory.low")]
    } else {
        &[
            ("memory", "memory.limit_in_bytes"),
            ("memory", "memory.soft_limit_in_bytes"),
        ]
    };
    let got = cgroup_files(runtime, data, "linux_cgroups_memory", resources, files)?;
    ensure!(got == ["67108864", "33554432"], "{got:?}");
    Ok(())
}

fn check_linux_cgroups_pids(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let got = cgroup_files(
        runtime,
        data,
        "linux_cgroups_pids",
        json!({"pids": {"limit": 42}}),
        &[("pids", "pids.max")],
    )?;
    ensure!(got == ["42"], "{got:?}");
    Ok(())
}

/// A hook that touches `file`, or fails with `exit 1`.
fn touch_hook(file: &Path, fail: bool) -> Value {
    let script = if fail {
        format!("touch {}; exit 1", file.display())
    } else {
        format!("touch {}", file.display())
    };
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A container with one hook at `stage`; what the life of it did: create, start,
/// kill, delete results, whether the hook ran, and the status after start.
struct HookRun {
    created: bool,
    started: bool,
    status_after_start: String,
    deleted: bool,
    ran: bool,
    left: bool,
}

fn with_hook(runtime: &Runtime, data: &Path, check: &str, stage: &str, fail: bool) -> HookRun {
    let marker = data.join(format!("{check}-{}.ran", runtime.name));
    let id = id(runtime, check);
    let mut bundle = bundle(runtime, data, check, &["sleep", "30"]);
    bundle.config["hooks"] = json!({ stage: [touch_hook(&marker, fail)] });
    bundle.write();
    let created = runtime
        .call(&["create", "--bundle", bundle.path(), &id])
        .status
        .success();
    let mut run = HookRun {
        created,
        started: false,
        status_after_start: String::new(),
        deleted: false,
        ran: false,
        left: false,
    };
    if created {
        run.started = runtime.call(&["start", &id]).status.success();
        let state = runtime.call(&["state", &id]);
        run.status_after_start = serde_json::from_slice::<Value>(&state.stdout)
            .ok()
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = runtime.call(&["kill", &id, "KILL"]);
        std::thread::sleep(Duration::from_millis(100));
        run.deleted = runtime.call(&["delete", "--force", &id]).status.success();
    }
    run.ran = marker.exists();
    run.left = runtime.call(&["state", &id]).status.success();
    runtime.force_delete(&id);
    run
}

fn check_prestart(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "prestart", "prestart", false);
    ensure!(
        run.created && run.ran,
        "created {}, ran {}",
        run.created,
        run.ran
    );
    Ok(())
}

fn check_prestart_fail(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "prestart_fail", "prestart", true);
    ensure!(run.ran, "the hook did not run");
    ensure!(!run.created, "create succeeded");
    ensure!(!run.left, "the container is left");
    Ok(())
}

fn check_poststart(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "poststart", "poststart", false);
    ensure!(
        run.started && run.ran,
        "started {}, ran {}",
        run.started,
        run.ran
    );
    Ok(())
}

fn check_poststart_fail(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "poststart_fail", "poststart", true);
    ensure!(run.ran, "the hook did not run");
    ensure!(run.started, "start failed");
    ensure!(
        run.status_after_start == "running",
        "status after start: {}",
        run.status_after_start
    );
    Ok(())
}

fn check_poststop(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "poststop", "poststop", false);
    ensure!(
        run.deleted && run.ran,
        "deleted {}, ran {}",
        run.deleted,
        run.ran
    );
    Ok(())
}

fn check_poststop_fail(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let run = with_hook(runtime, data, "poststop_fail", "poststop", true);
    ensure!(run.ran, "the hook did not run");
    ensure!(run.deleted, "delete failed");
    ensure!(!run.left, "the container is left");
    Ok(())
}

fn check_misc_props(runtime: &Runtime, data: &Path) -> Result<(), String> {
    let bundle = bundle(runtime, data, "misc_props", &["true"]);
    let id = id(runtime, "misc_props");
    // A relative --bundle, from the bundle's parent.
    let name = bundle
        .dir
        .file_name()
        .expect("name")
        .to_str()
        .expect("utf-8");
    let output = std::process::Command::new(&runtime.binary)
        .current_dir(data)
        .env("NUTSHELL_DATA", &runtime.data)
        .arg("--root")
        .arg(&runtime.root)
        .args(["create", "--bundle", name, &id])
        .stdin(std::process::Stdio::null())
        .stdout(tempfile::tempfile().expect("file"))
        .stderr(tempfile::tempfile().expect("file"))
        .status();
    let result = (|| {
        ensure!(output.is_ok_and(|s| s.success()), "create failed");
        let state: Value =
            serde_json::from_str(&runtime.ok(&["state", &id])).map_err(|e| e.to_string())?;
        let absolute = std::fs::canonicalize(&bundle.dir).map_err(|e| e.to_string())?;
        ensure!(
            state["bundle"] == absolute.to_string_lossy().as_ref(),
            "bundle {}",
            state["bundle"]
        );
        ensure!(
            runtime.call(&["start", &id]).status.success(),
            "start failed"
        );
        runtime.wait_for_status(&id, "stopped");
        ensure!(
            runtime.call(&["delete", &id]).status.success(),
            "delete failed"
        );
        Ok(())
    })();
    runtime.force_delete(&id);
    result
}
