//! ch06-user, for real through the chapter binary: root's container mapped to host uid
//! 2000000000 (the nutshell range), the break-it demo refused on every host action, and rootless runs as `nobody`
//! — with only its own ids, and with newuidmap and an /etc/subuid range.
//!
//! The pure parts (which maps, who writes them, every refusal) are tested in
//! tests/userns_lib.rs.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use common::{
    assert_help_mentions, assert_missing_rootfs_refused, assert_no_cgroup_left,
    assert_snapshot_for_layout, data_dir, data_dir_for_nobody, require_root, run_as_nobody,
    run_named, snapshot_settings, stderr, stdout,
};

const CH06: &str = env!("CARGO_BIN_EXE_ch06-user");

/// Run the binary with `args` and a name of its own to the end; return its output and
/// the name (its cgroup's too).
fn run(data: &Path, args: &[&str]) -> (Output, String) {
    run_named(CH06, data, "ch06", args)
}

/// The snapshot settings of this chapter: pids and namespace inode numbers vary.
fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"user:\[\d+\]", "user:[INODE]");
    settings
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH06,
        &["--break-it", "--plan", "--uid-map", "--gid-map", "rootless"],
    );
}

#[test]
fn a_malformed_map_is_refused_before_anything_is_made() {
    let data = data_dir();
    let output = common::binary(CH06, data.path())
        .args(["--uid-map", "0:100000"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "ch06-user: error: --uid-map \"0:100000\": expected INSIDE:OUTSIDE:COUNT, e.g. 0:100000:65536\n"
    );
    assert!(!data.path().join("images").exists());
}

#[test]
fn a_missing_rootfs_is_refused() {
    assert_missing_rootfs_refused(CH06, "ch06-user");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn root_inside_is_the_nutshell_range_outside() {
    require_root();
    let data = data_dir();
    let (output, pid) = run(data.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("\n$ id\nuid=0(root) gid=0(root)\n"), "{text}");
    assert!(
        text.contains(
            "[host]      uid=2000000000 gid=2000000000 groups=(none) effective capabilities: 14 (00000000a80425fb)"
        ),
        "{text}"
    );
    // The image belongs to the host's root, who is not mapped.
    assert!(
        text.contains("65534:65534 -rw-r--r-- /etc/passwd"),
        "{text}"
    );
    assert_no_cgroup_left(&pid);
    settings(data.path()).bind(|| insta::assert_snapshot!("ch06_tour", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_plan_shows_the_maps_and_the_mounts_for_a_user_namespace() {
    require_root();
    let data = data_dir();
    let (output, _) = run(data.path(), &["--plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("bind /dev/null on"), "{text}");
    assert!(!text.contains("mknod"), "{text}");
    assert_snapshot_for_layout(settings(data.path()), "ch06_plan", &text);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn root_may_choose_the_host_range() {
    require_root();
    let data = data_dir();
    let (output, pid) = run(
        data.path(),
        &[
            "--uid-map",
            "0:200000:1000",
            "--pids-limit",
            "64",
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/cgroup",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    // The gid map follows the uid map when only --uid-map is given.
    let maps: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("0 "))
        .collect();
    assert_eq!(
        maps.iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        ["0 200000 1000", "0 200000 1000"],
        "{text}"
    );
    assert!(text.contains("[host]      uid=200000 gid=200000"), "{text}");
    // In its cgroup namespace, the container's cgroup is its root.
    assert!(
        text.lines()
            .any(|l| l.starts_with("0::/") || l.ends_with(":/")),
        "{text}"
    );
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_uptime_offset_works_in_the_user_namespace() {
    require_root();
    let data = data_dir();
    let (output, _) = run(
        data.path(),
        &["--uptime-offset", "86400", "--", "cat", "/proc/uptime"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let uptime: f64 = text
        .split("$ cat /proc/uptime\n")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {text}"));
    assert!(uptime >= 86400.0, "{text}");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn break_it_every_host_action_is_refused() {
    require_root();
    let data = data_dir();
    let (output, _) = run(data.path(), &["--break-it"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for allowed in [
        "sethostname(\"changed\"): allowed",
        "mount a tmpfs on /tmp: allowed",
    ] {
        assert!(text.contains(allowed), "{allowed}: {text}");
    }
    for refused in [
        "mknod /tmp/sda b 8 0 (the host's first disk): refused, EPERM",
        "open /etc/passwd for writing: refused, EACCES",
        "read /etc/shadow: refused, EACCES",
        "clock_settime(CLOCK_REALTIME) (set the wall clock): refused, EPERM",
    ] {
        assert!(text.contains(refused), "{refused}: {text}");
    }
    // EPERM where the kernel can load modules, ENOSYS where it cannot at all.
    let module_refused = ["EPERM", "ENOSYS"].iter().any(|errno| {
        text.contains(&format!(
            "init_module (load a kernel module): refused, {errno}"
        ))
    });
    assert!(module_refused, "{text}");
    assert!(text.contains("NOT ESCAPED"), "{text}");
    // init_module's answer depends on the kernel: the development machines' has no
    // module support (ENOSYS), the layout guests' Debian kernel has (EPERM), and each
    // recorded its own snapshot.
    let name = if Path::new("/proc/modules").exists() {
        "ch06_break_it_modules"
    } else {
        "ch06_break_it"
    };
    settings(data.path()).bind(|| insta::assert_snapshot!(name, text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn break_it_refuses_to_run_with_the_hosts_root_mapped() {
    require_root();
    let data = data_dir();
    let (output, _) = run(data.path(), &["--uid-map", "0:0:1", "--break-it"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with(
            "ch06-user: error: --break-it with the host's root mapped into the container"
        ),
        "{}",
        stderr(&output)
    );
    assert!(!data.path().join("images").exists());
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user and its files)"]
fn rootless_with_only_its_own_ids() {
    require_root();
    let data = data_dir_for_nobody();
    let output = run_as_nobody(
        CH06,
        data.path(),
        "",
        "",
        &[
            "--uptime-offset",
            "3600",
            "--",
            "sh",
            "-c",
            "id; cat /proc/self/uid_map; cat /proc/self/setgroups; hostname; touch /tmp/rootless-was-here; stat -c %u /tmp/rootless-was-here; awk '{print ($1 >= 3600)}' /proc/uptime",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("(rootless)"), "{text}");
    assert!(text.contains("uid=0(root) gid=0(root)"), "{text}");
    assert!(
        text.contains("written by: nutshell, to /proc/PID/uid_map and gid_map, after \"deny\""),
        "{text}"
    );
    assert!(
        text.contains("note:    only the uid and gid of user nobody (65534) are mapped"),
        "{text}"
    );
    assert!(
        text.contains("cgroup:  none: a normal user can make cgroups only"),
        "{text}"
    );
    assert!(text.contains("network: the host's. A veth pair"), "{text}");
    assert!(text.contains("\ndeny\nnutshell\n0\n1\n"), "{text}");
    assert!(text.contains("[host]      uid=65534 gid=65534"), "{text}");
    // A file root made inside belongs, on the host, to the user who ran the container.
    let made = data
        .path()
        .join("images/default/rootfs/tmp/rootless-was-here");
    assert_eq!(
        std::fs::metadata(&made)
            .expect("the file made inside")
            .uid(),
        65534
    );
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user and its files)"]
fn rootless_tour_as_nobody() {
    require_root();
    let data = data_dir_for_nobody();
    let output = run_as_nobody(CH06, data.path(), "", "", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("[host]      uid=65534 gid=65534"), "{text}");
    assert!(text.contains("0:0 -rw-r--r-- /etc/passwd"), "{text}");
    settings(data.path()).bind(|| insta::assert_snapshot!("ch06_rootless_tour", text));
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user and its files)"]
fn rootless_with_newuidmap_maps_its_subordinate_ids() {
    require_root();
    let data = data_dir_for_nobody();
    let output = run_as_nobody(
        CH06,
        data.path(),
        "nobody:200000:65536\n",
        "65534:300000:65536\n",
        &[
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned; chown 1000:1000 /tmp/owned && echo chowned",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("written by: /usr/bin/newuidmap and /usr/bin/newgidmap"),
        "{text}"
    );
    let maps: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("         "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        maps,
        ["0 65534 1", "1 200000 65535", "0 65534 1", "1 300000 65535"],
        "{text}"
    );
    assert!(text.contains("chowned"), "{text}");
    // Container uid 1000 is host uid 200000 + 999.
    let owned = data.path().join("images/default/rootfs/tmp/owned");
    let meta = std::fs::metadata(&owned).expect("the file chowned inside");
    assert_eq!((meta.uid(), meta.gid()), (200_999, 300_999));
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user and its files)"]
fn rootless_cgroup_limits_get_a_clear_error() {
    require_root();
    let data = data_dir_for_nobody();
    let output = run_as_nobody(
        CH06,
        data.path(),
        "",
        "",
        &["--memory", "64M", "--", "true"],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("ch06-user: error: --cpus, --memory and --pids-limit need a cgroup, and a normal user can make cgroups only"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!data.path().join("images").exists());
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user and its files)"]
fn rootless_ids_beyond_its_own_are_refused_without_subordinate_ranges() {
    require_root();
    let data = data_dir_for_nobody();
    let output = run_as_nobody(
        CH06,
        data.path(),
        "",
        "",
        &["--uid-map", "0:100000:65536", "--", "true"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "ch06-user: error: uid map 0:100000:65536 uses host uids 100000-165535, which user nobody (65534) does not own: only its own uid 65534, and what /etc/subuid gives it (nothing)\n"
    );
    assert!(!data.path().join("images").exists());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootfs_the_containers_root_cannot_reach_is_refused_up_front() {
    require_root();
    let outer = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        outer.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod 0700");
    let data = outer.path().join("data");
    let (output, pid) = run(&data, &["--", "true"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).lines().last().expect("an error"),
        format!(
            "ch06-user: error: {} is not searchable by the container's root (host uid 2000000000, gid 2000000000), which must reach {}/images/default/rootfs through it: chmod o+x {}, or keep images and containers somewhere others may enter (NUTSHELL_DATA)",
            outer.path().display(),
            data.display(),
            outer.path().display()
        )
    );
    assert_no_cgroup_left(&pid);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn no_user_namespace_allowed_gets_a_reason_not_just_an_errno() {
    require_root();
    let data = data_dir();
    // A user namespace of the test's own whose limit for new user namespaces is 0: the
    // host's setting is never touched.
    let script = r#"echo 0 > /proc/sys/user/max_user_namespaces && exec "$@""#;
    let child = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            script,
            "sh",
            CH06,
            "--",
            "true",
        ])
        .env("NUTSHELL_DATA", data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run unshare");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.lines().last().is_some_and(|l| l.ends_with(
            "ENOSPC: No space left on device (no user namespace may be made: user.max_user_namespaces is 0 or used up (sysctl user.max_user_namespaces))"
        )),
        "{err}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user's files)"]
fn nutshell_clean_as_a_normal_user_removes_what_its_containers_gave_to_subordinate_ids() {
    require_root();
    let data = data_dir_for_nobody();
    let subids = "nobody:300000:65536\n";
    // Root inside gives a directory to its uid 1000, host uid 300999, and closes it: its
    // user, nobody, can neither list nor empty it from outside.
    let made = run_as_nobody(
        CH06,
        data.path(),
        subids,
        subids,
        &[
            "--",
            "sh",
            "-c",
            "mkdir /given && touch /given/file && chown -R 1000:1000 /given && chmod 700 /given",
        ],
    );
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let given = data.path().join("images/default/rootfs/given");
    assert_eq!(std::fs::metadata(&given).expect("given").uid(), 300_999);
    let nutshell = env!("CARGO_BIN_EXE_nutshell");
    let cleaned = run_as_nobody(nutshell, data.path(), subids, subids, &["clean"]);
    let text = stdout(&cleaned);
    assert_eq!(cleaned.status.code(), Some(0), "{text}{}", stderr(&cleaned));
    assert!(
        text.contains(&format!("removed {}\n", data.path().display())),
        "{text}"
    );
    assert!(!data.path().exists(), "{} is left", data.path().display());
}
