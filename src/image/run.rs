//! Running an image: its config's Entrypoint, Cmd, Env, WorkingDir and User become the
//! container's process, and its layers the overlay's lowers.
//!
//! The rules are docker's: the command is Entrypoint followed by Cmd, and a command
//! given on the command line replaces Cmd (not the entrypoint); the image's Env comes
//! over the standard environment; User is `uid`, `uid:gid`, `name` or `name:group`,
//! names looked up in the image's own `/etc/passwd` and `/etc/group`.

use std::path::PathBuf;

use super::store::StoredImage;
use crate::spec::{ContainerSpec, Process, Program, RootFs, Upper, User, chapters};

/// A config the container cannot be run from.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    /// Neither the image nor the caller says what to run.
    #[error("image {image} has no Entrypoint or Cmd: give the command to run")]
    NoCommand {
        /// The image.
        image: String,
    },
    /// A user or group name the image does not know.
    #[error("image {image}: user {user:?}: {reason}")]
    User {
        /// The image.
        image: String,
        /// The User field.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// A working directory that is not absolute.
    #[error("image {image}: WorkingDir {dir:?} is not an absolute path")]
    WorkingDir {
        /// The image.
        image: String,
        /// The field.
        dir: String,
    },
}

/// The image's lowers for an overlay root: its layers, top first.
pub fn lowers(image: &StoredImage) -> Vec<PathBuf> {
    image.layer_dirs.iter().rev().cloned().collect()
}

// ANCHOR: process_for
/// The process `image` runs, with `command` (if not empty) in place of its Cmd.
pub fn process_for(image: &StoredImage, command: &[String]) -> Result<Process, RunConfigError> {
    let config = image.config.config.clone().unwrap_or_default();
    let mut argv = config.entrypoint.clone().unwrap_or_default();
    if command.is_empty() {
        argv.extend(config.cmd.clone().unwrap_or_default());
    } else {
        argv.extend(command.iter().cloned());
    }
    if argv.is_empty() {
        return Err(RunConfigError::NoCommand {
            image: image.name.clone(),
        });
    }
    let mut process = Process::new(Program::Args(argv));
    for var in config.env.iter().flatten() {
        let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
        process
            .env
            .retain(|have| have.split_once('=').map_or(have.as_str(), |(k, _)| k) != key);
        process.env.push(var.clone());
    }
    if let Some(dir) = config.working_dir.as_deref().filter(|d| !d.is_empty()) {
        if !dir.starts_with('/') {
            return Err(RunConfigError::WorkingDir {
                image: image.name.clone(),
                dir: dir.to_string(),
            });
        }
        process.cwd = PathBuf::from(dir);
    }
    if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
        let tree = crate::build::tree::LayeredTree::new(&image.layer_dirs);
        process.user = resolve_user_in(&tree, &image.name, user)?;
    }
    Ok(process)
}
// ANCHOR_END: process_for

// ANCHOR: container_spec
/// Chapter 8's container running `image`: its layers as the overlay's lowers, top
/// first (idmapped for root's container, as chapter 7's were), under an upper of its
/// own, and the process its config says, with `command` in place of its Cmd.
pub fn container_spec(
    image: &StoredImage,
    command: &[String],
    privileged: bool,
) -> Result<ContainerSpec, RunConfigError> {
    let lowers = lowers(image);
    let mut spec = chapters::for_chapter(8, &lowers[0], Program::Args(Vec::new()));
    spec.root.fs = RootFs::Overlay {
        lowers,
        upper: Upper::Managed { keep: false },
        idmap: privileged,
    };
    // The image's config decides what runs, where, as whom, with which environment.
    let process = process_for(image, command)?;
    spec.process.program = process.program;
    spec.process.env = process.env;
    spec.process.cwd = process.cwd;
    spec.process.user = process.user;
    Ok(spec)
}
// ANCHOR_END: container_spec

/// `uid[:gid]` or `name[:group]` as user and group ids, names looked up in the
/// `/etc/passwd` and `/etc/group` of `tree`, the layers of image `image`.
pub fn resolve_user_in(
    tree: &crate::build::tree::LayeredTree,
    image: &str,
    user: &str,
) -> Result<User, RunConfigError> {
    let image_file = |path: &str| {
        tree.read_file(std::path::Path::new(path), 1 << 20)
            .ok()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let fail = |reason: String| RunConfigError::User {
        image: image.to_string(),
        user: user.to_string(),
        reason,
    };
    let (name, group) = match user.split_once(':') {
        Some((n, g)) => (n, Some(g)),
        None => (user, None),
    };
    let passwd = image_file("etc/passwd");
    let (uid, primary_gid) = match name.parse::<u32>() {
        Ok(uid) => {
            let gid = lookup(&passwd, |f| f.get(2) == Some(&name))
                .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
                .unwrap_or(uid);
            (uid, gid)
        }
        Err(_) => {
            let fields = lookup(&passwd, |f| f.first() == Some(&name))
                .ok_or_else(|| fail("no such user in the image's /etc/passwd".to_string()))?;
            let number = |i: usize| fields.get(i).and_then(|v| v.parse::<u32>().ok());
            match (number(2), number(3)) {
                (Some(uid), Some(gid)) => (uid, gid),
                _ => return Err(fail("its /etc/passwd line is malformed".to_string())),
            }
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = image_file("etc/group");
                lookup(&groups, |f| f.first() == Some(&group))
                    .and_then(|f| f.get(2).and_then(|g| g.parse().ok()))
                    .ok_or_else(|| fail(format!("no group {group:?} in the image's /etc/group")))?
            }
        },
    };
    Ok(User {
        uid,
        gid,
        additional_gids: Vec::new(),
        umask: None,
    })
}

fn lookup<'a>(text: &'a str, matches: impl Fn(&Vec<&'a str>) -> bool) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| matches(fields))
}
