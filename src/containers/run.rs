//! `nutshell run IMAGE`'s flags as data, and the spec they make: chapter 9's container
//! of an image, with docker's flags applied over it: environment, user, working
//! directory, entrypoint, volumes and tmpfs mounts, a read-only root, capabilities and
//! the hostname. The network and the limits are chapter 8's and chapter 5's flags.

use std::path::{Path, PathBuf};

use super::ContainersError;
use crate::capabilities::{CapSet, Capability};
use crate::image::store::StoredImage;
use crate::spec::{ContainerSpec, Mount, MountKind, MountOptions, Program};

/// What `run` asks of the container beyond its image, network and limits.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The command, in place of the image's Cmd.
    pub command: Vec<String>,
    /// `--entrypoint`: in place of the image's Entrypoint (and then its Cmd is dropped).
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE`, or `-e NAME` for this process's value.
    pub env: Vec<String>,
    /// `--env-file`: files of `NAME=VALUE` lines.
    pub env_files: Vec<PathBuf>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
    /// `-w DIR`.
    pub workdir: Option<PathBuf>,
    /// `-v HOST:CONTAINER[:ro]`.
    pub volumes: Vec<String>,
    /// `--tmpfs PATH`.
    pub tmpfs: Vec<PathBuf>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
}

// ANCHOR: apply
/// Apply `options` to `spec`, the container of `image` that chapter 9 makes. Every
/// value is checked here, before anything is made.
pub fn apply(
    spec: &mut ContainerSpec,
    image: &StoredImage,
    options: &RunOptions,
    cap_last_cap: u32,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), ContainersError> {
    if let Some(entrypoint) = &options.entrypoint {
        // docker: a new entrypoint drops the image's Cmd; the command given follows it.
        let mut argv = vec![entrypoint.clone()];
        argv.extend(options.command.iter().cloned());
        spec.process.program = Program::Args(argv);
    }
    for file in &options.env_files {
        let text = std::fs::read_to_string(file).map_err(|source| ContainersError::Io {
            op: "read",
            path: file.clone(),
            source,
        })?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                set_env(spec, line, &env, "--env-file")?;
            }
        }
    }
    for var in &options.env {
        set_env(spec, var, &env, "-e")?;
    }
    if let Some(user) = &options.user {
        let tree = crate::build::tree::LayeredTree::new(&image.layer_dirs);
        spec.process.user = crate::image::run::resolve_user_in(&tree, &image.name, user)
            .map_err(|e| flag("-u", user, &format!(": {e}")))?;
    }
    if let Some(dir) = &options.workdir {
        if !dir.is_absolute() {
            return Err(flag(
                "-w",
                &dir.display().to_string(),
                ": use an absolute path",
            ));
        }
        spec.process.cwd = dir.clone();
    }
    for volume in &options.volumes {
        spec.mounts.push(volume_mount(volume)?);
    }
    for path in &options.tmpfs {
        if !path.is_absolute() {
            return Err(flag(
                "--tmpfs",
                &path.display().to_string(),
                ": use an absolute path",
            ));
        }
        spec.mounts.push(Mount {
            destination: path.clone(),
            kind: MountKind::Tmpfs,
            options: MountOptions {
                nosuid: true,
                nodev: true,
                ..MountOptions::default()
            }
            .with_data(&["mode=1777"]),
        });
    }
    spec.root.readonly = options.read_only;
    if let Some(hostname) = &options.hostname {
        crate::uts::validate_hostname(hostname)
            .map_err(|e| flag("--hostname", hostname, &format!(": {e}")))?;
        spec.hostname = Some(hostname.clone());
    }
    change_caps(spec, &options.cap_add, &options.cap_drop, cap_last_cap)?;
    spec.process.terminal = options.tty;
    if options.tty && !spec.process.env.iter().any(|v| v.starts_with("TERM=")) {
        spec.process.env.push("TERM=xterm".to_string());
    }
    Ok(())
}
// ANCHOR_END: apply

fn flag(flag: &'static str, value: &str, rule: &str) -> ContainersError {
    ContainersError::Flag {
        flag,
        value: value.to_string(),
        rule: rule.to_string(),
    }
}

/// `NAME=VALUE` into the environment, replacing an earlier `NAME`; a bare `NAME` takes
/// this process's value, and is skipped if it has none (docker's rule).
fn set_env(
    spec: &mut ContainerSpec,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
    from: &'static str,
) -> Result<(), ContainersError> {
    let (name, value) = match var.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (var, env(var)),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(flag(
            from,
            var,
            ": write NAME=VALUE, the name without spaces",
        ));
    }
    let Some(value) = value else {
        return Ok(());
    };
    spec.process
        .env
        .retain(|have| have.split_once('=').map_or(have.as_str(), |(k, _)| k) != name);
    spec.process.env.push(format!("{name}={value}"));
    Ok(())
}

/// `-v HOST:CONTAINER[:ro|:rw]`: a bind mount of a host path that exists.
fn volume_mount(volume: &str) -> Result<Mount, ContainersError> {
    let bad = |why: &str| flag("-v", volume, why);
    let parts: Vec<&str> = volume.split(':').collect();
    let (host, target, readonly) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        _ => return Err(bad(": write HOST:CONTAINER[:ro], both absolute paths")),
    };
    if !host.starts_with('/') || !target.starts_with('/') {
        return Err(bad(
            ": write HOST:CONTAINER[:ro], both absolute paths (named volumes are not kept)",
        ));
    }
    let source = Path::new(host)
        .canonicalize()
        .map_err(|e| bad(&format!(": {host}: {e}")))?;
    Ok(Mount {
        destination: PathBuf::from(target),
        kind: MountKind::Bind {
            source,
            recursive: true,
        },
        options: MountOptions {
            readonly,
            ..MountOptions::default()
        },
    })
}

// ANCHOR: caps
/// `--cap-add` and `--cap-drop` over the container's capabilities (docker's default
/// set): in the bounding, effective and permitted sets alike; `ALL` names them all.
fn change_caps(
    spec: &mut ContainerSpec,
    add: &[String],
    drop: &[String],
    last: u32,
) -> Result<(), ContainersError> {
    if add.is_empty() && drop.is_empty() {
        return Ok(());
    }
    let mut caps = spec.process.capabilities.unwrap_or_default();
    let named = |flag: &'static str, names: &[String]| -> Result<CapSet, ContainersError> {
        let mut set = CapSet::EMPTY;
        for name in names {
            if name.eq_ignore_ascii_case("all") {
                set = set.union(CapSet::all_up_to(last));
                continue;
            }
            let cap = Capability::from_name(name).ok_or_else(|| {
                crate::containers::ContainersError::Flag {
                    flag,
                    value: name.clone(),
                    rule: ": no such capability (write NET_ADMIN or CAP_NET_ADMIN)".to_string(),
                }
            })?;
            set.insert(cap);
        }
        Ok(set)
    };
    let (add, drop) = (named("--cap-add", add)?, named("--cap-drop", drop)?);
    for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
        // docker: the drops first, so `--cap-drop ALL --cap-add X` leaves X.
        *set = set.difference(drop).union(add);
    }
    caps.ambient = caps.ambient.intersection(caps.permitted);
    caps.inheritable = caps.inheritable.intersection(caps.permitted);
    spec.process.capabilities = Some(caps);
    Ok(())
}
// ANCHOR_END: caps

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        let mut spec = crate::spec::chapters::for_chapter(
            8,
            Path::new("/"),
            Program::Args(vec!["httpd".into()]),
        );
        spec.process.capabilities = Some(crate::capabilities::Capabilities::docker_default());
        spec
    }

    #[test]
    fn env_flags_replace_the_images_and_a_bare_name_takes_the_callers_value() {
        let mut spec = spec();
        spec.process.env.push("GREETING=hello".into());
        for var in ["GREETING=hi", "FROM_HOST", "UNSET"] {
            set_env(
                &mut spec,
                var,
                &|n| (n == "FROM_HOST").then(|| "1".into()),
                "-e",
            )
            .unwrap();
        }
        assert!(spec.process.env.contains(&"GREETING=hi".to_string()));
        assert!(!spec.process.env.contains(&"GREETING=hello".to_string()));
        assert!(spec.process.env.contains(&"FROM_HOST=1".to_string()));
        assert!(!spec.process.env.iter().any(|v| v.starts_with("UNSET")));
        let err = set_env(&mut spec, "=x", &|_| None, "-e").unwrap_err();
        assert_eq!(
            err.to_string(),
            "-e =x: write NAME=VALUE, the name without spaces"
        );
    }

    #[test]
    fn a_volume_is_a_bind_of_an_existing_host_path() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let mount = volume_mount(&format!("{host}:/data:ro")).unwrap();
        assert_eq!(mount.destination, Path::new("/data"));
        assert!(mount.options.readonly);
        assert!(matches!(
            mount.kind,
            MountKind::Bind {
                recursive: true,
                ..
            }
        ));
        let err = volume_mount("/no/such/dir:/data").unwrap_err().to_string();
        assert!(
            err.starts_with("-v /no/such/dir:/data: /no/such/dir: "),
            "{err}"
        );
        let err = volume_mount("data:/data").unwrap_err().to_string();
        assert!(err.contains("both absolute paths"), "{err}");
    }

    #[test]
    fn cap_drop_all_then_add_leaves_only_the_added_one() {
        let mut spec = spec();
        change_caps(&mut spec, &["NET_ADMIN".into()], &["ALL".into()], 40).unwrap();
        let caps = spec.process.capabilities.unwrap();
        let names: Vec<Capability> = caps.effective.iter().collect();
        assert_eq!(names, [Capability::NetAdmin]);
        assert_eq!(caps.bounding, caps.effective);
        let err = change_caps(&mut spec, &["FLY".into()], &[], 40).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--cap-add FLY: no such capability")
        );
    }
}
