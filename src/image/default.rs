//! The default image: a small root filesystem assembled from this machine, offline.
//!
//! A container needs a root filesystem with at least a shell in it. Rather than download
//! one, nutshell assembles it from what the host already has:
//!
//! - **busybox**: a statically linked busybox is one file that is ~400 programs (it looks
//!   at `argv[0]` to know which one to be). We copy it to `/bin/busybox` and make a
//!   symlink per applet, where `busybox --list-full` says it lives.
//! - **host**: otherwise, we copy the host's own `sh`, `ls`, `cat`, … and everything the
//!   loader will open to run them — found by reading the ELF files (see [`super::elf`]).
//!
//! Both get the same skeleton: `/proc`, `/sys`, `/dev` and `/tmp` to mount things on later
//! chapters, and an `/etc/passwd` that names root.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::elf::{on_host, read_deps, runtime_closure};
use super::{ImageError, Manifest};

/// Where the default image's programs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// A static busybox if the host has one, otherwise the host's own programs.
    Auto,
    /// A static busybox; fail if there is none.
    Busybox,
    /// The host's own programs and the shared libraries they load.
    Host,
}

/// The host directories searched for programs, in order.
pub const HOST_BIN_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Programs the image cannot do without: chapter 1's tour runs them.
pub const REQUIRED_PROGRAMS: &[&str] = &["sh", "ls", "cat"];

/// Programs the chapters use when they are there (busybox has them all).
pub const WANTED_PROGRAMS: &[&str] = &[
    "echo", "pwd", "id", "ps", "hostname", "mount", "umount", "sleep", "mkdir", "rmdir", "rm",
    "touch", "ln", "readlink", "uname", "env", "true", "false", "kill", "grep", "head", "tail",
    "stat", "df", "sed", "cp", "mv", "chmod", "wc", "sort", "find", "date", "whoami", "dd",
    "nproc",
];

/// The image's directories, with their modes: the usual ones, `/tmp` sticky and
/// world-writable, `/root` private.
const SKELETON: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
];

const ETC_PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const ETC_GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Build the default image's root filesystem at `rootfs` (which must not exist yet) from
/// the host mounted at `host_root` (`/` except in tests).
pub fn assemble(rootfs: &Path, source: Source, host_root: &Path) -> Result<Manifest, ImageError> {
    make_skeleton(rootfs)?;
    let busybox = match source {
        Source::Host => None,
        Source::Auto => find_static_busybox(host_root)?,
        Source::Busybox => Some(find_static_busybox(host_root)?.ok_or_else(|| {
            ImageError::CannotBuild {
                missing: format!(
                    "no static busybox on this host (looked for busybox in {})",
                    HOST_BIN_DIRS.join(", ")
                ),
                remedy:
                    "install it (Debian, Ubuntu: apt-get install busybox-static) or use --from host"
                        .to_string(),
            }
        })?),
    };
    match busybox {
        Some(busybox) => install_busybox(rootfs, host_root, &busybox),
        None => install_host_programs(rootfs, host_root),
    }
}

fn make_skeleton(rootfs: &Path) -> Result<(), ImageError> {
    let write_err = |path: PathBuf| move |source| ImageError::Write { path, source };
    fs::create_dir(rootfs).map_err(write_err(rootfs.to_path_buf()))?;
    for (dir, mode) in SKELETON {
        let path = rootfs.join(dir);
        fs::create_dir(&path).map_err(write_err(path.clone()))?;
        // Set explicitly: create_dir's mode is filtered by the umask.
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
            .map_err(write_err(path.clone()))?;
    }
    for (file, text) in [("etc/passwd", ETC_PASSWD), ("etc/group", ETC_GROUP)] {
        let path = rootfs.join(file);
        fs::write(&path, text).map_err(write_err(path.clone()))?;
    }
    Ok(())
}

/// The first `busybox` in [`HOST_BIN_DIRS`] that is statically linked, by host path.
pub fn find_static_busybox(host_root: &Path) -> Result<Option<PathBuf>, ImageError> {
    for dir in HOST_BIN_DIRS {
        let path = Path::new(dir).join("busybox");
        let Ok(bytes) = fs::read(on_host(host_root, &path)) else {
            continue;
        };
        if read_deps(&bytes, &path)?.is_some_and(|deps| deps.interpreter.is_none()) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn install_busybox(
    rootfs: &Path,
    host_root: &Path,
    busybox: &Path,
) -> Result<Manifest, ImageError> {
    copy_program(&on_host(host_root, busybox), &rootfs.join("bin/busybox"))?;
    let program = on_host(host_root, busybox);
    let listing = Command::new(&program)
        .arg("--list-full")
        .output()
        .map_err(|e| ImageError::Run {
            program: program.clone(),
            reason: e.to_string(),
        })?;
    if !listing.status.success() {
        return Err(ImageError::Run {
            program,
            reason: format!("--list-full {}", listing.status),
        });
    }
    let mut programs = Vec::new();
    for applet in String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::trim)
    {
        // Applet paths are relative (`usr/bin/awk`); anything else would escape the rootfs.
        let relative = Path::new(applet);
        if applet.is_empty()
            || relative.is_absolute()
            || relative.components().any(|c| c.as_os_str() == "..")
        {
            continue;
        }
        // `/linuxrc` is busybox's entry point for an initrd; a container has no use for it.
        if applet == "linuxrc" {
            continue;
        }
        let link = rootfs.join(relative);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|source| ImageError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        symlink("/bin/busybox", &link).map_err(|source| ImageError::Write {
            path: link.clone(),
            source,
        })?;
        programs.push(format!("/{applet}"));
    }
    if !programs.iter().any(|p| p == "/bin/sh") {
        return Err(ImageError::CannotBuild {
            missing: format!("{} has no sh applet", busybox.display()),
            remedy: "install Debian's busybox-static, or use --from host".to_string(),
        });
    }
    programs.sort();
    Ok(Manifest {
        source: "busybox".to_string(),
        origin: vec![busybox.to_path_buf()],
        programs,
        libraries: Vec::new(),
    })
}

fn install_host_programs(rootfs: &Path, host_root: &Path) -> Result<Manifest, ImageError> {
    let find = |name: &str| {
        HOST_BIN_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|path| on_host(host_root, path).is_file())
    };
    let missing: Vec<&str> = REQUIRED_PROGRAMS
        .iter()
        .copied()
        .filter(|name| find(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ImageError::CannotBuild {
            missing: format!(
                "no static busybox, and the host has no {} (looked in {})",
                missing.join(", "),
                HOST_BIN_DIRS.join(", ")
            ),
            remedy: "install busybox-static (Debian, Ubuntu: apt-get install busybox-static) or pass --rootfs DIR".to_string(),
        });
    }
    let mut origins = Vec::new();
    let mut programs = Vec::new();
    for name in REQUIRED_PROGRAMS.iter().chain(WANTED_PROGRAMS) {
        let Some(origin) = find(name) else { continue };
        copy_program(&on_host(host_root, &origin), &rootfs.join("bin").join(name))?;
        programs.push(format!("/bin/{name}"));
        origins.push(origin);
    }
    let libraries: Vec<PathBuf> = runtime_closure(host_root, &origins)?.into_iter().collect();
    for library in &libraries {
        let inside = on_host(rootfs, library);
        if let Some(parent) = inside.parent() {
            fs::create_dir_all(parent).map_err(|source| ImageError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        copy_program(&on_host(host_root, library), &inside)?;
    }
    programs.sort();
    Ok(Manifest {
        source: "host".to_string(),
        origin: origins,
        programs,
        libraries,
    })
}

/// Copy a file's contents (following symlinks) and make it 0755: no setuid bit from the
/// host's `mount` or `su` comes along.
fn copy_program(from: &Path, to: &Path) -> Result<(), ImageError> {
    fs::copy(from, to).map_err(|source| ImageError::Read {
        path: from.to_path_buf(),
        source,
    })?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).map_err(|source| ImageError::Write {
        path: to.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn host_image_holds_the_required_programs_and_their_libraries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rootfs = dir.path().join("rootfs");
        let manifest = assemble(&rootfs, Source::Host, Path::new("/")).expect("assemble from host");
        assert_eq!(manifest.source, "host");
        for name in REQUIRED_PROGRAMS {
            assert!(
                rootfs.join("bin").join(name).is_file(),
                "missing /bin/{name}"
            );
        }
        // Every ELF file in the image finds its loader and libraries inside the image.
        let mut files: Vec<PathBuf> = manifest.programs.iter().map(PathBuf::from).collect();
        files.extend(manifest.libraries.iter().cloned());
        for file in files {
            let bytes = fs::read(on_host(&rootfs, &file)).expect("read from image");
            let Some(deps) = read_deps(&bytes, &file).expect("parse") else {
                continue;
            };
            if let Some(interp) = deps.interpreter {
                assert!(
                    on_host(&rootfs, &interp).is_file(),
                    "{} needs {}",
                    file.display(),
                    interp.display()
                );
            }
            for needed in deps.needed {
                assert!(
                    manifest.libraries.iter().any(|lib| lib.ends_with(&needed)),
                    "{} needs {needed}",
                    file.display()
                );
            }
        }
    }

    #[test]
    fn skeleton_has_a_sticky_tmp_and_a_private_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rootfs = dir.path().join("rootfs");
        make_skeleton(&rootfs).expect("skeleton");
        assert_eq!(
            fs::metadata(rootfs.join("tmp")).expect("tmp").mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            fs::metadata(rootfs.join("root")).expect("root").mode() & 0o7777,
            0o700
        );
        assert!(
            fs::read_to_string(rootfs.join("etc/passwd"))
                .expect("passwd")
                .starts_with("root:x:0:0:")
        );
    }

    #[test]
    fn copied_programs_lose_the_setuid_bit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let from = dir.path().join("suid");
        fs::write(&from, b"#!/bin/sh\n").expect("write");
        fs::set_permissions(&from, fs::Permissions::from_mode(0o4755)).expect("chmod");
        let to = dir.path().join("copy");
        copy_program(&from, &to).expect("copy");
        assert_eq!(fs::metadata(&to).expect("copy").mode() & 0o7777, 0o755);
    }

    #[test]
    fn a_host_without_a_shell_gets_an_error_saying_what_to_install() {
        let empty_host = tempfile::tempdir().expect("temp dir");
        let rootfs = empty_host.path().join("image");
        let err = assemble(&rootfs, Source::Auto, empty_host.path()).expect_err("nothing to copy");
        let message = err.to_string();
        assert!(message.contains("no sh, ls, cat"), "{message}");
        assert!(
            message.contains("apt-get install busybox-static"),
            "{message}"
        );
    }

    #[test]
    fn asking_for_busybox_on_a_host_without_it_says_so() {
        let empty_host = tempfile::tempdir().expect("temp dir");
        let err = assemble(
            &empty_host.path().join("image"),
            Source::Busybox,
            empty_host.path(),
        )
        .expect_err("no busybox");
        assert!(
            err.to_string().contains("no static busybox on this host"),
            "{err}"
        );
    }

    #[test]
    #[ignore = "needs busybox-static (Debian's package): run `just test-all`, which installs it"]
    fn busybox_image_links_every_applet_to_bin_busybox() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rootfs = dir.path().join("rootfs");
        let manifest =
            assemble(&rootfs, Source::Busybox, Path::new("/")).expect("assemble from busybox");
        assert_eq!(manifest.source, "busybox");
        assert!(
            manifest.libraries.is_empty(),
            "a static busybox needs no libraries"
        );
        for program in [
            "/bin/sh",
            "/bin/ls",
            "/bin/ps",
            "/bin/hostname",
            "/bin/mount",
        ] {
            assert!(
                manifest.programs.iter().any(|p| p == program),
                "missing {program}"
            );
            let link =
                fs::read_link(on_host(&rootfs, Path::new(program))).expect("applet is a symlink");
            assert_eq!(link, Path::new("/bin/busybox"));
        }
    }
}
