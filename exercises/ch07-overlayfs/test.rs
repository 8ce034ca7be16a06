//! Tests for exercise ch07-overlayfs. The statement is at the top of `overlay.rs`.
//!
//! The option-string tests need nothing: they read your string back the way the kernel
//! does (fs/overlayfs/params.c: split options at unescaped `,`, layers at unescaped `:`,
//! then drop each escaping `\`) and compare the paths that come out.
//!
//! The mount tests need root. Each runs in a process of its own (support::in_child) that
//! first makes its own mount namespace and makes every mount in it private: the overlay
//! is mounted there only, and goes with that process. All layers live in a temp dir of
//! the test's own.

#[cfg_attr(not(feature = "solution"), path = "overlay.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch07-overlayfs/overlay.rs")]
mod overlay;
#[path = "../support.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use overlay::{escape_path, mount_overlay, overlay_options};
use support::{in_child, private_mount_namespace, require_root};

/// The layers and the upper and work dirs, as the kernel reads them from an option string.
#[derive(Debug, PartialEq)]
struct Layers {
    lowers: Vec<String>,
    upper: String,
    work: String,
}

/// Split at each `sep` that no `\` escapes, keeping the escapes (the kernel's
/// ovl_next_opt and ovl_parse_param_split_lowerdirs).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let piece = pieces.last_mut().expect("never empty");
        if c == '\\' {
            piece.push(c);
            if let Some(next) = chars.next() {
                piece.push(next);
            }
        } else if c == sep {
            pieces.push(String::new());
        } else {
            piece.push(c);
        }
    }
    pieces
}

/// Drop each escaping `\`, keeping the character after it (the kernel's ovl_unescape).
fn unescape(text: &str) -> String {
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => plain.extend(chars.next()),
            c => plain.push(c),
        }
    }
    plain
}

/// Read an option string the way overlayfs does.
fn kernel_view(options: &str) -> Result<Layers, String> {
    let (mut lowers, mut upper, mut work) = (None, None, None);
    for option in split_unescaped(options, ',') {
        let (key, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
        let slot = match key {
            "lowerdir" => &mut lowers,
            "upperdir" => &mut upper,
            "workdir" => &mut work,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{key} appears twice in `{options}`"));
        }
        *slot = Some(value.to_string());
    }
    let missing = |key: &str| {
        format!(
            "the kernel finds no {key}= in `{options}`. A ',' in a path that is not escaped \
             ends the option early, and what follows is read as an option of its own"
        )
    };
    let lowers = lowers.ok_or_else(|| missing("lowerdir"))?;
    let lowers: Vec<String> = split_unescaped(&lowers, ':')
        .iter()
        .map(|lower| unescape(lower))
        .collect();
    if lowers.iter().any(String::is_empty) {
        return Err(format!(
            "the kernel reads an empty lower layer in `{options}`: layers are joined by \
             single ':' with none at either end"
        ));
    }
    Ok(Layers {
        lowers,
        upper: unescape(&upper.ok_or_else(|| missing("upperdir"))?),
        work: unescape(&work.ok_or_else(|| missing("workdir"))?),
    })
}

/// Build the options for these paths and check that the kernel reads them back.
fn round_trip(lowers: &[&str], upper: &str, work: &str) {
    let lower_paths: Vec<&Path> = lowers.iter().map(Path::new).collect();
    let options = overlay_options(&lower_paths, Path::new(upper), Path::new(work));
    let read = kernel_view(&options).unwrap_or_else(|message| panic!("{message}"));
    let expected = Layers {
        lowers: lowers.iter().map(|l| l.to_string()).collect(),
        upper: upper.to_string(),
        work: work.to_string(),
    };
    if read.lowers.len() == expected.lowers.len() && read.lowers != expected.lowers {
        let mut reversed = read.lowers.clone();
        reversed.reverse();
        assert_ne!(
            reversed, expected.lowers,
            "the lowers are reversed in `{options}`: lowers[0] is the top layer, and the \
             leftmost lowerdir is the top: keep the order you were given"
        );
    }
    assert_eq!(
        read, expected,
        "the kernel reads `{options}` as other paths than the ones given (a ':' or ',' \
         or '\\' in a path needs a '\\' before it; below, Rust shows each '\\' as '\\\\')"
    );
}

/// Check escape_path on one path, with a message that shows both strings as they are.
fn check_escape(path: &str, expected: &str, why: &str) {
    let escaped = escape_path(Path::new(path));
    assert!(
        escaped == expected,
        "escape_path(`{path}`) gave `{escaped}`, expected `{expected}`: {why}"
    );
}

#[test]
fn escape_path_puts_a_backslash_before_each_backslash_colon_and_comma() {
    check_escape(
        "/var/lib/nutshell/image",
        "/var/lib/nutshell/image",
        "a path without ':' ',' or '\\' stays as it is",
    );
    check_escape("/a:b", r"/a\:b", "':' separates lower layers");
    check_escape("/a,b", r"/a\,b", "',' separates options");
    check_escape(
        r"/a\b",
        r"/a\\b",
        "a '\\' in the path needs one too: the kernel drops every '\\' it reads",
    );
    check_escape(
        "/x=1 y",
        "/x=1 y",
        "only '\\', ':' and ',' are special to the overlay parser",
    );
}

#[test]
fn one_lower_an_upper_and_a_work_dir() {
    round_trip(&["/image"], "/box/upper", "/box/work");
}

#[test]
fn several_lowers_keep_their_order_top_first() {
    round_trip(&["/layers/3", "/layers/2", "/layers/1"], "/u", "/w");
}

#[test]
fn paths_with_colons_commas_and_backslashes_read_back_whole() {
    round_trip(
        &["/img/a:b", "/img/c,d", r"/img/e\f"],
        "/c/up,per:1",
        r"/c/wo:rk,\",
    );
}

/// A temp dir with the directories of an overlay: `lower0`.. (or the names given),
/// `upper`, `work` and `merged`.
struct Dirs {
    _temp: tempfile::TempDir,
    lowers: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

fn dirs(lower_names: &[&str], upper: &str, work: &str) -> Dirs {
    let temp = tempfile::tempdir().expect("temp dir");
    let make = |name: &str| {
        let dir = temp.path().join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        dir
    };
    Dirs {
        lowers: lower_names.iter().map(|name| make(name)).collect(),
        upper: make(upper),
        work: make(work),
        merged: make("merged"),
        _temp: temp,
    }
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))
}

/// In the check's process: a private mount namespace, then the overlay of `dirs` on
/// `dirs.merged`, checked to be one.
fn mount_in_private_namespace(dirs: &Dirs) -> Result<(), String> {
    private_mount_namespace()?;
    let lowers: Vec<&Path> = dirs.lowers.iter().map(PathBuf::as_path).collect();
    mount_overlay(&lowers, &dirs.upper, &dirs.work, &dirs.merged).map_err(|e| {
        format!(
            "mount_overlay failed: {e} (the kernel's reason is in `dmesg | tail`). EINVAL \
             or ENOENT often means the option string names other paths than the layers: \
             check overlay_options. The options were: `{}`",
            overlay_options(&lowers, &dirs.upper, &dirs.work)
        )
    })?;
    let fs_type = nix::sys::statfs::statfs(&dirs.merged)
        .map_err(|e| format!("statfs {}: {e}", dirs.merged.display()))?
        .filesystem_type();
    if fs_type != nix::sys::statfs::OVERLAYFS_SUPER_MAGIC {
        return Err(format!(
            "mount_overlay returned Ok, but {} is not an overlay (filesystem type {fs_type:?}): \
             mount with fstype \"overlay\"",
            dirs.merged.display()
        ));
    }
    Ok(())
}

#[test]
fn a_write_through_the_merged_dir_lands_in_upper_and_the_lower_is_unchanged() {
    require_root("ch07-overlayfs");
    let dirs = dirs(&["lower"], "upper", "work");
    write(&dirs.lowers[0].join("motd"), "from the image\n");
    let verdict = in_child(|| {
        mount_in_private_namespace(&dirs)?;
        let merged_motd = dirs.merged.join("motd");
        if read(&merged_motd)? != "from the image\n" {
            return Err("the merged dir does not show the lower layer's file".into());
        }
        fs::write(&merged_motd, "changed in the container\n")
            .map_err(|e| format!("write {}: {e}", merged_motd.display()))?;
        fs::write(dirs.merged.join("new"), "created in the container\n")
            .map_err(|e| format!("create a file in the merged dir: {e}"))?;
        if read(&dirs.upper.join("motd"))? != "changed in the container\n" {
            return Err("the changed file was not copied up into upper".into());
        }
        if read(&dirs.upper.join("new"))? != "created in the container\n" {
            return Err("the new file is not in upper".into());
        }
        // Checked here: this process ran the test from the top and made layers of its
        // own, so the harness's copies show nothing of what the check did.
        if read(&dirs.lowers[0].join("motd"))? != "from the image\n" {
            return Err("the lower layer's file changed: writes must land in upper".into());
        }
        if dirs.lowers[0].join("new").exists() {
            return Err("a file created in the container appeared in the lower layer".into());
        }
        Ok(())
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn the_leftmost_lower_is_the_top_layer() {
    require_root("ch07-overlayfs");
    let dirs = dirs(&["top", "bottom"], "upper", "work");
    write(&dirs.lowers[0].join("version"), "top\n");
    write(&dirs.lowers[1].join("version"), "bottom\n");
    write(&dirs.lowers[1].join("only-in-bottom"), "bottom\n");
    let verdict = in_child(|| {
        mount_in_private_namespace(&dirs)?;
        match read(&dirs.merged.join("version"))?.as_str() {
            "top\n" => {}
            "bottom\n" => {
                return Err("the merged dir shows the bottom layer's file over the top \
                    one: lowers[0] is the top, and the leftmost lowerdir is the top layer"
                    .into());
            }
            other => return Err(format!("merged/version holds {other:?}")),
        }
        if read(&dirs.merged.join("only-in-bottom"))? != "bottom\n" {
            return Err("a file only in the bottom layer does not show through".into());
        }
        Ok(())
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn layers_whose_paths_hold_a_colon_a_comma_or_a_backslash_mount() {
    require_root("ch07-overlayfs");
    let dirs = dirs(&["lower:one,1", r"lower\two"], "up,per:", r"work:,\");
    write(&dirs.lowers[0].join("one"), "1\n");
    write(&dirs.lowers[1].join("two"), "2\n");
    let verdict = in_child(|| {
        mount_in_private_namespace(&dirs)?;
        if read(&dirs.merged.join("one"))? != "1\n" || read(&dirs.merged.join("two"))? != "2\n" {
            return Err("the merged dir does not show both lower layers".into());
        }
        fs::write(dirs.merged.join("three"), "3\n").map_err(|e| format!("write: {e}"))?;
        if read(&dirs.upper.join("three"))? != "3\n" {
            return Err("a new file did not land in the upper dir".into());
        }
        Ok(())
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}

#[test]
fn a_missing_lower_is_an_error_not_a_panic() {
    require_root("ch07-overlayfs");
    let dirs = dirs(&["lower"], "upper", "work");
    let missing = dirs.lowers[0].join("not-there");
    let verdict = in_child(|| {
        private_mount_namespace()?;
        match mount_overlay(&[&missing], &dirs.upper, &dirs.work, &dirs.merged) {
            Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(other) => Err(format!("expected ENOENT for a missing lower, got {other}")),
            Ok(()) => Err("mount_overlay succeeded with a lower dir that does not exist".into()),
        }
    });
    verdict.unwrap_or_else(|message| panic!("{message}"));
}
