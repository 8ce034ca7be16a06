//! The overlay library (`nutshell::overlay`): the option string for many layers and odd
//! paths, each refusal, the per-container dirs and the tree digest (no root); then, as
//! root, real overlays in a forked child's own mount namespace: copy-up, whiteout, opaque
//! directory, stacked lowers, ':' and ',' in every path, a rootless mount with
//! userxattr, and cleaning up after a real mount. Every privileged test ends by checking
//! that no mount is left under its temp dir.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork, pipe};
use nutshell::mounts::MountOp;
use nutshell::overlay::{
    Change, ChangeKind, ContainerDirs, EntryKind, MAX_LAYERS, MOUNT_DATA_MAX, OverlayError,
    OverlayLayers, explain_mount_error, tree_digest, upper_changes,
};

fn temp_dir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!(
            "nutshell-test-overlay-{test}-{}-",
            std::process::id()
        ))
        .tempdir()
        .expect("temp dir")
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("parent dir");
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

fn layers(lowers: &[&str], upper: &str, work: &str) -> OverlayLayers {
    OverlayLayers::read_write(paths(lowers), upper.into(), work.into())
}

// ---- the option string (pure) ----

#[test]
fn options_name_lowers_top_first_then_upper_and_work() {
    let options = layers(&["/img/top", "/img/base"], "/c/upper", "/c/work").mount_options();
    assert_eq!(
        options.expect("valid"),
        "lowerdir=/img/top:/img/base,upperdir=/c/upper,workdir=/c/work"
    );
}

#[test]
fn userxattr_is_appended() {
    let mut overlay = layers(&["/l"], "/u", "/w");
    overlay.userxattr = true;
    assert_eq!(
        overlay.mount_options().expect("valid"),
        "lowerdir=/l,upperdir=/u,workdir=/w,userxattr"
    );
}

#[test]
fn fifty_layers_keep_their_order() {
    let lowers: Vec<String> = (0..50).map(|i| format!("/layers/{i}")).collect();
    let lowers: Vec<&str> = lowers.iter().map(String::as_str).collect();
    let options = layers(&lowers, "/u", "/w").mount_options().expect("valid");
    let list = options
        .strip_prefix("lowerdir=")
        .and_then(|rest| rest.split(',').next())
        .expect("lowerdir first");
    assert_eq!(list.split(':').collect::<Vec<_>>(), lowers);
}

#[test]
fn five_hundred_short_layers_fit_in_one_page() {
    let lowers: Vec<PathBuf> = (0..MAX_LAYERS).map(|i| format!("/l/{i}").into()).collect();
    let overlay = OverlayLayers::read_write(lowers, "/u".into(), "/w".into());
    let options = overlay.mount_options().expect("fits");
    assert!(options.len() < MOUNT_DATA_MAX);
    assert_eq!(options.matches(':').count(), MAX_LAYERS - 1);
}

#[test]
fn five_hundred_and_one_layers_are_too_many() {
    let lowers: Vec<PathBuf> = (0..=MAX_LAYERS).map(|i| format!("/l/{i}").into()).collect();
    let overlay = OverlayLayers::read_write(lowers, "/u".into(), "/w".into());
    let err = overlay.mount_options().expect_err("too many");
    assert!(
        matches!(
            err,
            OverlayError::TooManyLayers {
                count: 501,
                max: 500
            }
        ),
        "{err}"
    );
}

#[test]
fn options_past_one_page_are_refused_with_a_remedy() {
    let lowers: Vec<PathBuf> = (0..500)
        .map(|i| format!("/var/lib/nutshell/images/layers/{i:04}").into())
        .collect();
    let overlay = OverlayLayers::read_write(lowers, "/u".into(), "/w".into());
    let err = overlay.mount_options().expect_err("too long");
    let message = err.to_string();
    assert!(matches!(
        err,
        OverlayError::OptionsTooLong {
            max: 4095,
            layers: 500,
            ..
        }
    ));
    assert!(message.contains("one page"), "{message}");
    assert!(message.contains("shorter paths"), "{message}");
}

#[test]
fn the_page_limit_counts_the_final_nul() {
    // "lowerdir=" + path + ",upperdir=/u,workdir=/w" is 32 bytes around the path.
    let fixed = "lowerdir=,upperdir=/u,workdir=/w".len();
    let path = |len: usize| format!("/{}", "a".repeat(len - 1));
    let fits = layers(&[&path(MOUNT_DATA_MAX - 1 - fixed)], "/u", "/w");
    assert_eq!(fits.mount_options().expect("4095 bytes fit").len(), 4095);
    let over = layers(&[&path(MOUNT_DATA_MAX - fixed)], "/u", "/w");
    assert!(matches!(
        over.mount_options(),
        Err(OverlayError::OptionsTooLong { len: 4096, .. })
    ));
}

#[test]
fn colons_commas_and_backslashes_are_escaped_in_every_path() {
    let overlay = layers(&["/a:b", "/c,d", "/e\\f"], "/up:,\\", "/wo,rk:");
    assert_eq!(
        overlay.mount_options().expect("valid"),
        r"lowerdir=/a\:b:/c\,d:/e\\f,upperdir=/up\:\,\\,workdir=/wo\,rk\:"
    );
}

#[test]
fn no_lower_is_refused() {
    let err = layers(&[], "/u", "/w")
        .mount_options()
        .expect_err("no lower");
    assert!(matches!(err, OverlayError::NoLower), "{err}");
}

#[test]
fn relative_paths_are_refused_naming_the_layer() {
    for (overlay, role) in [
        (layers(&["/l", "img"], "/u", "/w"), "lower"),
        (layers(&["/l"], "upper", "/w"), "upper"),
        (layers(&["/l"], "/u", "./work"), "work"),
    ] {
        let err = overlay.mount_options().expect_err("relative");
        assert!(
            matches!(&err, OverlayError::RelativePath { role: r, .. } if *r == role),
            "{err}"
        );
        assert!(err.to_string().contains("absolute"), "{err}");
    }
}

#[test]
fn upper_without_work_and_work_without_upper_are_refused() {
    let mut overlay = layers(&["/l"], "/u", "/w");
    overlay.work = None;
    let err = overlay.mount_options().expect_err("no work");
    assert_eq!(
        err.to_string(),
        "the upper dir /u needs a work dir too, on the same filesystem"
    );
    let mut overlay = layers(&["/l"], "/u", "/w");
    overlay.upper = None;
    let err = overlay.mount_options().expect_err("no upper");
    assert!(
        matches!(err, OverlayError::Unpaired { given: "work", .. }),
        "{err}"
    );
}

#[test]
fn a_read_only_overlay_needs_two_lowers() {
    let mut overlay = layers(&["/l"], "/u", "/w");
    (overlay.upper, overlay.work) = (None, None);
    assert!(matches!(
        overlay.mount_options(),
        Err(OverlayError::SingleLowerReadOnly)
    ));
    overlay.lowers.push("/base".into());
    assert_eq!(overlay.mount_options().expect("valid"), "lowerdir=/l:/base");
}

#[test]
fn a_non_utf8_path_is_refused() {
    let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/l\xff"));
    let overlay = OverlayLayers::read_write(vec![odd], "/u".into(), "/w".into());
    let err = overlay.mount_options().expect_err("not UTF-8");
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn the_mount_op_is_an_overlay_mount_with_the_options() {
    let overlay = layers(&["/l"], "/u", "/w");
    let op = overlay.mount_op(Path::new("/c/merged")).expect("valid");
    assert_eq!(
        op,
        MountOp::Mount {
            fstype: "overlay".to_string(),
            target: "/c/merged".into(),
            options: nutshell::spec::MountOptions {
                data: vec!["lowerdir=/l,upperdir=/u,workdir=/w".into()],
                ..Default::default()
            },
        }
    );
}

#[test]
fn mount_errors_are_explained_for_rootless_and_root() {
    let mut overlay = layers(&["/l"], "/u", "/w");
    let rootless_eperm = explain_mount_error(Errno::EPERM, &overlay, true);
    assert!(rootless_eperm.contains("Linux 5.11"), "{rootless_eperm}");
    let no_userxattr = explain_mount_error(Errno::EINVAL, &overlay, true);
    assert!(no_userxattr.contains("add userxattr"), "{no_userxattr}");
    let as_root = explain_mount_error(Errno::EINVAL, &overlay, false);
    assert!(as_root.contains("trusted.* xattrs"), "{as_root}");
    overlay.userxattr = true;
    let old_kernel = explain_mount_error(Errno::EINVAL, &overlay, true);
    assert!(old_kernel.contains("no userxattr option"), "{old_kernel}");
}

// ---- changes, digests and dirs on plain directories (no root) ----

#[test]
fn changes_tell_added_copied_up_opaque_and_merged_dirs_apart() {
    let tmp = temp_dir("changes");
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    write(&lower.join("etc/motd"), "hello\n");
    write(&lower.join("data/old"), "old\n");
    write(&upper.join("etc/motd"), "hello, world\n");
    write(&upper.join("etc/new.conf"), "x\n");
    write(&upper.join("data/old"), "replaced\n");
    set_user_xattr(&upper.join("data"), "user.overlay.opaque", b"y");
    let changes = upper_changes(&upper, &[lower]).expect("changes");
    let kinds: Vec<(&str, &ChangeKind)> = changes
        .iter()
        .map(|c| (c.path.to_str().expect("utf-8"), &c.kind))
        .collect();
    let file = |size| ChangeKind::Added {
        kind: EntryKind::File,
        size,
    };
    assert_eq!(
        kinds,
        [
            ("data", &ChangeKind::OpaqueDir),
            ("data/old", &file(9)),
            ("etc", &ChangeKind::Directory),
            (
                "etc/motd",
                &ChangeKind::CopiedUp {
                    kind: EntryKind::File,
                    size: 13
                }
            ),
            ("etc/new.conf", &file(2)),
        ]
    );
}

#[test]
fn a_change_prints_as_one_line() {
    let line = |kind| {
        Change {
            path: "etc/group".into(),
            kind,
        }
        .to_string()
    };
    assert_eq!(
        line(ChangeKind::Whiteout),
        "whiteout   etc/group   (character device 0/0: deleted from the lower)"
    );
    assert_eq!(
        line(ChangeKind::CopiedUp {
            kind: EntryKind::File,
            size: 1234
        }),
        "copied up  etc/group   (full copy of the lower file, 1234 bytes)"
    );
}

#[test]
fn the_digest_sees_bytes_modes_and_links_but_does_not_follow_them() {
    let tmp = temp_dir("digest");
    let (tree, outside) = (tmp.path().join("tree"), tmp.path().join("outside"));
    write(&tree.join("bin/sh"), "#!\n");
    write(&outside, "outside\n");
    symlink(&outside, tree.join("escape")).expect("symlink");
    let first = tree_digest(&tree).expect("digest");
    assert_eq!(first.len(), 64);
    write(&outside, "changed outside\n");
    assert_eq!(
        tree_digest(&tree).expect("digest"),
        first,
        "followed a symlink"
    );
    write(&tree.join("bin/sh"), "#?\n");
    let changed_byte = tree_digest(&tree).expect("digest");
    assert_ne!(changed_byte, first);
    fs::set_permissions(tree.join("bin/sh"), fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_ne!(tree_digest(&tree).expect("digest"), changed_byte);
}

#[test]
fn container_dirs_are_made_and_removed_keeping_the_upper_on_request() {
    let tmp = temp_dir("dirs");
    let mut dirs = ContainerDirs::create(tmp.path(), "nutshell-a", None).expect("create");
    let root = tmp.path().join("containers/nutshell-a");
    assert_eq!(dirs.root(), root);
    for dir in [dirs.upper(), dirs.work(), dirs.merged()] {
        assert!(dir.is_dir(), "{}", dir.display());
    }
    let again = ContainerDirs::create(tmp.path(), "nutshell-a", None).expect_err("exists");
    assert!(
        matches!(again, OverlayError::AlreadyExists { .. }),
        "{again}"
    );
    assert!(root.exists(), "a refused create removed the other's dirs");
    write(&dirs.upper().join("etc/changed"), "x\n");
    let kept = dirs.remove(true).expect("remove");
    assert_eq!(kept.as_deref(), Some(root.join("upper").as_path()));
    assert_eq!(names(&root), ["upper"]);
    drop(dirs);
    assert!(
        root.join("upper/etc/changed").exists(),
        "drop after remove removed the upper"
    );
    ContainerDirs::existing(tmp.path(), "nutshell-a")
        .expect("name")
        .remove(false)
        .expect("remove the kept upper");
    assert!(!root.exists());
}

#[test]
fn container_dirs_go_on_drop_and_a_half_made_one_is_removed() {
    let tmp = temp_dir("drop");
    let dirs = ContainerDirs::create(tmp.path(), "nutshell-b", None).expect("create");
    let root = dirs.root().to_path_buf();
    drop(dirs);
    assert!(!root.exists());
    fs::create_dir_all(root.join("upper")).expect("half-made");
    ContainerDirs::existing(tmp.path(), "nutshell-b")
        .expect("name")
        .remove(false)
        .expect("remove half-made");
    assert!(!root.exists());
    for bad in ["", ".", "..", "a/b"] {
        let err = ContainerDirs::create(tmp.path(), bad, None).expect_err("bad name");
        assert!(
            matches!(err, OverlayError::BadName { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn removal_does_not_follow_a_symlink_out_of_the_tree() {
    let tmp = temp_dir("symlink");
    let precious = tmp.path().join("precious");
    write(&precious.join("file"), "keep me\n");
    let mut dirs = ContainerDirs::create(tmp.path(), "nutshell-c", None).expect("create");
    symlink(&precious, dirs.upper().join("evil")).expect("symlink");
    symlink(&precious, dirs.work().join("evil")).expect("symlink");
    dirs.remove(false).expect("remove");
    assert_eq!(read(&precious.join("file")), "keep me\n");
    assert!(!dirs.root().exists());
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn set_user_xattr(path: &Path, name: &str, value: &[u8]) {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let c_name = CString::new(name).expect("name");
    // SAFETY: NUL-terminated strings and a buffer passed with its length.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name}: {}",
        std::io::Error::last_os_error()
    );
}

// ---- real overlays (root), each in a forked child's own mount namespace ----

/// Run `check` in a forked child (one thread, so it may unshare) and return its verdict:
/// `Err` holds the panic message. The child leaves with _exit, so nothing it owns (our
/// `ContainerDirs`, the temp dir) is dropped twice.
fn in_child(check: impl FnOnce()) -> Result<(), String> {
    let (read_end, write_end) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child runs `check`, writes to the pipe and leaves with _exit.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            let verdict = match catch_unwind(AssertUnwindSafe(check)) {
                Ok(()) => String::new(),
                Err(panic) => panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the check panicked".to_string()),
            };
            let _ = fs::File::from(write_end).write_all(verdict.as_bytes());
            // SAFETY: ends only this forked child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut verdict = String::new();
            let _ = fs::File::from(read_end).read_to_string(&mut verdict);
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) if verdict.is_empty() => Ok(()),
                Ok(WaitStatus::Exited(_, 0)) => Err(verdict),
                other => Err(format!("the child ended badly: {other:?}")),
            }
        }
    }
}

/// Make every mount of this (new) mount namespace private, so nothing mounted in it
/// reaches the host's.
fn make_mounts_private() {
    nutshell::rootfs::make_mounts_private().expect("make / private");
}

/// `check` in a forked child with its own mount namespace: its mounts die with it.
fn in_mount_namespace(check: impl FnOnce()) {
    in_child(|| {
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        make_mounts_private();
        check();
    })
    .unwrap_or_else(|e| panic!("in the child: {e}"));
}

/// Mount points in this process's (the host's) mount table under `dir`.
fn assert_no_mounts_left(dir: &Path) {
    let name = dir.file_name().expect("temp dir name").to_string_lossy();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let left: Vec<&str> = mountinfo.lines().filter(|l| l.contains(&*name)).collect();
    assert!(left.is_empty(), "mounts left: {left:#?}");
}

/// A temp dir holding a small image in `lower`: a 6000-byte etc/motd, etc/group and a
/// data dir with two files.
fn with_lower(test: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = temp_dir(test);
    let lower = tmp.path().join("lower");
    write(&lower.join("etc/motd"), &"hello\n".repeat(1000));
    write(&lower.join("etc/group"), "root:x:0:\n");
    write(&lower.join("data/a"), "a\n");
    write(&lower.join("data/b"), "b\n");
    (tmp, lower)
}

fn change_of<'a>(changes: &'a [Change], path: &str) -> &'a ChangeKind {
    &changes
        .iter()
        .find(|c| c.path == Path::new(path))
        .unwrap_or_else(|| panic!("no change at {path}: {changes:#?}"))
        .kind
}

fn unique(test: &str) -> String {
    format!("nutshell-{test}-{}", std::process::id())
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn writing_a_lower_file_copies_all_of_it_up_and_leaves_the_lower_alone() {
    common::require_root();
    let (tmp, lower) = with_lower("copy-up");
    let before = tree_digest(&lower).expect("digest");
    let dirs = ContainerDirs::create(tmp.path(), &unique("copy-up"), None).expect("dirs");
    let overlay = dirs.layers(vec![lower.clone()], false);
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        let motd = dirs.merged().join("etc/motd");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&motd)
            .expect("open");
        file.write_all(b"one more line\n").expect("append");
        assert!(read(&motd).ends_with("hello\none more line\n"));
    });
    assert_eq!(
        tree_digest(&lower).expect("digest"),
        before,
        "the lower changed"
    );
    let changes = upper_changes(dirs.upper(), &[lower]).expect("changes");
    assert_eq!(
        change_of(&changes, "etc/motd"),
        &ChangeKind::CopiedUp {
            kind: EntryKind::File,
            size: 6014
        }
    );
    assert_eq!(change_of(&changes, "etc"), &ChangeKind::Directory);
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn deleting_a_lower_file_leaves_a_whiteout() {
    common::require_root();
    let (tmp, lower) = with_lower("whiteout");
    let before = tree_digest(&lower).expect("digest");
    let dirs = ContainerDirs::create(tmp.path(), &unique("whiteout"), None).expect("dirs");
    let overlay = dirs.layers(vec![lower.clone()], false);
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        fs::remove_file(dirs.merged().join("etc/group")).expect("rm etc/group");
        assert_eq!(names(&dirs.merged().join("etc")), ["motd"]);
    });
    let whiteout = fs::symlink_metadata(dirs.upper().join("etc/group")).expect("whiteout");
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    let changes = upper_changes(dirs.upper(), std::slice::from_ref(&lower)).expect("changes");
    assert_eq!(change_of(&changes, "etc/group"), &ChangeKind::Whiteout);
    assert_eq!(
        tree_digest(&lower).expect("digest"),
        before,
        "the lower changed"
    );
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn replacing_a_lower_dir_makes_an_opaque_one() {
    common::require_root();
    let (tmp, lower) = with_lower("opaque");
    let dirs = ContainerDirs::create(tmp.path(), &unique("opaque"), None).expect("dirs");
    let overlay = dirs.layers(vec![lower.clone()], false);
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        let data = dirs.merged().join("data");
        fs::remove_dir_all(&data).expect("rm -r data");
        fs::create_dir(&data).expect("mkdir data");
        write(&data.join("new"), "new\n");
        assert_eq!(names(&data), ["new"]);
    });
    let changes = upper_changes(dirs.upper(), std::slice::from_ref(&lower)).expect("changes");
    assert_eq!(change_of(&changes, "data"), &ChangeKind::OpaqueDir);
    assert_eq!(
        change_of(&changes, "data/new"),
        &ChangeKind::Added {
            kind: EntryKind::File,
            size: 4
        }
    );
    assert_eq!(names(&lower.join("data")), ["a", "b"]);
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_leftmost_lower_wins() {
    common::require_root();
    let tmp = temp_dir("stack");
    let (top, base) = (tmp.path().join("top"), tmp.path().join("base"));
    write(&top.join("f"), "top\n");
    write(&base.join("f"), "base\n");
    write(&base.join("only-base"), "base\n");
    let dirs = ContainerDirs::create(tmp.path(), &unique("stack"), None).expect("dirs");
    let overlay = dirs.layers(vec![top.clone(), base.clone()], false);
    let read_only_mount = tmp.path().join("read-only");
    fs::create_dir(&read_only_mount).expect("mkdir");
    let mut reversed = OverlayLayers::read_write(vec![base, top], "/".into(), "/".into());
    (reversed.upper, reversed.work) = (None, None);
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        assert_eq!(read(&dirs.merged().join("f")), "top\n");
        assert_eq!(read(&dirs.merged().join("only-base")), "base\n");
        reversed.mount(&read_only_mount).expect("mount read-only");
        assert_eq!(read(&read_only_mount.join("f")), "base\n");
        let err = fs::write(read_only_mount.join("g"), "x").expect_err("read-only");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    });
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn paths_with_colons_commas_and_backslashes_really_mount() {
    common::require_root();
    let tmp = temp_dir("escape");
    let (top, base) = (tmp.path().join("top:a,b\\c"), tmp.path().join("base,d:e"));
    write(&top.join("from-top"), "top\n");
    write(&base.join("from-base"), "base\n");
    let data = tmp.path().join("da:ta,\\dir");
    let dirs = ContainerDirs::create(&data, &unique("odd:,name"), None).expect("dirs");
    let overlay = dirs.layers(vec![top, base], false);
    for path in [dirs.upper(), dirs.work()] {
        let text = path.to_str().expect("utf-8");
        assert!(text.contains(':') && text.contains(',') && text.contains('\\'));
    }
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        assert_eq!(read(&dirs.merged().join("from-top")), "top\n");
        assert_eq!(read(&dirs.merged().join("from-base")), "base\n");
        write(&dirs.merged().join("written"), "x\n");
    });
    assert_eq!(read(&dirs.upper().join("written")), "x\n");
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_kernel_cuts_options_past_one_page_and_the_library_refuses_them_first() {
    common::require_root();
    let (tmp, lower) = with_lower("page");
    let dirs = ContainerDirs::create(tmp.path(), &unique("page"), None).expect("dirs");
    // The same lower, spelled 4200 bytes longer.
    let mut long_lower = lower.into_os_string();
    long_lower.push("/.".repeat(2100));
    let overlay = dirs.layers(vec![long_lower.into()], false);
    let err = overlay.mount_options().expect_err("too long");
    assert!(matches!(err, OverlayError::OptionsTooLong { .. }), "{err}");
    let raw = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay.lowers[0].display(),
        dirs.upper().display(),
        dirs.work().display()
    );
    assert!(raw.len() > MOUNT_DATA_MAX);
    in_mount_namespace(|| {
        // mount(2) reads one page: upperdir and workdir are cut off, and the kernel
        // refuses a lone lowerdir ("at least 2 lowerdir are needed" in its log).
        let refused = mount(
            Some("overlay"),
            dirs.merged(),
            Some("overlay"),
            MsFlags::empty(),
            Some(raw.as_str()),
        );
        assert_eq!(refused, Err(Errno::EINVAL));
    });
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_refused_mount_says_what_to_do() {
    common::require_root();
    let tmp = temp_dir("refused");
    let dirs = ContainerDirs::create(tmp.path(), &unique("refused"), None).expect("dirs");
    let overlay = dirs.layers(vec![tmp.path().join("no-such-lower")], false);
    in_mount_namespace(|| {
        let err = overlay.mount(dirs.merged()).expect_err("no lower");
        let message = err.to_string();
        assert!(message.contains("ENOENT"), "{message}");
        assert!(message.contains("create it first"), "{message}");
    });
    assert_no_mounts_left(tmp.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn removal_after_a_real_mount_copes_with_the_kernels_work_dir() {
    common::require_root();
    let (tmp, lower) = with_lower("remove");
    let name = unique("remove");
    let mut dirs = ContainerDirs::create(tmp.path(), &name, None).expect("dirs");
    let overlay = dirs.layers(vec![lower], false);
    in_mount_namespace(|| {
        overlay.mount(dirs.merged()).expect("mount");
        write(&dirs.merged().join("etc/new"), "x\n");
        let err = dirs.remove(false).expect_err("still mounted");
        assert!(matches!(err, OverlayError::StillMounted { .. }), "{err}");
    });
    let inner = fs::metadata(dirs.work().join("work")).expect("work/work");
    assert_eq!(
        inner.mode() & 0o777,
        0,
        "the kernel's work/work is mode 000"
    );
    let kept = dirs.remove(true).expect("remove").expect("upper kept");
    assert_eq!(names(dirs.root()), ["upper"]);
    assert_eq!(read(&kept.join("etc/new")), "x\n");
    ContainerDirs::existing(tmp.path(), &name)
        .expect("name")
        .remove(false)
        .expect("remove upper");
    assert!(!dirs.root().exists());
    assert_no_mounts_left(tmp.path());
}

/// lchown everything under `dir`, `dir` included, to `id`.
fn chown_tree(dir: &Path, id: u32) {
    std::os::unix::fs::lchown(dir, Some(id), Some(id)).expect("chown");
    if fs::symlink_metadata(dir).expect("stat").is_dir() {
        for entry in fs::read_dir(dir).expect("read dir") {
            chown_tree(&entry.expect("entry").path(), id);
        }
    }
}

/// Become `nobody` (65534) for good: groups, gid, uid. Leaving uid 0 makes the process
/// non-dumpable, which makes /proc/self/* root's; dumpable again, it can write its maps.
fn become_nobody() {
    let nobody = 65534;
    nix::unistd::setgroups(&[]).expect("setgroups");
    let gid = Gid::from_raw(nobody);
    nix::unistd::setresgid(gid, gid, gid).expect("setresgid");
    let uid = Uid::from_raw(nobody);
    nix::unistd::setresuid(uid, uid, uid).expect("setresuid");
    // SAFETY: PR_SET_DUMPABLE takes a plain integer.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) }, 0);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn nobody_mounts_an_overlay_in_a_user_namespace_with_userxattr() {
    common::require_root();
    let (tmp, lower) = with_lower("rootless");
    let name = unique("rootless");
    let mut dirs = ContainerDirs::create(tmp.path(), &name, Some((65534, 65534))).expect("dirs");
    chown_tree(tmp.path(), 65534);
    let overlay = dirs.layers(vec![lower.clone()], true);
    in_child(|| {
        become_nobody();
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).expect("unshare");
        // An unprivileged process must deny setgroups before it may write a gid map.
        fs::write("/proc/self/setgroups", "deny").expect("setgroups deny");
        fs::write("/proc/self/uid_map", "0 65534 1").expect("uid_map");
        fs::write("/proc/self/gid_map", "0 65534 1").expect("gid_map");
        make_mounts_private();
        overlay.mount(dirs.merged()).expect("mount with userxattr");
        fs::remove_file(dirs.merged().join("etc/group")).expect("rm etc/group");
        let data = dirs.merged().join("data");
        fs::remove_dir_all(&data).expect("rm -r data");
        fs::create_dir(&data).expect("mkdir data");
        assert_eq!(names(&data), Vec::<String>::new());
    })
    .unwrap_or_else(|e| panic!("in the child: {e}"));
    let changes = upper_changes(dirs.upper(), &[lower]).expect("changes");
    assert_eq!(change_of(&changes, "etc/group"), &ChangeKind::Whiteout);
    assert_eq!(change_of(&changes, "data"), &ChangeKind::OpaqueDir);
    assert_eq!(
        common::xattr(&dirs.upper().join("data"), "user.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        common::xattr(&dirs.upper().join("data"), "trusted.overlay.opaque"),
        None
    );
    let whiteout = fs::symlink_metadata(dirs.upper().join("etc/group")).expect("whiteout");
    assert_eq!(
        whiteout.uid(),
        65534,
        "made by the container's root, mapped to nobody"
    );
    // Removal as the owner, not root: work/work (mode 000) must be opened up first.
    let work_work = fs::metadata(dirs.work().join("work")).expect("work/work");
    assert_eq!(work_work.mode() & 0o777, 0);
    in_child(|| {
        become_nobody();
        let mut own = ContainerDirs::existing(tmp.path(), &name).expect("name");
        own.remove(false).expect("remove as nobody");
    })
    .unwrap_or_else(|e| panic!("in the child: {e}"));
    assert!(!dirs.root().exists());
    dirs.remove(false).expect("nothing left to remove");
    assert_no_mounts_left(tmp.path());
}
