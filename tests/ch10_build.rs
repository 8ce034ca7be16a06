//! Chapter 10: building images. The tour and break-it demo, reproducible layers, the
//! cache, whiteouts from a RUN's upper, stages and build arguments, ADD, errors, and
//! the same Containerfile built by buildah for comparison.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::{NUTSHELL, image_json, nutshell, nutshell_fails, nutshell_with, save_image};
use common::registry::{in_storage, run_tool, skopeo};
use common::{binary, data_dir, snapshot_settings};

const CH10: &str = env!("CARGO_BIN_EXE_ch10-build");
const BUILD_TIMEOUT: Duration = Duration::from_secs(180);

/// `nutshell ARGS` that must fail: its stderr, which must be one line.
fn fails_in_one_line(data: &Path, args: &[&str]) -> String {
    let stderr = nutshell_fails(data, args);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr
}

/// A build context in a temp dir: `files` (path, content), a `Containerfile` among them.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("nutshell-test-ctx-")
        .tempdir()
        .expect("temp dir");
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }
    dir
}

/// A copy of examples/webapp.
fn webapp_copy() -> tempfile::TempDir {
    let dir = context(&[]);
    copy_tree(&webapp(), dir.path());
    dir
}

fn webapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webapp")
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The image's layers, each as the lines `describe_layer` prints.
fn layers(data: &Path, name: &str) -> Vec<Vec<String>> {
    let image = image_json(data, name);
    image["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|digest| {
            let hex = digest
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:");
            let blob = fs::File::open(data.join("blobs/sha256").join(hex)).expect("blob");
            nutshell::build::layer::describe_layer(blob).expect("layer")
        })
        .collect()
}

/// The image `name` of the store at `data`, as its overlay would show it.
fn image_tree(data: &Path, name: &str) -> nutshell::build::tree::LayeredTree {
    let image = image_json(data, name);
    let dirs: Vec<PathBuf> = image["layer_dirs"]
        .as_array()
        .expect("layer dirs")
        .iter()
        .map(|d| PathBuf::from(d.as_str().expect("dir")))
        .collect();
    nutshell::build::tree::LayeredTree::new(&dirs)
}

/// Each step's outcome as the build printed it: `[2/5] COPY` → `CACHED` or `DONE`.
fn outcomes(output: &str) -> Vec<(String, String)> {
    let mut steps: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in output.lines() {
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        if let Some(step) = rest.strip_prefix('[') {
            let keyword = step.split_whitespace().nth(1).unwrap_or_default();
            let label = step.split(']').next().unwrap_or_default();
            steps.insert(
                number.to_string(),
                (format!("[{label}] {keyword}"), String::new()),
            );
        } else if let Some(entry) = steps.get_mut(number)
            && (rest == "CACHED" || rest.starts_with("DONE"))
        {
            entry.1 = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    }
    let mut list: Vec<(String, (String, String))> = steps.into_iter().collect();
    list.sort_by_key(|(n, _)| n.trim_start_matches('#').parse::<usize>().unwrap_or(0));
    list.into_iter().map(|(_, v)| v).collect()
}

fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"DONE \d+\.\ds", "DONE [TIME]");
    settings.add_filter(
        &regex::escape(&webapp().display().to_string()),
        "examples/webapp",
    );
    settings.add_filter(r"ch10-break-it-[A-Za-z0-9]+", "ch10-break-it-[TMP]");
    settings
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_tour_builds_the_webapp_runs_it_and_builds_it_again_from_the_cache() {
    let data = data_dir();
    let output = binary(CH10, data.path())
        .timeout(BUILD_TIMEOUT)
        .output()
        .expect("run ch10-build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("<h1>Hello from a nutshell container</h1>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hello from a CGI script in a nutshell container"),
        "{stdout}"
    );
    assert!(stdout.contains("4 layer steps cached, 0 run"), "{stdout}");
    settings(data.path()).bind(|| insta::assert_snapshot!("ch10_tour", stdout));
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn changing_one_copied_file_rebuilds_from_that_step_on() {
    let data = data_dir();
    let output = binary(CH10, data.path())
        .arg("--break-it")
        .timeout(BUILD_TIMEOUT)
        .output()
        .expect("run ch10-build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let second = stdout.split("build again").nth(1).expect("a second build");
    let steps = outcomes(second);
    let of = |keyword: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|(label, _)| label.ends_with(keyword))
            .map(|(_, outcome)| outcome.as_str())
            .collect()
    };
    assert_eq!(of("WORKDIR"), ["CACHED"], "{second}");
    assert_eq!(
        of("COPY"),
        ["DONE", "DONE"],
        "index.html's COPY and the one after: {second}"
    );
    assert_eq!(of("RUN"), ["DONE"], "{second}");
    settings(data.path()).bind(|| insta::assert_snapshot!("ch10_break_it", stdout));
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_same_containerfile_gives_the_same_layers_and_no_cache_runs_every_step() {
    let (first, second) = (data_dir(), data_dir());
    let app = webapp_copy();
    let ctx = app.path().to_str().expect("utf-8");
    let build = ["build", "-t", "webapp", ctx];
    let one = nutshell(first.path(), &build);
    nutshell(second.path(), &build);
    let (a, b) = (
        image_json(first.path(), "webapp"),
        image_json(second.path(), "webapp"),
    );
    assert_eq!(
        a["layers"], b["layers"],
        "layer digests differ between two builds"
    );
    assert_eq!(
        a["digest"], b["digest"],
        "manifests differ between two builds"
    );
    assert!(outcomes(&one).iter().all(|(_, o)| o != "CACHED"), "{one}");
    // Eleven instructions; only WORKDIR (a new directory), the two COPYs and the RUN
    // made layers over the base's one: the rest changed the config.
    assert_eq!(a["layers"].as_array().map(Vec::len), Some(5), "{a}");
    // Again in the first store: every layer step cached, the same image.
    let again = nutshell(first.path(), &build);
    let layer_steps: Vec<_> = outcomes(&again)
        .into_iter()
        .filter(|(l, _)| ["WORKDIR", "COPY", "RUN"].iter().any(|k| l.ends_with(k)))
        .collect();
    assert_eq!(layer_steps.len(), 4, "{again}");
    assert!(layer_steps.iter().all(|(_, o)| o == "CACHED"), "{again}");
    assert_eq!(image_json(first.path(), "webapp")["digest"], a["digest"]);
    // --no-cache runs every step, and still makes the same layers.
    let rebuilt = nutshell(first.path(), &["build", "--no-cache", "-t", "webapp", ctx]);
    assert!(!rebuilt.contains("CACHED"), "{rebuilt}");
    assert_eq!(image_json(first.path(), "webapp")["layers"], a["layers"]);
    // SOURCE_DATE_EPOCH decides the mtimes, and so the digests.
    nutshell_with(
        second.path(),
        &["build", "--no-cache", "-t", "later", ctx],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    let later = image_json(second.path(), "later");
    assert_ne!(later["layers"][4], a["layers"][4]);
    assert_eq!(later["created"], "2023-11-14T22:13:20Z");
    common::assert_nothing_left(first.path());
    common::assert_nothing_left(second.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_run_step_s_upper_becomes_whiteouts_and_opaque_directories() {
    let data = data_dir();
    let ctx = context(&[(
        "Containerfile",
        "FROM default\n\
         RUN mkdir -p /opt/old/sub && echo x > /opt/old/sub/f && echo y > /opt/old/g \
             && echo gone > /etc/motd\n\
         RUN rm /etc/motd /etc/group && rm -rf /opt/old && mkdir /opt/old \
             && echo new > /opt/old/new && ln -s old/new /opt/link && mkfifo /opt/fifo\n",
    )]);
    nutshell(
        data.path(),
        &[
            "build",
            "-t",
            "changes",
            ctx.path().to_str().expect("utf-8"),
        ],
    );
    let layers = layers(data.path(), "changes");
    assert_eq!(layers.len(), 3);
    let run = &layers[2];
    let text = run.join("\n");
    assert!(
        run.iter().any(|l| l.starts_with("whiteout  etc/motd")),
        "{text}"
    );
    assert!(
        run.iter().any(|l| l.starts_with("whiteout  etc/group")),
        "{text}"
    );
    assert!(
        run.iter().any(|l| l.starts_with("opaque    opt/old/")),
        "{text}"
    );
    assert!(
        run.iter().any(|l| l.starts_with("fifo      opt/fifo")),
        "{text}"
    );
    assert!(
        run.iter()
            .any(|l| l.contains("opt/link 0777 0:0 -> old/new")),
        "{text}"
    );
    assert!(
        !text.contains("overlay") && !text.contains("hostname") && !text.contains("resolv"),
        "overlay internals or mount stubs leaked: {text}"
    );
    // The image, unpacked as a container sees it, has what the RUN left.
    let tree = image_tree(data.path(), "changes");
    assert!(
        tree.lookup(Path::new("etc/group"))
            .expect("lookup")
            .is_none()
    );
    assert_eq!(
        tree.read_dir(Path::new("opt/old")).expect("read dir"),
        ["new"]
    );
    let mut snapshot = String::new();
    for (i, layer) in layers.iter().enumerate().skip(1) {
        snapshot.push_str(&format!("layer {}\n", i + 1));
        for line in layer {
            snapshot.push_str(&format!("  {line}\n"));
        }
    }
    settings(data.path()).bind(|| insta::assert_snapshot!("ch10_whiteouts", snapshot));
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn stages_targets_build_args_and_the_ignore_file() {
    let data = data_dir();
    let ctx = context(&[
        (
            "Containerfile",
            "ARG BASE=default\n\
             FROM $BASE AS build\n\
             ARG FLAVOUR=plain\n\
             RUN mkdir /out && echo \"$FLAVOUR\" > /out/flavour\n\
             FROM $BASE AS unused\n\
             RUN false\n\
             FROM ${BASE}\n\
             COPY --from=build /out/ /srv/\n\
             COPY . /ctx/\n\
             COPY *.txt /globbed/\n",
        ),
        (".containerignore", "secret.txt\nnotes/\n!notes/keep.md\n"),
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("secret.txt", "do not copy\n"),
        ("notes/drop.md", "x\n"),
        ("notes/keep.md", "kept\n"),
    ]);
    let dir = ctx.path().to_str().expect("utf-8");
    let output = nutshell(
        data.path(),
        &["build", "--build-arg", "FLAVOUR=spicy", "-t", "staged", dir],
    );
    assert!(
        !output.contains("RUN false"),
        "the unused stage ran: {output}"
    );
    let files = |name: &str| -> Vec<String> {
        layers(data.path(), name)
            .into_iter()
            .skip(1)
            .flatten()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("file")).then(|| words.next().unwrap_or_default().to_string())
            })
            .collect()
    };
    let staged = files("staged");
    for want in [
        "srv/flavour",
        "ctx/a.txt",
        "ctx/notes/keep.md",
        "globbed/a.txt",
        "globbed/b.txt",
    ] {
        assert!(
            staged.iter().any(|f| f == want),
            "{want} missing: {staged:?}"
        );
    }
    for unwanted in ["ctx/secret.txt", "ctx/notes/drop.md", "globbed/secret.txt"] {
        assert!(
            !staged.iter().any(|f| f == unwanted),
            "{unwanted} copied: {staged:?}"
        );
    }
    let tree = image_tree(data.path(), "staged");
    assert_eq!(
        tree.read_file(Path::new("srv/flavour"), 100).expect("read"),
        Some(b"spicy\n".to_vec())
    );
    // --target stops at the stage asked for.
    nutshell(
        data.path(),
        &["build", "--target", "build", "-t", "first", dir],
    );
    let first = files("first");
    assert_eq!(first, ["out/flavour"], "{first:?}");
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn add_unpacks_a_local_archive_and_copy_follows_docker_s_directory_rules() {
    let data = data_dir();
    let ctx = context(&[
        (
            "Containerfile",
            "FROM default\n\
             ADD site.tar.gz /srv/\n\
             COPY conf /etc/app\n\
             COPY conf/a.conf /etc/single\n\
             COPY --chown=nobody:nogroup --chmod=0600 conf/a.conf /etc/owned/\n\
             WORKDIR /work\n\
             COPY conf/a.conf .\n",
        ),
        ("conf/a.conf", "a=1\n"),
        ("conf/sub/b.conf", "b=2\n"),
    ]);
    // A gzip tar made by GNU tar.
    let site = ctx.path().join("site");
    fs::create_dir_all(site.join("static")).expect("mkdir");
    fs::write(site.join("static/index.html"), "hi\n").expect("write");
    run_tool(
        "tar",
        &[
            "-czf",
            ctx.path().join("site.tar.gz").to_str().expect("utf-8"),
            "-C",
            site.to_str().expect("utf-8"),
            ".",
        ],
    );
    fs::remove_dir_all(&site).expect("rm");
    nutshell(
        data.path(),
        &["build", "-t", "added", ctx.path().to_str().expect("utf-8")],
    );
    let all: Vec<String> = layers(data.path(), "added")
        .into_iter()
        .skip(1)
        .flatten()
        .collect();
    let has = |prefix: &str| all.iter().any(|l| l.starts_with(prefix));
    assert!(has("file      srv/static/index.html 0644"), "{all:#?}");
    assert!(
        !has("file      srv/site.tar.gz"),
        "ADD copied the archive: {all:#?}"
    );
    assert!(
        has("file      etc/app/a.conf"),
        "a directory's contents: {all:#?}"
    );
    assert!(has("file      etc/app/sub/b.conf"), "{all:#?}");
    assert!(
        !has("dir       etc/app/conf"),
        "the directory itself: {all:#?}"
    );
    assert!(
        has("file      etc/single 0644 0:0 (4 bytes)"),
        "a file to a new name: {all:#?}"
    );
    assert!(
        has("file      etc/owned/a.conf 0600 65534:65534"),
        "--chown, --chmod: {all:#?}"
    );
    assert!(
        has("file      work/a.conf"),
        "relative to WORKDIR: {all:#?}"
    );
    common::assert_nothing_left(data.path());
}

#[test]
fn bad_containerfiles_get_one_line_errors_naming_file_and_line() {
    let data = data_dir();
    let cases: &[(&str, &str)] = &[
        (
            "FROM default\nRUN [\"sh\", \n",
            "Containerfile:2:5: unterminated JSON array",
        ),
        (
            "FROM default\nFROBNICATE x\n",
            "Containerfile:2:1: unknown instruction \"FROBNICATE\"",
        ),
        (
            "FROM default\nONBUILD RUN x\n",
            "ONBUILD is not supported by nutshell",
        ),
        ("RUN true\n", "the first instruction must be FROM"),
        (
            "FROM no-such-image\n",
            "Containerfile:1: FROM: image no-such-image is not in the store",
        ),
        (
            "FROM default\nCOPY missing.txt /\n",
            "Containerfile:2: COPY: source \"missing.txt\" not found in the build context",
        ),
        (
            "FROM default\nCOPY ../escape /\n",
            "forbidden path outside the build context: ../escape",
        ),
        (
            "FROM default\nCOPY a b /dest\n",
            "COPY with more than one source needs a directory as the destination, ending in /: /dest",
        ),
        (
            "FROM default\nADD https://example.com/x.tar /\n",
            "ADD https://example.com/x.tar: nutshell build has no network",
        ),
        (
            "FROM default\nCOPY --chmod=999 a /\n",
            "--chmod=999: want an octal mode",
        ),
        (
            "FROM default\nCOPY --chown=nosuchuser a /\n",
            "no such user in the image's /etc/passwd",
        ),
        (
            "FROM default\nCOPY --from=nowhere /x /\n",
            "--from=nowhere: no such stage, and no such image in the store",
        ),
        ("FROM default\nWORKDIR ${X\n", "cannot expand \"${X\""),
    ];
    for (text, want) in cases {
        let ctx = context(&[("Containerfile", text), ("a", "a"), ("b", "b")]);
        let stderr = fails_in_one_line(
            data.path(),
            &["build", "-t", "bad", ctx.path().to_str().expect("utf-8")],
        );
        assert!(
            stderr.contains(want),
            "{text:?}: want {want:?}, got {stderr}"
        );
    }
    let ctx = context(&[("Containerfile", "FROM default AS one\n")]);
    let stderr = fails_in_one_line(
        data.path(),
        &[
            "build",
            "--target",
            "two",
            "-t",
            "bad",
            ctx.path().to_str().expect("utf-8"),
        ],
    );
    assert!(
        stderr.contains("--target two: no stage of that name"),
        "{stderr}"
    );
    let empty = context(&[]);
    let stderr = fails_in_one_line(
        data.path(),
        &["build", "-t", "bad", empty.path().to_str().expect("utf-8")],
    );
    assert!(
        stderr.contains("no Containerfile or Dockerfile in the build context"),
        "{stderr}"
    );
    let stderr = fails_in_one_line(data.path(), &["build", "-t", "bad", "/no/such/dir"]);
    assert!(
        stderr.contains("the build context is not a directory"),
        "{stderr}"
    );
    let images = nutshell(data.path(), &["images"]);
    assert!(
        !images.contains("bad"),
        "a failed build left an image: {images}"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_failing_run_step_fails_the_build_and_leaves_no_container() {
    let data = data_dir();
    let ctx = context(&[(
        "Containerfile",
        "FROM default\nRUN echo partial > /f && exit 3\n",
    )]);
    let stderr = fails_in_one_line(
        data.path(),
        &["build", "-t", "fails", ctx.path().to_str().expect("utf-8")],
    );
    assert!(
        stderr.contains(
            "Containerfile:2: RUN: /bin/sh -c 'echo partial > /f && exit 3' exited with status 3"
        ),
        "{stderr}"
    );
    let images = nutshell(data.path(), &["images"]);
    assert!(!images.contains("fails"), "{images}");
    common::assert_nothing_left(data.path());
}

/// Every entry of `root`: type, mode, owner, and content digest or link target.
fn tree_listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if kind.is_symlink() {
                format!("link -> {}", fs::read_link(&path).expect("link").display())
            } else if kind.is_file() {
                format!(
                    "file {}",
                    nutshell::image::digest::Digest::of(&fs::read(&path).expect("read"))
                )
            } else {
                "special".to_string()
            };
            let relative = path
                .strip_prefix(root)
                .expect("inside")
                .display()
                .to_string();
            out.insert(
                relative,
                format!(
                    "{what} {:o} {}:{}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }
    out
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn buildah_builds_the_same_tree_from_the_same_containerfile() {
    let data = data_dir();
    let app = webapp_copy();
    let ctx = app.path().to_str().expect("utf-8");
    nutshell(data.path(), &["build", "-t", "webapp", ctx]);
    let base = data.path().join("default.tar");
    save_image(data.path(), "default", &base);
    let ours = data.path().join("ours");
    save_image(data.path(), "webapp", &ours);
    // buildah in a storage of the test's own (vfs: plain directories, no mounts), with
    // chroot isolation, the one that runs here without a daemon or a runtime.
    let storage = data.path().join("buildah");
    let buildah = |args: &[&str]| in_storage("buildah", &storage, args);
    let from = format!("oci-archive:{}", base.display());
    buildah(&[
        "build",
        "--isolation",
        "chroot",
        "--from",
        &from,
        "-t",
        "webapp",
        ctx,
    ]);
    let theirs = data.path().join("theirs");
    buildah(&[
        "push",
        "localhost/webapp:latest",
        &format!("oci:{}:latest", theirs.display()),
    ]);
    let unpack = |layout: &Path, bundle: &Path| {
        run_tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:latest", layout.display()),
                bundle.to_str().expect("utf-8"),
            ],
        );
        tree_listing(&bundle.join("rootfs"))
    };
    let ours = unpack(&ours, &data.path().join("ours-bundle"));
    let mut theirs = unpack(&theirs, &data.path().join("theirs-bundle"));
    // buildah's chroot isolation leaves its own mount points in the image: empty
    // 0755 files for the name files it binds, and /run. nutshell removes its mount
    // stubs, as BuildKit does; these four are buildah's, not differences in the build.
    for stub in ["etc/hostname", "etc/hosts", "etc/resolv.conf", "run"] {
        if !ours.contains_key(stub) {
            theirs.remove(stub);
        }
    }
    assert!(ours.contains_key("www/cgi-bin/hello"), "{ours:?}");
    let differences: Vec<String> = ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{k}: nutshell {:?}, buildah {:?}",
                ours.get(k),
                theirs.get(k)
            )
        })
        .collect();
    assert!(differences.is_empty(), "{differences:#?}");
    buildah(&["rmi", "--all", "--force"]);
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_built_image_saved_is_read_by_skopeo_and_loaded_by_podman() {
    let data = data_dir();
    let app = webapp_copy();
    nutshell(
        data.path(),
        &[
            "build",
            "-t",
            "nutshell-test/webapp:v1",
            app.path().to_str().expect("utf-8"),
        ],
    );
    let layout = data.path().join("layout");
    save_image(data.path(), "nutshell-test/webapp:v1", &layout);
    let inspected = skopeo(&["inspect", &format!("oci:{}:v1", layout.display())]);
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("JSON");
    let ours = image_json(data.path(), "nutshell-test/webapp:v1");
    assert_eq!(inspected["Digest"], ours["digest"]);
    assert_eq!(inspected["Layers"], ours["diff_ids"]);
    assert_eq!(
        inspected["Labels"]["org.opencontainers.image.title"],
        "webapp"
    );
    let archive = data.path().join("webapp.tar");
    save_image(data.path(), "nutshell-test/webapp:v1", &archive);
    let storage = data.path().join("podman");
    let podman = |args: &[&str]| in_storage("podman", &storage, args);
    let loaded = podman(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("nutshell-test/webapp:v1"));
    let config = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Cmd}} {{.Config.WorkingDir}}",
        "nutshell-test/webapp:v1",
    ]);
    let said = String::from_utf8_lossy(&config.stdout);
    assert!(said.contains("httpd") && said.contains("/www"), "{said}");
    podman(&["rmi", "--all", "--force"]);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn run_steps_have_no_network_unless_asked_for_a_bridge() {
    let data = data_dir();
    let ctx = context(&[(
        "Containerfile",
        "FROM default\nRUN ip -o link | cut -d: -f2 | tr -d ' ' > /links\n",
    )]);
    let dir = ctx.path().to_str().expect("utf-8");
    let links = |name: &str| {
        let bytes = image_tree(data.path(), name)
            .read_file(Path::new("links"), 1000)
            .expect("read")
            .expect("links");
        String::from_utf8(bytes).expect("utf-8")
    };
    nutshell(data.path(), &["build", "-t", "none", dir]);
    assert_eq!(links("none"), "lo\n");
    nutshell(
        data.path(),
        &[
            "build",
            "--no-cache",
            "--network",
            "bridge",
            "-t",
            "bridged",
            dir,
        ],
    );
    let with_bridge = links("bridged");
    assert!(with_bridge.starts_with("lo\neth0@"), "{with_bridge}");
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_builds_with_its_subordinate_ids() {
    let data = common::data_dir_for_nobody();
    let ctx = context(&[
        (
            "Containerfile",
            "FROM default\n\
             RUN mkdir /owned && echo s > /owned/secret && chmod 600 /owned/secret \
                 && chmod 700 /owned && chown -R 1000:1000 /owned && rm /etc/group\n\
             COPY --chown=1000 f /app/\n\
             USER 1000\n\
             RUN id -u > /tmp/id\n",
        ),
        ("f", "data\n"),
    ]);
    for path in [
        ctx.path().to_path_buf(),
        ctx.path().join("f"),
        ctx.path().join("Containerfile"),
    ] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod");
    }
    let output = common::run_as_nobody(
        NUTSHELL,
        data.path(),
        "nobody:300000:65536\n",
        "nobody:300000:65536\n",
        &[
            "build",
            "-t",
            "rootless",
            ctx.path().to_str().expect("utf-8"),
        ],
    );
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let all: Vec<String> = layers(data.path(), "rootless")
        .into_iter()
        .skip(1)
        .flatten()
        .collect();
    let has = |line: &str| all.iter().any(|l| l.starts_with(line));
    // Owners as the container saw them, not the host's subordinate ids; the 0600 file of
    // uid 1000, which nobody cannot read from outside, packed by the namespace's root.
    assert!(has("dir       owned 0700 1000:1000"), "{all:#?}");
    assert!(
        has("file      owned/secret 0600 1000:1000 (2 bytes)"),
        "{all:#?}"
    );
    assert!(has("whiteout  etc/group"), "{all:#?}");
    assert!(has("file      app/f 0644 1000:1000"), "{all:#?}");
    assert!(has("file      tmp/id 0644 1000:1000"), "{all:#?}");
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn chapter_9_runs_the_built_image_with_its_config() {
    let data = data_dir();
    let app = webapp_copy();
    nutshell(
        data.path(),
        &["build", "-t", "webapp", app.path().to_str().expect("utf-8")],
    );
    let output = binary(env!("CARGO_BIN_EXE_ch09-images"), data.path())
        .args(["--image", "webapp", "--network", "none", "--"])
        .args([
            "/bin/sh",
            "-c",
            "pwd; cat built.txt; grep www /etc/passwd; ls -l cgi-bin",
        ])
        .timeout(BUILD_TIMEOUT)
        .output()
        .expect("run ch09-images");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // WorkingDir, the RUN's files and its copied-up /etc/passwd, the mode it set.
    assert!(stdout.contains("\n/www\n"), "{stdout}");
    assert!(stdout.contains("built with GREETING=hello"), "{stdout}");
    assert!(
        stdout.contains("www:x:33:33:www:/www:/bin/false"),
        "{stdout}"
    );
    assert!(stdout.contains("-rwxr-xr-x"), "{stdout}");
    common::assert_nothing_left(data.path());
}
