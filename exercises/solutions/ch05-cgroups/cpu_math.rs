//! # Reference solution: ch05-cgroups, the CPU limit arithmetic

/// The CFS period Docker uses for `--cpus`: 100 ms, in microseconds.
pub const PERIOD_US: u64 = 100_000;

/// `--cpus N` as `(quota_us, period_us)`.
pub fn cpus_to_quota(cpus: f64) -> (u64, u64) {
    // FIX: round, do not truncate with `as`: 0.29 × 100000 is 28999.999999999996 in f64.
    let quota = (cpus * PERIOD_US as f64).round() as u64;
    (quota, PERIOD_US)
}

/// v1 `cpu.shares` as v2 `cpu.weight`, by the conversion runc 1.3 and crun use.
pub fn shares_to_weight(shares: u64) -> u64 {
    // FIX: pin the ends first: outside v1's range the parabola leaves v2's (log2(0) is
    // minus infinity; 2^20 shares would be a weight over 34000).
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    // FIX: ceil, as runc does (math.Ceil): 1024 lands on exactly 100 only by rounding up.
    10f64.powf(exponent).ceil() as u64
}
