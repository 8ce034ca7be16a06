//! # Exercise ch05-cgroups: the CPU limit arithmetic
//!
//! Two conversions every container runtime carries. Write both.
//!
//! 1. `cpus_to_quota(cpus)`: Docker's `--cpus N` becomes a CFS bandwidth limit, a quota
//!    of CPU time per period, both in microseconds. The period is always 100000 µs
//!    (100 ms) and the quota is `cpus × period`, **rounded** to the nearest microsecond:
//!    `--cpus 0.5` is `(50000, 100000)`, `--cpus 2` is `(200000, 100000)`. Watch out:
//!    `0.29 * 100000.0` is `28999.999999999996` in `f64`, and Docker writes 29000.
//!    Return `(quota, period)`.
//!
//! 2. `shares_to_weight(shares)`: cgroup v1's `cpu.shares` (2..=262144, default 1024)
//!    has no file on cgroup v2, whose `cpu.weight` goes 1..=10000 (default 100). runc
//!    1.3 and crun convert with a parabola in `l = log2(shares)` that maps the minimum,
//!    the default and the maximum onto each other:
//!
//!    ```text
//!    exponent = (l*l + 125*l) / 612 - 7/34
//!    weight   = ceil(10^exponent)
//!    ```
//!
//!    so 1024 → 100, 512 → 59, 2048 → 174, 4096 → 303. The formula is meant for v1's
//!    range only: shares at or below 2 give 1 and shares at or above 262144 give 10000.
//!    Check the two ends before computing, as runc does (`log2(0)` is minus infinity, and
//!    `2^20` shares would come out as a weight over 34000, which the kernel refuses).
//!
//! Read book/src/ch05-cgroups.md first. Check your work with `just exercise ch05-cgroups`
//! (no root needed).

/// The CFS period Docker uses for `--cpus`: 100 ms, in microseconds.
pub const PERIOD_US: u64 = 100_000;

/// `--cpus N` as `(quota_us, period_us)`.
pub fn cpus_to_quota(cpus: f64) -> (u64, u64) {
    // TODO: quota = cpus × PERIOD_US, rounded (f64::round), as u64; return (quota, PERIOD_US).
    let _ = cpus;
    todo!("cpus_to_quota: quota = round(cpus × period)")
}

/// v1 `cpu.shares` as v2 `cpu.weight`, by the conversion runc 1.3 and crun use.
pub fn shares_to_weight(shares: u64) -> u64 {
    // TODO: shares <= 2 → 1; shares >= 262144 → 10000.
    // TODO: otherwise l = log2(shares) (f64::log2), exponent = (l*l + 125*l)/612 - 7/34,
    //       weight = 10^exponent (10f64.powf) rounded UP (f64::ceil).
    let _ = shares;
    todo!("shares_to_weight: pin the ends, then ceil(10^exponent)")
}
