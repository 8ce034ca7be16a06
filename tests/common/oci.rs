//! OCI bundles and the runc command line, for chapter 11's tests: the same bundle run by
//! nutshell and by Debian's runc, through the same calls.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::cli::{NUTSHELL, nutshell};

/// Long enough for a container's create on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A bundle: `rootfs/`, a copy of the default image, and `config.json`, from `nutshell
/// spec` and then edited.
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The config, written by [`Bundle::write`].
    pub config: Value,
}

impl Bundle {
    /// A bundle in `<data>/<name>` running `args`, without a terminal.
    pub fn new(data: &Path, name: &str, args: &[&str]) -> Bundle {
        nutshell(data, &["image", "default"]);
        let dir = data.join(name);
        std::fs::create_dir_all(&dir).expect("make the bundle dir");
        let image = data.join("images/default/rootfs");
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&image)
            .arg(dir.join("rootfs"))
            .status()
            .expect("run cp");
        assert!(copied.success(), "copy {}", image.display());
        nutshell(data, &["spec", "--bundle", dir.to_str().expect("utf-8")]);
        let text = std::fs::read_to_string(dir.join("config.json")).expect("read config.json");
        let mut config: Value = serde_json::from_str(&text).expect("config.json is JSON");
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        let bundle = Bundle { dir, config };
        bundle.write();
        bundle
    }

    /// Write the config to `config.json`.
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("encode");
        std::fs::write(self.dir.join("config.json"), text).expect("write config.json");
    }

    /// The bundle directory as a string.
    pub fn path(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }
}

/// An OCI runtime binary with its own state root.
pub struct Runtime {
    /// Its name, for messages and tables: `nutshell` or `runc`.
    pub name: &'static str,
    /// The binary.
    pub binary: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
    /// nutshell's data dir, for its containers' directories.
    pub data: PathBuf,
}

impl Runtime {
    /// nutshell, with data dir `data` and state root `<data>/state`.
    pub fn nutshell(data: &Path) -> Runtime {
        Runtime {
            name: "nutshell",
            binary: PathBuf::from(NUTSHELL),
            root: super::state_dir(data),
            data: data.to_path_buf(),
        }
    }

    /// Debian's runc, with state root `<data>/runc`.
    pub fn runc(data: &Path) -> Runtime {
        Runtime {
            name: "runc",
            binary: PathBuf::from("runc"),
            root: data.join("runc"),
            data: data.to_path_buf(),
        }
    }

    /// Both runtimes, nutshell first.
    pub fn both(data: &Path) -> [Runtime; 2] {
        [Runtime::nutshell(data), Runtime::runc(data)]
    }

    /// Run `runtime --root ROOT ARGS`, with a timeout. Its stdout and stderr are files,
    /// not pipes: with `terminal: false` a created container inherits them and keeps them
    /// open for as long as it lives, so a reader of a pipe would wait for it.
    pub fn call(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(&self.binary);
        command
            .env("NUTSHELL_DATA", &self.data)
            .arg("--root")
            .arg(&self.root)
            .args(args);
        output_with_files(command, TIMEOUT, &format!("{} {args:?}", self.name))
    }

    /// Like [`Runtime::call`], and it must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.call(args);
        assert!(
            output.status.success(),
            "{} {args:?} failed ({:?}): {}{}",
            self.name,
            output.status.code(),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `create --bundle B ID`.
    pub fn create(&self, bundle: &Bundle, id: &str) {
        self.ok(&["create", "--bundle", bundle.path(), id]);
    }

    /// `state ID`, parsed.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state is JSON")
    }

    /// The `status` field of `state ID`.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until `state ID` says `status`, for at most 10 s.
    pub fn wait_for_status(&self, id: &str, status: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.status(id);
            if now == status {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: {id} stayed {now}, not {status}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `delete --force ID`, whatever state it is in.
    pub fn force_delete(&self, id: &str) {
        self.call(&["delete", "--force", id]);
    }
}

/// Run `command` with stdin from /dev/null and stdout and stderr into files, not pipes
/// (a container it leaves running inherits them, and a reader of a pipe would wait for
/// it), for at most `timeout`: it is killed and the test fails after that. `what` names
/// it in the failure.
pub fn output_with_files(
    mut command: std::process::Command,
    timeout: Duration,
    what: &str,
) -> Output {
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took more than {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        file.seek(std::io::SeekFrom::Start(0)).expect("seek");
        file.read_to_end(&mut bytes).expect("read");
        bytes
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Whether `controller` lives in the cgroup2 tree here (else in a v1 hierarchy).
pub fn on_v2(controller: &str) -> bool {
    nutshell::cgroups::detect_host(Path::new("/proc"))
        .ok()
        .and_then(|l| l.mount_for(controller).map(|m| m.version))
        == Some(nutshell::cgroups::CgroupVersion::V2)
}
