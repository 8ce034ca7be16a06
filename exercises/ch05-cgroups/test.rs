//! Tests for exercise ch05-cgroups. The statement is at the top of `cpu_math.rs`.
//!
//! Pure arithmetic: no root, no cgroup. Each table row is a case a runtime must get
//! right; a failure names the input, what was expected and what came back.

#[cfg_attr(not(feature = "solution"), path = "cpu_math.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch05-cgroups/cpu_math.rs")]
mod cpu_math;

use cpu_math::{PERIOD_US, cpus_to_quota, shares_to_weight};

#[test]
fn cpus_become_a_quota_of_the_100ms_period() {
    let cases: [(f64, u64); 7] = [
        (0.5, 50_000),
        (1.0, 100_000),
        (1.5, 150_000),
        (2.0, 200_000),
        (0.01, 1_000),
        (0.25, 25_000),
        (0.125, 12_500),
    ];
    for (cpus, quota) in cases {
        assert_eq!(
            cpus_to_quota(cpus),
            (quota, PERIOD_US),
            "--cpus {cpus} should be {quota} µs of every {PERIOD_US} µs"
        );
    }
}

#[test]
fn cpus_are_rounded_not_truncated() {
    for (cpus, quota) in [(0.29, 29_000), (0.57, 57_000), (1.13, 113_000)] {
        assert_eq!(
            cpus_to_quota(cpus).0,
            quota,
            "--cpus {cpus}: {cpus} × 100000 is {} in f64; round it, do not truncate",
            cpus * 100_000.0
        );
    }
}

#[test]
fn shares_map_default_to_default() {
    assert_eq!(
        shares_to_weight(1024),
        100,
        "the v1 default (1024 shares) must become the v2 default (weight 100)"
    );
}

#[test]
fn shares_to_weight_follows_runcs_table() {
    let cases = [
        (512, 59),
        (1024, 100),
        (2048, 174),
        (4096, 303),
        (100, 17),
        (10_000, 627),
        (100_000, 4_340),
    ];
    for (shares, weight) in cases {
        assert_eq!(
            shares_to_weight(shares),
            weight,
            "cpu.shares {shares} should become cpu.weight {weight}"
        );
    }
}

#[test]
fn the_ends_of_the_range_are_exact() {
    for (shares, weight) in [(2, 1), (1, 1), (0, 1), (262_144, 10_000), (1 << 20, 10_000)] {
        assert_eq!(
            shares_to_weight(shares),
            weight,
            "cpu.shares {shares} should become cpu.weight {weight}: pin the ends \
             (shares <= 2 → 1, shares >= 262144 → 10000) before using the formula"
        );
    }
}
