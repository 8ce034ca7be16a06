//! What `nutshell images` and `nutshell image inspect` print: a table as docker's, and
//! JSON for scripts.

use serde::Serialize;

use super::digest::Digest;
use super::oci::RunConfig;
use super::store::StoredImage;

/// One image as `images --json` and `image inspect` show it.
#[derive(Debug, Serialize)]
pub struct ImageInfo {
    /// `NAME:TAG`.
    pub name: String,
    /// The config's digest (docker's image id).
    pub id: Digest,
    /// The manifest's digest (what a registry calls the image).
    pub digest: Digest,
    /// When the image was made, as its config says.
    pub created: Option<String>,
    /// `linux/amd64`.
    pub platform: String,
    /// The blobs' total size in bytes.
    pub size: u64,
    /// How it runs.
    pub config: RunConfig,
    /// The layer blobs' digests, bottom first (what a registry serves).
    pub layers: Vec<Digest>,
    /// The layers' diff ids (their uncompressed tars), bottom first.
    pub diff_ids: Vec<Digest>,
    /// The unpacked layers in the store, bottom first.
    pub layer_dirs: Vec<std::path::PathBuf>,
}

impl ImageInfo {
    /// The info of `image`.
    pub fn of(image: &StoredImage) -> ImageInfo {
        ImageInfo {
            name: image.name.clone(),
            id: image.config_digest.clone(),
            digest: image.manifest_digest.clone(),
            created: image.config.created.clone(),
            platform: format!("{}/{}", image.config.os, image.config.architecture),
            size: image.size(),
            config: image.config.config.clone().unwrap_or_default(),
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect(),
            diff_ids: image.config.rootfs.diff_ids.clone(),
            layer_dirs: image.layer_dirs.clone(),
        }
    }
}

// ANCHOR: table
/// The `images` table: repository, tag, id, creation date, layers and size.
pub fn table(images: &[StoredImage]) -> String {
    let mut rows = vec![[
        "REPOSITORY".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "CREATED".to_string(),
        "LAYERS".to_string(),
        "SIZE".to_string(),
    ]];
    for image in images {
        let (repository, tag) = image
            .name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .unwrap_or((&image.name, "latest"));
        let created = image
            .config
            .created
            .as_deref()
            .map(|c| c.get(..10).unwrap_or(c).to_string())
            .unwrap_or_else(|| "-".to_string());
        rows.push([
            repository.to_string(),
            tag.to_string(),
            image.config_digest.short().to_string(),
            created,
            image.manifest.layers.len().to_string(),
            human_size(image.size()),
        ]);
    }
    columns(&rows)
}
// ANCHOR_END: table

/// Rows as docker prints its tables: each column as wide as its widest cell, three
/// spaces between columns, no trailing spaces.
pub fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let count = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|col| {
            rows.iter()
                .map(|r| r.as_ref().get(col).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// Bytes as docker prints them: `1.2MB`, `512kB`, decimal units.
pub fn human_size(bytes: u64) -> String {
    for (unit, size) in [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] {
        if bytes as f64 >= size {
            let number = format!("{:.3}", bytes as f64 / size);
            let number = number.trim_end_matches('0').trim_end_matches('.');
            return format!("{number}{unit}");
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
    }
}
