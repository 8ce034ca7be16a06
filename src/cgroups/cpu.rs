//! CPU limits as numbers: `--cpus`, quota and period, shares and weight.
//!
//! The kernel's CFS scheduler enforces a *bandwidth* limit per cgroup: in every *period*
//! the group's threads together may run for at most *quota* microseconds of CPU time.
//! When they have used it up they are *throttled* — taken off the CPU — until the next
//! period starts. So `--cpus 0.5` (quota 50 000 µs per 100 000 µs period) does not make a
//! busy thread run at half speed: it runs at full speed for 50 ms, then waits 50 ms. With
//! four busy threads the 50 ms are used up in 12.5 ms of wall time. The cgroup counts the
//! periods it was active in (`nr_periods`), those that ended throttled (`nr_throttled`) and
//! the time spent waiting (`throttled_time`/`throttled_usec`).
//!
//! Files: cgroup v1 has `cpu.cfs_period_us` and `cpu.cfs_quota_us` (`-1` = no limit);
//! cgroup v2 has one file, `cpu.max`, holding `"QUOTA PERIOD"` (`max` = no limit). The
//! kernel accepts periods from 1 ms to 1 s and quotas from 1 ms up.
//!
//! *Shares* and *weight* are the other CPU knob: not a cap but a proportion that only
//! matters when CPUs are contended. v1 `cpu.shares` ranges 2..=262144 with default 1024; v2
//! `cpu.weight` ranges 1..=10000 with default 100. Runtimes still take `--cpu-shares` and
//! must translate it for v2, and they have done so in two ways:
//!
//! - linear (runc before 1.3, the OCI "cgroup v2 unified" note):
//!   `weight = 1 + (shares - 2) * 9999 / 262142`, which maps both ranges end to end but
//!   sends the default 1024 to 39, not to v2's default 100;
//! - quadratic in log space (runc 1.3+, crun): with `l = log2(shares)`,
//!   `weight = ceil(10^((l² + 125 l) / 612 − 7/34))`, a curve chosen to pass through
//!   (2, 1), (1024, 100) and (262144, 10000).
//!
//! Everything here is pure arithmetic; [`super::settings`] decides which files get the
//! numbers.
//!
//! See also the kernel's
//! [sched-bwc.rst](https://docs.kernel.org/scheduler/sched-bwc.html) (CFS bandwidth
//! control), [cgroup-v2.rst](https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu)
//! (`cpu.max`, `cpu.weight`) and [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html).

/// The period `--cpus` uses, in microseconds (100 ms), as Docker does.
pub const DEFAULT_PERIOD_US: u64 = 100_000;
/// The smallest quota and period the kernel accepts, in microseconds (1 ms).
pub const MIN_QUOTA_US: u64 = 1_000;
/// The largest period the kernel accepts, in microseconds (1 s).
pub const MAX_PERIOD_US: u64 = 1_000_000;
/// The smallest value of v1 `cpu.shares`.
pub const MIN_SHARES: u64 = 2;
/// The largest value of v1 `cpu.shares`.
pub const MAX_SHARES: u64 = 262_144;
/// The smallest value of v2 `cpu.weight`.
pub const MIN_WEIGHT: u64 = 1;
/// The largest value of v2 `cpu.weight`.
pub const MAX_WEIGHT: u64 = 10_000;

/// A CFS bandwidth limit: at most `quota_us` of CPU time in every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuQuota {
    /// CPU time the group may use per period, in microseconds.
    pub quota_us: u64,
    /// Length of the period, in microseconds.
    pub period_us: u64,
}

impl CpuQuota {
    /// How many CPUs' worth of time the limit allows (`quota / period`).
    pub fn cpus(self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// A CPU limit outside what the kernel (or this machine) accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CpuError {
    /// `--cpus` is not a positive number no larger than the number of online CPUs.
    #[error(
        "--cpus {cpus}: must be a number greater than 0 and at most {online_cpus} (the online CPUs)"
    )]
    CpusOutOfRange {
        /// What was asked.
        cpus: f64,
        /// CPUs online on this machine.
        online_cpus: usize,
    },
    /// The quota is below the kernel's 1 ms minimum.
    #[error("cpu quota {quota_us} µs: must be at least {MIN_QUOTA_US} µs (1 ms) per period")]
    QuotaTooSmall {
        /// The quota asked for or computed, in microseconds.
        quota_us: u64,
    },
    /// The period is outside 1 ms..=1 s.
    #[error(
        "cpu period {period_us} µs: must be between {MIN_QUOTA_US} and {MAX_PERIOD_US} µs (1 ms to 1 s)"
    )]
    PeriodOutOfRange {
        /// The period asked for, in microseconds.
        period_us: u64,
    },
    /// `--cpu-shares` is outside v1's 2..=262144.
    #[error("cpu shares {shares}: must be between {MIN_SHARES} and {MAX_SHARES} (default 1024)")]
    SharesOutOfRange {
        /// The shares asked for.
        shares: u64,
    },
}

// ANCHOR: quota_from_cpus
/// Turns Docker's `--cpus N` into a quota over the default 100 ms period.
///
/// `online_cpus` is the upper bound: asking for more CPUs than exist would be no limit.
pub fn quota_from_cpus(cpus: f64, online_cpus: usize) -> Result<CpuQuota, CpuError> {
    if !cpus.is_finite() || cpus <= 0.0 || cpus > online_cpus as f64 {
        return Err(CpuError::CpusOutOfRange { cpus, online_cpus });
    }
    let quota_us = (cpus * DEFAULT_PERIOD_US as f64).round() as u64;
    if quota_us < MIN_QUOTA_US {
        return Err(CpuError::QuotaTooSmall { quota_us });
    }
    Ok(CpuQuota {
        quota_us,
        period_us: DEFAULT_PERIOD_US,
    })
}
// ANCHOR_END: quota_from_cpus

/// Checks `--cpu-quota`/`--cpu-period` given directly, against the kernel's limits.
pub fn quota_from_parts(quota_us: u64, period_us: u64) -> Result<CpuQuota, CpuError> {
    if !(MIN_QUOTA_US..=MAX_PERIOD_US).contains(&period_us) {
        return Err(CpuError::PeriodOutOfRange { period_us });
    }
    if quota_us < MIN_QUOTA_US {
        return Err(CpuError::QuotaTooSmall { quota_us });
    }
    Ok(CpuQuota {
        quota_us,
        period_us,
    })
}

/// Checks `--cpu-shares` against v1's range (2..=262144) and returns it.
pub fn validate_shares(shares: u64) -> Result<u64, CpuError> {
    if (MIN_SHARES..=MAX_SHARES).contains(&shares) {
        Ok(shares)
    } else {
        Err(CpuError::SharesOutOfRange { shares })
    }
}

// ANCHOR: shares_to_weight_linear
/// The old shares → weight conversion: a straight line from (2, 1) to (262144, 10000).
///
/// It keeps both ends but maps the v1 default 1024 to 39, so a container given "default"
/// shares got well under v2's default weight of 100. Out-of-range shares are clamped.
pub fn shares_to_weight_linear(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}
// ANCHOR_END: shares_to_weight_linear

// ANCHOR: shares_to_weight
/// The current shares → weight conversion (runc 1.3+, crun): a parabola in log2(shares)
/// through (2, 1), (1024, 100) and (262144, 10000), so defaults map to defaults.
pub fn shares_to_weight(shares: u64) -> u64 {
    // The ends are exact by construction; pinning them keeps floating-point rounding
    // from turning 1.0000000001 into 2.
    if shares <= MIN_SHARES {
        return MIN_WEIGHT;
    }
    if shares >= MAX_SHARES {
        return MAX_WEIGHT;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(MIN_WEIGHT, MAX_WEIGHT)
}
// ANCHOR_END: shares_to_weight

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn cpus_become_quota_over_the_default_period() {
        let cases = [
            (0.5, 50_000),
            (1.5, 150_000),
            (0.01, 1_000),
            (1.0, 100_000),
            (0.333, 33_300),
        ];
        for (cpus, quota_us) in cases {
            assert_eq!(
                quota_from_cpus(cpus, 4),
                Ok(CpuQuota {
                    quota_us,
                    period_us: DEFAULT_PERIOD_US
                }),
                "--cpus {cpus}"
            );
        }
    }

    #[test]
    fn bad_cpus_are_rejected_with_the_range() {
        for cpus in [0.0, -1.0, f64::NAN, f64::INFINITY, 4.5] {
            assert!(
                matches!(
                    quota_from_cpus(cpus, 4),
                    Err(CpuError::CpusOutOfRange { .. })
                ),
                "--cpus {cpus}"
            );
        }
        assert_eq!(
            quota_from_cpus(0.005, 4),
            Err(CpuError::QuotaTooSmall { quota_us: 500 })
        );
        assert_eq!(
            quota_from_cpus(0.0, 4).unwrap_err().to_string(),
            "--cpus 0: must be a number greater than 0 and at most 4 (the online CPUs)"
        );
    }

    #[test]
    fn quota_and_period_given_directly_are_checked() {
        assert_eq!(
            quota_from_parts(25_000, 50_000).map(CpuQuota::cpus),
            Ok(0.5)
        );
        assert_eq!(quota_from_parts(1_000, 1_000).map(CpuQuota::cpus), Ok(1.0));
        assert_eq!(
            quota_from_parts(200_000, 1_000_000).map(CpuQuota::cpus),
            Ok(0.2)
        );
        assert_eq!(
            quota_from_parts(25_000, 999),
            Err(CpuError::PeriodOutOfRange { period_us: 999 })
        );
        assert_eq!(
            quota_from_parts(25_000, 1_000_001),
            Err(CpuError::PeriodOutOfRange {
                period_us: 1_000_001
            })
        );
        assert_eq!(
            quota_from_parts(999, 100_000),
            Err(CpuError::QuotaTooSmall { quota_us: 999 })
        );
    }

    #[test]
    fn shares_range_is_v1s() {
        assert_eq!(validate_shares(2), Ok(2));
        assert_eq!(validate_shares(262_144), Ok(262_144));
        assert_eq!(
            validate_shares(1),
            Err(CpuError::SharesOutOfRange { shares: 1 })
        );
        assert_eq!(
            validate_shares(262_145),
            Err(CpuError::SharesOutOfRange { shares: 262_145 })
        );
    }

    #[test]
    fn both_weight_conversions_match_the_runtimes() {
        // (shares, runc >= 1.3 / crun, linear) — values from runc's and crun's own tests.
        let cases = [
            (2, 1, 1),
            (512, 59, 20),
            (1024, 100, 39),
            (2048, 174, 79),
            (4096, 303, 157),
            (262_144, 10_000, 10_000),
        ];
        for (shares, weight, linear) in cases {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
            assert_eq!(shares_to_weight_linear(shares), linear, "shares {shares}");
        }
    }

    #[test]
    fn weight_grows_with_shares_and_stays_in_range() {
        let mut previous = 0;
        for shares in MIN_SHARES..=MAX_SHARES {
            let weight = shares_to_weight(shares);
            assert!(
                (MIN_WEIGHT..=MAX_WEIGHT).contains(&weight),
                "shares {shares}"
            );
            assert!(weight >= previous, "shares {shares}");
            previous = weight;
        }
    }

    /// The table the book shows: every ask, what it becomes, and both v2 weights.
    fn cpu_math_table() -> String {
        let mut out = String::new();
        let _ = writeln!(out, "CFS bandwidth: quota of CPU time per period");
        let _ = writeln!(
            out,
            "{:<36} | {:>9} | {:>10} | {:>6}",
            "ask", "quota µs", "period µs", "CPUs"
        );
        let _ = writeln!(out, "{:-<36}-+-{:->9}-+-{:->10}-+-{:->6}", "", "", "", "");
        let asks: [(&str, Result<CpuQuota, CpuError>); 4] = [
            ("--cpus 0.5", quota_from_cpus(0.5, 4)),
            ("--cpus 1.5", quota_from_cpus(1.5, 4)),
            ("--cpus 0.01", quota_from_cpus(0.01, 4)),
            (
                "--cpu-quota 25000 --cpu-period 50000",
                quota_from_parts(25_000, 50_000),
            ),
        ];
        for (ask, quota) in asks {
            match quota {
                Ok(q) => {
                    let _ = writeln!(
                        out,
                        "{ask:<36} | {:>9} | {:>10} | {:>6.2}",
                        q.quota_us,
                        q.period_us,
                        q.cpus()
                    );
                }
                Err(err) => {
                    let _ = writeln!(out, "{ask:<36} | error: {err}");
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "shares (v1 cpu.shares) -> weight (v2 cpu.weight); defaults 1024 and 100"
        );
        let _ = writeln!(
            out,
            "{:<19} | {:>24} | {:>19}",
            "ask", "weight (runc 1.3+, crun)", "weight (old linear)"
        );
        let _ = writeln!(out, "{:-<19}-+-{:->24}-+-{:->19}", "", "", "");
        for shares in [2, 512, 1024, 2048, 4096, 262_144] {
            let _ = writeln!(
                out,
                "{:<19} | {:>24} | {:>19}",
                format!("--cpu-shares {shares}"),
                shares_to_weight(shares),
                shares_to_weight_linear(shares)
            );
        }
        out
    }

    #[test]
    fn cpu_math_snapshot() {
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_snapshot_path("../../tests/snapshots");
        settings.bind(|| insta::assert_snapshot!("ch05_cpu_math", cpu_math_table()));
    }
}
