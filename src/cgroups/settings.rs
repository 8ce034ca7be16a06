//! The settings plan: which cgroup file gets which value, for the limits asked for and the
//! layout this host has.
//!
//! The same `--cpus 0.5 --memory 64M --pids-limit 32` is written differently on the two
//! cgroup versions:
//!
//! | limit  | cgroup v1                                         | cgroup v2                 |
//! |--------|---------------------------------------------------|---------------------------|
//! | CPU    | `cpu.cfs_period_us`, `cpu.cfs_quota_us`           | `cpu.max` = `QUOTA PERIOD` |
//! | shares | `cpu.shares` (2..=262144, default 1024)           | `cpu.weight` (1..=10000, default 100) |
//! | memory | `memory.limit_in_bytes`                           | `memory.max`              |
//! | swap   | `memory.memsw.limit_in_bytes` (memory **+** swap) | `memory.swap.max` (swap alone) |
//! | pids   | `pids.max`                                        | `pids.max`                |
//!
//! **Memory.** When a group's usage reaches its limit the kernel first reclaims (drops page
//! cache, swaps out anonymous memory if swap is allowed); if that frees too little it
//! invokes the OOM killer *inside the group* and counts an `oom_kill` event. Letting the
//! container swap would make the limit soft, so by default ([`SwapPolicy::NoSwap`]) the
//! swap limit is set too: on v1 memory+swap = memory, on v2 `memory.swap.max` = 0.
//!
//! **pids.** `pids.max` caps the number of tasks (processes *and* threads) in the group;
//! once reached, `fork(2)`/`clone(2)` fail with `EAGAIN` and `pids.events` counts a `max`
//! event, so a fork bomb stops at the limit without hurting the host.
//!
//! Planning is pure: [`plan`] takes the [`Resources`] and a [`CgroupLayout`] and returns
//! [`Setting`]s; [`super::cgroup::Cgroup::apply`] writes them.
//!
//! See also [cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html) (memory,
//! pids), the v1 [memory.rst](https://docs.kernel.org/admin-guide/cgroup-v1/memory.html)
//! and [pids.rst](https://docs.kernel.org/admin-guide/cgroup-v1/pids.html), and
//! [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html).

use std::fmt::Write as _;

use super::cpu::{CpuQuota, shares_to_weight, shares_to_weight_linear};
use super::layout::{CgroupLayout, CgroupVersion};

/// Docker's smallest memory limit (6 MiB): below it a container cannot even start its
/// shell without being OOM-killed.
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

/// The limits a container asked for. `None` leaves the kernel's default (no limit).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// CFS bandwidth limit (`--cpus`, or `--cpu-quota`/`--cpu-period`).
    pub cpu_quota: Option<CpuQuota>,
    /// Validated v1 shares (`--cpu-shares`); v2 gets [`shares_to_weight`] of it.
    pub cpu_shares: Option<u64>,
    /// Memory limit in bytes (`--memory`), at least [`MIN_MEMORY_BYTES`].
    pub memory_bytes: Option<u64>,
    /// Whether the container may swap beyond its memory limit.
    pub swap: SwapPolicy,
    /// Maximum number of tasks (`--pids-limit`).
    pub pids_max: Option<u64>,
    /// The CPUs it may run on, as the kernel lists them: `0-1,3` (`--cpuset-cpus`).
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may allocate from, likewise (`--cpuset-mems`).
    pub cpuset_mems: Option<String>,
    /// Memory the kernel reclaims from it last, in bytes (`--memory-reservation`):
    /// a soft floor under pressure, not a limit.
    pub memory_reservation: Option<u64>,
    /// Its share of block I/O against its siblings, 10 to 1000, where the host's I/O
    /// scheduler has weights (OCI `blockIO.weight`).
    pub blkio_weight: Option<u16>,
    /// Block I/O limits per device (OCI `blockIO.throttle*Device`).
    pub blkio_throttle: Vec<IoThrottle>,
    /// Huge page limits: the page size as the kernel names it (`2MB`), and bytes (OCI
    /// `hugepageLimits`).
    pub hugepage_limits: Vec<(String, u64)>,
    /// Which device nodes the container may open, in order (OCI
    /// `linux.resources.devices`); empty: whatever the parent cgroup allows.
    pub devices: Vec<DeviceRule>,
}

/// One block I/O limit: at most `rate` of `kind` on device `major:minor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoThrottle {
    /// The device's major number.
    pub major: u64,
    /// Its minor number.
    pub minor: u64,
    /// What is limited.
    pub kind: IoLimit,
    /// Per second.
    pub rate: u64,
}

/// What a block I/O limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoLimit {
    /// Bytes read per second.
    ReadBps,
    /// Bytes written per second.
    WriteBps,
    /// Read operations per second.
    ReadIops,
    /// Write operations per second.
    WriteIops,
}

/// One rule of the devices controller: allow or deny access to devices of a kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    /// Allow, or deny.
    pub allow: bool,
    /// `a` (all), `c` (character) or `b` (block).
    pub kind: char,
    /// The major number; `None`: any.
    pub major: Option<u64>,
    /// The minor number; `None`: any.
    pub minor: Option<u64>,
    /// Some of `r` (read), `w` (write), `m` (mknod).
    pub access: String,
}

impl std::fmt::Display for DeviceRule {
    /// As `devices.allow` takes it: `c 1:3 rwm`, `a *:* rwm`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = |n: Option<u64>| n.map_or("*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

impl Resources {
    /// Refuse limits no container could start under, whatever the host: a memory limit
    /// below [`MIN_MEMORY_BYTES`], a pids limit of 0.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(bytes) = self.memory_bytes.filter(|&b| b < MIN_MEMORY_BYTES) {
            return Err(SettingsError::MemoryTooSmall { bytes });
        }
        if let Some(pids) = self.pids_max.filter(|&p| p == 0) {
            return Err(SettingsError::PidsTooSmall { pids });
        }
        if let (Some(bytes), SwapPolicy::Total(total)) = (self.memory_bytes, self.swap)
            && total < bytes
        {
            return Err(SettingsError::SwapBelowMemory { bytes, total });
        }
        if let Some(weight) = self.blkio_weight.filter(|w| !(10..=1000).contains(w)) {
            return Err(SettingsError::BadIoWeight { weight });
        }
        for (size, _) in &self.hugepage_limits {
            let digits = ["KB", "MB", "GB"]
                .iter()
                .find_map(|unit| size.strip_suffix(unit))
                .unwrap_or_default();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SettingsError::BadPageSize { size: size.clone() });
            }
        }
        for list in [&self.cpuset_cpus, &self.cpuset_mems].into_iter().flatten() {
            if !is_cpu_list(list) {
                return Err(SettingsError::BadCpuList { list: list.clone() });
            }
        }
        for rule in &self.devices {
            let bad_access = rule.access.is_empty()
                || !rule.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
            if !matches!(rule.kind, 'a' | 'c' | 'b') || bad_access {
                return Err(SettingsError::BadDeviceRule {
                    rule: rule.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Whether `list` is a list as `cpuset.cpus` takes it: numbers and ranges, comma
/// separated (`0-1,3`).
fn is_cpu_list(list: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    list.split(',').all(|part| match part.split_once('-') {
        Some((low, high)) => {
            number(low) && number(high) && low.parse::<u32>().ok() <= high.parse::<u32>().ok()
        }
        None => number(part),
    })
}

/// What a memory limit means for swap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapPolicy {
    /// The memory+swap limit equals the memory limit: the container cannot swap, so the
    /// limit is hard and exceeding it ends in the OOM killer.
    #[default]
    NoSwap,
    /// No swap limit: the container may swap out as much as the host allows.
    Unlimited,
    /// Memory and swap together may use this many bytes (docker's `--memory-swap`, OCI's
    /// `memory.swap`): the memory limit, and the rest in swap.
    Total(u64),
}

/// One value to write into one cgroup file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Setting {
    /// The hierarchy the file lives in.
    pub version: CgroupVersion,
    /// The controller that owns the file (`cpu`, `memory`, `pids`).
    pub controller: String,
    /// The file name inside the cgroup directory, e.g. `cpu.max`.
    pub file: String,
    /// What gets written.
    pub value: String,
    /// A short sentence saying what the value does.
    pub meaning: String,
}

impl Setting {
    /// The command-line flag(s) this setting comes from, for the first column of
    /// [`render_table`].
    pub fn ask(&self) -> &'static str {
        match self.file.as_str() {
            "cpu.cfs_period_us" | "cpu.cfs_quota_us" | "cpu.max" => "--cpus / --cpu-quota",
            "cpu.shares" | "cpu.weight" => "--cpu-shares",
            "memory.limit_in_bytes" | "memory.max" => "--memory",
            "memory.memsw.limit_in_bytes" | "memory.swap.max" => "swap policy",
            "pids.max" => "--pids-limit",
            _ => "",
        }
    }
}

/// A plan that cannot be made, or a size that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No hierarchy on this host has the controller a limit needs.
    #[error(
        "controller {controller} is not available on this host ({layout}): \
         no v1 hierarchy and no cgroup2 tree offers it"
    )]
    ControllerMissing {
        /// The controller that is missing.
        controller: String,
        /// The host's layout, as `nutshell doctor` names it.
        layout: String,
    },
    /// A memory size is not a number with an optional k/m/g suffix.
    #[error(
        "memory size {text:?}: expected a number of bytes with an optional k, m or g suffix, e.g. 64M"
    )]
    InvalidSize {
        /// The text given.
        text: String,
    },
    /// A memory limit is below [`MIN_MEMORY_BYTES`].
    #[error("memory limit {bytes} bytes: must be at least {MIN_MEMORY_BYTES} bytes (6M)")]
    MemoryTooSmall {
        /// The limit asked for.
        bytes: u64,
    },
    /// `--pids-limit 0` would forbid even the container's first process.
    #[error("pids limit {pids}: must be at least 1")]
    PidsTooSmall {
        /// The limit asked for.
        pids: u64,
    },
    /// An I/O weight out of range.
    #[error("block I/O weight {weight}: must be 10 to 1000")]
    BadIoWeight {
        /// The weight given.
        weight: u16,
    },
    /// A huge page size not as the kernel names them.
    #[error("huge page size {size:?}: not a size as the kernel names them, such as 2MB or 1GB")]
    BadPageSize {
        /// The size given.
        size: String,
    },
    /// A cpuset list that is not one.
    #[error("cpuset {list:?}: not a list of CPUs or memory nodes, such as 0-1,3")]
    BadCpuList {
        /// The list given.
        list: String,
    },
    /// A memory+swap limit below the memory limit.
    #[error("memory+swap limit {total}: must be at least the memory limit, {bytes}")]
    SwapBelowMemory {
        /// The memory limit.
        bytes: u64,
        /// The memory+swap limit.
        total: u64,
    },
    /// A swap limit on a kernel that does not account swap.
    #[error(
        "a swap limit needs swap accounting, which this kernel has off (boot with swapaccount=1)"
    )]
    NoSwapAccounting,
    /// A device rule the controller would refuse.
    #[error("device rule {rule:?}: the kind is a, c or b, and the access some of r, w, m")]
    BadDeviceRule {
        /// The rule.
        rule: String,
    },
    /// Device rules on cgroup v2.
    #[error(
        "device rules need v1's devices hierarchy or the cgroup2 tree (for an eBPF device filter), and this host mounts neither"
    )]
    NoDeviceControl,
}

/// Parses a memory size like Docker: `1048576`, `512k`, `64M`, `1g` (binary multiples,
/// case-insensitive, an optional trailing `b`).
pub fn parse_size(text: &str) -> Result<u64, SettingsError> {
    let invalid = || SettingsError::InvalidSize {
        text: text.to_owned(),
    };
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        _ => (lower, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    number.checked_mul(1 << shift).ok_or_else(invalid)
}

// ANCHOR: plan
// ANCHOR: plan_fn
/// What files get which values, for this layout.
///
/// Each controller is looked up where it lives — its v1 hierarchy if it has one, else the
/// cgroup2 tree — so on a hybrid host one plan can mix both versions. `swap_accounting`
/// says whether the memory controller can limit swap here (v1: `memory.memsw.*` exists;
/// v2: `memory.swap.max` exists); without it no swap setting is planned.
pub fn plan(
    resources: &Resources,
    layout: &CgroupLayout,
    swap_accounting: bool,
) -> Result<Vec<Setting>, SettingsError> {
    let version_of = |controller: &str| {
        layout
            .mount_for(controller)
            .map(|mount| mount.version)
            .ok_or_else(|| SettingsError::ControllerMissing {
                controller: controller.to_owned(),
                layout: layout.layout.to_string(),
            })
    };
    resources.validate()?;
    let mut settings = Vec::new();
    if resources.cpu_quota.is_some() || resources.cpu_shares.is_some() {
        settings.extend(cpu_settings(resources, version_of("cpu")?));
    }
    if let Some(bytes) = resources.memory_bytes {
        let version = version_of("memory")?;
        if matches!(resources.swap, SwapPolicy::Total(_)) && !swap_accounting {
            return Err(SettingsError::NoSwapAccounting);
        }
        settings.extend(memory_settings(
            bytes,
            resources.swap,
            version,
            swap_accounting,
        ));
    }
    // Chapter 11's: runc's update and OCI configs set these too.
    settings.extend(soft_and_cpuset_settings(resources, layout)?);
    if let Some(pids) = resources.pids_max {
        let meaning =
            format!("at most {pids} tasks (processes + threads); fork fails with EAGAIN beyond");
        settings.push(setting(
            version_of("pids")?,
            "pids",
            "pids.max",
            pids.to_string(),
            meaning,
        ));
    }
    // v1 only: v2 takes device rules as an eBPF program, which is no file (see
    // `device_filter`; the launch attaches it once the cgroup exists).
    if version_of("devices").ok() == Some(CgroupVersion::V1) {
        for rule in &resources.devices {
            let (file, verb) = if rule.allow {
                ("devices.allow", "allow")
            } else {
                ("devices.deny", "deny")
            };
            let meaning = format!("{verb} {} of these devices", rule.access);
            settings.push(setting(
                CgroupVersion::V1,
                "devices",
                file,
                rule.to_string(),
                meaning,
            ));
        }
    }
    Ok(settings)
}

// ANCHOR_END: plan_fn

// ANCHOR: cpu_settings
/// `cpu.cfs_*`/`cpu.shares` on v1, `cpu.max`/`cpu.weight` on v2.
fn cpu_settings(resources: &Resources, version: CgroupVersion) -> Vec<Setting> {
    let mut settings = Vec::new();
    if let Some(quota) = resources.cpu_quota {
        let meaning = format!(
            "{} of CPU time in every {} period: {} CPU",
            ms(quota.quota_us),
            ms(quota.period_us),
            quota.cpus()
        );
        match version {
            CgroupVersion::V1 => {
                // Period first: the kernel checks quota/period against the parent's
                // bandwidth on each write, so the pair must be consistent after each one.
                let period = format!("the CFS bandwidth period: {}", ms(quota.period_us));
                settings.push(cpu(
                    version,
                    "cpu.cfs_period_us",
                    quota.period_us.to_string(),
                    period,
                ));
                settings.push(cpu(
                    version,
                    "cpu.cfs_quota_us",
                    quota.quota_us.to_string(),
                    meaning,
                ));
            }
            CgroupVersion::V2 => {
                let value = format!("{} {}", quota.quota_us, quota.period_us);
                settings.push(cpu(version, "cpu.max", value, meaning));
            }
        }
    }
    if let Some(shares) = resources.cpu_shares {
        match version {
            CgroupVersion::V1 => {
                let meaning =
                    "relative CPU share when CPUs are contended (default 1024)".to_owned();
                settings.push(cpu(version, "cpu.shares", shares.to_string(), meaning));
            }
            CgroupVersion::V2 => {
                let weight = shares_to_weight(shares);
                let meaning = format!(
                    "shares {shares} -> weight {weight} (default 100; old linear formula: {})",
                    shares_to_weight_linear(shares)
                );
                settings.push(cpu(version, "cpu.weight", weight.to_string(), meaning));
            }
        }
    }
    settings
}

// ANCHOR_END: cpu_settings

// ANCHOR: memory_settings
/// The memory limit, then (if the kernel accounts swap) the swap limit.
fn memory_settings(
    bytes: u64,
    swap: SwapPolicy,
    version: CgroupVersion,
    swap_accounting: bool,
) -> Vec<Setting> {
    let limit = format!(
        "{} of memory; beyond it: reclaim, then the OOM killer",
        size(bytes)
    );
    let (memory_file, swap_file, swap_value) = match (version, swap) {
        // v1 limits memory+swap together, so "no swap" is memsw = memory. It must be
        // written after memory.limit_in_bytes: the kernel refuses memsw < memory.
        (CgroupVersion::V1, SwapPolicy::NoSwap) => (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            bytes.to_string(),
        ),
        (CgroupVersion::V1, SwapPolicy::Unlimited) => (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "-1".to_owned(),
        ),
        (CgroupVersion::V2, SwapPolicy::NoSwap) => {
            ("memory.max", "memory.swap.max", "0".to_owned())
        }
        (CgroupVersion::V2, SwapPolicy::Unlimited) => {
            ("memory.max", "memory.swap.max", "max".to_owned())
        }
        (CgroupVersion::V1, SwapPolicy::Total(total)) => (
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            total.to_string(),
        ),
        // v2 limits swap alone.
        (CgroupVersion::V2, SwapPolicy::Total(total)) => (
            "memory.max",
            "memory.swap.max",
            total.saturating_sub(bytes).to_string(),
        ),
    };
    let mut settings = vec![setting(
        version,
        "memory",
        memory_file,
        bytes.to_string(),
        limit,
    )];
    if swap_accounting {
        let meaning = match (version, swap) {
            (CgroupVersion::V1, SwapPolicy::NoSwap) => {
                "memory + swap = the memory limit: no swap".to_owned()
            }
            (CgroupVersion::V2, SwapPolicy::NoSwap) => {
                "no swap: the memory limit is hard".to_owned()
            }
            (_, SwapPolicy::Unlimited) => "swap not limited".to_owned(),
            (_, SwapPolicy::Total(total)) => format!(
                "memory + swap = {}: up to {} of swap",
                size(total),
                size(total.saturating_sub(bytes))
            ),
        };
        settings.push(setting(version, "memory", swap_file, swap_value, meaning));
    }
    settings
}
// ANCHOR_END: memory_settings
// ANCHOR_END: plan

/// The memory reservation and the cpuset, which chapter 11's configs set.
fn soft_and_cpuset_settings(
    resources: &Resources,
    layout: &CgroupLayout,
) -> Result<Vec<Setting>, SettingsError> {
    let version_of = |controller: &str| {
        layout
            .mount_for(controller)
            .map(|mount| mount.version)
            .ok_or_else(|| SettingsError::ControllerMissing {
                controller: controller.to_owned(),
                layout: layout.layout.to_string(),
            })
    };
    let mut settings = Vec::new();
    if let Some(bytes) = resources.memory_reservation {
        let version = version_of("memory")?;
        let file = match version {
            CgroupVersion::V1 => "memory.soft_limit_in_bytes",
            CgroupVersion::V2 => "memory.low",
        };
        let meaning = format!("{} reclaimed from it last, under pressure", size(bytes));
        settings.push(setting(version, "memory", file, bytes.to_string(), meaning));
    }
    for (list, file, what) in [
        (&resources.cpuset_cpus, "cpuset.cpus", "runs only on CPUs"),
        (
            &resources.cpuset_mems,
            "cpuset.mems",
            "allocates only from memory nodes",
        ),
    ] {
        if let Some(list) = list {
            let meaning = format!("{what} {list}");
            settings.push(setting(
                version_of("cpuset")?,
                "cpuset",
                file,
                list.clone(),
                meaning,
            ));
        }
    }
    settings.extend(io_settings(resources, layout)?);
    for (size, bytes) in &resources.hugepage_limits {
        let version = version_of("hugetlb")?;
        let file = match version {
            CgroupVersion::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            CgroupVersion::V2 => format!("hugetlb.{size}.max"),
        };
        let meaning = format!("at most {} in {size} huge pages", self::size(*bytes));
        settings.push(setting(
            version,
            "hugetlb",
            &file,
            bytes.to_string(),
            meaning,
        ));
    }
    Ok(settings)
}

/// Block I/O: v1's `blkio` hierarchy (`blkio.weight`, `blkio.throttle.*_device`), or
/// v2's `io` controller (`io.weight`, `io.max`).
fn io_settings(
    resources: &Resources,
    layout: &CgroupLayout,
) -> Result<Vec<Setting>, SettingsError> {
    if resources.blkio_weight.is_none() && resources.blkio_throttle.is_empty() {
        return Ok(Vec::new());
    }
    let (version, controller) = if layout.v1_mount_for("blkio").is_some() {
        (CgroupVersion::V1, "blkio")
    } else if layout.mount_for("io").is_some() {
        (CgroupVersion::V2, "io")
    } else {
        return Err(SettingsError::ControllerMissing {
            controller: "blkio (v2: io)".to_owned(),
            layout: layout.layout.to_string(),
        });
    };
    let mut settings = Vec::new();
    if let Some(weight) = resources.blkio_weight {
        let (file, value) = match version {
            CgroupVersion::V1 => ("blkio.weight", weight.to_string()),
            CgroupVersion::V2 => ("io.weight", format!("default {weight}")),
        };
        let meaning = format!("block I/O weight {weight} against its siblings");
        settings.push(setting(version, controller, file, value, meaning));
    }
    for limit in &resources.blkio_throttle {
        let device = format!("{}:{}", limit.major, limit.minor);
        let (v1_file, v2_key, what) = match limit.kind {
            IoLimit::ReadBps => ("blkio.throttle.read_bps_device", "rbps", "bytes read"),
            IoLimit::WriteBps => ("blkio.throttle.write_bps_device", "wbps", "bytes written"),
            IoLimit::ReadIops => ("blkio.throttle.read_iops_device", "riops", "reads"),
            IoLimit::WriteIops => ("blkio.throttle.write_iops_device", "wiops", "writes"),
        };
        let (file, value) = match version {
            CgroupVersion::V1 => (v1_file, format!("{device} {}", limit.rate)),
            CgroupVersion::V2 => ("io.max", format!("{device} {v2_key}={}", limit.rate)),
        };
        let meaning = format!("at most {} {what} a second on device {device}", limit.rate);
        settings.push(setting(version, controller, file, value, meaning));
    }
    Ok(settings)
}

fn cpu(version: CgroupVersion, file: &str, value: String, meaning: String) -> Setting {
    setting(version, "cpu", file, value, meaning)
}

fn setting(
    version: CgroupVersion,
    controller: &str,
    file: &str,
    value: String,
    meaning: String,
) -> Setting {
    Setting {
        version,
        controller: controller.to_owned(),
        file: file.to_owned(),
        value,
        meaning,
    }
}

/// Microseconds as milliseconds for people: `50000` → `50 ms`, `12500` → `12.5 ms`.
fn ms(us: u64) -> String {
    format!("{} ms", us as f64 / 1000.0)
}

/// Bytes in the largest binary unit that divides them: `67108864` → `64 MiB`.
fn size(bytes: u64) -> String {
    for (unit, name) in [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// Renders settings as an aligned table: ask | file | value | meaning, with the cgroup
/// version of each file.
pub fn render_table(settings: &[Setting]) -> String {
    let headers = ["ask", "file", "value", "meaning"];
    let rows: Vec<[String; 4]> = settings
        .iter()
        .map(|s| {
            let version = s.version.short();
            [
                s.ask().to_owned(),
                format!("{} {}", version, s.file),
                s.value.clone(),
                s.meaning.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$} | {:<w1$} | {:<w2$} | {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(&mut out, headers);
    let rule = widths.map(|w| "-".repeat(w));
    let _ = writeln!(
        out,
        "{}-+-{}-+-{}-+-{}",
        rule[0],
        rule[1],
        rule[2],
        "-".repeat(widths[3])
    );
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::cpu::{quota_from_cpus, validate_shares};
    use crate::cgroups::layout::detect;

    fn layout(mountinfo: &str, controllers: &'static str) -> CgroupLayout {
        detect(mountinfo, move |_| Ok(controllers.to_owned())).expect("fixture parses")
    }

    fn v1() -> CgroupLayout {
        layout(include_str!("../../tests/fixtures/mountinfo/v1.txt"), "")
    }
    fn v2() -> CgroupLayout {
        layout(
            include_str!("../../tests/fixtures/mountinfo/v2.txt"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
    }
    fn hybrid() -> CgroupLayout {
        layout(
            include_str!("../../tests/fixtures/mountinfo/hybrid.txt"),
            "hugetlb\n",
        )
    }

    /// `--cpus 0.5 --cpu-shares 512 --memory 64M --pids-limit 32`.
    fn sample() -> Resources {
        Resources {
            cpu_quota: Some(quota_from_cpus(0.5, 4).expect("valid")),
            cpu_shares: Some(validate_shares(512).expect("valid")),
            memory_bytes: Some(parse_size("64M").expect("valid")),
            swap: SwapPolicy::NoSwap,
            pids_max: Some(32),
            devices: Vec::new(),
            ..Resources::default()
        }
    }

    fn files(settings: &[Setting]) -> Vec<(&str, &str)> {
        settings
            .iter()
            .map(|s| (s.file.as_str(), s.value.as_str()))
            .collect()
    }

    /// Chapter 11's settings: a reservation, a cpuset, block I/O and huge pages.
    fn runtime_sample() -> Resources {
        Resources {
            memory_reservation: Some(32 << 20),
            cpuset_cpus: Some("0-1".to_string()),
            blkio_weight: Some(500),
            blkio_throttle: vec![IoThrottle {
                major: 8,
                minor: 0,
                kind: IoLimit::WriteIops,
                rate: 100,
            }],
            hugepage_limits: vec![("2MB".to_string(), 4 << 20)],
            ..Resources::default()
        }
    }

    #[test]
    fn runtime_settings_name_each_versions_files() {
        let v1_files = files(&plan(&runtime_sample(), &v1(), true).expect("plans"))
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>();
        assert_eq!(
            v1_files,
            [
                "memory.soft_limit_in_bytes=33554432",
                "cpuset.cpus=0-1",
                "blkio.weight=500",
                "blkio.throttle.write_iops_device=8:0 100",
                "hugetlb.2MB.limit_in_bytes=4194304",
            ]
        );
        let v2_files = files(&plan(&runtime_sample(), &v2(), true).expect("plans"))
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>();
        assert_eq!(
            v2_files,
            [
                "memory.low=33554432",
                "cpuset.cpus=0-1",
                "io.weight=default 500",
                "io.max=8:0 wiops=100",
                "hugetlb.2MB.max=4194304",
            ]
        );
    }

    #[test]
    fn bad_cpu_lists_page_sizes_and_weights_are_refused() {
        for list in ["", "a", "1-", "3-1", "0,,1", "0 1"] {
            let resources = Resources {
                cpuset_cpus: Some(list.to_string()),
                ..Resources::default()
            };
            assert!(resources.validate().is_err(), "{list:?}");
        }
        for size in ["2M", "MB", "2.5MB", "2TB", ""] {
            let resources = Resources {
                hugepage_limits: vec![(size.to_string(), 1)],
                ..Resources::default()
            };
            assert!(resources.validate().is_err(), "{size:?}");
        }
        for weight in [0, 9, 1001] {
            let resources = Resources {
                blkio_weight: Some(weight),
                ..Resources::default()
            };
            assert!(resources.validate().is_err(), "{weight}");
        }
        let fine = Resources {
            cpuset_cpus: Some("0-3,5".to_string()),
            hugepage_limits: vec![("1GB".to_string(), 0)],
            blkio_weight: Some(10),
            ..Resources::default()
        };
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn sizes_parse_like_docker() {
        let cases = [
            ("1048576", 1 << 20),
            ("512k", 512 << 10),
            ("64M", 64 << 20),
            ("64m", 64 << 20),
            ("64mb", 64 << 20),
            ("1G", 1 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text).expect(text), bytes, "{text}");
        }
        for text in [
            "",
            "M",
            "-1M",
            "1.5G",
            "64 M",
            "1T",
            "99999999999999999999G",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} should not parse");
        }
    }

    #[test]
    fn v1_writes_period_before_quota_and_memsw_after_memory() {
        let settings = plan(&sample(), &v1(), true).expect("plans");
        assert_eq!(
            files(&settings),
            [
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.shares", "512"),
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("pids.max", "32"),
            ]
        );
        assert!(settings.iter().all(|s| s.version == CgroupVersion::V1));
    }

    #[test]
    fn v2_uses_cpu_max_weight_and_swap_max() {
        let settings = plan(&sample(), &v2(), true).expect("plans");
        assert_eq!(
            files(&settings),
            [
                ("cpu.max", "50000 100000"),
                ("cpu.weight", "59"),
                ("memory.max", "67108864"),
                ("memory.swap.max", "0"),
                ("pids.max", "32"),
            ]
        );
    }

    #[test]
    fn unlimited_swap_and_no_swap_accounting() {
        let resources = Resources {
            swap: SwapPolicy::Unlimited,
            ..sample()
        };
        let v1_plan = plan(&resources, &v1(), true).expect("plans");
        assert!(files(&v1_plan).contains(&("memory.memsw.limit_in_bytes", "-1")));
        let v2_plan = plan(&resources, &v2(), true).expect("plans");
        assert!(files(&v2_plan).contains(&("memory.swap.max", "max")));
        let without = plan(&sample(), &v2(), false).expect("plans");
        assert!(without.iter().all(|s| s.file != "memory.swap.max"));
    }

    #[test]
    fn a_memory_and_swap_total_is_memsw_on_v1_and_the_difference_on_v2() {
        let resources = Resources {
            swap: SwapPolicy::Total(128 << 20),
            ..sample()
        };
        let v1_plan = plan(&resources, &v1(), true).expect("plans");
        assert!(files(&v1_plan).contains(&("memory.memsw.limit_in_bytes", "134217728")));
        let v2_plan = plan(&resources, &v2(), true).expect("plans");
        assert!(files(&v2_plan).contains(&("memory.swap.max", "67108864")));
        assert!(matches!(
            plan(&resources, &v2(), false),
            Err(SettingsError::NoSwapAccounting)
        ));
        let below = Resources {
            swap: SwapPolicy::Total(1 << 20),
            ..sample()
        };
        assert!(matches!(
            plan(&below, &v1(), true),
            Err(SettingsError::SwapBelowMemory { .. })
        ));
    }

    #[test]
    fn device_rules_go_to_devices_allow_and_deny_on_v1_and_are_refused_on_v2() {
        let rule = |allow, kind, major, minor, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.to_string(),
        };
        let resources = Resources {
            devices: vec![
                rule(false, 'a', None, None, "rwm"),
                rule(true, 'c', Some(1), Some(3), "rwm"),
                rule(true, 'c', Some(136), None, "rw"),
            ],
            ..Resources::default()
        };
        assert_eq!(
            files(&plan(&resources, &v1(), true).expect("plans")),
            [
                ("devices.deny", "a *:* rwm"),
                ("devices.allow", "c 1:3 rwm"),
                ("devices.allow", "c 136:* rw"),
            ]
        );
        // v2 writes no file for them: the launch attaches an eBPF program instead.
        assert_eq!(files(&plan(&resources, &v2(), true).expect("plans")), []);
        let bad = Resources {
            devices: vec![rule(true, 'x', None, None, "rwm")],
            ..Resources::default()
        };
        assert!(matches!(
            plan(&bad, &v1(), true),
            Err(SettingsError::BadDeviceRule { .. })
        ));
    }

    #[test]
    fn nothing_asked_plans_nothing() {
        assert_eq!(plan(&Resources::default(), &v2(), true).expect("plans"), []);
    }

    #[test]
    fn missing_controller_is_named() {
        let only_hugetlb = layout(
            include_str!("../../tests/fixtures/mountinfo/v2.txt"),
            "hugetlb",
        );
        let err = plan(&sample(), &only_hugetlb, true).expect_err("no cpu");
        assert_eq!(
            err.to_string(),
            "controller cpu is not available on this host (cgroup v2 (unified)): \
             no v1 hierarchy and no cgroup2 tree offers it"
        );
    }

    #[test]
    fn tiny_memory_and_zero_pids_are_rejected() {
        let tiny = Resources {
            memory_bytes: Some(MIN_MEMORY_BYTES - 1),
            ..Resources::default()
        };
        assert!(matches!(
            plan(&tiny, &v2(), true),
            Err(SettingsError::MemoryTooSmall { .. })
        ));
        let zero = Resources {
            pids_max: Some(0),
            ..Resources::default()
        };
        assert!(matches!(
            plan(&zero, &v2(), true),
            Err(SettingsError::PidsTooSmall { pids: 0 })
        ));
    }

    fn snapshot(name: &str, layout: &CgroupLayout) {
        let settings = plan(&sample(), layout, true).expect("plans");
        let text = format!(
            "layout: {}\nasked:  --cpus 0.5 --cpu-shares 512 --memory 64M --pids-limit 32 (no swap)\n\n{}",
            layout.layout,
            render_table(&settings)
        );
        let mut insta_settings = insta::Settings::clone_current();
        insta_settings.set_prepend_module_to_snapshot(false);
        insta_settings.set_omit_expression(true);
        insta_settings.set_snapshot_path("../../tests/snapshots");
        insta_settings.bind(|| insta::assert_snapshot!(name, text));
    }

    #[test]
    fn settings_snapshots_per_layout() {
        snapshot("ch05_settings_v1", &v1());
        snapshot("ch05_settings_v2", &v2());
        snapshot("ch05_settings_hybrid", &hybrid());
    }
}
