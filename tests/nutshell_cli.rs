//! The `nutshell` binary: the default image and `doctor`.

mod common;

use common::{binary, data_dir, run_into_a_closed_pipe, stderr, stdout};

const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");

#[test]
fn image_default_builds_once_then_reuses() {
    let data = data_dir();
    let first = binary(NUTSHELL, data.path())
        .args(["image", "default", "--from", "host"])
        .output()
        .expect("run");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("default image built: "),
        "{}",
        stdout(&first)
    );
    let rootfs = data.path().join("images/default/rootfs");
    assert!(rootfs.join("bin/sh").is_file());
    let manifest =
        std::fs::read_to_string(data.path().join("images/default/image.json")).expect("image.json");
    assert!(manifest.contains("\"source\": \"host\""), "{manifest}");

    let second = binary(NUTSHELL, data.path())
        .args(["image", "default"])
        .output()
        .expect("run");
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).starts_with("default image already built: "),
        "{}",
        stdout(&second)
    );
}

#[test]
fn image_path_names_the_data_directory() {
    let data = data_dir();
    let output = binary(NUTSHELL, data.path())
        .args(["image", "path"])
        .output()
        .expect("run");
    assert_eq!(
        stdout(&output).trim(),
        data.path().join("images/default").display().to_string()
    );
}

#[test]
fn a_damaged_image_is_reported_with_the_fix() {
    let data = data_dir();
    std::fs::create_dir_all(data.path().join("images/default/rootfs")).expect("mkdir");
    let output = binary(NUTSHELL, data.path())
        .args(["image", "default"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("incomplete or damaged") && err.contains("--rebuild"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_failed_build_leaves_nothing_behind() {
    let data = data_dir();
    let empty_host = data_dir();
    let store = nutshell::image::ImageStore::new(data.path());
    let err = store
        .build_default(nutshell::image::Source::Auto, empty_host.path(), false)
        .expect_err("nothing to build from");
    assert!(
        err.to_string().contains("apt-get install busybox-static"),
        "{err}"
    );
    // The store's build lock stays: removing a lock file others may hold would let two
    // builders lock two different files.
    let left: Vec<_> = std::fs::read_dir(data.path().join("images"))
        .expect("images dir")
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name != ".build.lock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn doctor_reports_every_namespace_the_cgroup_layout_and_the_chapters() {
    let data = data_dir();
    let output = binary(NUTSHELL, data.path())
        .arg("doctor")
        .output()
        .expect("run doctor");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for ns in nutshell::namespaces::Namespace::ALL {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&ns.to_string())),
            "no line for {ns}:\n{text}"
        );
    }
    let layout =
        nutshell::cgroups::layout::detect_host(std::path::Path::new("/proc")).expect("detect");
    assert!(
        text.contains(&format!("cgroups                     {}", layout.layout)),
        "{text}"
    );
    assert!(
        text.contains("not built yet: `nutshell image default`"),
        "{text}"
    );
    let verdict = if nix::unistd::geteuid().is_root() {
        "ready"
    } else {
        "cannot run here: needs root"
    };
    assert!(
        text.contains(&format!("ch01-chroot       {verdict}")),
        "{text}"
    );
    // Every chapter is written: the last one gets a verdict like the first.
    assert!(
        text.contains(&format!("ch12-scheduler    {verdict}")),
        "{text}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn doctor_as_root_creates_every_namespace_and_an_overlay() {
    common::require_root();
    let data = data_dir();
    let report = nutshell::doctor::examine(std::path::Path::new("/proc"), data.path());
    for (ns, probe) in &report.namespaces {
        assert_eq!(*probe, nutshell::doctor::Probe::Works, "{ns}");
    }
    assert_eq!(report.overlay, nutshell::doctor::Probe::Works);
    // The probe's mount lived in a child's private mount namespace: none is left here.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mountinfo.contains("nutshell-doctor-"),
        "the overlay probe leaked a mount"
    );
}

#[test]
fn a_reader_that_goes_away_ends_it_quietly_as_sigpipe_would() {
    let data = data_dir();
    let (code, err) = run_into_a_closed_pipe(NUTSHELL, data.path(), &["doctor"]);
    // 128 + SIGPIPE, and no panic message: what `doctor | head` leaves.
    assert_eq!(code, Some(141), "{err}");
    assert_eq!(err, "");
}

#[test]
#[ignore = "needs root: run `just test-all` (it runs the doctor as nobody)"]
fn doctor_as_a_normal_user_probes_in_a_user_namespace_and_finds_the_rootless_chapters() {
    common::require_root();
    let data = common::data_dir_for_nobody();
    // Its own TMPDIR, to see that the overlay probe's scratch dir goes.
    let scratch = data.path().join("tmp");
    std::fs::create_dir(&scratch).expect("mkdir tmp");
    std::os::unix::fs::chown(&scratch, Some(65534), Some(65534)).expect("chown tmp");
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            NUTSHELL,
            "doctor",
        ])
        .env("NUTSHELL_DATA", data.path())
        .env("TMPDIR", &scratch)
        .output()
        .expect("run doctor as nobody");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .expect("read tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the doctor left {left:?}");
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(
        text.contains("namespaces (unshare(2) in a child, with a user namespace of its own):"),
        "{text}"
    );
    for line in [
        "    mnt                       yes",
        "  overlayfs mount             yes",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    for (chapter, verdict) in [
        ("ch05-cgroups", "cannot run here: needs root"),
        ("ch06-user", "ready, rootless (limits need root)"),
        ("ch07-overlayfs", "ready, rootless (limits need root)"),
    ] {
        assert!(
            text.contains(&format!("  {chapter:<18}{verdict}\n")),
            "{chapter}: {text}"
        );
    }
    assert!(
        text.contains("the chapters before ch06-user need root, the ones from it on run rootless; run `cargo run -- doctor` as root"),
        "{text}"
    );
}
