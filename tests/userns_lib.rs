//! The user namespace plan, without privileges: which maps each caller gets, who writes
//! them, and every map the kernel would refuse, refused first with a reason.

use std::path::PathBuf;

use nutshell::userns::{
    Caller, IdMap, MAX_MAP_LINES, MapWriter, ProcIds, SUGGESTED_ROOT_RANGE, SubIdRange,
    UsernsError, parse_subid, plan_mapping, render_map,
};

fn root() -> Caller {
    Caller {
        uid: 0,
        gid: 0,
        user: Some("root".into()),
        privileged: true,
    }
}

fn alice() -> Caller {
    Caller {
        uid: 1000,
        gid: 1000,
        user: Some("alice".into()),
        privileged: false,
    }
}

fn helpers() -> Option<(PathBuf, PathBuf)> {
    Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()))
}

fn map(inside: u32, outside: u32, count: u32) -> IdMap {
    IdMap {
        inside,
        outside,
        count,
    }
}

const RANGE: SubIdRange = SubIdRange {
    start: 100_000,
    count: 65_536,
};

const NUTSHELL: [SubIdRange; 1] = [SUGGESTED_ROOT_RANGE];

#[test]
fn root_maps_the_container_to_the_nutshell_range_by_default() {
    let plan = plan_mapping(&root(), &[], &[], &NUTSHELL, &NUTSHELL, None).expect("a plan");
    assert_eq!(plan.maps.uids, [map(0, 2_000_000_000, 65_536)]);
    assert_eq!(plan.maps.gids, [map(0, 2_000_000_000, 65_536)]);
    assert_eq!(plan.writer, MapWriter::Kernel);
    assert!(!plan.deny_setgroups);
    assert_eq!(plan.maps.host_uid(65_535), Some(2_000_065_535));
    assert_eq!(plan.maps.host_uid(65_536), None);
    assert!(!plan.maps.maps_host_root());
}

#[test]
fn root_without_a_nutshell_range_is_told_to_run_just_setup() {
    let err = plan_mapping(&root(), &[], &[], &[], &NUTSHELL, None).expect_err("no range");
    assert!(matches!(
        err,
        UsernsError::NoRootRange {
            file: "/etc/subuid"
        }
    ));
    assert!(err.to_string().contains("run `just setup`"), "{err}");
    // Maps given by hand need no range.
    assert!(plan_mapping(&root(), &[map(0, 300_000, 10)], &[], &[], &[], None).is_ok());
}

#[test]
fn a_uid_map_alone_is_used_for_gids_too() {
    let plan = plan_mapping(&root(), &[map(0, 200_000, 1000)], &[], &[], &[], None).expect("plan");
    assert_eq!(plan.maps.gids, [map(0, 200_000, 1000)]);
}

#[test]
fn root_mapping_the_hosts_root_is_allowed_but_noted() {
    let plan = plan_mapping(&root(), &[map(0, 0, 1)], &[], &[], &[], None).expect("plan");
    assert!(plan.maps.maps_host_root());
    assert!(plan.notes[0].starts_with("the host's root (uid 0) is mapped"));
}

#[test]
fn a_normal_user_without_helpers_maps_only_its_own_ids_with_setgroups_denied() {
    let plan = plan_mapping(&alice(), &[], &[], &[RANGE], &[RANGE], None).expect("plan");
    assert_eq!(plan.maps.uids, [map(0, 1000, 1)]);
    assert_eq!(plan.maps.gids, [map(0, 1000, 1)]);
    assert_eq!(plan.writer, MapWriter::Kernel);
    assert!(plan.deny_setgroups);
    assert_eq!(
        plan.notes,
        [
            "only the uid and gid of user alice (1000) are mapped (to root); every other id shows as 65534 (nobody) inside. For 65536 ids, install newuidmap and newgidmap (Debian, Ubuntu: apt-get install uidmap)"
        ]
    );
}

#[test]
fn a_normal_user_without_ranges_is_told_to_add_them() {
    let plan = plan_mapping(&alice(), &[], &[], &[], &[RANGE], helpers()).expect("plan");
    assert_eq!(plan.maps.uids, [map(0, 1000, 1)]);
    assert!(
        plan.notes[0].ends_with(
            "give alice a range in /etc/subuid and /etc/subgid (a line `alice:100000:65536`)"
        ),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_normal_user_with_helpers_and_ranges_gets_65536_ids() {
    let gids = SubIdRange {
        start: 300_000,
        count: 100_000,
    };
    let plan = plan_mapping(&alice(), &[], &[], &[RANGE], &[gids], helpers()).expect("plan");
    assert_eq!(plan.maps.uids, [map(0, 1000, 1), map(1, 100_000, 65_535)]);
    assert_eq!(plan.maps.gids, [map(0, 1000, 1), map(1, 300_000, 65_535)]);
    assert!(matches!(plan.writer, MapWriter::Helpers { .. }));
    assert!(!plan.deny_setgroups);
    assert!(plan.notes.is_empty());
}

#[test]
fn a_normal_user_may_map_its_own_id_anywhere_inside_without_helpers() {
    let plan = plan_mapping(&alice(), &[map(0, 1000, 1)], &[], &[], &[], None).expect("plan");
    assert_eq!(plan.writer, MapWriter::Kernel);
    assert!(plan.deny_setgroups);
}

#[test]
fn a_normal_user_may_not_map_ids_it_does_not_own() {
    let err = plan_mapping(
        &alice(),
        &[map(0, 100_000, 65_536)],
        &[],
        &[],
        &[],
        helpers(),
    )
    .expect_err("not alice's");
    assert_eq!(
        err.to_string(),
        "uid map 0:100000:65536 uses host uids 100000-165535, which user alice (1000) does not own: only its own uid 1000, and what /etc/subuid gives it (nothing)"
    );
    let outside = plan_mapping(
        &alice(),
        &[map(0, 1000, 1), map(1, 150_000, 65_536)],
        &[],
        &[RANGE],
        &[RANGE],
        helpers(),
    )
    .expect_err("past the end of the range");
    assert!(
        outside.to_string().ends_with("(100000-165535)"),
        "{outside}"
    );
}

#[test]
fn a_normal_users_subordinate_ids_need_the_helpers() {
    let err = plan_mapping(
        &alice(),
        &[map(0, 1000, 1), map(1, 100_000, 1000)],
        &[],
        &[RANGE],
        &[RANGE],
        None,
    )
    .expect_err("no helpers");
    assert!(
        err.to_string().starts_with(
            "mapping ids beyond user alice (1000)'s own needs the setuid helpers newuidmap and newgidmap"
        ),
        "{err}"
    );
}

#[test]
fn maps_the_kernel_would_refuse_are_refused_with_a_reason() {
    let cases: [(&[IdMap], &str); 5] = [
        (&[map(0, 100_000, 0)], "0:100000:0 maps no ids (count 0)"),
        (
            &[map(0, 100_000, 1000), map(500, 200_000, 1000)],
            "500:200000:1000 and 0:100000:1000 overlap inside",
        ),
        (
            &[map(0, 100_000, 1000), map(1000, 100_500, 10)],
            "1000:100500:10 and 0:100000:1000 overlap on the host",
        ),
        (
            &[map(0, u32::MAX - 5, 10)],
            "0:4294967290:10 runs past the largest id, 4294967294",
        ),
        (
            &[map(1, 100_000, 10)],
            "the container's root (0) is not mapped, so nothing inside could act as root",
        ),
    ];
    for (maps, problem) in cases {
        let err = plan_mapping(&root(), maps, &[], &[], &[], None).expect_err(problem);
        assert!(
            matches!(&err, UsernsError::InvalidMap { kind: "uid", .. }),
            "{err}"
        );
        assert!(err.to_string().ends_with(problem), "{err}");
    }
}

#[test]
fn more_lines_than_the_kernel_takes_are_refused() {
    let maps: Vec<IdMap> = (0..=MAX_MAP_LINES as u32)
        .map(|i| map(i, 100_000 + i, 1))
        .collect();
    let err = plan_mapping(&root(), &maps, &[], &[], &[], None).expect_err("too long");
    assert!(
        err.to_string()
            .ends_with("341 lines, the kernel takes at most 340"),
        "{err}"
    );
}

#[test]
fn a_map_is_parsed_from_inside_outside_count() {
    assert_eq!(
        IdMap::parse("--uid-map", "0:100000:65536").expect("valid"),
        map(0, 100_000, 65_536)
    );
    for bad in ["0:100000", "0:100000:65536:1", "a:b:c", "-1:0:1", ""] {
        let err = IdMap::parse("--uid-map", bad).expect_err(bad);
        assert_eq!(
            err.to_string(),
            format!("--uid-map {bad:?}: expected INSIDE:OUTSIDE:COUNT, e.g. 0:100000:65536")
        );
    }
}

#[test]
fn a_map_renders_one_line_per_range_as_the_kernel_reads_it() {
    assert_eq!(
        render_map(&[map(0, 1000, 1), map(1, 100_000, 65_535)]),
        "0 1000 1\n1 100000 65535\n"
    );
}

#[test]
fn subordinate_ranges_are_found_by_name_or_by_uid() {
    let text = "# comment\nalice:100000:65536\nbob:165536:65536\n1000:300000:10\nbroken\nalice:x:1\nalice:5:0\n";
    assert_eq!(
        parse_subid(text, Some("alice"), 1000),
        [
            RANGE,
            SubIdRange {
                start: 300_000,
                count: 10
            }
        ]
    );
    assert_eq!(parse_subid(text, Some("carol"), 1001), []);
    assert_eq!(parse_subid("", Some("alice"), 1000), []);
}

#[test]
fn proc_status_ids_are_read_as_the_host_sees_them() {
    let status = "Name:\tsh\nUid:\t100000\t100000\t100000\t100000\nGid:\t100000\t100000\t100000\t100000\nGroups:\t\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
    let ids = ProcIds::parse(status).expect("parsed");
    assert_eq!(ids.uids, [100_000; 4]);
    assert!(ids.groups.is_empty());
    assert_eq!(ids.capability_count(), 41);
    assert_eq!(
        nutshell::userns::describe_ids(&ids),
        "uid=100000 gid=100000 groups=(none) effective capabilities: 41 (000001ffffffffff)"
    );
    assert_eq!(ProcIds::parse("Name:\tsh\n"), None);
}
