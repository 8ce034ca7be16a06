//! ch04-mount: the mount plan as a checklist (no root), and, for real through the chapter
//! binary, mount isolation both ways, masked and read-only paths, /dev, the failed
//! escape and bad input. Every privileged test ends by checking that no mount is left
//! under its data directory.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use common::{
    assert_help_mentions, assert_missing_rootfs_refused, binary, data_dir, require_root,
    snapshot_settings, stderr, stderr_as_nobody, stdout,
};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nutshell::mounts::{MASKED_PATHS, READONLY_PATHS};

const CH04: &str = env!("CARGO_BIN_EXE_ch04-mount");

/// Long enough for a slow machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The mount points in this process's mount table (the host's) at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// The check that ends every privileged test: nothing is left mounted under `data`.
fn assert_no_mounts_left(data: &Path) {
    let left = mounts_under(data);
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

/// The default image's rootfs in a test's data directory, built by the first run.
fn rootfs_in(data: &Path) -> PathBuf {
    data.join("images/default/rootfs")
}

/// Run the binary with `args` to the end; a failure prints its stderr.
fn run_ok(data: &Path, args: &[&str]) -> String {
    let output = binary(CH04, data)
        .args(args)
        .output()
        .expect("run ch04-mount");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// A container left running with its stdin open, so that the test can act on the host
/// while it waits. Dropping it kills the container's PID 1 (the whole namespace goes
/// with it) and the binary, so a failed assertion leaves no process behind.
struct Running {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Running {
    fn start(data: &Path, script: &str) -> Running {
        let mut child = std::process::Command::new(CH04)
            .env("NUTSHELL_DATA", data)
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ch04-mount");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Running {
            child,
            stdin,
            lines,
        }
    }

    /// Wait for a line of the container's output that equals `wanted`.
    fn wait_for(&self, wanted: &str) {
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(line) if line == wanted => return,
                Ok(_) => continue,
                Err(e) => panic!("no line {wanted:?} from the container: {e}"),
            }
        }
    }

    /// Let the container's `read` return, and collect the rest of its output.
    fn finish(mut self) -> String {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            rest.push(line);
        }
        rest.join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The container's PID 1 is the binary's only child.
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        for pid in fs::read_to_string(children)
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(pid) = pid.parse() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs the test mounts on the host, unmounted when dropped, also on failure.
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

#[test]
fn the_plan_reads_like_a_checklist() {
    let rootfs = tempfile::tempdir().expect("temp rootfs");
    fs::create_dir(rootfs.path().join("etc")).expect("mkdir etc");
    fs::write(rootfs.path().join("etc/group"), "root:x:0:\ntty:x:5:\n").expect("group");
    fs::create_dir(rootfs.path().join("bin")).expect("mkdir bin");
    std::os::unix::fs::symlink("busybox", rootfs.path().join("bin/sh")).expect("sh");
    let data = data_dir();
    // --plan makes nothing: the state directory named is only printed.
    let output = binary(CH04, data.path())
        .env("NUTSHELL_ROOT", "/run/nutshell")
        .args(["--plan", "--name", "plan", "--rootfs"])
        .arg(rootfs.path())
        .output()
        .expect("run ch04-mount --plan");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // Every step of the typed plan, the mounts among them.
    assert!(text.contains("pivot_root into"), "{text}");
    assert!(text.contains("set no_new_privs"), "{text}");
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let canonical = fs::canonicalize(rootfs.path()).expect("canonical");
    settings.add_filter(&regex::escape(&canonical.display().to_string()), "[ROOTFS]");
    settings.bind(|| insta::assert_snapshot!("ch04_plan", text));
    assert!(
        !Path::new("/run/nutshell/plan").exists(),
        "--plan made a state dir"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn tour_shows_the_containers_mounts_dev_and_masks() {
    require_root();
    let data = data_dir();
    let text = run_ok(data.path(), &[]);
    assert!(text.contains("\n0 /proc/timer_list\n"), "{text}");
    assert!(
        text.contains("can't create /proc/sys/kernel/hostname: Read-only file system"),
        "{text}"
    );
    let mut settings = snapshot_settings(data.path());
    // Which disk the image is on, and its options, are the host's.
    settings.add_filter(
        r"(?m)^\S+ on / type \S+ \(.*\)$",
        "[the host's disk] on / type [FS] ([OPTIONS])",
    );
    // Which of the masked and read-only paths exist depends on how the kernel was built.
    settings.add_filter(
        r"(?m)^(\S+ on /(proc|sys)/\S+ type .*\n)+",
        "[a mount for each masked and read-only path this kernel has]\n",
    );
    settings.add_filter(r",inode64", "");
    settings.add_filter(r"[A-Z][a-z]{2} +\d+ \d\d:\d\d", "[DATE]");
    settings.bind(|| insta::assert_snapshot!("ch04_tour", text));
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_escape_ends_at_the_containers_own_root() {
    require_root();
    let data = data_dir();
    let text = run_ok(data.path(), &["--escape"]);
    assert!(text.contains("NOT ESCAPED"), "{text}");
    assert!(text.contains(r#"chdir("..") x 0"#), "{text}");
    // Where the walk ended is the image, not the host's /.
    let rootfs = rootfs_in(data.path());
    let image = nutshell::rootfs::list_dir(&rootfs).expect("list rootfs");
    let last_root = text
        .lines()
        .filter_map(|l| l.strip_prefix("[inside]  / holds: "))
        .next_back()
        .expect("an / holds line");
    let ended_in: Vec<&str> = last_root
        .split(' ')
        .filter(|name| !name.starts_with(".nutshell-escape-"))
        .collect();
    assert_eq!(ended_in, image);
    assert!(
        !image.iter().any(|name| name.starts_with(".nutshell")),
        "scratch directory left in the rootfs: {image:?}"
    );
    let mut settings = snapshot_settings(data.path());
    settings.add_filter(r"\.nutshell-escape-\d+", ".nutshell-escape-[PID]");
    settings.bind(|| insta::assert_snapshot!("ch04_escape", text));
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_mount_made_inside_is_invisible_on_the_host() {
    require_root();
    let data = data_dir();
    // The mqueue filesystem at /dev/mqueue, which the container's plan mounted: it sees
    // it, and the host has no mount under the rootfs while the container runs.
    let running = Running::start(
        data.path(),
        "grep -c ' /dev/mqueue ' /proc/self/mountinfo && read x",
    );
    running.wait_for("1");
    let rootfs = rootfs_in(data.path());
    assert_eq!(
        mounts_under(&rootfs),
        Vec::<String>::new(),
        "the host sees the container's mounts"
    );
    running.finish();
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_host_mount_made_after_the_start_is_invisible_inside() {
    require_root();
    let data = data_dir();
    let source = format!("nutshell-host-{}", std::process::id());
    let running = Running::start(
        data.path(),
        "echo ready; read x; cat /proc/self/mountinfo; echo done",
    );
    running.wait_for("ready");
    // Under the image, where a propagating mount would show up inside, at /tmp.
    let target = rootfs_in(data.path()).join("tmp");
    mount(
        Some(source.as_str()),
        &target,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k"),
    )
    .expect("mount a tmpfs on the host");
    let guard = HostMount(target);
    let inside = running.finish();
    drop(guard);
    assert!(inside.ends_with("done"), "{inside}");
    assert!(
        !inside.contains(&source),
        "the container sees {source}:\n{inside}"
    );
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn masked_paths_are_empty_inside() {
    require_root();
    let data = data_dir();
    // Only the paths this kernel has: the others need no mask.
    let present: Vec<&str> = MASKED_PATHS
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(present.contains(&"/proc/timer_list"), "{present:?}");
    let host_timer_list = fs::read("/proc/timer_list").expect("read timer_list");
    assert!(!host_timer_list.is_empty());
    let script: String = present
        .iter()
        .map(|p| {
            format!(
                "if [ -d {p} ]; then echo \"{p} $(ls -A {p} | wc -l)\"; else echo \"{p} $(wc -c < {p})\"; fi\n"
            )
        })
        .collect();
    let text = run_ok(data.path(), &["--", "sh", "-c", &script]);
    for path in present {
        assert!(
            text.lines().any(|l| l == format!("{path} 0")),
            "{path} is not empty inside:\n{text}"
        );
    }
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn read_only_paths_refuse_writes() {
    require_root();
    let data = data_dir();
    // In a subshell: a failed redirection on `:` ends the shell. Opening for append
    // writes nothing, so even a writable sysrq-trigger would be safe; the hostname is
    // this container's own (a UTS namespace).
    let script = "cat /proc/self/mountinfo
        (: >> /proc/sys/kernel/hostname) 2>/dev/null || echo 'hostname: refused'
        [ -e /proc/sysrq-trigger ] && { (: >> /proc/sysrq-trigger) 2>/dev/null || echo 'sysrq: refused'; }
        true";
    let text = run_ok(data.path(), &["--", "sh", "-c", script]);
    assert!(text.contains("hostname: refused"), "{text}");
    if Path::new("/proc/sysrq-trigger").exists() {
        assert!(text.contains("sysrq: refused"), "{text}");
    }
    for path in READONLY_PATHS.iter().filter(|p| Path::new(p).exists()) {
        let options = text
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(path))
            .and_then(|l| l.split(' ').nth(5))
            .unwrap_or_else(|| panic!("no mount at {path}:\n{text}"));
        assert!(
            options.starts_with("ro,") && options.contains("nosuid"),
            "{path}: {options}"
        );
    }
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn dev_has_exactly_the_expected_nodes() {
    require_root();
    let data = data_dir();
    let text = run_ok(
        data.path(),
        &[
            "--",
            "sh",
            "-c",
            "echo DEV; ls -A /dev; echo PTS; ls -A /dev/pts",
        ],
    );
    let listings = text.rsplit_once("\nDEV\n").expect("the listings").1;
    let (dev, pts) = listings.split_once("PTS\n").expect("two listings");
    let dev: Vec<&str> = dev.split_whitespace().collect();
    assert_eq!(
        dev,
        [
            "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
            "stdin", "stdout", "tty", "urandom", "zero"
        ]
    );
    // A new devpts instance: its own ptmx, no terminal of the host's.
    assert_eq!(pts.split_whitespace().collect::<Vec<_>>(), ["ptmx"]);
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_missing_rootfs_is_one_clear_line() {
    require_root();
    assert_missing_rootfs_refused(CH04, "ch04-mount");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootfs_without_a_shell_is_refused_before_anything_is_mounted() {
    require_root();
    let data = data_dir();
    let empty = data.path().join("empty-rootfs");
    fs::create_dir(&empty).expect("mkdir");
    let output = binary(CH04, data.path())
        .arg("--rootfs")
        .arg(&empty)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("has no /bin/sh"), "{err}");
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_failing_mount_is_named_in_one_line() {
    require_root();
    let data = data_dir();
    // A shell, and a file where /proc should be a directory. (A missing /proc would be
    // made, inside the root, as runc makes a missing mount point.)
    let rootfs = data.path().join("proc-is-a-file");
    fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink("/bin/busybox", rootfs.join("bin/sh")).expect("symlink");
    fs::write(rootfs.join("proc"), "").expect("a file for /proc");
    let output = binary(CH04, data.path())
        .arg("--rootfs")
        .arg(&rootfs)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "mount proc on {}/proc (nosuid,nodev,noexec) failed in the container process: ENOTDIR",
            rootfs.display()
        )),
        "{err}"
    );
    assert_no_mounts_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_told_it_needs_root() {
    require_root();
    let data = data_dir();
    let err = stderr_as_nobody(CH04, data.path());
    assert!(
        err.starts_with("ch04-mount: error: ch04-mount needs root: mount(2), pivot_root(2)"),
        "{err}"
    );
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH04,
        &["--rootfs", "--hostname", "--plan", "--escape", "[CMD]..."],
    );
}

/// The attacks issue 9 found against the chapters before their hardening, typed as the
/// book shows them (`ch04-mount` and `nutshell` are on the PATH). Chapter 3 keeps all of
/// root's capabilities on purpose; the same script shows what chapter 4 takes away. The
/// cgroup attack mounts cgroup2, which every kernel has whatever the host's layout (a pure
/// v2 kernel may have no v1 hierarchies at all).
const ATTACKS: [&str; 6] = [
    r#"S=hunter2 ch04-mount -- sh -c 'tr "\0" "\n" </proc/1/environ; readlink /proc/1/exe; echo x >>/proc/1/exe'"#,
    "(exec 7</; ch04-mount -- sh -c 'ls /proc/self/fd; ls /proc/self/fd/7/etc')",
    "ch03-pid -- sh -c 'grep -e CapEff -e NoNewPrivs /proc/self/status; mount -t cgroup2 none /tmp && echo mounted'",
    "ch04-mount -- sh -c 'grep -e CapEff -e NoNewPrivs /proc/self/status; mount -t cgroup2 none /tmp && echo mounted'",
    "ch04-mount -- sh -c 'umount /proc/sys; mount -o remount,rw /sys'",
    "sh -c 'ch04-mount -- sleep 30 & sleep 1; kill -INT $!; wait $!; echo \"exit status $?\"'",
];

/// What an image whose /dev points at the host's / gets.
const EVIL_DEV: &str = r#"cp -a "$(nutshell image path)/rootfs" r && rm -r r/dev && ln -s / r/dev && ch04-mount --rootfs r -- true"#;

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_attacks_on_earlier_chapters_fail_in_chapter_4() {
    require_root();
    let data = data_dir();
    run_ok(data.path(), &["--", "true"]);
    let work = tempfile::tempdir().expect("a working directory");
    let bin_dir = Path::new(CH04).parent().expect("the binaries' directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut text = String::new();
    for attack in ATTACKS.iter().chain([&EVIL_DEV]) {
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 2>&1; {attack}"))
            .current_dir(work.path())
            .env("PATH", &path)
            .env("NUTSHELL_DATA", data.path())
            .env("NUTSHELL_ROOT", common::state_dir(data.path()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the attack");
        let output = common::output_within(child, Duration::from_secs(60));
        text.push_str(&format!("# {attack}\n{}\n", stdout(&output)));
    }
    assert!(!text.contains("hunter2\n"), "{text}");
    assert!(text.contains("/memfd:nutshell-init (deleted)"), "{text}");
    assert!(
        text.contains("CapEff:\t00000000a00425fb\nNoNewPrivs:\t1\n"),
        "{text}"
    );
    assert_eq!(text.matches("\nmounted\n").count(), 1, "{text}");
    assert!(text.contains("exit status 130"), "{text}");
    assert!(
        text.contains("the root's /dev is a symlink (to /)"),
        "{text}"
    );

    let host_caps = fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:\t").map(str::to_string))
        .expect("CapEff");
    let mut settings = snapshot_settings(data.path());
    settings.add_filter(
        &format!("CapEff:\t{host_caps}"),
        "CapEff:\t[all of the host root's]",
    );
    // Each run starts with its chapter's two lines about the container: left out.
    settings.add_filter(r"(?m)^ch04-mount: a new mount namespace, .*\n.*\n\n", "");
    settings.add_filter(r"(?m)^ch03-pid: a new PID namespace in .*\n.*\n\n", "");
    settings.add_filter(r"(?m)^ch03-pid: the container's PID 1 is pid .*\n", "");
    settings.bind(|| insta::assert_snapshot!("ch04_attacks", text));
    assert_no_mounts_left(data.path());
}
