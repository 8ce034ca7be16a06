//! The capability names, sets and rules, tested without privileges.

use nix::errno::Errno;

use super::*;
use Capability::*;

const DOCKER_ROOT_STATUS: &str =
    include_str!("../../tests/fixtures/proc-status/docker-default-root.txt");

fn set(caps: &[Capability]) -> CapSet {
    caps.iter().copied().collect()
}

#[test]
fn every_capabilitys_number_is_its_position_in_all() {
    for (position, cap) in Capability::ALL.into_iter().enumerate() {
        assert_eq!(cap.number() as usize, position, "{cap}");
        assert_eq!(Capability::from_number(cap.number()), Some(cap));
    }
    assert_eq!(Capability::from_number(41), None);
    assert_eq!(Capability::from_number(u32::MAX), None);
}

#[test]
fn names_are_spelled_as_in_capabilities_7_and_round_trip() {
    assert_eq!(Chown.name(), "CAP_CHOWN");
    assert_eq!(SysAdmin.to_string(), "CAP_SYS_ADMIN");
    assert_eq!(CheckpointRestore.name(), "CAP_CHECKPOINT_RESTORE");
    for cap in Capability::ALL {
        assert_eq!(Capability::from_name(cap.name()), Some(cap));
        assert_eq!(cap.name().parse::<Capability>().ok(), Some(cap));
    }
}

#[test]
fn from_name_takes_any_case_with_or_without_the_cap_prefix() {
    for name in ["chown", "CAP_CHOWN", "cap_chown", "Cap_Chown", "CHOWN"] {
        assert_eq!(Capability::from_name(name), Some(Chown), "{name}");
    }
    assert_eq!(
        Capability::from_name("net_bind_service"),
        Some(NetBindService)
    );
}

#[test]
fn unknown_names_are_refused() {
    for name in [
        "",
        "CAP_",
        "CAP_CAP_CHOWN",
        "chown ",
        "CAP_FOO",
        "all",
        "çap_x",
    ] {
        assert_eq!(Capability::from_name(name), None, "{name:?}");
    }
    assert_eq!(
        "CAP_FOO".parse::<Capability>().unwrap_err().to_string(),
        "unknown capability \"CAP_FOO\": capabilities(7) lists the names, such as \
         CAP_CHOWN (or chown)"
    );
}

#[test]
fn docker_default_is_mobys_fourteen_in_bounding_effective_and_permitted() {
    let caps = Capabilities::docker_default();
    let expected = set(&[
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]);
    assert_eq!(expected.len(), 14);
    assert_eq!(caps.bounding, expected);
    assert_eq!(caps.effective, expected);
    assert_eq!(caps.permitted, expected);
    assert_eq!(caps.inheritable, CapSet::EMPTY);
    assert_eq!(caps.ambient, CapSet::EMPTY);
    assert!(!caps.bounding.contains(SysAdmin));
    assert_eq!(caps.check().ok(), Some(()));
}

#[test]
fn docker_default_is_a80425fb_as_proc_status_shows_it() {
    // Bits 0 1 3 4 5 6 7 8 = 0x1fb, 10 = 0x400, 13 = 0x2000, 18 = 0x40000,
    // 27 = 0x0800_0000, 29 = 0x2000_0000, 31 = 0x8000_0000.
    assert_eq!(
        Capabilities::docker_default().effective.hex(),
        "00000000a80425fb"
    );
    assert_eq!(
        parse_status(DOCKER_ROOT_STATUS),
        Some(Capabilities::docker_default())
    );
}

#[test]
fn all_up_to_40_has_41_capabilities_and_numbers_above_add_nothing() {
    assert_eq!(CapSet::all_up_to(40).len(), 41);
    assert_eq!(CapSet::all_up_to(40).hex(), "000001ffffffffff");
    assert_eq!(CapSet::all_up_to(0), set(&[Chown]));
    assert_eq!(CapSet::all_up_to(37).len(), 38);
    assert_eq!(CapSet::all_up_to(63), CapSet::all_up_to(40));
    assert_eq!(CapSet::all_up_to(u32::MAX), CapSet::all_up_to(40));
}

#[test]
fn all_is_roots_host_sets_full_but_no_inheritable_or_ambient() {
    let caps = Capabilities::all(40);
    assert_eq!(caps.bounding.len(), 41);
    assert_eq!(caps.effective, caps.bounding);
    assert_eq!(caps.permitted, caps.bounding);
    assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
    assert_eq!(caps.check().ok(), Some(()));
}

#[test]
fn sets_insert_remove_and_compare_as_bitmasks() {
    let mut caps = CapSet::EMPTY;
    assert!(caps.is_empty());
    caps.insert(Kill);
    caps.insert(Kill);
    caps.insert(MacAdmin);
    assert_eq!(caps.bits(), (1 << 5) | (1 << 33));
    assert_eq!(caps.len(), 2);
    assert!(caps.contains(MacAdmin) && !caps.contains(Chown));
    assert_eq!(caps.iter().collect::<Vec<_>>(), [Kill, MacAdmin]);
    let both = set(&[Kill, Chown]);
    assert_eq!(caps.union(both), set(&[Chown, Kill, MacAdmin]));
    assert_eq!(caps.intersection(both), set(&[Kill]));
    assert_eq!(caps.difference(both), set(&[MacAdmin]));
    assert!(set(&[Kill]).is_subset(caps) && !caps.is_subset(both));
    assert!(CapSet::EMPTY.is_subset(CapSet::EMPTY));
    caps.remove(Kill);
    caps.remove(Kill);
    assert_eq!(caps, set(&[MacAdmin]));
}

#[test]
fn from_bits_keeps_only_bits_that_name_a_capability() {
    assert_eq!(CapSet::from_bits(u64::MAX), CapSet::all_up_to(40));
    assert_eq!(CapSet::from_bits(1 << 41), CapSet::EMPTY);
}

#[test]
fn a_set_prints_as_its_names_lowest_first_or_none() {
    assert_eq!(set(&[Kill, Chown]).to_string(), "CAP_CHOWN CAP_KILL");
    assert_eq!(CapSet::EMPTY.to_string(), "none");
    assert_eq!(CapSet::EMPTY.hex(), "0000000000000000");
}

#[test]
fn the_five_sets_print_one_per_line() {
    let caps = Capabilities {
        bounding: set(&[Chown, Kill]),
        effective: set(&[Kill]),
        permitted: set(&[Kill]),
        ..Capabilities::default()
    };
    assert_eq!(
        caps.to_string(),
        "bounding     CAP_CHOWN CAP_KILL\n\
         effective    CAP_KILL\n\
         permitted    CAP_KILL\n\
         inheritable  none\n\
         ambient      none"
    );
}

#[test]
fn sets_serialize_as_oci_name_lists_and_round_trip() {
    let caps = Capabilities {
        bounding: set(&[Kill, Chown, NetBindService]),
        effective: set(&[Chown]),
        permitted: set(&[Chown, NetBindService]),
        inheritable: set(&[NetBindService]),
        ambient: set(&[NetBindService]),
    };
    let json = serde_json::to_string(&caps).unwrap();
    assert_eq!(
        json,
        r#"{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}"#
    );
    assert_eq!(serde_json::from_str::<Capabilities>(&json).unwrap(), caps);
}

#[test]
fn an_oci_capabilities_object_reads_with_missing_sets_empty() {
    let caps: Capabilities = serde_json::from_str(
        r#"{"bounding": ["CAP_KILL", "CAP_AUDIT_WRITE", "CAP_KILL"], "effective": ["cap_kill"]}"#,
    )
    .unwrap();
    assert_eq!(caps.bounding, set(&[Kill, AuditWrite]));
    assert_eq!(caps.effective, set(&[Kill]));
    assert_eq!(caps.permitted, CapSet::EMPTY);
    assert_eq!(caps.ambient, CapSet::EMPTY);
}

#[test]
fn an_unknown_name_in_json_is_an_error_naming_it() {
    let err = serde_json::from_str::<Capabilities>(r#"{"effective": ["CAP_CHOWN", "CAP_FLY"]}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "invalid value: string \"CAP_FLY\", expected a capability name from \
             capabilities(7), such as CAP_CHOWN"
        ),
        "{err}"
    );
    assert!(serde_json::from_str::<CapSet>(r#""CAP_CHOWN""#).is_err());
}

fn broken(caps: Capabilities) -> (CapRule, CapSet) {
    match caps.check() {
        Err(CapError::Invalid { rule, caps }) => (rule, caps),
        other => panic!("expected a broken rule, got {other:?}"),
    }
}

#[test]
fn check_refuses_inheritable_outside_bounding() {
    let mut caps = Capabilities::docker_default();
    caps.inheritable = set(&[Chown, NetAdmin, SysAdmin]);
    assert_eq!(
        broken(caps),
        (
            CapRule::InheritableWithinBounding,
            set(&[NetAdmin, SysAdmin])
        )
    );
    assert_eq!(
        caps.check().unwrap_err().to_string(),
        "invalid capability sets: inheritable must be within bounding, but CAP_NET_ADMIN \
         CAP_SYS_ADMIN are in inheritable and not in bounding (capset(2) would refuse \
         with EPERM)"
    );
}

#[test]
fn check_refuses_effective_outside_permitted() {
    let mut caps = Capabilities::docker_default();
    caps.permitted.remove(Kill);
    assert_eq!(
        broken(caps),
        (CapRule::EffectiveWithinPermitted, set(&[Kill]))
    );
    assert_eq!(
        caps.check().unwrap_err().to_string(),
        "invalid capability sets: effective must be within permitted, but CAP_KILL is in \
         effective and not in permitted (capset(2) would refuse with EPERM)"
    );
}

#[test]
fn check_refuses_ambient_outside_permitted_then_outside_inheritable() {
    let mut caps = Capabilities::docker_default();
    caps.ambient = set(&[NetBindService]);
    assert_eq!(
        broken(caps),
        (CapRule::AmbientWithinInheritable, set(&[NetBindService]))
    );
    caps.inheritable = set(&[NetBindService]);
    assert_eq!(caps.check().ok(), Some(()));
    caps.permitted.remove(NetBindService);
    caps.effective.remove(NetBindService);
    assert_eq!(
        broken(caps),
        (CapRule::AmbientWithinPermitted, set(&[NetBindService]))
    );
    assert!(
        caps.check()
            .unwrap_err()
            .to_string()
            .ends_with("(prctl(PR_CAP_AMBIENT_RAISE) would refuse with EPERM)")
    );
}

#[test]
fn check_reports_the_first_rule_in_the_order_they_are_applied() {
    let caps = Capabilities {
        inheritable: set(&[Kill]),
        effective: set(&[Kill]),
        ambient: set(&[Kill]),
        ..Capabilities::default()
    };
    assert_eq!(broken(caps).0, CapRule::InheritableWithinBounding);
    assert_eq!(
        CapRule::InheritableWithinBounding.to_string(),
        "inheritable ⊆ bounding"
    );
}

#[test]
fn check_allows_permitted_and_effective_outside_bounding() {
    // Not a kernel rule: the exec recomputes both from the bounding set anyway.
    let caps = Capabilities {
        bounding: set(&[Chown]),
        effective: set(&[Chown, SysAdmin]),
        permitted: set(&[Chown, SysAdmin]),
        ..Capabilities::default()
    };
    assert_eq!(caps.check().ok(), Some(()));
}

#[test]
fn parse_status_reads_the_five_cap_lines() {
    let status = "Name:\tsleep\nCapInh:\t0000000000000400\nCapPrm:\t0000000000000401\n\
                  CapEff:\t0000000000000001\nCapBnd:\t000001ffffffffff\n\
                  CapAmb:\t0000000000000400\nNoNewPrivs:\t1\n";
    assert_eq!(
        parse_status(status),
        Some(Capabilities {
            bounding: CapSet::all_up_to(40),
            effective: set(&[Chown]),
            permitted: set(&[Chown, NetBindService]),
            inheritable: set(&[NetBindService]),
            ambient: set(&[NetBindService]),
        })
    );
}

#[test]
fn parse_status_without_capamb_has_no_ambient_but_needs_the_other_four() {
    let old_kernel = "CapInh:\t0\nCapPrm:\t20\nCapEff:\t20\nCapBnd:\t3fffffffff\n";
    assert_eq!(
        parse_status(old_kernel).map(|caps| caps.ambient),
        Some(CapSet::EMPTY)
    );
    assert_eq!(
        parse_status("CapPrm:\t20\nCapEff:\t20\nCapBnd:\t20\n"),
        None
    );
    assert_eq!(parse_status(&format!("{old_kernel}CapAmb:\tzz\n")), None);
    assert_eq!(parse_status(""), None);
}

#[test]
fn cap_last_cap_reads_proc_sys_kernel() {
    let proc_dir = tempfile::tempdir().unwrap();
    let kernel = proc_dir.path().join("sys/kernel");
    let err = cap_last_cap(proc_dir.path()).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("read {}: ", kernel.join("cap_last_cap").display())),
        "{err}"
    );
    std::fs::create_dir_all(&kernel).unwrap();
    std::fs::write(kernel.join("cap_last_cap"), "40\n").unwrap();
    assert_eq!(cap_last_cap(proc_dir.path()).ok(), Some(40));
    std::fs::write(kernel.join("cap_last_cap"), "forty\n").unwrap();
    assert!(matches!(
        cap_last_cap(proc_dir.path()),
        Err(CapError::ParseLastCap { value, .. }) if value == "forty"
    ));
}

#[test]
fn errors_of_the_syscalls_name_the_operation_and_keep_the_errno() {
    let drop = CapError::DropBounding {
        cap: 21,
        source: Errno::EPERM,
    };
    assert_eq!(
        drop.to_string(),
        "drop capability 21 (CAP_SYS_ADMIN) from the bounding set (prctl \
         PR_CAPBSET_DROP): EPERM: Operation not permitted: dropping needs CAP_SETPCAP in \
         the effective set, so drop the bounding set before capset lowers it"
    );
    assert!(
        CapError::DropBounding {
            cap: 41,
            source: Errno::EINVAL
        }
        .to_string()
        .starts_with("drop capability 41 from the bounding set")
    );
    let raise = CapError::Ambient {
        cap: NetBindService,
        source: Errno::EPERM,
    };
    assert!(
        raise
            .to_string()
            .starts_with("raise CAP_NET_BIND_SERVICE in the ambient set")
    );
    assert_eq!(
        std::error::Error::source(&raise).map(ToString::to_string),
        Some(Errno::EPERM.to_string())
    );
}

#[test]
fn current_reads_this_thread_with_effective_within_permitted() {
    let caps = current().unwrap();
    assert!(caps.effective.is_subset(caps.permitted), "{caps}");
    assert!(
        caps.ambient
            .is_subset(caps.permitted.intersection(caps.inheritable)),
        "{caps}"
    );
}

#[test]
fn current_agrees_with_proc_thread_self_status() {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert_eq!(Some(current().unwrap()), parse_status(&status));
}
