//! ch07-overlayfs, for real through the chapter binary: root's container on idmapped
//! lowers, the rootless one with userxattr, stacked layers, --keep-upper, the break-it
//! demo without an overlay, and bad input. Every privileged test checks that nothing is
//! left: no container dir (unless kept), no mount.
//!
//! The library (option strings, copy-up, whiteouts, opaque dirs, removal) is tested in
//! tests/overlay_lib.rs.

mod common;

use std::os::unix::fs::{MetadataExt, chown};
use std::path::Path;
use std::process::Output;

use common::{
    assert_help_mentions, assert_missing_rootfs_refused, assert_nothing_left,
    assert_snapshot_for_layout, data_dir, require_root, snapshot_settings, stderr, stdout,
};

const CH07: &str = env!("CARGO_BIN_EXE_ch07-overlayfs");

fn run(data: &Path, args: &[&str]) -> Output {
    common::binary(CH07, data)
        .args(args)
        .output()
        .expect("run ch07-overlayfs")
}

/// The snapshot settings of this chapter: pids and digests vary.
fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"nutshell-\d+", "nutshell-[PID]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(r"\(fd \d+\)", "(fd [N])");
    settings
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH07,
        &[
            "--keep-upper",
            "--layer",
            "--plan",
            "--break-it",
            "rootless",
        ],
    );
}

#[test]
fn a_missing_rootfs_is_refused() {
    assert_missing_rootfs_refused(CH07, "ch07-overlayfs");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn writes_land_in_the_upper_and_the_image_is_unchanged() {
    require_root();
    let data = data_dir();
    let output = run(data.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for line in [
        // The top layer wins.
        "$ cat /etc/motd\nfrom the top layer (lower 1)\n",
        "  whiteout   etc/group   (character device 0/0: deleted from the lower)",
        "  copied up  etc/passwd   (full copy of the lower file,",
        "  added      root/hello   (new file, 6 bytes)",
        "  opaque     usr/sbin   (directory marked opaque: replaces the lower one)",
        "The image, hashed before and after: unchanged",
        "Removed the upper and work dirs with the container.",
    ] {
        assert!(text.contains(line), "{line}\n---\n{text}");
    }
    // The image still has what the container deleted.
    let rootfs = data.path().join("images/default/rootfs");
    assert!(rootfs.join("etc/group").exists());
    assert!(rootfs.join("usr/sbin").read_dir().expect("sbin").count() > 1);
    assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch07_tour", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn keep_upper_leaves_the_upper_dir_with_the_changes() {
    require_root();
    let data = data_dir();
    let output = run(
        data.path(),
        &[
            "--keep-upper",
            "--",
            "sh",
            "-c",
            "echo kept > /kept; rm /bin/ls",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let upper = text
        .lines()
        .find_map(|l| l.strip_prefix("Kept the upper dir: "))
        .unwrap_or_else(|| panic!("no kept upper in:\n{text}"));
    let upper = Path::new(upper);
    assert_eq!(
        std::fs::read_to_string(upper.join("kept")).expect("kept file"),
        "kept\n"
    );
    let whiteout = std::fs::symlink_metadata(upper.join("bin/ls")).expect("whiteout");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    assert_eq!(whiteout.rdev(), 0);
    // Owned by the container's root, as the host knows it.
    assert_eq!(
        std::fs::metadata(upper.join("kept")).expect("kept").uid(),
        2_000_000_000
    );
    let container = upper.parent().expect("container dir");
    let mut left: Vec<String> = std::fs::read_dir(container)
        .expect("container dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["upper"], "only the upper is kept");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn layers_given_stack_over_the_image_leftmost_on_top() {
    require_root();
    let data = data_dir();
    let layers = tempfile::tempdir().expect("temp dir");
    for (name, text) in [("top", "top\n"), ("bottom", "bottom\n")] {
        let etc = layers.path().join(name).join("etc");
        std::fs::create_dir_all(&etc).expect("layer");
        std::fs::write(etc.join("which"), text).expect("file");
        std::fs::write(etc.join(format!("only-in-{name}")), "").expect("file");
    }
    let top = layers.path().join("top");
    let bottom = layers.path().join("bottom");
    let output = run(
        data.path(),
        &[
            "--layer",
            top.to_str().expect("utf-8"),
            "--layer",
            bottom.to_str().expect("utf-8"),
            "--",
            "sh",
            "-c",
            "cat /etc/which; ls /etc",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("\ntop\n"), "{text}");
    for file in ["only-in-top", "only-in-bottom", "passwd"] {
        assert!(text.contains(file), "{file}: {text}");
    }
    assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_plan_attaches_idmapped_lowers_then_mounts_the_overlay() {
    require_root();
    let data = data_dir();
    let output = run(data.path(), &["--plan"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("make an idmapped copy of"), "{text}");
    assert!(text.contains("attach idmapped tree 1 (a view of"), "{text}");
    assert!(text.contains("userxattr"), "{text}");
    assert_nothing_left(data.path());
    assert_snapshot_for_layout(settings(data.path()), "ch07_plan", &text);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn break_it_without_an_overlay_the_image_changes() {
    require_root();
    let data = data_dir();
    let output = run(data.path(), &["--break-it"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("can't open '/etc/group': No such file or directory"),
        "{text}"
    );
    assert!(
        text.contains("The image copy, hashed before and after: CHANGED"),
        "{text}"
    );
    assert!(data.path().join("images/default/rootfs/etc/group").exists());
    assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch07_break_it", text));
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user's files)"]
fn rootless_overlay_with_userxattr() {
    require_root();
    let data = data_dir();
    chown(data.path(), Some(65534), Some(65534)).expect("chown");
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            CH07,
            "--keep-upper",
        ])
        .env("NUTSHELL_DATA", data.path())
        .current_dir("/")
        .output()
        .expect("run as nobody");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("an overlay root (rootless)"), "{text}");
    assert!(
        text.contains("The image, hashed before and after: unchanged"),
        "{text}"
    );
    let upper = text
        .lines()
        .find_map(|l| l.strip_prefix("Kept the upper dir: "))
        .unwrap_or_else(|| panic!("no kept upper in:\n{text}"));
    // Mounted in a user namespace, overlayfs marks the opaque dir in user.* xattrs,
    // which is where the chapter found it.
    assert!(
        text.contains("  opaque     usr/sbin   (directory marked opaque"),
        "{text}"
    );
    assert_eq!(
        common::xattr(&Path::new(upper).join("usr/sbin"), "user.overlay.opaque"),
        Some(b"y".to_vec()),
        "no user.overlay.opaque on {upper}/usr/sbin"
    );
    assert_eq!(
        std::fs::metadata(Path::new(upper).join("root/hello"))
            .expect("hello")
            .uid(),
        65534
    );
}

#[test]
fn a_layer_that_is_not_a_directory_is_refused() {
    let data = data_dir();
    let output = run(
        data.path(),
        &["--layer", "/nonexistent/layer", "--", "true"],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/layer"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
    assert!(!data.path().join("containers").exists());
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user's files)"]
fn rootless_with_subordinate_ids_leaves_nothing_it_cannot_remove() {
    require_root();
    let data = common::data_dir_for_nobody();
    // Inside, root gives a private directory to uid 1000, host uid 200999: the user who
    // ran the container may not even enter it, outside.
    let output = common::run_as_nobody(
        CH07,
        data.path(),
        "nobody:200000:65536\n",
        "nobody:200000:65536\n",
        &[
            "--",
            "sh",
            "-c",
            "mkdir -p /home/u/d && touch /home/u/d/f && chown -R 1000:1000 /home/u && chmod 700 /home/u/d",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("  added      home/u/d/f   (new file, 0 bytes)"),
        "{text}"
    );
    assert!(
        text.contains("Removed the upper and work dirs with the container."),
        "{text}"
    );
    assert_nothing_left(data.path());
}

/// A proc mounted at `dir` for as long as it lives, unmounted (lazily) when dropped,
/// also when the test fails.
struct ProcMount(std::path::PathBuf);

impl ProcMount {
    fn at(dir: &Path) -> ProcMount {
        nix::mount::mount(
            Some("proc"),
            dir,
            Some("proc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount proc");
        ProcMount(dir.to_path_buf())
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootfs_with_a_mount_inside_is_refused_naming_that_mount() {
    require_root();
    let data = data_dir();
    let built = common::binary(env!("CARGO_BIN_EXE_nutshell"), data.path())
        .args(["image", "default"])
        .output()
        .expect("build the image");
    assert!(built.status.success(), "{}", stderr(&built));
    let rootfs = data.path().join("images/default/rootfs");
    let output = {
        let _proc = ProcMount::at(&rootfs.join("proc"));
        run(data.path(), &["--rootfs", &rootfs.display().to_string()])
    };
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "({}/proc inside it is a mount of proc, and every mount in the tree is idmapped \
             with it: unmount what is mounted inside, or use a tree without mounts)",
            rootfs.display()
        )),
        "{err}"
    );
    assert_nothing_left(data.path());
}
