//! Finding the cgroup hierarchies: which versions are mounted, where, and with which
//! controllers.
//!
//! The kernel lists every mount a process can see in `/proc/self/mountinfo`, and cgroup
//! hierarchies appear there with filesystem type `cgroup` (v1) or `cgroup2`. Reading that
//! file instead of assuming `/sys/fs/cgroup` is what lets one runtime work on v1, v2 and
//! hybrid hosts, and inside containers whose cgroup filesystem sits somewhere else.
//!
//! The work is split so that most of it is pure: [`parse_mountinfo`] and [`detect`] take
//! text and a file reader, so tests feed them fixture files and fakes; [`detect_host`] is
//! the thin part that reads the real files.
//!
//! See also [proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html)
//! (part of [proc(5)](https://man7.org/linux/man-pages/man5/proc.5.html) in older man
//! pages) and [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html).

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Controllers a v1 hierarchy can carry (the kernel's `cgroup_subsys.h`, by legacy name).
///
/// The super options of a v1 mount mix controllers with mount flags (`rw`, `xattr`,
/// `clone_children`, `release_agent=…`). Listing what *is* a controller, rather than what
/// is not, is safe because v1 is frozen: new mount flags may appear, new v1 controllers
/// will not.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The file in the root of a cgroup2 tree that lists the controllers it offers.
const V2_CONTROLLERS_FILE: &str = "cgroup.controllers";

/// Errors from reading the cgroup layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A mountinfo line does not have the shape proc_pid_mountinfo(5) describes.
    #[error("mountinfo line {line}: {problem}")]
    Malformed {
        /// 1-based line number in the mountinfo text.
        line: usize,
        /// What was wrong with the line.
        problem: String,
    },
    /// Neither a `cgroup` nor a `cgroup2` filesystem is mounted.
    #[error(
        "no cgroup filesystem is mounted (mountinfo has no cgroup or cgroup2 entry): \
         mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup`"
    )]
    NoCgroupMounts,
    /// Reading mountinfo or a `cgroup.controllers` file failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error, with its errno.
        source: io::Error,
    },
}

/// Which cgroup filesystem a hierarchy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// Filesystem type `cgroup`: a hierarchy with its own set of controllers.
    V1,
    /// Filesystem type `cgroup2`: the unified tree.
    V2,
}

impl CgroupVersion {
    /// `v1` or `v2`, for tables.
    pub fn short(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "cgroup v1",
            CgroupVersion::V2 => "cgroup v2",
        })
    }
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Whether this is a v1 `cgroup` or a `cgroup2` mount.
    pub version: CgroupVersion,
    /// Where the hierarchy is mounted, with mountinfo's octal escapes decoded.
    pub mount_point: PathBuf,
    /// For v1, the controllers bound to this hierarchy as the super options list them
    /// (`cpu`, `cpuacct`), with a named hierarchy kept as `name=systemd`. For v2, the
    /// contents of the root's `cgroup.controllers`: empty after [`parse_mountinfo`],
    /// filled by [`detect`].
    pub controllers: Vec<String>,
}

impl CgroupMount {
    /// Whether `controller` (or a `name=…` hierarchy name) belongs to this mount.
    pub fn has_controller(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// How a host arranges its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only the cgroup2 tree ("unified"); any v1 mounts are named hierarchies without
    /// controllers.
    V2,
    /// v1 controller hierarchies and a cgroup2 tree side by side.
    Hybrid,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::V1 => "cgroup v1",
            Layout::V2 => "cgroup v2 (unified)",
            Layout::Hybrid => "hybrid (v1 controllers + cgroup2)",
        })
    }
}

/// The cgroup hierarchies a process sees, and how they add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// v1, v2 or hybrid.
    pub layout: Layout,
    /// Every cgroup mount, in mountinfo order.
    pub mounts: Vec<CgroupMount>,
}

impl CgroupLayout {
    /// The cgroup2 mount, if there is one (at `/sys/fs/cgroup` on a v2 host,
    /// `/sys/fs/cgroup/unified` on a systemd hybrid one).
    pub fn v2_mount(&self) -> Option<&CgroupMount> {
        self.mounts.iter().find(|m| m.version == CgroupVersion::V2)
    }

    /// The v1 hierarchy that carries `controller` (e.g. `cpu`, or `name=systemd`).
    pub fn v1_mount_for(&self, controller: &str) -> Option<&CgroupMount> {
        self.mounts
            .iter()
            .find(|m| m.version == CgroupVersion::V1 && m.has_controller(controller))
    }

    /// The hierarchy that manages `controller`, whichever version it is.
    pub fn mount_for(&self, controller: &str) -> Option<&CgroupMount> {
        // The order of the two lookups does not matter: a controller bound to a v1
        // hierarchy is never listed in cgroup.controllers, so at most one matches.
        self.v1_mount_for(controller).or_else(|| {
            self.v2_mount()
                .filter(|mount| mount.has_controller(controller))
        })
    }
}

/// Parses mountinfo text and returns its `cgroup` and `cgroup2` mounts, in order.
///
/// v1 mounts get their controllers from the super options; v2 mounts get none, because
/// the kernel lists those in a file, not in mountinfo (see [`detect`]). Lines of other
/// filesystems are checked for shape and skipped.
pub fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, LayoutError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |problem| LayoutError::Malformed {
            line: index + 1,
            problem,
        };
        let entry = MountinfoEntry::parse(line).map_err(malformed)?;
        let version = match entry.fstype {
            "cgroup" => CgroupVersion::V1,
            "cgroup2" => CgroupVersion::V2,
            _ => continue,
        };
        let mount_point = unescape_octal(entry.mount_point).map_err(malformed)?;
        let controllers = match version {
            CgroupVersion::V1 => v1_controllers(entry.super_options),
            CgroupVersion::V2 => Vec::new(),
        };
        mounts.push(CgroupMount {
            version,
            mount_point,
            controllers,
        });
    }
    Ok(mounts)
}

/// Finds the cgroup mounts in `mountinfo`, reads each cgroup2 root's `cgroup.controllers`
/// through `read_file`, and classifies the layout.
///
/// `read_file` gets the full path of the file (`<mount point>/cgroup.controllers`); pass
/// `|path| fs::read_to_string(path)` for the real host, or a fake in tests.
pub fn detect(
    mountinfo: &str,
    read_file: impl Fn(&Path) -> io::Result<String>,
) -> Result<CgroupLayout, LayoutError> {
    let mut mounts = parse_mountinfo(mountinfo)?;
    let layout = classify(&mounts).ok_or(LayoutError::NoCgroupMounts)?;
    for mount in mounts.iter_mut().filter(|m| m.version == CgroupVersion::V2) {
        let path = mount.mount_point.join(V2_CONTROLLERS_FILE);
        let text = read_file(&path).map_err(|source| LayoutError::Read { path, source })?;
        mount.controllers = text.split_whitespace().map(str::to_owned).collect();
    }
    Ok(CgroupLayout { layout, mounts })
}

/// Detects the cgroup layout this process sees, from `<proc_dir>/self/mountinfo` and the
/// real `cgroup.controllers` files. `proc_dir` is `/proc` outside tests.
pub fn detect_host(proc_dir: &Path) -> Result<CgroupLayout, LayoutError> {
    let path = proc_dir.join("self").join("mountinfo");
    let mountinfo =
        fs::read_to_string(&path).map_err(|source| LayoutError::Read { path, source })?;
    detect(&mountinfo, |path| fs::read_to_string(path))
}

/// Names the layout of a set of cgroup mounts, or `None` when there are none.
fn classify(mounts: &[CgroupMount]) -> Option<Layout> {
    let has_v2 = mounts.iter().any(|m| m.version == CgroupVersion::V2);
    // A named v1 hierarchy such as name=systemd only groups processes and limits nothing,
    // so next to a cgroup2 tree it does not make the host hybrid.
    let has_v1_controllers = mounts.iter().any(|m| {
        m.version == CgroupVersion::V1 && m.controllers.iter().any(|c| !c.starts_with("name="))
    });
    match (has_v1_controllers, has_v2) {
        (true, true) => Some(Layout::Hybrid),
        (false, true) => Some(Layout::V2),
        _ if mounts.is_empty() => None,
        _ => Some(Layout::V1),
    }
}

/// The fields of one mountinfo line that layout detection needs, still escaped.
struct MountinfoEntry<'a> {
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountinfoEntry<'a> {
    /// Splits a line of the form
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
    fn parse(line: &'a str) -> Result<Self, String> {
        // Splitting on whitespace is safe: the kernel escapes spaces, tabs and newlines
        // inside fields as \040, \011 and \012.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_id, _parent, _dev, _root, mount_point, _options, rest @ ..] = fields.as_slice()
        else {
            return Err(format!(
                "expected at least 6 fields before the `-` separator, found {}",
                fields.len()
            ));
        };
        // Optional fields (shared:N, master:N, propagate_from:N, unbindable) come next, as
        // many as the mount has, so only the lone `-` tells where they end.
        let Some(separator) = rest.iter().position(|&field| field == "-") else {
            return Err("no `-` separator after the optional fields".to_owned());
        };
        let [fstype, _source, super_options, ..] = rest[separator + 1..] else {
            return Err("expected filesystem type, source and super options after `-`".to_owned());
        };
        Ok(MountinfoEntry {
            mount_point,
            fstype,
            super_options,
        })
    }
}

/// The controllers and `name=…` of a v1 mount's super options, in the order listed.
fn v1_controllers(super_options: &str) -> Vec<String> {
    super_options
        .split(',')
        .filter(|option| option.starts_with("name=") || V1_CONTROLLERS.contains(option))
        .map(str::to_owned)
        .collect()
}

/// Decodes the `\ooo` octal escapes mountinfo uses for space, tab, newline and backslash.
fn unescape_octal(field: &str) -> Result<PathBuf, String> {
    let mut bytes = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some(backslash) = rest.find('\\') {
        bytes.extend_from_slice(&rest.as_bytes()[..backslash]);
        let value = rest
            .get(backslash + 1..backslash + 4)
            .filter(|digits| digits.bytes().all(|b| matches!(b, b'0'..=b'7')))
            .and_then(|digits| u8::from_str_radix(digits, 8).ok())
            .ok_or_else(|| format!("invalid octal escape in mount point {field:?}"))?;
        bytes.push(value);
        rest = &rest[backslash + 4..];
    }
    bytes.extend_from_slice(rest.as_bytes());
    // A path is bytes, not UTF-8: an escape may decode to any byte value.
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = include_str!("../../tests/fixtures/mountinfo/v1.txt");
    const V2: &str = include_str!("../../tests/fixtures/mountinfo/v2.txt");
    const HYBRID: &str = include_str!("../../tests/fixtures/mountinfo/hybrid.txt");

    /// A cgroupfs where every cgroup2 root offers `controllers`.
    fn fake_cgroupfs(controllers: &'static str) -> impl Fn(&Path) -> io::Result<String> {
        move |path| {
            if path.ends_with(V2_CONTROLLERS_FILE) {
                Ok(controllers.to_owned())
            } else {
                Err(io::Error::from(io::ErrorKind::NotFound))
            }
        }
    }

    fn no_cgroup2(path: &Path) -> io::Result<String> {
        panic!("no cgroup2 mount, yet {} was read", path.display())
    }

    fn mount_points(layout: &CgroupLayout) -> Vec<&Path> {
        layout
            .mounts
            .iter()
            .map(|m| m.mount_point.as_path())
            .collect()
    }

    #[test]
    fn pure_v1_host_is_classified_v1() {
        let layout = detect(V1, no_cgroup2).expect("v1 fixture parses");
        assert_eq!(layout.layout, Layout::V1);
        assert_eq!(layout.mounts.len(), 11);
        assert!(layout.mounts.iter().all(|m| m.version == CgroupVersion::V1));
        assert_eq!(layout.v2_mount(), None);
    }

    #[test]
    fn combined_cpu_cpuacct_mount_carries_both_controllers() {
        let layout = detect(V1, no_cgroup2).expect("v1 fixture parses");
        let cpu = layout.v1_mount_for("cpu").expect("cpu is mounted");
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(layout.v1_mount_for("cpuacct"), Some(cpu));
        let net = layout
            .v1_mount_for("net_prio")
            .expect("net_prio is mounted");
        assert_eq!(net.controllers, ["net_cls", "net_prio"]);
    }

    #[test]
    fn v1_mount_flags_are_not_controllers() {
        let layout = detect(V1, no_cgroup2).expect("v1 fixture parses");
        let cpuset = layout.v1_mount_for("cpuset").expect("cpuset is mounted");
        assert_eq!(
            cpuset.controllers,
            ["cpuset"],
            "clone_children and rw dropped"
        );
    }

    #[test]
    fn named_systemd_hierarchy_is_kept_as_name_option() {
        let layout = detect(V1, no_cgroup2).expect("v1 fixture parses");
        let systemd = layout
            .v1_mount_for("name=systemd")
            .expect("the systemd hierarchy is mounted");
        assert_eq!(systemd.mount_point, Path::new("/sys/fs/cgroup/systemd"));
        assert_eq!(
            systemd.controllers,
            ["name=systemd"],
            "xattr, release_agent dropped"
        );
    }

    #[test]
    fn pure_v2_host_is_unified_at_sys_fs_cgroup() {
        let layout = detect(V2, fake_cgroupfs("cpu memory pids\n")).expect("v2 fixture parses");
        assert_eq!(layout.layout, Layout::V2);
        assert_eq!(mount_points(&layout), [Path::new("/sys/fs/cgroup")]);
        let unified = layout.v2_mount().expect("cgroup2 is mounted");
        assert_eq!(unified.mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn v2_controllers_come_from_the_cgroup_controllers_file() {
        let read = |path: &Path| {
            assert_eq!(path, Path::new("/sys/fs/cgroup/cgroup.controllers"));
            Ok("cpuset cpu io memory hugetlb pids rdma misc\n".to_owned())
        };
        let layout = detect(V2, read).expect("v2 fixture parses");
        let unified = layout.v2_mount().expect("cgroup2 is mounted");
        assert_eq!(
            unified.controllers,
            [
                "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"
            ]
        );
        assert_eq!(layout.mount_for("memory"), Some(unified));
        assert_eq!(layout.v1_mount_for("memory"), None);
    }

    #[test]
    fn parse_alone_leaves_v2_controllers_empty() {
        let mounts = parse_mountinfo(V2).expect("v2 fixture parses");
        assert_eq!(mounts.len(), 1);
        assert!(mounts[0].controllers.is_empty());
    }

    #[test]
    fn hybrid_has_v1_controllers_and_unified_mount() {
        let layout = detect(HYBRID, fake_cgroupfs("hugetlb\n")).expect("hybrid fixture parses");
        assert_eq!(layout.layout, Layout::Hybrid);
        let unified = layout.v2_mount().expect("cgroup2 is mounted");
        assert_eq!(unified.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(unified.controllers, ["hugetlb"]);
        for controller in ["cpu", "cpuacct", "cpuset", "memory", "pids", "name=systemd"] {
            let mount = layout.v1_mount_for(controller).expect(controller);
            assert_eq!(
                mount.controllers,
                [controller],
                "{controller} mounted alone"
            );
        }
    }

    #[test]
    fn hybrid_finds_each_controller_in_the_hierarchy_that_has_it() {
        let layout = detect(HYBRID, fake_cgroupfs("hugetlb\n")).expect("hybrid fixture parses");
        let cpu = layout.mount_for("cpu").expect("cpu is mounted");
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu"));
        let hugetlb = layout.mount_for("hugetlb").expect("hugetlb is on cgroup2");
        assert_eq!(hugetlb.version, CgroupVersion::V2);
        assert_eq!(layout.mount_for("rdma"), None);
    }

    #[test]
    fn named_hierarchy_beside_cgroup2_is_still_unified() {
        let text = "\
            30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
            31 30 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let layout = detect(text, fake_cgroupfs("cpu memory")).expect("parses");
        assert_eq!(layout.layout, Layout::V2);
    }

    #[test]
    fn octal_escapes_in_mount_point_are_decoded() {
        let text = r"40 31 0:37 / /sys/fs/cgroup/my\040cgroups\134v1 rw - cgroup cgroup rw,pids";
        let mounts = parse_mountinfo(text).expect("parses");
        assert_eq!(
            mounts[0].mount_point,
            Path::new(r"/sys/fs/cgroup/my cgroups\v1")
        );
    }

    #[test]
    fn escaped_mount_points_of_other_filesystems_are_skipped() {
        assert!(V2.contains(r"/media/alice/USB\040STICK"));
        let mounts = parse_mountinfo(V2).expect("v2 fixture parses");
        assert!(
            mounts
                .iter()
                .all(|m| m.mount_point == Path::new("/sys/fs/cgroup"))
        );
    }

    #[test]
    fn invalid_octal_escape_is_malformed() {
        let text = r"40 31 0:37 / /sys/fs/cgroup/x\9 rw - cgroup cgroup rw,pids";
        let err = parse_mountinfo(text).expect_err("\\9 is not octal");
        assert_eq!(
            err.to_string(),
            r#"mountinfo line 1: invalid octal escape in mount point "/sys/fs/cgroup/x\\9""#
        );
    }

    #[test]
    fn line_without_separator_is_malformed_with_its_line_number() {
        let text = format!(
            "{}40 31 0:37 / /sys/fs/cgroup/x rw cgroup cgroup rw\n",
            HYBRID
        );
        let err = parse_mountinfo(&text).expect_err("no separator");
        let line = HYBRID.lines().count() + 1;
        assert!(matches!(err, LayoutError::Malformed { line: l, .. } if l == line));
        assert_eq!(
            err.to_string(),
            format!("mountinfo line {line}: no `-` separator after the optional fields")
        );
    }

    #[test]
    fn line_with_too_few_fields_is_malformed() {
        let err = parse_mountinfo("\n40 31 0:37 /\n").expect_err("too short");
        assert_eq!(
            err.to_string(),
            "mountinfo line 2: expected at least 6 fields before the `-` separator, found 4"
        );
    }

    #[test]
    fn line_missing_super_options_is_malformed() {
        let err = parse_mountinfo("40 31 0:37 / /x rw shared:1 - cgroup2 cgroup2")
            .expect_err("super options missing");
        assert!(
            err.to_string().contains("after `-`"),
            "unexpected message: {err}"
        );
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        let err = detect(text, no_cgroup2).expect_err("no cgroups");
        assert!(matches!(err, LayoutError::NoCgroupMounts), "{err}");
        assert!(matches!(
            detect("", no_cgroup2),
            Err(LayoutError::NoCgroupMounts)
        ));
    }

    #[test]
    fn unreadable_cgroup_controllers_names_the_file() {
        let read = |_: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let err = detect(V2, read).expect_err("read fails");
        assert!(
            matches!(&err, LayoutError::Read { path, .. }
                if path == Path::new("/sys/fs/cgroup/cgroup.controllers")),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("read /sys/fs/cgroup/cgroup.controllers: ")
        );
    }

    #[test]
    fn detect_host_reads_everything_under_the_given_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cgroup_root = dir.path().join("cgroup");
        fs::create_dir_all(dir.path().join("self")).expect("create self/");
        fs::create_dir(&cgroup_root).expect("create cgroup/");
        fs::write(cgroup_root.join("cgroup.controllers"), "cpu memory\n").expect("write");
        let mountinfo = format!(
            "30 25 0:26 / {} rw - cgroup2 cgroup2 rw\n",
            cgroup_root.display()
        );
        fs::write(dir.path().join("self/mountinfo"), mountinfo).expect("write mountinfo");

        let layout = detect_host(dir.path()).expect("detects");
        assert_eq!(layout.layout, Layout::V2);
        let unified = layout.v2_mount().expect("cgroup2 is mounted");
        assert_eq!(unified.mount_point, cgroup_root);
        assert_eq!(unified.controllers, ["cpu", "memory"]);
    }

    #[test]
    fn detect_host_without_mountinfo_names_the_missing_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = detect_host(dir.path()).expect_err("no mountinfo");
        assert!(
            matches!(&err, LayoutError::Read { path, source }
                if path == &dir.path().join("self/mountinfo")
                    && source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }

    #[test]
    fn layouts_display_as_doctor_prints_them() {
        assert_eq!(Layout::V1.to_string(), "cgroup v1");
        assert_eq!(Layout::V2.to_string(), "cgroup v2 (unified)");
        assert_eq!(
            Layout::Hybrid.to_string(),
            "hybrid (v1 controllers + cgroup2)"
        );
    }
}
