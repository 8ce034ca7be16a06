//! `nutshell doctor`: what this machine can do, and so which chapters can run on it.
//!
//! Each check *tries* the feature where it can rather than guessing from version numbers:
//! a namespace counts as available when a forked child manages to unshare(2) it, overlayfs
//! when a child mounts one in a private mount namespace. The probes run in children so the
//! doctor itself never changes namespace, and leave nothing behind.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork, setgroups, setresgid, setresuid};

use crate::cgroups::CgroupLayout;
use crate::cgroups::layout::detect_host;
use crate::chapters::{CHAPTERS, Chapter, Need};
use crate::image::{DEFAULT_IMAGE, Image, ImageStore};
use crate::namespaces::Namespace;
use crate::rootfs::make_mounts_private;

/// The answer of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The feature worked.
    Works,
    /// The feature was tried and failed, with the reason.
    Fails(String),
}

impl Probe {
    fn works(&self) -> bool {
        *self == Probe::Works
    }
}

/// Everything the doctor found out.
#[derive(Debug)]
pub struct HostReport {
    /// The effective uid.
    pub euid: u32,
    /// `uname -srm`.
    pub kernel: String,
    /// Whether each namespace could be created.
    pub namespaces: Vec<(Namespace, Probe)>,
    /// The cgroup layout, or why it could not be read.
    pub cgroups: Result<CgroupLayout, String>,
    /// Whether an overlay could be mounted.
    pub overlay: Probe,
    /// Whether an unprivileged user could create a user namespace.
    pub unprivileged_userns: Probe,
    /// The default image, if built (or why it cannot be read).
    pub default_image: Result<Option<Image>, String>,
    /// Where the default image lives or will live.
    pub default_image_dir: PathBuf,
    /// The programs the chapters need, and whether each is installed.
    pub programs: Vec<(&'static str, bool)>,
}

/// Run every check. `proc_dir` is normally `/proc`; `data_dir` is where images live.
pub fn examine(proc_dir: &Path, data_dir: &Path) -> HostReport {
    let euid = nix::unistd::geteuid().as_raw();
    let store = ImageStore::new(data_dir);
    HostReport {
        euid,
        kernel: kernel_version(),
        // A normal user makes every namespace as a rootless container does: inside a
        // user namespace of its own, which gives it the capabilities over the others.
        namespaces: Namespace::ALL
            .iter()
            .map(|ns| {
                let flags = if euid == 0 {
                    ns.clone_flag()
                } else {
                    libc::CLONE_NEWUSER | ns.clone_flag()
                };
                (*ns, probe_in_child(|| unshare(flags)))
            })
            .collect(),
        cgroups: detect_host(proc_dir).map_err(|e| e.to_string()),
        overlay: probe_overlay(proc_dir, euid),
        unprivileged_userns: probe_unprivileged_userns(euid),
        default_image: store.open(DEFAULT_IMAGE).map_err(|e| e.to_string()),
        default_image_dir: store.default_image_dir(),
        programs: needed_programs()
            .into_iter()
            .map(|name| (name, crate::net::find_program(name).is_some()))
            .collect(),
    }
}

fn kernel_version() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => format!(
            "{} {} ({})",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        ),
        Err(e) => format!("unknown ({e})"),
    }
}

fn unshare(flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall; runs only in a forked child.
    Errno::result(unsafe { libc::unshare(flags) }).map(drop)
}

/// Run `probe` in a forked child, so whatever it changes (its namespaces, its uid) dies
/// with the child. The child reports the errno as its exit code.
fn probe_in_child(probe: impl FnOnce() -> Result<(), Errno>) -> Probe {
    // SAFETY: the child only makes syscalls and leaves with _exit.
    match unsafe { fork() } {
        Err(e) => Probe::Fails(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            let code = match probe() {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: ends only this forked child.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Probe::Works,
            Ok(WaitStatus::Exited(_, code)) => Probe::Fails(Errno::from_raw(code).to_string()),
            Ok(other) => Probe::Fails(format!("probe ended as {other:?}")),
            Err(e) => Probe::Fails(format!("waitpid: {e}")),
        },
    }
}

/// Mount a real overlay in a child's private mount namespace, write through it, and see
/// the write land in the upper directory. A normal user (`euid` not 0) does it as the
/// root of a user namespace mapped to itself, with `userxattr`, as chapter 7's rootless
/// container does.
fn probe_overlay(proc_dir: &Path, euid: u32) -> Probe {
    let listed = fs::read_to_string(proc_dir.join("filesystems"))
        .map(|text| {
            text.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false);
    if !listed {
        return Probe::Fails("overlay is not in /proc/filesystems (modprobe overlay)".to_string());
    }
    let scratch = match tempfile::Builder::new()
        .prefix("nutshell-doctor-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => return Probe::Fails(format!("make a scratch directory: {e}")),
    };
    let dir = scratch.path();
    for sub in ["lower", "upper", "work", "merged"] {
        if let Err(e) = fs::create_dir(dir.join(sub)) {
            return Probe::Fails(format!("make {}: {e}", dir.join(sub).display()));
        }
    }
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    if euid != 0 {
        // trusted.* xattrs need CAP_SYS_ADMIN on the host; user.* do not.
        options.push_str(",userxattr");
    }
    let merged = dir.join("merged");
    let gid = nix::unistd::getegid().as_raw();
    let probe = probe_in_child(|| {
        if euid != 0 {
            become_root_of_own_user_namespace(euid, gid)?;
        }
        unshare(libc::CLONE_NEWNS)?;
        // Cut propagation first, so the test mount can never appear on the host.
        make_mounts_private()?;
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )?;
        fs::write(merged.join("probe"), b"copy-on-write")
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    });
    let probe = match probe {
        Probe::Works if !dir.join("upper/probe").exists() => Probe::Fails(
            "the write through the overlay did not reach the upper directory".to_string(),
        ),
        other => other,
    };
    // overlayfs leaves work/work behind with mode 000: root may still empty it, its
    // owner may not even list it until it gives itself the right to.
    let inner_work = dir.join("work/work");
    if inner_work.exists()
        && let Err(e) = fs::set_permissions(&inner_work, fs::Permissions::from_mode(0o700))
    {
        return Probe::Fails(format!("open {} to remove it: {e}", inner_work.display()));
    }
    let path = dir.to_path_buf();
    match (probe, scratch.close()) {
        (probe, Ok(())) => probe,
        (_, Err(e)) => Probe::Fails(format!("remove the scratch dir {}: {e}", path.display())),
    }
}

/// In a forked child: a new user namespace in which this process's uid and gid are 0, so
/// that the files it makes have a mapped owner (rootless containers map more; one id is
/// enough for a probe). See user_namespaces(7): setgroups must be denied first.
fn become_root_of_own_user_namespace(uid: u32, gid: u32) -> Result<(), Errno> {
    let write = |file: &str, text: String| {
        fs::write(file, text).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    };
    unshare(libc::CLONE_NEWUSER)?;
    write("/proc/self/setgroups", "deny".to_string())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))
}

/// Whether a user without privileges can create a user namespace. As root we check it
/// for real, by becoming `nobody` in a child first.
fn probe_unprivileged_userns(euid: u32) -> Probe {
    probe_in_child(|| {
        if euid == 0 {
            let nobody = 65534;
            setgroups(&[])?;
            setresgid(
                Gid::from_raw(nobody),
                Gid::from_raw(nobody),
                Gid::from_raw(nobody),
            )?;
            setresuid(
                Uid::from_raw(nobody),
                Uid::from_raw(nobody),
                Uid::from_raw(nobody),
            )?;
        }
        unshare(libc::CLONE_NEWUSER)
    })
}

/// Whether the host meets `need`, and if not, why.
pub fn check(report: &HostReport, need: Need) -> Result<(), String> {
    match need {
        Need::Root if report.euid == 0 => Ok(()),
        Need::Root => Err("root".to_string()),
        Need::Namespace(ns) => match report.namespaces.iter().find(|(n, _)| *n == ns) {
            Some((_, Probe::Works)) => Ok(()),
            _ => Err(format!("{ns} namespace")),
        },
        Need::CgroupController(name) => match &report.cgroups {
            Ok(layout) if layout.mount_for(name).is_some() => Ok(()),
            _ => Err(format!("cgroup {name} controller")),
        },
        Need::Overlay if report.overlay.works() => Ok(()),
        Need::Overlay => Err("overlayfs".to_string()),
        Need::RootProgram(name) | Need::UserProgram(name) => {
            match report.programs.iter().find(|(n, _)| *n == name) {
                Some((_, true)) => Ok(()),
                _ => Err(format!("{name} (`just setup` installs it)")),
            }
        }
    }
}

/// Every program a chapter needs, once.
fn needed_programs() -> Vec<&'static str> {
    let mut names = Vec::new();
    for need in CHAPTERS.iter().flat_map(|c| c.needs) {
        if let Need::RootProgram(name) | Need::UserProgram(name) = need
            && !names.contains(name)
        {
            names.push(*name);
        }
    }
    names
}

/// What the doctor says about one chapter. For a normal user, a chapter that runs
/// rootless needs neither root nor cgroups: its container goes without limits.
pub fn chapter_verdict(report: &HostReport, chapter: &Chapter) -> String {
    let rootless = report.euid != 0 && chapter.runs_rootless();
    let missing: Vec<String> = chapter
        .all_needs()
        .into_iter()
        .filter(|need| match need {
            Need::Root | Need::CgroupController(_) | Need::RootProgram(_) => !rootless,
            Need::UserProgram(_) => report.euid != 0,
            _ => true,
        })
        .filter_map(|need| check(report, need).err())
        .collect();
    match (chapter.written, missing.is_empty()) {
        (true, true) if rootless => "ready, rootless (limits need root)".to_string(),
        (true, true) => "ready".to_string(),
        (true, false) => format!("cannot run here: needs {}", missing.join(", ")),
        (false, true) => "not written yet (this machine could run it)".to_string(),
        (false, false) => format!("not written yet (would need {})", missing.join(", ")),
    }
}

fn yes_no(probe: &Probe) -> String {
    match probe {
        Probe::Works => "yes".to_string(),
        Probe::Fails(why) => format!("no ({why})"),
    }
}

/// The report as the reader sees it.
pub fn render(report: &HostReport) -> String {
    let mut out = String::new();
    let root = if report.euid == 0 {
        "yes".to_string()
    } else {
        let first_rootless = CHAPTERS
            .iter()
            .find(|c| c.rootless)
            .map_or("none", |c| c.bin);
        format!(
            "no (euid {}): the chapters before {first_rootless} need root, the ones from it on run rootless; run `cargo run -- doctor` as root to see what root could do",
            report.euid
        )
    };
    let _ = writeln!(out, "nutshell doctor: what this machine can do\n");
    let _ = writeln!(out, "  {:<28}{root}", "running as root");
    let _ = writeln!(out, "  {:<28}{}", "kernel", report.kernel);
    if report.euid == 0 {
        let _ = writeln!(out, "  namespaces (unshare(2) in a child):");
    } else {
        let _ = writeln!(
            out,
            "  namespaces (unshare(2) in a child, with a user namespace of its own):"
        );
    }
    for (ns, probe) in &report.namespaces {
        let _ = writeln!(out, "    {:<26}{}", ns.to_string(), yes_no(probe));
    }
    match &report.cgroups {
        Ok(layout) => {
            let _ = writeln!(out, "  {:<28}{}", "cgroups", layout.layout);
            let width = layout
                .mounts
                .iter()
                .map(|m| m.mount_point.as_os_str().len())
                .max()
                .unwrap_or(0)
                + 2;
            for m in &layout.mounts {
                let controllers = if m.controllers.is_empty() {
                    "(no controllers)".to_string()
                } else {
                    m.controllers.join(", ")
                };
                let version = m.version.short();
                let _ = writeln!(
                    out,
                    "    {version:<4}{:<width$}{controllers}",
                    m.mount_point.display().to_string()
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  {:<28}unknown ({e})", "cgroups");
        }
    }
    let _ = writeln!(
        out,
        "  {:<28}{}",
        "overlayfs mount",
        yes_no(&report.overlay)
    );
    let _ = writeln!(
        out,
        "  {:<28}{}",
        "unprivileged user ns",
        yes_no(&report.unprivileged_userns)
    );
    let image = match &report.default_image {
        Ok(Some(image)) => format!(
            "{} (from {})",
            image.rootfs.display(),
            image.manifest.source
        ),
        Ok(None) => format!(
            "not built yet: `nutshell image default` builds it in {} (chapters also build it on first run)",
            report.default_image_dir.display()
        ),
        Err(e) => e.clone(),
    };
    let _ = writeln!(out, "  {:<28}{image}", "default image");
    for (name, found) in &report.programs {
        let found = if *found { "installed" } else { "not installed" };
        let _ = writeln!(out, "  {:<28}{found}", format!("program {name}"));
    }
    let _ = writeln!(out, "\nchapters:");
    for chapter in CHAPTERS {
        let _ = writeln!(
            out,
            "  {:<18}{}",
            chapter.bin,
            chapter_verdict(report, chapter)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::layout::detect;
    use crate::image::Manifest;

    /// A root shell on a hybrid-cgroup machine like the development VMs, with the
    /// default image not built yet.
    fn sample_report() -> HostReport {
        let mountinfo = include_str!("../tests/fixtures/mountinfo/hybrid.txt");
        let cgroups = detect(mountinfo, |_| Ok("hugetlb\n".to_string())).expect("hybrid fixture");
        HostReport {
            euid: 0,
            kernel: "Linux 6.1.0-28-amd64 (x86_64)".to_string(),
            namespaces: Namespace::ALL
                .iter()
                .map(|ns| (*ns, Probe::Works))
                .collect(),
            cgroups: Ok(cgroups),
            overlay: Probe::Works,
            unprivileged_userns: Probe::Fails("EPERM: Operation not permitted".to_string()),
            default_image: Ok(None),
            default_image_dir: PathBuf::from("/var/lib/nutshell/images/default"),
            programs: vec![("nft", true), ("pasta", true)],
        }
    }

    #[test]
    fn doctor_report_for_a_hybrid_root_machine() {
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_snapshot_path("../tests/snapshots");
        settings.bind(|| insta::assert_snapshot!("doctor_hybrid_root", render(&sample_report())));
    }

    #[test]
    fn chapter_8_needs_nft_for_root_and_pasta_for_a_normal_user() {
        let ch08 = CHAPTERS
            .iter()
            .find(|c| c.bin == "ch08-network")
            .expect("ch08");
        let no_nft = HostReport {
            programs: vec![("nft", false), ("pasta", true)],
            ..sample_report()
        };
        assert_eq!(
            chapter_verdict(&no_nft, ch08),
            "cannot run here: needs nft (`just setup` installs it)"
        );
        let no_pasta = HostReport {
            programs: vec![("nft", true), ("pasta", false)],
            ..sample_report()
        };
        assert_eq!(chapter_verdict(&no_pasta, ch08), "ready");
        let user = HostReport {
            euid: 1000,
            ..no_pasta
        };
        assert_eq!(
            chapter_verdict(&user, ch08),
            "cannot run here: needs pasta (`just setup` installs it)"
        );
    }

    #[test]
    fn a_chapter_that_needs_a_missing_feature_says_which() {
        let report = HostReport {
            overlay: Probe::Fails("ENODEV".into()),
            ..sample_report()
        };
        let ch07 = CHAPTERS
            .iter()
            .find(|c| c.bin == "ch07-overlayfs")
            .expect("ch07");
        assert_eq!(
            chapter_verdict(&report, ch07),
            "cannot run here: needs overlayfs"
        );
    }

    #[test]
    fn a_normal_user_cannot_run_chapter_one() {
        let report = HostReport {
            euid: 1000,
            ..sample_report()
        };
        assert_eq!(
            chapter_verdict(&report, &CHAPTERS[0]),
            "cannot run here: needs root"
        );
    }

    #[test]
    fn a_normal_user_is_told_which_chapters_run_rootless() {
        let report = HostReport {
            euid: 1000,
            ..sample_report()
        };
        let verdict = |bin: &str| {
            let chapter = CHAPTERS.iter().find(|c| c.bin == bin).expect(bin);
            chapter_verdict(&report, chapter)
        };
        assert_eq!(verdict("ch05-cgroups"), "cannot run here: needs root");
        assert_eq!(verdict("ch06-user"), "ready, rootless (limits need root)");
        assert_eq!(
            verdict("ch07-overlayfs"),
            "ready, rootless (limits need root)"
        );
        let no_overlay = HostReport {
            overlay: Probe::Fails("EPERM".into()),
            ..report
        };
        let ch07 = CHAPTERS
            .iter()
            .find(|c| c.bin == "ch07-overlayfs")
            .expect("ch07");
        assert_eq!(
            chapter_verdict(&no_overlay, ch07),
            "cannot run here: needs overlayfs"
        );
    }

    #[test]
    fn a_built_image_is_shown_with_its_source() {
        let manifest = Manifest {
            source: "busybox".into(),
            origin: vec![],
            programs: vec![],
            libraries: vec![],
        };
        let image = Image {
            name: "default".into(),
            rootfs: PathBuf::from("/var/lib/nutshell/images/default/rootfs"),
            manifest,
        };
        let report = HostReport {
            default_image: Ok(Some(image)),
            ..sample_report()
        };
        assert!(render(&report).contains(
            "default image               /var/lib/nutshell/images/default/rootfs (from busybox)"
        ));
    }
}
