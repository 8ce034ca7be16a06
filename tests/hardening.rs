//! What a container must not be able to do to its host, tried as an attacker would, on
//! every chapter whose container is exposed: an image whose /dev, /proc or /sys points out
//! of the root, an fd the caller left open, the caller's environment and binary behind
//! PID 1, a root that can undo its own mounts and limits, a signal the caller ignored.
//!
//! Chapters 1 to 3 keep their deliberate weaknesses (ch01's chroot escape, full
//! capabilities until chapter 4), but not these accidental ones.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    assert_no_cgroup_left, assert_nothing_left, binary, data_dir, require_root,
    run_into_a_closed_pipe, state_dir, stderr, stdout,
};

const CH01: &str = env!("CARGO_BIN_EXE_ch01-chroot");
const CH02: &str = env!("CARGO_BIN_EXE_ch02-namespaces");
const CH03: &str = env!("CARGO_BIN_EXE_ch03-pid");
const CH04: &str = env!("CARGO_BIN_EXE_ch04-mount");
const CH05: &str = env!("CARGO_BIN_EXE_ch05-cgroups");
const CH06: &str = env!("CARGO_BIN_EXE_ch06-user");
const CH07: &str = env!("CARGO_BIN_EXE_ch07-overlayfs");

/// Every chapter binary, with the name it prints its errors under.
const CHAPTERS: [(&str, &str); 7] = [
    (CH01, "ch01-chroot"),
    (CH02, "ch02-namespaces"),
    (CH03, "ch03-pid"),
    (CH04, "ch04-mount"),
    (CH05, "ch05-cgroups"),
    (CH06, "ch06-user"),
    (CH07, "ch07-overlayfs"),
];

/// Long enough for a slow machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Run `binary -- sh -c SCRIPT` with data directory `data`, to the end.
fn run_script(binary_path: &str, data: &Path, script: &str) -> Output {
    binary(binary_path, data)
        .args(["--", "sh", "-c", script])
        .timeout(TIMEOUT)
        .output()
        .expect("run the chapter binary")
}

/// The default image's rootfs in `data`, built by running chapter 1 once.
fn built_image(data: &Path) -> PathBuf {
    let output = run_script(CH01, data, "true");
    assert!(output.status.success(), "{}", stderr(&output));
    data.join("images/default/rootfs")
}

/// A copy of `image` at `to` (`cp -a`), to make evil: `to`.
fn copy_of(image: &Path, to: &Path) -> PathBuf {
    let status = Command::new("cp").arg("-a").arg(image).arg(to).status();
    assert!(status.expect("cp -a").success());
    to.to_path_buf()
}

/// The names in a host directory, to compare before and after.
fn names(dir: &Path) -> Vec<String> {
    nutshell::rootfs::list_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_image_whose_dev_proc_or_sys_points_out_of_the_root_is_refused() {
    require_root();
    let data = data_dir();
    let image = built_image(data.path());
    let (host_root, host_etc) = (names(Path::new("/")), names(Path::new("/etc")));
    // The chapters that mount on each: proc from chapter 2, dev from 3, sys from 4.
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("proc", &CHAPTERS[1..]),
        ("dev", &CHAPTERS[2..]),
        ("sys", &CHAPTERS[3..]),
    ];
    for (entry, chapters) in cases {
        for target in ["/", "/etc", "../../.."] {
            let rootfs = copy_of(&image, &data.path().join(format!("evil-{entry}")));
            fs::remove_dir(rootfs.join(entry)).expect("remove the image's dir");
            std::os::unix::fs::symlink(target, rootfs.join(entry)).expect("symlink");
            for (binary_path, name) in chapters {
                let output = binary(binary_path, data.path())
                    .arg("--rootfs")
                    .arg(&rootfs)
                    .args(["--", "true"])
                    .timeout(TIMEOUT)
                    .output()
                    .expect("run");
                let err = stderr(&output);
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{name} /{entry} -> {target}: {err}"
                );
                assert_eq!(err.lines().count(), 1, "{name}: {err}");
                assert!(err.starts_with(&format!("{name}: error: ")), "{err}");
                assert!(
                    err.ends_with(&format!(
                        "the root's /{entry} is a symlink (to {target}): nutshell mounts only on real directories inside the root, since a mount through a link could land on the host\n"
                    )),
                    "{name} /{entry} -> {target}: {err}"
                );
            }
            fs::remove_dir_all(&rootfs).expect("remove the evil rootfs");
        }
    }
    assert_eq!(
        names(Path::new("/")),
        host_root,
        "something was made in the host's /"
    );
    assert_eq!(
        names(Path::new("/etc")),
        host_etc,
        "something was made in the host's /etc"
    );
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_symlink_deeper_in_a_mount_target_is_refused_by_the_container_itself() {
    require_root();
    let data = data_dir();
    let image = built_image(data.path());
    // /var/run -> / in the image: a tmpfs meant for /var/run/x would land on the host's
    // /x. The up-front check looks at /var only; the first process's openat2 refuses it.
    let rootfs = copy_of(&image, &data.path().join("deep"));
    fs::create_dir_all(rootfs.join("var")).expect("mkdir var");
    std::os::unix::fs::symlink("/", rootfs.join("var/run")).expect("symlink");
    let mut spec = nutshell::spec::chapters::for_chapter(
        4,
        &rootfs,
        nutshell::spec::Program::Args(vec!["true".into()]),
    );
    spec.mounts.push(nutshell::spec::Mount::new(
        "/var/run/nutshell-deep",
        nutshell::spec::MountKind::Tmpfs,
        Default::default(),
    ));
    let file = data.path().join("spec.json");
    fs::write(&file, serde_json::to_string(&spec).expect("json")).expect("write spec");
    let output = binary(env!("CARGO_BIN_EXE_nutshell"), data.path())
        .arg("run-spec")
        .arg(&file)
        .timeout(TIMEOUT)
        .output()
        .expect("run-spec");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/var/run/nutshell-deep")
            && err.contains("ELOOP")
            && err.contains("a symlink on the way"),
        "{err}"
    );
    assert!(
        !Path::new("/nutshell-deep").exists(),
        "the mount point was made on the host"
    );
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_fd_the_caller_left_open_does_not_reach_the_container() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    let marker = format!("nutshell-fd-{}", std::process::id());
    for (binary_path, name) in CHAPTERS {
        // fd 7 is the host's / in the caller, as `(exec 7</; chNN ...)` leaves it.
        let inside = format!(
            "if true <&7; then echo LEAKED; touch /proc/self/fd/7/tmp/{marker}; else echo clo''sed; fi"
        );
        let output = Command::new("sh")
            .args([
                "-c",
                "exec 7</ && exec \"$0\" -- sh -c \"$1\"",
                binary_path,
                &inside,
            ])
            .env("NUTSHELL_DATA", data.path())
            .env("NUTSHELL_ROOT", state_dir(data.path()))
            .output()
            .expect("run with fd 7 open");
        let text = stdout(&output);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        // The chapters echo the command: the quotes keep its text from matching.
        assert!(text.lines().any(|l| l == "closed"), "{name}: {text}");
        assert!(
            !Path::new("/tmp").join(&marker).exists(),
            "{name} wrote the host's /tmp"
        );
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_containers_first_process_has_the_containers_environment_and_no_host_binary() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    // Chapter 2 has no PID namespace: its first process is the command itself.
    let output = binary(CH02, data.path())
        .env("S", "hunter2")
        .args(["--", "sh", "-c", "tr '\\0' '\\n' </proc/self/environ"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("hunter2"), "{}", stdout(&output));
    for (binary_path, name) in &CHAPTERS[2..] {
        let before = fs::read(binary_path).expect("read the chapter binary");
        let output = binary(binary_path, data.path())
            .env("S", "hunter2")
            .args([
                "--",
                "sh",
                "-c",
                "tr '\\0' '\\n' </proc/1/environ; echo; readlink /proc/1/exe; echo x >>/proc/1/exe && echo WRO''TE",
            ])
            .timeout(TIMEOUT)
            .output()
            .expect("run");
        let text = stdout(&output);
        assert!(
            !text.contains("hunter2"),
            "{name}: the caller's environment is in PID 1's:\n{text}"
        );
        assert!(text.contains("PATH=/usr/local/sbin:"), "{name}: {text}");
        assert!(
            text.lines().any(|l| l.starts_with("/memfd:nutshell-init")),
            "{name}: PID 1 is not the sealed copy:\n{text}"
        );
        assert!(
            !text.lines().any(|l| l == "WROTE"),
            "{name}: PID 1's binary could be written"
        );
        assert_eq!(
            fs::read(binary_path).expect("read"),
            before,
            "{name}'s binary changed"
        );
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn root_in_a_chapter_4_container_cannot_undo_its_protections() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    // The chapters echo the command: the quotes keep its text from matching.
    let script = "grep -e CapEff -e NoNewPrivs /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; \
        umount /proc/sys && echo UN''MOUNTED; \
        mount -o remount,rw /sys && echo RE''MOUNTED; \
        mkdir /tmp/c && mount -t cgroup -o pids none /tmp/c && echo MOUN''TED; \
        touch /sys/fs/cgroup 2>&1; echo > /proc/sys/kernel/core_pattern 2>&1; true";
    for (binary_path, name, caps) in [
        (CH04, "ch04", "00000000a00425fb"),
        (CH05, "ch05", "00000000a00425fb"),
        (CH06, "ch06", "00000000a80425fb"),
        (CH07, "ch07", "00000000a80425fb"),
    ] {
        let output = run_script(binary_path, data.path(), script);
        let text = stdout(&output) + &stderr(&output);
        assert!(output.status.success(), "{name}: {text}");
        assert!(text.contains(&format!("CapEff:\t{caps}")), "{name}: {text}");
        assert!(text.contains("NoNewPrivs:\t1"), "{name}: {text}");
        // 0, 1 and 2, and the one ls opens to list the directory.
        assert!(text.contains("\n0 1 2 3 \n"), "{name}: {text}");
        for done in ["UNMOUNTED", "REMOUNTED", "MOUNTED"] {
            assert!(!text.lines().any(|l| l == done), "{name}: {done}:\n{text}");
        }
        // /sys/fs/cgroup is read-only sysfs in chapter 4, and a read-only view of the
        // container's cgroups from chapter 5 on.
        assert!(
            text.contains("touch: /sys/fs/cgroup: Read-only file system"),
            "{name}: {text}"
        );
        assert!(
            text.contains("can't create /proc/sys/kernel/core_pattern: Read-only file system"),
            "{name}: {text}"
        );
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_limited_container_cannot_raise_its_own_limits() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    let layout = nutshell::cgroups::detect_host(Path::new("/proc")).expect("layout");
    let v1 = layout
        .mount_for("pids")
        .is_some_and(|m| m.version == nutshell::cgroups::CgroupVersion::V1);
    let (pids, memory) = if v1 {
        (
            "/sys/fs/cgroup/pids/pids.max",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    } else {
        ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/memory.max")
    };
    let script = format!(
        "echo 5000 > {pids}; echo -1 > {memory}; \
         mkdir /tmp/a && mount -t cgroup -o pids none /tmp/a && echo 5000 > /tmp/a/pids.max; \
         echo pids=$(cat {pids})"
    );
    let output = binary(CH05, data.path())
        .args([
            "--pids-limit",
            "20",
            "--memory",
            "64M",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .timeout(TIMEOUT)
        .output()
        .expect("run");
    let text = stdout(&output) + &stderr(&output);
    assert!(text.contains("pids=20"), "the limit moved:\n{text}");
    assert!(text.matches("Read-only file system").count() >= 2, "{text}");
    assert!(text.contains("mount: permission denied"), "{text}");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_sigint_to_a_chapter_binary_run_in_the_background_reaches_the_command() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    for (binary_path, name) in CHAPTERS {
        // A non-interactive shell starts a background job with SIGINT ignored; the
        // command inside must still get it, and die of it: 128 + 2.
        let script =
            "\"$0\" -- sleep 30 & job=$!; sleep 1; kill -INT $job; wait $job; echo status=$?";
        let output = Command::new("sh")
            .args(["-c", script, binary_path])
            .env("NUTSHELL_DATA", data.path())
            .env("NUTSHELL_ROOT", state_dir(data.path()))
            .output()
            .expect("run in the background");
        assert!(
            stdout(&output).contains("status=130"),
            "{name}: {}{}",
            stdout(&output),
            stderr(&output)
        );
    }
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_closed_stdout_mid_run_ends_the_run_quietly_and_tears_the_container_down() {
    require_root();
    let data = data_dir();
    built_image(data.path());
    let name = common::unique_name("epipe");
    // Chapter 5's tour prints while its container holds a cgroup, mounts and state.
    let (code, err) =
        run_into_a_closed_pipe(CH05, data.path(), &["--name", &name, "--seconds", "1"]);
    assert_eq!(code, Some(141), "{err}");
    assert_eq!(err, "");
    assert_nothing_left(data.path());
    assert_no_cgroup_left(&name);
}
