//! What the image store needs from the runtime: unpacking a layer as the caller's
//! containers will see it, knowing which layers running containers use, and removing
//! layers whose files belong to a rootless user's subordinate ids.

use std::io;
use std::path::{Path, PathBuf};

use super::facts::HostFacts;
use super::state;
use crate::image::digest::Digest;
use crate::image::extract::{Limits, Privilege, Unpacked};
use crate::image::store::{InProcess, StoreError, Unpacker};
use crate::userns::IdMaps;
use crate::workloads::Builtin;

/// Unpack as the caller's containers will see the files: root in this process; a user
/// with subordinate ids as the root of a user namespace with the caller's default maps
/// (so a file of uid 0 in the image is the user's own, uid 33 its subordinate 100032);
/// a user without them in this process, every file its own.
pub struct CallerUnpacker {
    facts: HostFacts,
    maps: Option<IdMaps>,
}

impl CallerUnpacker {
    /// The maps a rootless caller's layers are unpacked with (their files belong to
    /// host ids through them); `None` for root, whose layers keep the image's ids.
    pub fn maps(&self) -> Option<&IdMaps> {
        self.maps.as_ref()
    }

    /// The unpacker for the caller `facts` describes.
    pub fn new(facts: &HostFacts) -> Result<CallerUnpacker, super::LaunchError> {
        Ok(CallerUnpacker {
            facts: facts.clone(),
            maps: caller_maps(facts)?,
        })
    }
}

/// The caller's default user namespace maps, when it is not root and has subordinate
/// ids; `None` otherwise.
fn caller_maps(facts: &HostFacts) -> Result<Option<IdMaps>, super::LaunchError> {
    if facts.caller.privileged {
        return Ok(None);
    }
    let mapping = crate::userns::plan_mapping(
        &facts.caller,
        &[],
        &[],
        facts.subuids.as_deref().unwrap_or_default(),
        facts.subgids.as_deref().unwrap_or_default(),
        facts.id_map_helpers.clone(),
    )?;
    Ok((mapping.maps.uid_count() > 1).then_some(mapping.maps))
}

// ANCHOR: caller_unpack
impl Unpacker for CallerUnpacker {
    fn unpack(
        &self,
        blob: &Path,
        blob_digest: &Digest,
        diff_id: &Digest,
        dest: &Path,
    ) -> Result<Unpacked, StoreError> {
        let Some(maps) = &self.maps else {
            let privilege = if self.facts.caller.privileged {
                Privilege::Root
            } else {
                Privilege::User
            };
            return InProcess {
                privilege,
                limits: Limits::default(),
            }
            .unpack(blob, blob_digest, diff_id, dest);
        };
        let builtin = Builtin::UnpackLayer {
            blob: blob.to_path_buf(),
            blob_digest: blob_digest.clone(),
            diff_id: diff_id.clone(),
            dest: dest.to_path_buf(),
        };
        let failed = |reason: String| StoreError::Io {
            operation: "unpack in a user namespace into",
            path: dest.to_path_buf(),
            source: io::Error::other(reason),
        };
        let exit = super::run_as_mapped_root(maps, builtin, &self.facts)
            .map_err(|e| failed(crate::cli::one_line(&e)))?;
        if exit.code() != 0 {
            let _ = remove_layer_trees(vec![dest.to_path_buf()], &self.facts);
            return Err(failed(format!(
                "the unpacking helper {exit} (its error is above)"
            )));
        }
        // The counts stay in the helper; the directory is what matters.
        Ok(Unpacked::default())
    }
}
// ANCHOR_END: caller_unpack

/// The container (its id) that runs on any of `layers`, if one does.
pub fn container_using(layers: &[PathBuf], facts: &HostFacts) -> Option<String> {
    // Every recorded container counts, running or left by a killed owner: a layer is
    // kept until `nutshell cleanup` has swept what was left.
    for dir in state::list(&facts.state_root).ok()? {
        let Ok(text) = std::fs::read_to_string(dir.join("state.json")) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<state::State>(&text) else {
            continue;
        };
        if record.layers.iter().any(|l| layers.contains(l)) {
            return Some(record.id.to_string());
        }
    }
    None
}

/// Remove layer directories: directly, or as the caller's namespace root when its
/// layers hold files of its subordinate ids.
pub fn remove_layer_trees(paths: Vec<PathBuf>, facts: &HostFacts) -> io::Result<()> {
    super::sweep::remove_trees_as_owner(paths, facts)
        .map_err(|e| io::Error::other(crate::cli::one_line(&e)))
}
