//! Chapter 9's two images, made offline: a two-layer image over the default image,
//! and a hostile one.
//!
//! The tour needs an image from "somewhere else" to import. Without a network, it makes
//! one as an OCI layout, the way a registry or `skopeo copy oci:` would hand it over:
//! the default image's layer at the bottom, and a gzip layer over it that adds files,
//! deletes one with a whiteout, and a config that sets Env, Entrypoint, Cmd, WorkingDir
//! and User. The break-it demo makes a layout whose one layer plants a symlink to a
//! host path and writes through it, as the archive attacks of CVE-2014-6407 did.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::digest::Digest;
use super::oci::{
    Descriptor, History, ImageConfig, Index, Manifest, Platform, RootFsConfig, RunConfig, media,
};
use super::store::StoredImage;

/// The tour image's Cmd: what the container prints, to show the config was applied.
pub const TOUR_CMD: &str = "echo \"$GREETING\"; id; pwd; cat /etc/motd; ls /etc; ls -l /srv";

/// Write a layout at `dir` (which must not exist) holding one image: `base`'s layers
/// (blobs read from `blobs`), then the tour's layer. Returns the layout's manifest
/// digest.
pub fn tour_layout(dir: &Path, base: &StoredImage, blobs: &Path) -> io::Result<Digest> {
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("etc/", b"", 0o755),
        (
            "etc/motd",
            b"hello from layer 2 of the ch09 demo image\n",
            0o644,
        ),
        ("etc/.wh.group", b"", 0o644),
        ("srv/", b"", 0o755),
        (
            "srv/index.html",
            b"<p>served from an OCI layer</p>\n",
            0o644,
        ),
    ];
    files.sort_by_key(|(path, _, _)| *path);
    let layer = gzip(&tar_of(&files, &[])?)?;
    let diff = tar_of(&files, &[])?;
    let run = RunConfig {
        user: Some("nobody".to_string()),
        env: Some(vec![
            format!("PATH={}", crate::spec::CONTAINER_PATH),
            "GREETING=hello from the image's config".to_string(),
        ]),
        entrypoint: Some(vec!["/bin/sh".to_string(), "-c".to_string()]),
        cmd: Some(vec![TOUR_CMD.to_string()]),
        working_dir: Some("/srv".to_string()),
        ..Default::default()
    };
    let mut layers: Vec<(Descriptor, Digest, Vec<u8>)> = Vec::new();
    for (descriptor, diff_id) in base
        .manifest
        .layers
        .iter()
        .zip(&base.config.rootfs.diff_ids)
    {
        let bytes = fs::read(blobs.join(descriptor.digest.hex()))?;
        layers.push((descriptor.clone(), diff_id.clone(), bytes));
    }
    layers.push((
        descriptor(media::OCI_LAYER_GZIP, &layer),
        Digest::of(&diff),
        layer,
    ));
    write_layout(dir, run, layers, "ch09-demo:latest")
}

/// Write a layout at `dir` whose one layer makes `etc/sneaky` a symlink to `target`
/// and then writes `etc/sneaky/pwned` through it.
pub fn hostile_layout(dir: &Path, target: &Path) -> io::Result<Digest> {
    let files: Vec<(&str, &[u8], u32)> = vec![("etc/", b"", 0o755)];
    let links = [("etc/sneaky", target.to_string_lossy().into_owned())];
    let mut tar = tar_of(&files, &links)?;
    // Then the write through the symlink, appended by hand: the tar crate's builder
    // would refuse nothing here, but a tar made elsewhere can hold anything.
    let mut builder = tar::Builder::new(Vec::new());
    let body = b"written through a symlink\n";
    let mut header = tar::Header::new_ustar();
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, "etc/sneaky/pwned", &body[..])?;
    let extra = builder.into_inner()?;
    // Splice: drop the first archive's two end blocks, add the second whole.
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&extra);
    let run = RunConfig {
        cmd: Some(vec!["/bin/sh".to_string()]),
        ..Default::default()
    };
    let diff_id = Digest::of(&tar);
    let layers = vec![(descriptor(media::OCI_LAYER, &tar), diff_id, tar)];
    write_layout(dir, run, layers, "ch09-hostile:latest")
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// A tar of `files` (paths ending in `/` are directories) and `symlinks`, owned by
/// root, at a fixed time.
fn tar_of(files: &[(&str, &[u8], u32)], symlinks: &[(&str, String)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, body, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(*mode);
        header.set_mtime(super::pack::DEFAULT_EPOCH);
        header.set_size(body.len() as u64);
        header.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        builder.append_data(&mut header, path, *body)?;
    }
    for (path, target) in symlinks {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o777);
        header.set_mtime(super::pack::DEFAULT_EPOCH);
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        builder.append_link(&mut header, path, target)?;
    }
    builder.into_inner()
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// An OCI layout at `dir`: the layers' blobs, a config naming their diff ids, a
/// manifest, and an index that tags it `name`.
fn write_layout(
    dir: &Path,
    run: RunConfig,
    layers: Vec<(Descriptor, Digest, Vec<u8>)>,
    name: &str,
) -> io::Result<Digest> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let platform = Platform::host();
    let config = ImageConfig {
        created: Some(super::pack::rfc3339(super::pack::DEFAULT_EPOCH)),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        config: Some(run),
        rootfs: RootFsConfig {
            kind: "layers".to_string(),
            diff_ids: layers
                .iter()
                .map(|(_, diff_id, _)| diff_id.clone())
                .collect(),
        },
        history: vec![History {
            created_by: Some("chapter 9's demo".to_string()),
            ..Default::default()
        }],
    };
    let config_bytes = serde_json::to_vec(&config).map_err(io::Error::other)?;
    let config_descriptor = descriptor(media::OCI_CONFIG, &config_bytes);
    fs::write(blobs.join(config_descriptor.digest.hex()), &config_bytes)?;
    let mut descriptors = Vec::new();
    for (descriptor, _, bytes) in layers {
        fs::write(blobs.join(descriptor.digest.hex()), &bytes)?;
        descriptors.push(descriptor);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: config_descriptor,
        layers: descriptors,
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let mut manifest_descriptor = descriptor(media::OCI_MANIFEST, &manifest_bytes);
    fs::write(
        blobs.join(manifest_descriptor.digest.hex()),
        &manifest_bytes,
    )?;
    manifest_descriptor.platform = Some(platform);
    manifest_descriptor.annotations.insert(
        super::archive::CONTAINERD_NAME.to_string(),
        name.to_string(),
    );
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: vec![manifest_descriptor.clone()],
    };
    fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")?;
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).map_err(io::Error::other)?,
    )?;
    Ok(manifest_descriptor.digest)
}
