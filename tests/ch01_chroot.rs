//! ch01-chroot: the tour, the escape, and what chroot leaves shared, run for real.

mod common;

use std::fs;
use std::path::Path;

use common::{
    assert_help_mentions, assert_missing_rootfs_refused, binary, data_dir, require_root,
    snapshot_settings, stderr, stderr_as_nobody, stdout,
};

const CH01: &str = env!("CARGO_BIN_EXE_ch01-chroot");

#[test]
#[ignore = "needs root: run `just test-all`"]
fn tour_lists_the_new_root_and_pwd_is_slash() {
    require_root();
    let data = data_dir();
    let output = binary(CH01, data.path()).output().expect("run ch01-chroot");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("built the default image (busybox)"),
        "{}",
        stderr(&output)
    );
    snapshot_settings(data.path()).bind(|| insta::assert_snapshot!("ch01_tour", stdout(&output)));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn escape_reaches_the_hosts_real_root_and_cleans_up() {
    require_root();
    let data = data_dir();
    let output = binary(CH01, data.path())
        .arg("--escape")
        .output()
        .expect("run ch01-chroot --escape");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);

    // What the escaped process listed is exactly the host's root, which the rootfs is not.
    let host_root = nutshell::rootfs::list_dir(Path::new("/"))
        .expect("list /")
        .join(" ");
    let outside = text
        .lines()
        .find_map(|l| l.strip_prefix("[outside] / holds: "))
        .expect("an [outside] line");
    assert_eq!(outside, host_root);
    let rootfs = data.path().join("images/default/rootfs");
    assert_ne!(
        nutshell::rootfs::list_dir(&rootfs)
            .expect("list rootfs")
            .join(" "),
        host_root
    );
    // The scratch directory the escape made inside the rootfs is gone.
    let leftovers: Vec<String> = nutshell::rootfs::list_dir(&rootfs)
        .expect("list rootfs")
        .into_iter()
        .filter(|n| n.starts_with(".nutshell"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mut settings = snapshot_settings(data.path());
    settings.add_filter(r"\.nutshell-escape-\d+", ".nutshell-escape-[PID]");
    settings.add_filter(r#"chdir\("\.\."\) x \d+"#, r#"chdir("..") x [N]"#);
    settings.add_filter(
        r"\[outside\] / holds: .*",
        "[outside] / holds: [THE HOST'S / — checked above]",
    );
    settings.bind(|| insta::assert_snapshot!("ch01_escape", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_hostname_inside_is_the_hosts() {
    require_root();
    let data = data_dir();
    let output = binary(CH01, data.path())
        .args(["--", "hostname"])
        .output()
        .expect("run hostname");
    assert!(output.status.success(), "{}", stderr(&output));
    let host = nix::sys::utsname::uname()
        .expect("uname")
        .nodename()
        .to_string_lossy()
        .into_owned();
    assert_eq!(stdout(&output).lines().last(), Some(host.as_str()));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_hosts_processes_can_still_be_signalled() {
    require_root();
    let data = data_dir();
    // kill -0 only checks that the process exists and may be signalled.
    let host_pid = std::process::id().to_string();
    let output = binary(CH01, data.path())
        .args(["--", "kill", "-0", &host_pid])
        .output()
        .expect("run kill -0");
    assert!(
        output.status.success(),
        "the chrooted process could not see pid {host_pid}: {}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_commands_exit_status_is_passed_on() {
    require_root();
    let data = data_dir();
    let output = binary(CH01, data.path())
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .expect("run sh");
    assert_eq!(output.status.code(), Some(3));
    let output = binary(CH01, data.path())
        .args(["--", "sh", "-c", "kill -KILL $$"])
        .output()
        .expect("run sh");
    assert_eq!(output.status.code(), Some(128 + 9));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_given_rootfs_is_used_and_the_default_image_is_not_built() {
    require_root();
    let data = data_dir();
    let image = data_dir();
    let rootfs = image.path().join("rootfs");
    nutshell::image::default::assemble(&rootfs, nutshell::image::Source::Busybox, Path::new("/"))
        .expect("assemble");
    fs::write(rootfs.join("etc/motd"), "hello from a given rootfs\n").expect("write motd");
    let output = binary(CH01, data.path())
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["--", "cat", "/etc/motd"])
        .output()
        .expect("run cat");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).ends_with("hello from a given rootfs\n"));
    assert!(
        !data.path().join("images").exists(),
        "the default image was built although --rootfs was given"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_missing_rootfs_is_one_clear_line() {
    require_root();
    assert_missing_rootfs_refused(CH01, "ch01-chroot");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootfs_that_is_a_file_is_refused() {
    require_root();
    let data = data_dir();
    let file = data.path().join("not-a-dir");
    fs::write(&file, "").expect("write");
    let output = binary(CH01, data.path())
        .arg("--rootfs")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is not a directory"),
        "{}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_command_missing_from_the_rootfs_is_named() {
    require_root();
    let data = data_dir();
    let output = binary(CH01, data.path())
        .args(["--", "no-such-program"])
        .output()
        .expect("run");
    // 127, as a shell says of a command it cannot find.
    assert_eq!(output.status.code(), Some(127));
    let err = stderr(&output);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ch01-chroot: error:"))
        .collect();
    assert_eq!(
        errors,
        [
            "ch01-chroot: error: run `no-such-program`: exec no-such-program failed in the container process: ENOENT: No such file or directory (no such program in the container (looked up in its PATH), or its ELF interpreter is missing from the image)"
        ]
    );
    let text = format!(
        "{}\nexit status {}",
        errors.join("\n"),
        output.status.code().unwrap_or(-1)
    );
    snapshot_settings(data.path()).bind(|| insta::assert_snapshot!("ch01_no_such_program", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_told_it_needs_root() {
    require_root();
    let data = data_dir();
    let err = stderr_as_nobody(CH01, data.path());
    assert!(err.starts_with("ch01-chroot: error: ch01-chroot needs root: chroot(2) needs the CAP_SYS_CHROOT capability"), "{err}");
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(CH01, &["--rootfs", "--escape", "[CMD]..."]);
}
