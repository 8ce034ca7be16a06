//! Chapter 9: images in and out, the store's commands, the registry, and the tour.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{NUTSHELL, image_json, nutshell, nutshell_fails, save_image};
use common::registry::{Registry, in_storage, skopeo};
use common::{binary, data_dir, output_within, snapshot_settings};

const CH09: &str = env!("CARGO_BIN_EXE_ch09-images");

/// The snapshot settings, with digests (which depend on the host's busybox) hidden.
fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"layers/[0-9a-f]{64}", "layers/[CHAIN-ID]");
    settings.add_filter(r"ch09-break-it-[A-Za-z0-9]+", "ch09-break-it-[TMP]");
    settings
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_tour_imports_verifies_unpacks_and_runs_the_image_with_its_config() {
    let data = data_dir();
    // No network: chapter 8's tests cover it, and the layout lane's guests have none.
    let output = binary(CH09, data.path())
        .args(["--network", "none"])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run ch09-images");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The config was applied: Env, WorkingDir, User by name, and the whiteout of layer 2.
    assert!(stdout.contains("hello from the image's config"), "{stdout}");
    assert!(stdout.contains("uid=65534(nobody)"), "{stdout}");
    assert!(stdout.contains("\n/srv\n"), "{stdout}");
    assert!(
        !stdout.contains("\ngroup\n"),
        "the whiteout did not hide /etc/group: {stdout}"
    );
    settings(data.path()).bind(|| insta::assert_snapshot!("ch09_tour", stdout));
    common::assert_nothing_left(data.path());
}

#[test]
fn break_it_refuses_the_write_through_a_symlink_and_leaves_no_layer() {
    let data = data_dir();
    let output = binary(CH09, data.path())
        .arg("--break-it")
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run ch09-images");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("layer entry \"etc/sneaky/pwned\""),
        "{stdout}"
    );
    assert!(stdout.contains("pwned exists: false"), "{stdout}");
    assert!(
        stdout.contains("layers left in the store by it: 0"),
        "{stdout}"
    );
    settings(data.path()).bind(|| insta::assert_snapshot!("ch09_break_it", stdout));
}

#[test]
fn a_saved_image_is_imported_again_with_the_same_digests_and_tree() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let original = image_json(data.path(), "default");
    let out = data.path().join("default.tar");
    save_image(data.path(), "default", &out);
    let other = data_dir();
    let imported = nutshell(
        other.path(),
        &["image", "import", out.to_str().expect("utf-8")],
    );
    assert!(imported.contains("imported default:latest"), "{imported}");
    let again = image_json(other.path(), "default");
    assert_eq!(again["digest"], original["digest"]);
    assert_eq!(again["diff_ids"], original["diff_ids"]);
    let first = Path::new(original["layer_dirs"][0].as_str().expect("dir"));
    let second = Path::new(again["layer_dirs"][0].as_str().expect("dir"));
    let diff = output_within(
        Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(first)
            .arg(second)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("diff"),
        Duration::from_secs(60),
    );
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

#[test]
fn skopeo_reads_a_saved_layout_and_podman_loads_a_saved_archive() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    nutshell(data.path(), &["tag", "default", "nutshell-test/default:v1"]);
    let layout = data.path().join("layout");
    save_image(data.path(), "nutshell-test/default:v1", &layout);
    let inspected = skopeo(&["inspect", &format!("oci:{}:v1", layout.display())]);
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspected.stdout).expect("skopeo's JSON");
    let ours = image_json(data.path(), "nutshell-test/default:v1");
    assert_eq!(inspected["Digest"], ours["digest"]);
    assert_eq!(inspected["Layers"], ours["diff_ids"]);
    // podman in a storage of the test's own, never the machine's.
    let archive = data.path().join("default.tar");
    save_image(data.path(), "nutshell-test/default:v1", &archive);
    let storage = data.path().join("podman");
    let podman = |args: &[&str]| in_storage("podman", &storage, args);
    let loaded = podman(&["load", "-i", archive.to_str().expect("utf-8")]);
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(said.contains("nutshell-test/default:v1"), "{said}");
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        String::from_utf8_lossy(&images.stdout).contains("nutshell-test/default:v1"),
        "{}",
        String::from_utf8_lossy(&images.stdout)
    );
}

#[test]
fn a_legacy_docker_save_archive_is_imported() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let image = image_json(data.path(), "default");
    let layout = data.path().join("layout");
    save_image(data.path(), "default", &layout);
    // Docker before 25: <config hex>.json, <id>/layer.tar and manifest.json, no index.
    let legacy = data.path().join("legacy");
    let config_hex = image["id"]
        .as_str()
        .expect("id")
        .trim_start_matches("sha256:");
    let layer_hex = image["diff_ids"][0]
        .as_str()
        .expect("diff id")
        .trim_start_matches("sha256:");
    std::fs::create_dir_all(legacy.join("abc123")).expect("mkdir");
    std::fs::copy(
        layout.join("blobs/sha256").join(config_hex),
        legacy.join(format!("{config_hex}.json")),
    )
    .expect("config");
    std::fs::copy(
        layout.join("blobs/sha256").join(layer_hex),
        legacy.join("abc123/layer.tar"),
    )
    .expect("layer");
    std::fs::write(
        legacy.join("manifest.json"),
        format!(
            r#"[{{"Config":"{config_hex}.json","RepoTags":["legacy/busybox:old"],"Layers":["abc123/layer.tar"]}}]"#
        ),
    )
    .expect("manifest.json");
    let other = data_dir();
    let said = nutshell(
        other.path(),
        &["image", "import", legacy.to_str().expect("utf-8")],
    );
    assert!(said.contains("imported legacy/busybox:old"), "{said}");
    let again = image_json(other.path(), "legacy/busybox:old");
    assert_eq!(again["diff_ids"], image["diff_ids"]);
    assert_eq!(again["id"], image["id"]);
}

#[test]
fn a_tampered_blob_is_refused_and_the_store_keeps_nothing_of_it() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let image = image_json(data.path(), "default");
    let layout = data.path().join("layout");
    save_image(data.path(), "default", &layout);
    let layer = image["layers"][0]
        .as_str()
        .expect("layer")
        .trim_start_matches("sha256:");
    let path = layout.join("blobs/sha256").join(layer);
    let mut bytes = std::fs::read(&path).expect("read the layer");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("tamper");
    let other = data_dir();
    let err = nutshell_fails(
        other.path(),
        &["image", "import", layout.to_str().expect("utf-8")],
    );
    // Progress lines come first (stderr is no terminal here), then the one error line.
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains(&format!("blob sha256:{layer}")), "{err}");
    assert!(err.contains("corrupted or tampered with"), "{err}");
    assert!(!other.path().join("blobs/sha256").join(layer).exists());
    let layers = other.path().join("layers");
    assert!(!layers.exists() || std::fs::read_dir(&layers).expect("read").count() == 0);
}

#[test]
fn tag_rmi_and_prune_remove_only_what_nothing_references() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    nutshell(data.path(), &["tag", "default", "copy:v2"]);
    let listed: serde_json::Value =
        serde_json::from_str(&nutshell(data.path(), &["images", "--json"])).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 2);
    let table = nutshell(data.path(), &["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(table.contains("copy ") && table.contains("v2"), "{table}");
    nutshell(data.path(), &["rmi", "default"]);
    assert_eq!(
        nutshell(data.path(), &["image", "prune"]),
        "nothing to prune\n"
    );
    nutshell(data.path(), &["rmi", "copy:v2"]);
    let pruned = nutshell(data.path(), &["image", "prune"]);
    assert!(pruned.contains("/layers/"), "{pruned}");
    assert!(pruned.contains("/blobs/sha256/"), "{pruned}");
    assert!(nutshell(data.path(), &["images"]).lines().count() == 1);
    let err = nutshell_fails(data.path(), &["rmi", "copy:v2"]);
    assert!(err.contains("no image named copy:v2 in the store"), "{err}");
    let err = nutshell_fails(data.path(), &["tag", "nothing", "x"]);
    assert!(err.contains("no image named nothing"), "{err}");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn rmi_is_refused_while_a_container_runs_on_the_image() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let child = Command::new(CH09)
        .env("NUTSHELL_DATA", data.path())
        .env("NUTSHELL_ROOT", common::state_dir(data.path()))
        .args([
            "--network",
            "none",
            "--image",
            "default",
            "--",
            "sleep",
            "20",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a container");
    let running = common::background::Background::new(child);
    // Wait for its state to be recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(common::state_dir(data.path()))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = nutshell_fails(data.path(), &["rmi", "default"]);
    assert!(
        err.contains("image default:latest is in use by container"),
        "{err}"
    );
    running.stop();
}

#[test]
fn bad_input_gets_one_line_and_leaves_nothing() {
    let data = data_dir();
    let err = nutshell_fails(data.path(), &["image", "import", "/nonexistent/x.tar"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.tar"), "{err}");
    let junk = data.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar at all").expect("write");
    let err = nutshell_fails(
        data.path(),
        &["image", "import", junk.to_str().expect("utf-8")],
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = nutshell_fails(data.path(), &["image", "inspect", "Bad Name"]);
    assert!(err.contains("is not valid"), "{err}");
    assert!(
        !data.path().join("layers").exists()
            || std::fs::read_dir(data.path().join("layers"))
                .expect("read")
                .count()
                == 0
    );
}

#[test]
fn an_image_pushed_by_skopeo_is_pulled_by_nutshell_and_pushed_back() {
    let registry = Registry::start();
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let layout = data.path().join("layout");
    save_image(data.path(), "default", &layout);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &registry.docker_url("test/busybox:1"),
    ]);
    let other = data_dir();
    let reference = format!("{}/test/busybox:1", registry.address);
    let pulled = nutshell(other.path(), &["pull", &reference]);
    assert!(pulled.contains(&format!("pulled {reference}")), "{pulled}");
    let ours = image_json(other.path(), &reference);
    assert_eq!(
        ours["diff_ids"],
        image_json(data.path(), "default")["diff_ids"]
    );
    // And back: pushed by nutshell under another name, read by skopeo.
    let target = format!("{}/test/again:2", registry.address);
    let pushed = nutshell(other.path(), &["push", &reference, &target]);
    assert!(pushed.contains("pushed"), "{pushed}");
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &registry.docker_url("test/again:2"),
    ]);
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspected.stdout).expect("skopeo's JSON");
    assert_eq!(inspected["Digest"], ours["digest"]);
    assert_eq!(inspected["Layers"], ours["layers"]);
    // A name the registry does not have is one clear line.
    let err = nutshell_fails(
        other.path(),
        &["pull", &format!("{}/test/missing:1", registry.address)],
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
    registry.stop();
}

/// A tar of `entries`: (path, kind, uid, mode, body); kind 'd' dir, 'f' file, 'c' a
/// character device 1:3.
fn layer_tar(entries: &[(&str, char, u64, u32, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, uid, mode, body) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(*uid);
        header.set_gid(*uid);
        header.set_mode(*mode);
        header.set_mtime(946_684_800);
        header.set_size(body.len() as u64);
        let entry_type = match kind {
            'd' => tar::EntryType::Directory,
            'c' => tar::EntryType::Char,
            _ => tar::EntryType::Regular,
        };
        header.set_entry_type(entry_type);
        if *kind == 'c' {
            header.set_device_major(1).expect("major");
            header.set_device_minor(3).expect("minor");
        }
        builder
            .append_data(&mut header, path, *body)
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

/// An OCI layout at `dir` with one image of `layers` (plain tars, bottom first), named
/// `name`, whose index entry goes through a nested multi-platform index when `nested`.
fn write_layout(dir: &Path, layers: &[Vec<u8>], name: &str, nested: bool) {
    use nutshell::image::digest::Digest;
    use serde_json::json;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let put = |bytes: &[u8]| {
        let digest = Digest::of(bytes);
        std::fs::write(blobs.join(digest.hex()), bytes).expect("write blob");
        (digest.to_string(), bytes.len())
    };
    let platform = nutshell::image::oci::Platform::host();
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = json!({
        "architecture": platform.architecture, "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|layer| {
            let (digest, size) = put(layer);
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layer_descriptors,
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let host = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "platform": {"architecture": platform.architecture, "os": "linux"}});
    let entry = if nested {
        let other = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "1".repeat(64)), "size": 2,
            "platform": {"architecture": "s390x", "os": "linux"}});
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [other, host]});
        let (digest, size) = put(index.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
            "annotations": {"io.containerd.image.name": name}})
    } else {
        let mut host = host;
        host["annotations"] = json!({"io.containerd.image.name": name});
        host
    };
    let index = json!({"schemaVersion": 2, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

#[test]
fn a_multi_platform_index_is_resolved_to_this_hosts_manifest() {
    let data = data_dir();
    let layout = data.path().join("layout");
    let layer = layer_tar(&[
        ("etc/", 'd', 0, 0o755, b""),
        ("etc/motd", 'f', 0, 0o644, b"hi\n"),
    ]);
    write_layout(&layout, std::slice::from_ref(&layer), "multi/arch:1", true);
    let said = nutshell(
        data.path(),
        &["image", "import", layout.to_str().expect("utf-8")],
    );
    assert!(said.contains("imported multi/arch:1"), "{said}");
    let image = image_json(data.path(), "multi/arch:1");
    assert_eq!(
        image["platform"],
        format!(
            "linux/{}",
            nutshell::image::oci::Platform::host().architecture
        )
    );
    let dir = Path::new(image["layer_dirs"][0].as_str().expect("dir"));
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/motd")).expect("motd"),
        "hi\n"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_images_device_nodes_are_made_by_root_but_the_container_sees_its_own_dev() {
    let data = data_dir();
    nutshell(data.path(), &["image", "default"]);
    let base = image_json(data.path(), "default");
    let layout = data.path().join("layout");
    let top = layer_tar(&[
        ("dev/", 'd', 0, 0o755, b""),
        ("dev/evil", 'c', 0, 0o666, b""),
        ("dev/null", 'f', 0, 0o644, b"a file, not a device\n"),
    ]);
    let base_layer = std::fs::read(
        data.path().join("blobs/sha256").join(
            base["layers"][0]
                .as_str()
                .expect("layer")
                .trim_start_matches("sha256:"),
        ),
    )
    .expect("the default image's layer");
    write_layout(&layout, &[base_layer, top], "devices:1", false);
    nutshell(
        data.path(),
        &["image", "import", layout.to_str().expect("utf-8")],
    );
    let image = image_json(data.path(), "devices:1");
    let top_dir = Path::new(image["layer_dirs"][1].as_str().expect("dir"));
    use std::os::unix::fs::FileTypeExt;
    let evil = std::fs::symlink_metadata(top_dir.join("dev/evil")).expect("dev/evil");
    assert!(
        evil.file_type().is_char_device(),
        "root makes the image's device node"
    );
    let output = binary(CH09, data.path())
        .args(["--network", "none", "--image", "devices:1", "--"])
        .args([
            "sh",
            "-c",
            "ls /dev; test -c /dev/null && echo null-is-the-runtimes",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout.contains("evil"),
        "the image's /dev shows through: {stdout}"
    );
    assert!(stdout.contains("null-is-the-runtimes"), "{stdout}");
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_rootless_import_unpacks_in_a_user_namespace_with_the_users_subordinate_ids() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let data = common::data_dir_for_nobody();
    let layout = data.path().join("layout");
    let layer = layer_tar(&[
        ("etc/", 'd', 0, 0o755, b""),
        ("etc/.wh..wh..opq", 'f', 0, 0o644, b""),
        ("etc/.wh.group", 'f', 0, 0o644, b""),
        ("home/", 'd', 0, 0o755, b""),
        ("home/app/", 'd', 1000, 0o750, b""),
        ("home/app/notes", 'f', 1000, 0o600, b"mine\n"),
    ]);
    write_layout(&layout, &[layer], "rootless/import:1", false);
    std::os::unix::fs::chown(&layout, Some(65534), Some(65534)).expect("chown");
    let ids = "nobody:200000:65536\n";
    let output = common::run_as_nobody(
        NUTSHELL,
        data.path(),
        ids,
        ids,
        &["image", "import", layout.to_str().expect("utf-8")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let layers: Vec<_> = std::fs::read_dir(data.path().join("layers"))
        .expect("layers")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let layer = &layers[0];
    // uid 0 inside is nobody outside; uid 1000 inside is subordinate id 200000 + 999.
    let app = std::fs::metadata(layer.join("home/app")).expect("home/app");
    assert_eq!((app.uid(), app.gid()), (200_999, 200_999));
    let etc = std::fs::metadata(layer.join("etc")).expect("etc");
    assert_eq!(etc.uid(), 65534);
    assert_eq!(
        common::xattr(&layer.join("etc"), "user.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        common::xattr(&layer.join("etc"), "trusted.overlay.opaque"),
        None
    );
    let whiteout = std::fs::symlink_metadata(layer.join("etc/group")).expect("whiteout");
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    // And nobody's `image prune` removes what its subordinate ids own.
    let untag = common::run_as_nobody(
        NUTSHELL,
        data.path(),
        ids,
        ids,
        &["rmi", "rootless/import:1"],
    );
    assert!(
        untag.status.success(),
        "{}",
        String::from_utf8_lossy(&untag.stderr)
    );
    let prune = common::run_as_nobody(NUTSHELL, data.path(), ids, ids, &["image", "prune"]);
    assert!(
        prune.status.success(),
        "{}",
        String::from_utf8_lossy(&prune.stderr)
    );
    assert!(!layer.exists(), "prune left {}", layer.display());
}

#[test]
fn help_says_what_to_try() {
    common::assert_help_mentions(
        CH09,
        &[
            "--import",
            "--pull",
            "--image",
            "--break-it",
            "--plan",
            "--network",
        ],
    );
}

#[test]
fn a_bad_reference_or_a_missing_image_is_one_line_and_makes_nothing() {
    let data = data_dir();
    for (args, says) in [
        (
            &["--pull", "Not A Reference"][..],
            "invalid image reference",
        ),
        (&["--image", "missing:1"][..], "no image named missing:1"),
        (
            &["--import", "/nonexistent/layout"][..],
            "/nonexistent/layout",
        ),
    ] {
        let output = binary(CH09, data.path())
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run ch09-images");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ch09-images: error: "), "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!data.path().join("layers").exists(), "a layer was made");
    common::assert_nothing_left(data.path());
}

/// The book's worked example: the diff id of an empty layer (a tar of no entries is its
/// two end blocks, 1024 zero bytes), and the chain ids of that layer stacked three times.
#[test]
fn chain_ids_worked_through_for_three_empty_layers() {
    use nutshell::image::digest::{Digest, chain_ids};
    let empty_tar = tar::Builder::new(Vec::new())
        .into_inner()
        .expect("an empty tar");
    assert_eq!(empty_tar, vec![0u8; 1024]);
    let diff_id = Digest::of(&empty_tar);
    let mut text = format!("diff id of an empty layer (1024 zero bytes): {diff_id}\n");
    let chain = chain_ids(&[diff_id.clone(), diff_id.clone(), diff_id.clone()]);
    for (i, id) in chain.iter().enumerate() {
        let how = match i {
            0 => "its diff id".to_string(),
            _ => format!("sha256(\"{} {diff_id}\")", chain[i - 1]),
        };
        text.push_str(&format!("layer {}: chain id {id}\n  = {how}\n", i + 1));
    }
    insta::with_settings!({ omit_expression => true, prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("ch09_chain_ids", text);
    });
}
