//! Chapter 11: Debian's podman drives nutshell as its OCI runtime (`podman --runtime
//! nutshell`), through conmon, as it drives runc: a command and its exit code, limits,
//! a detached container with exec, stop and rm, and `-it` with a pty.
//!
//! Each test has its own podman storage in its data directory (the vfs driver: no
//! mounts to leave behind), its own tmpdir and runroot, so nothing touches the
//! machine's own podman; the image is nutshell's default, saved and loaded. nutshell
//! keeps the containers' state in its default root, /run/nutshell (see [`STATE_ROOT`]).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cli::{NUTSHELL, save_image};
use common::{data_dir, require_root};

/// Long enough for podman's first run on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(120);

/// podman with its own storage under `dir`, and nutshell as its runtime.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    /// Storage under `<data>/podman`, and nutshell's default image loaded as `default`.
    fn new(data: &Path) -> Podman {
        let podman = Podman {
            dir: data.join("podman"),
        };
        std::fs::create_dir_all(&podman.dir).expect("podman dir");
        common::cli::nutshell(data, &["image", "default"]);
        let archive = data.join("default.tar");
        save_image(data, "default", &archive);
        podman.ok(&["load", "-q", "-i", archive.to_str().expect("utf-8")]);
        podman
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        let dir = |name: &str| self.dir.join(name).display().to_string();
        command
            .args(["--root", &dir("storage"), "--runroot", &dir("runroot")])
            .args(["--tmpdir", &dir("tmp"), "--storage-driver", "vfs"])
            .args(["--network-config-dir", &dir("networks")])
            .args(["--runtime", NUTSHELL, "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--log-level", "error"])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Run podman with `args`; stdout and stderr are files (a container keeps pipes
    /// open), and it must end within [`TIMEOUT`].
    fn call(&self, args: &[&str]) -> Output {
        output_within(self.command(args), &format!("podman {args:?}"))
    }

    /// Like [`Podman::call`], and it must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.call(args);
        assert!(
            output.status.success(),
            "podman {args:?} failed ({:?}): {}",
            output.status.code(),
            common::stderr(&output)
        );
        common::stdout(&output)
    }
}

impl Podman {
    /// Nothing of nutshell's is left for the container `id`: no state, no cgroup.
    fn assert_gone(&self, id: &str) {
        let id = id.trim();
        assert_eq!(id.len(), 64, "a container id: {id:?}");
        common::assert_no_cgroup_left(&format!("libpod-{id}"));
        let state = Path::new(STATE_ROOT).join(id);
        assert!(!state.exists(), "{} is left", state.display());
    }

    /// `run ARGS` with `--cidfile`: its output, and the container's id.
    fn run_with_id(&self, args: &[&str]) -> (Output, String) {
        let cidfile = self.dir.join("cid");
        let _ = std::fs::remove_file(&cidfile);
        let cid = cidfile.display().to_string();
        let mut all = run_args(&["--cidfile", &cid]);
        all.extend(args);
        let output = self.call(&all);
        let id = std::fs::read_to_string(&cidfile).unwrap_or_default();
        (output, id)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Whatever a failed test left: podman's containers, then its storage, then the
        // state root if no container is left in it (rmdir(2) removes only an empty one).
        let _ = self.call(&["rm", "-af", "-t", "0"]);
        let _ = self.call(&["rmi", "-af"]);
        let _ = std::fs::remove_dir(Path::new(STATE_ROOT).join(".exec"));
        let _ = std::fs::remove_dir(STATE_ROOT);
    }
}

/// Where nutshell keeps its containers' state under podman: its default, as runc's is
/// /run/runc. podman gives the runtime a clean environment, and its `--runtime-flag`s
/// do not reach every call (its cleanup's `delete` has none), so nothing can move it.
const STATE_ROOT: &str = "/run/nutshell";

/// Run `command` with file stdio, for at most [`TIMEOUT`].
fn output_within(command: Command, what: &str) -> Output {
    common::oci::output_with_files(command, TIMEOUT, what)
}

/// The ulimits every podman container gets: podman's defaults are the caller's hard
/// limits, which a shell under a test harness may not raise to.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--network", "none"];
    args.extend(ULIMITS);
    args.extend(extra);
    args
}

/// The value of a cgroup file of the process `pid`, for `controller`, from the host.
fn cgroup_value(pid: &str, controller: &str, file: &str) -> String {
    let layout = nutshell::cgroups::detect_host(Path::new("/proc")).expect("layout");
    let mount = layout.mount_for(controller).expect("controller");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = cgroups
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = match mount.version {
                nutshell::cgroups::CgroupVersion::V2 => names.is_empty(),
                nutshell::cgroups::CgroupVersion::V1 => names.split(',').any(|n| n == controller),
            };
            wanted.then(|| path.trim_start_matches('/').to_string())
        })
        .expect("the process's cgroup");
    std::fs::read_to_string(mount.mount_point.join(path).join(file))
        .expect("read the cgroup file")
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn podman_runs_a_command_and_returns_its_exit_code() {
    require_root();
    let data = data_dir();
    let podman = Podman::new(data.path());
    let (output, id) = podman.run_with_id(&["--rm", "default", "echo", "hello from nutshell"]);
    assert_eq!(common::stdout(&output).trim(), "hello from nutshell");
    podman.assert_gone(&id);
    let (output, id) = podman.run_with_id(&["--rm", "default", "sh", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7), "{}", common::stderr(&output));
    podman.assert_gone(&id);
    let missing = podman.call(&run_args(&["--rm", "default", "/no/such/program"]));
    assert_eq!(
        missing.status.code(),
        Some(127),
        "{}",
        common::stderr(&missing)
    );
    assert_eq!(podman.ok(&["ps", "-aq"]).trim(), "", "--rm removed them");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn podman_detaches_execs_limits_stops_and_removes() {
    require_root();
    let data = data_dir();
    let podman = Podman::new(data.path());
    let limits = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50"];
    let mut args = run_args(&["-d", "--name", "web"]);
    args.extend(limits);
    args.extend(["default", "sleep", "300"]);
    let id = podman.ok(&args);
    assert_eq!(id.trim().len(), 64, "podman printed the id: {id}");
    let ps = podman.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "podman ps: {ps}");
    assert_eq!(
        podman.ok(&["exec", "web", "echo", "inside"]).trim(),
        "inside"
    );
    let failed = podman.call(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(failed.status.code(), Some(5), "exec's exit code");
    // The limits, where the kernel keeps them.
    let pid = podman.ok(&["inspect", "--format", "{{.State.Pid}}", "web"]);
    let pid = pid.trim();
    assert_eq!(cgroup_value(pid, "memory", memory_file()), "67108864");
    assert_eq!(cgroup_value(pid, "pids", "pids.max"), "50");
    let (quota_file, want) = cpu_quota();
    assert_eq!(cgroup_value(pid, "cpu", quota_file), want);
    // stop sends TERM, which sleep as PID 1 ignores, then KILL after -t.
    podman.ok(&["stop", "-t", "1", "web"]);
    let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(state.trim(), "exited");
    podman.ok(&["rm", "web"]);
    assert_eq!(podman.ok(&["ps", "-aq"]).trim(), "");
    podman.assert_gone(&id);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process is gone"
    );
}

fn memory_file() -> &'static str {
    if common::oci::on_v2("memory") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    }
}

fn cpu_quota() -> (&'static str, &'static str) {
    if common::oci::on_v2("cpu") {
        ("cpu.max", "50000 100000")
    } else {
        ("cpu.cfs_quota_us", "50000")
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn podman_run_it_gives_the_container_a_terminal() {
    require_root();
    let data = data_dir();
    let podman = Podman::new(data.path());
    // script(1) gives podman a terminal of its own, as a person's shell would; -e
    // returns the command's exit status.
    let inner = podman.command(&run_args(&[
        "--rm",
        "-it",
        "default",
        "sh",
        "-c",
        "tty; stty size; exit 3",
    ]));
    let line = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script
        .args(["-qefc", &line, "/dev/null"])
        .stdin(Stdio::null());
    let output = output_within(script, "script podman run -it");
    let out = common::stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{out}{}",
        common::stderr(&output)
    );
    assert!(out.contains("/dev/pts/0"), "a pty of its own: {out:?}");
    assert!(
        !out.contains('\0'),
        "nothing but the program's output: {out:?}"
    );
    assert_eq!(podman.ok(&["ps", "-aq"]).trim(), "");
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
