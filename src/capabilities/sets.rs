//! Sets of capabilities, the five sets of a process, and the kernel's rules for them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::apply::CapError;
use super::names::Capability;

/// The bits that name a capability this module knows (0..=40).
const KNOWN_BITS: u64 = (1 << Capability::ALL.len()) - 1;

/// A set of capabilities, stored as the kernel stores it: bit N is capability N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// No capabilities.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set whose mask is `bits`, as `/proc/PID/status` and capget(2) give it. Bits
    /// above 40 name no capability this module knows, and are dropped.
    pub fn from_bits(bits: u64) -> CapSet {
        CapSet(bits & KNOWN_BITS)
    }

    /// The mask: bit N is set when capability N is in the set.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & bit(cap) != 0
    }

    /// Add `cap`.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= bit(cap);
    }

    /// Take `cap` out.
    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !bit(cap);
    }

    /// The capabilities in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |cap| self.contains(*cap))
    }

    /// Whether every capability here is also in `other`.
    pub fn is_subset(self, other: CapSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The capabilities in either set.
    pub fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// The capabilities in both sets.
    pub fn intersection(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// The capabilities here that are not in `other`: what breaks `self ⊆ other`.
    pub fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Every capability numbered 0 to `last_cap`, the host's
    /// `/proc/sys/kernel/cap_last_cap` (see [`super::cap_last_cap`]); numbers above 40 add nothing.
    pub fn all_up_to(last_cap: u32) -> CapSet {
        match last_cap.checked_add(1) {
            Some(count) if count < 64 => CapSet::from_bits((1 << count) - 1),
            _ => CapSet(KNOWN_BITS),
        }
    }

    /// How many capabilities are in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The mask as `/proc/PID/status` prints it (`CapEff:`): 16 hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

fn bit(cap: Capability) -> u64 {
    1 << cap.number()
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(caps: I) -> CapSet {
        let mut set = CapSet::EMPTY;
        for cap in caps {
            set.insert(cap);
        }
        set
    }
}

/// The names, lowest number first, separated by spaces, or `none`.
impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, cap) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(cap.name())?;
        }
        Ok(())
    }
}

/// A list of names, `["CAP_CHOWN", "CAP_KILL"]`, as the OCI runtime spec's
/// `process.capabilities` holds each set.
impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A list of names, in any order, repeats allowed; an unknown name is an error that
/// names it, so that a typo cannot silently drop a capability the container needs.
///
/// The OCI runtime spec is laxer: since runtime-spec PR 1094 (2021) a runtime SHOULD NOT
/// fail on a capability it cannot grant but log a warning, and runc and crun skip unknown
/// names, so that a config written for a newer kernel runs on an older one. A front end
/// for third-party `config.json` files that wants that must filter the names first.
impl<'de> Deserialize<'de> for CapSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CapSet, D::Error> {
        Ok(Vec::<Capability>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// The five capability sets of a process (see capabilities(7)), named as the OCI runtime
/// spec's `process.capabilities` names them; a set missing from JSON is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// The ceiling on what any later execve(2) can grant; for root, what it gets.
    pub bounding: CapSet,
    /// What the kernel checks.
    pub effective: CapSet,
    /// The ceiling for effective.
    pub permitted: CapSet,
    /// What may pass through execve(2) to programs with matching file capabilities.
    pub inheritable: CapSet,
    /// What survives execve(2) of an ordinary program, also for non-root users.
    pub ambient: CapSet,
}

// ANCHOR: docker_default
/// Docker's default capabilities, in moby's order: `DefaultCapabilities()` in
/// `daemon/pkg/oci/caps/defaults.go` (in older releases `oci/caps/defaults.go`) of
/// <https://github.com/moby/moby>, the same 14 for years.
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

impl Capabilities {
    /// What Docker gives a container: [`DOCKER_DEFAULT`] as bounding, effective and
    /// permitted, no inheritable and no ambient capabilities.
    pub fn docker_default() -> Capabilities {
        let default: CapSet = DOCKER_DEFAULT.into_iter().collect();
        Capabilities {
            bounding: default,
            effective: default,
            permitted: default,
            // Empty, as the kernel itself never fills it. Docker before 20.10.14 copied
            // the defaults here too, and a program with inheritable file capabilities
            // then gained them on exec even when run by an unprivileged user.
            // Ref: https://osv.dev/vulnerability/CVE-2022-24769
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }
    }
}
// ANCHOR_END: docker_default

impl Capabilities {
    /// What root has on the host: every capability 0 to `last_cap` (see
    /// [`super::cap_last_cap`]) in bounding, effective and permitted; inheritable and ambient
    /// empty.
    pub fn all(last_cap: u32) -> Capabilities {
        let all = CapSet::all_up_to(last_cap);
        Capabilities {
            bounding: all,
            effective: all,
            permitted: all,
            inheritable: CapSet::EMPTY,
            ambient: CapSet::EMPTY,
        }
    }

    /// Checks the sets against the rules the kernel holds them to when the runtime
    /// applies them — the bounding drop first, then capset(2), then the ambient raises —
    /// and names the first rule broken and the capabilities that break it, instead of
    /// the kernel's bare `EPERM`. In that order:
    ///
    /// 1. inheritable ⊆ bounding: capset(2) refuses an inheritable capability that is
    ///    neither in the (just lowered) bounding set nor inheritable already. The setup
    ///    process normally has no inheritable capabilities; and one kept inheritable
    ///    outside the bounding set would get past it, since P(inheritable) ∩
    ///    F(inheritable) reaches the permitted set on exec without meeting the bounding
    ///    set. So this holds to the strict rule.
    /// 2. effective ⊆ permitted: capset(2)'s last check.
    /// 3. ambient ⊆ permitted, then 4. ambient ⊆ inheritable:
    ///    `prctl(PR_CAP_AMBIENT_RAISE)` refuses anything else.
    ///
    /// Not checked, because they are not rules: permitted or effective capabilities
    /// outside the bounding set (the kernel takes them, and the exec ends them: root gets
    /// bounding ∪ inheritable, others only ambient). Not checkable here, because they
    /// depend on the applying process, not on the sets: capset(2) lets permitted only
    /// shrink, and without `CAP_SETPCAP` in effective lets inheritable gain only what is
    /// permitted. [`super::apply`] reports those with the errno and what it most likely means.
    pub fn check(&self) -> Result<(), CapError> {
        for rule in CapRule::IN_ORDER {
            let (inner, outer) = rule.sets(self);
            let caps = inner.difference(outer);
            if !caps.is_empty() {
                return Err(CapError::Invalid { rule, caps });
            }
        }
        Ok(())
    }
}

/// The five sets, one per line, for a plan to print.
impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bounding     {}", self.bounding)?;
        writeln!(f, "effective    {}", self.effective)?;
        writeln!(f, "permitted    {}", self.permitted)?;
        writeln!(f, "inheritable  {}", self.inheritable)?;
        write!(f, "ambient      {}", self.ambient)
    }
}

/// A rule the kernel holds capability sets to, as [`Capabilities::check`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapRule {
    /// capset(2) adds no inheritable capability outside the bounding set.
    InheritableWithinBounding,
    /// capset(2) makes nothing effective that is not permitted.
    EffectiveWithinPermitted,
    /// `PR_CAP_AMBIENT_RAISE` raises only a permitted capability.
    AmbientWithinPermitted,
    /// `PR_CAP_AMBIENT_RAISE` raises only an inheritable capability.
    AmbientWithinInheritable,
}

impl CapRule {
    /// The rules in the order [`super::drop_bounding`] and [`super::apply`] meet them.
    pub const IN_ORDER: [CapRule; 4] = [
        CapRule::InheritableWithinBounding,
        CapRule::EffectiveWithinPermitted,
        CapRule::AmbientWithinPermitted,
        CapRule::AmbientWithinInheritable,
    ];

    /// The set that must fit, and the set it must fit in.
    fn sets(self, caps: &Capabilities) -> (CapSet, CapSet) {
        match self {
            CapRule::InheritableWithinBounding => (caps.inheritable, caps.bounding),
            CapRule::EffectiveWithinPermitted => (caps.effective, caps.permitted),
            CapRule::AmbientWithinPermitted => (caps.ambient, caps.permitted),
            CapRule::AmbientWithinInheritable => (caps.ambient, caps.inheritable),
        }
    }

    /// The set that must be the smaller, the set it must fit in, and who refuses.
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            CapRule::InheritableWithinBounding => ("inheritable", "bounding", "capset(2)"),
            CapRule::EffectiveWithinPermitted => ("effective", "permitted", "capset(2)"),
            CapRule::AmbientWithinPermitted => {
                ("ambient", "permitted", "prctl(PR_CAP_AMBIENT_RAISE)")
            }
            CapRule::AmbientWithinInheritable => {
                ("ambient", "inheritable", "prctl(PR_CAP_AMBIENT_RAISE)")
            }
        }
    }

    pub(super) fn explain(self, caps: CapSet) -> String {
        let (inner, outer, refuser) = self.parts();
        let is = if caps.len() == 1 { "is" } else { "are" };
        format!(
            "{inner} must be within {outer}, but {caps} {is} in {inner} and not in {outer} \
             ({refuser} would refuse with EPERM)"
        )
    }
}

impl fmt::Display for CapRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (inner, outer, _) = self.parts();
        write!(f, "{inner} ⊆ {outer}")
    }
}
