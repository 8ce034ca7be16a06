//! The launch plan, without privileges: every chapter's container and the everything-on
//! spec, planned against fixed host facts (root or a normal user; cgroup v1, v2 or
//! hybrid) and snapshotted; and every spec the planner must refuse, refused with a reason
//! before anything exists. The book shows these plans.

use std::path::{Path, PathBuf};

use nutshell::capabilities::CapSet;
use nutshell::cgroups::layout::detect;
use nutshell::cgroups::{CgroupLayout, Resources};
use nutshell::launch::{
    ChildStep, ContainerId, HostFacts, LaunchPlan, ParentStep, PlanError, plan,
};
use nutshell::namespaces::{Namespace, TimeOffsets};
use nutshell::net::{BridgeNetwork, Network, PortMapping};
use nutshell::spec::{
    CgroupSpec, ContainerSpec, NamespaceMode, Namespaces, Program, RootFs, Upper, chapters,
};
use nutshell::userns::{Caller, SUGGESTED_ROOT_RANGE, SubIdRange};

const IMAGE: &str = "/var/lib/nutshell/images/default/rootfs";

fn layout(mountinfo: &str, controllers: &'static str) -> CgroupLayout {
    detect(mountinfo, move |_| Ok(controllers.to_owned())).expect("fixture parses")
}

fn hybrid() -> CgroupLayout {
    layout(include_str!("fixtures/mountinfo/hybrid.txt"), "hugetlb\n")
}

fn v2() -> CgroupLayout {
    layout(
        include_str!("fixtures/mountinfo/v2.txt"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
}

fn v1() -> CgroupLayout {
    layout(include_str!("fixtures/mountinfo/v1.txt"), "")
}

/// Root on a host with `cgroups`, its containers' ids from the nutshell range.
fn root_facts(cgroups: CgroupLayout) -> HostFacts {
    HostFacts {
        caller: Caller {
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            privileged: true,
        },
        cgroups: Some(cgroups),
        swap_accounting: true,
        online_cpus: 2,
        cap_last_cap: 40,
        bounding: CapSet::all_up_to(40),
        data_dir: PathBuf::from("/var/lib/nutshell"),
        state_root: PathBuf::from("/run/nutshell"),
        subuids: Ok(vec![SUGGESTED_ROOT_RANGE]),
        subgids: Ok(vec![SUGGESTED_ROOT_RANGE]),
        id_map_helpers: Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into())),
        init_binary: PathBuf::from("/proc/self/exe"),
    }
}

/// alice, uid 1000, with a subordinate range and the helpers.
fn alice_facts() -> HostFacts {
    let range = SubIdRange {
        start: 100_000,
        count: 65_536,
    };
    HostFacts {
        caller: Caller {
            uid: 1000,
            gid: 1000,
            user: Some("alice".into()),
            privileged: false,
        },
        data_dir: PathBuf::from("/home/alice/.local/share/nutshell"),
        state_root: PathBuf::from("/run/user/1000/nutshell"),
        subuids: Ok(vec![range]),
        subgids: Ok(vec![range]),
        ..root_facts(v2())
    }
}

fn id() -> ContainerId {
    ContainerId::parse("c1").expect("id")
}

fn shell() -> Program {
    Program::Args(vec!["sh".into()])
}

/// Chapter `n`'s container as its binary makes it with no flags.
fn chapter_spec(n: u8, facts: &HostFacts) -> ContainerSpec {
    let mut spec = chapters::for_chapter(n, Path::new(IMAGE), shell());
    if n >= 5 && facts.caller.privileged {
        spec.cgroup = Some(CgroupSpec::default());
    }
    if n >= 7
        && let RootFs::Overlay { idmap, .. } = &mut spec.root.fs
    {
        *idmap = facts.caller.privileged;
    }
    spec
}

/// Every feature at once (as tests/matrix.rs runs it).
fn everything(facts: &HostFacts) -> ContainerSpec {
    let mut spec = chapter_spec(7, facts);
    spec.namespaces = Namespaces::new_for(&Namespace::ALL);
    spec.hostname = Some("matrix".into());
    spec.time_offsets = Some(TimeOffsets::uptime(86_400));
    spec.root.readonly = true;
    if facts.caller.privileged {
        spec.cgroup = Some(CgroupSpec {
            path: Some("nutshell/nodes/node-2/c1".into()),
            resources: Resources {
                pids_max: Some(64),
                memory_bytes: Some(128 << 20),
                ..Resources::default()
            },
            ..Default::default()
        });
    }
    spec.process.oom_score_adj = Some(500);
    spec
}

fn snapshot(name: &str, plan: &LaunchPlan) {
    snapshot_text(name, &plan.to_string());
}

#[test]
fn every_chapters_plan_as_root_on_a_hybrid_host() {
    let facts = root_facts(hybrid());
    for n in 1..=8 {
        let plan = plan(&id(), &chapter_spec(n, &facts), &facts).expect("plans");
        snapshot(&format!("plan_ch{n:02}"), &plan);
    }
}

#[test]
fn chapter_8_publishes_ports_on_the_bridge_as_root_and_through_pasta_rootless() {
    let ports: Vec<PortMapping> = vec!["8080:80".parse().unwrap()];
    let facts = root_facts(v2());
    let mut spec = chapter_spec(8, &facts);
    spec.network = Some(Network::Bridge(BridgeNetwork {
        ports: ports.clone(),
        ..BridgeNetwork::default()
    }));
    snapshot(
        "plan_ch08_published",
        &plan(&id(), &spec, &facts).expect("plans"),
    );
    let alice = alice_facts();
    let mut spec = chapter_spec(8, &alice);
    spec.network = Some(Network::Pasta { ports });
    snapshot(
        "plan_ch08_rootless",
        &plan(&id(), &spec, &alice).expect("plans"),
    );
}

#[test]
fn a_bridge_for_a_normal_user_or_pasta_for_root_is_refused_saying_why() {
    let alice = alice_facts();
    let err = plan(&id(), &chapter_spec(8, &alice), &alice)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "a veth and a bridge in the host's network namespace need CAP_NET_ADMIN there"
        ) && err.ends_with("use --network pasta"),
        "{err}"
    );
    let facts = root_facts(v2());
    let mut spec = chapter_spec(8, &facts);
    spec.network = Some(Network::Pasta { ports: Vec::new() });
    let err = plan(&id(), &spec, &facts).unwrap_err().to_string();
    assert!(err.contains("pasta refuses to run as root"), "{err}");
    let mut spec = chapter_spec(8, &facts);
    *spec.namespaces.mode_mut(Namespace::Net) = NamespaceMode::Host;
    let err = plan(&id(), &spec, &facts).unwrap_err().to_string();
    assert_eq!(
        err,
        "a network of its own needs a new net namespace of the container's own"
    );
}

#[test]
fn everything_at_once_on_each_layout_and_rootless() {
    for (name, facts) in [
        ("plan_everything_hybrid", root_facts(hybrid())),
        ("plan_everything_v2", root_facts(v2())),
        ("plan_everything_v1", root_facts(v1())),
        ("plan_everything_rootless", alice_facts()),
    ] {
        let plan = plan(&id(), &everything(&facts), &facts).expect("plans");
        snapshot(name, &plan);
    }
}

#[test]
fn the_steps_come_in_the_order_the_kernel_needs() {
    let facts = root_facts(hybrid());
    let plan = plan(&id(), &everything(&facts), &facts).expect("plans");
    let text = plan.to_string();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
    };
    // The cgroup exists before the clone; the child joins it before its namespace.
    assert!(at("create cgroup") < at("clone the first process"));
    assert!(at("move it into cgroup") < at("make a cgroup namespace"));
    // The maps before it becomes root; propagation before any mount; masks after pivot.
    assert!(at("write its id maps") < at("become uid 0, gid 0 of its user namespace"));
    assert!(at("make every mount private") < at("mount proc on"));
    assert!(at("pivot_root into") < at("mask /proc/kcore"));
    // Privileges last: the bounding set while CAP_SETPCAP is there, then the sets.
    assert!(at("drop every capability but") < at("set its capabilities"));
    assert!(at("set its capabilities") < at("set no_new_privs"));
    assert!(at("set no_new_privs") < at("report ready"));
    // Every level of a nested cgroup path is nutshell's.
    assert!(
        text.contains("create cgroup nutshell/nodes/node-2/c1"),
        "{text}"
    );
}

/// The kind of a plan step, as its JSON tag names it: `clone`, `mount: proc`, `mask`.
fn kind(step: &impl serde::Serialize) -> String {
    let value = serde_json::to_value(step).expect("a step serializes");
    let tag = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let outer = tag(&value);
    let inner = &value[&outer];
    let kind = if outer == "mount" {
        let op = tag(inner);
        match inner[&op]["fstype"].as_str() {
            Some(fstype) => format!("mount {fstype}"),
            None => op,
        }
    } else if outer == "network" {
        tag(inner)
    } else {
        outer
    };
    kind.replace('_', " ")
}

/// The kinds of `steps`, each with how often it comes, in the order they first come.
fn kinds_of<T: serde::Serialize>(steps: &[T]) -> Vec<(String, usize)> {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for step in steps {
        let k = kind(step);
        match kinds.iter_mut().find(|(seen, _)| *seen == k) {
            Some((_, count)) => *count += 1,
            None => kinds.push((k, 1)),
        }
    }
    kinds
}

/// What `now` has more of than `before` (`+kind`), and less (`-kind`), `×n` for n > 1.
fn changes(before: &[(String, usize)], now: &[(String, usize)]) -> Vec<String> {
    let count = |kinds: &[(String, usize)], k: &str| {
        kinds
            .iter()
            .find(|(seen, _)| seen == k)
            .map_or(0, |(_, n)| *n)
    };
    let times = |n: usize| {
        if n > 1 {
            format!(" ×{n}")
        } else {
            String::new()
        }
    };
    let mut out = Vec::new();
    for (k, n) in now {
        let was = count(before, k);
        if *n > was {
            out.push(format!("+{k}{}", times(n - was)));
        }
    }
    for (k, was) in before {
        let n = count(now, k);
        if n < *was {
            out.push(format!("-{k}{}", times(was - n)));
        }
    }
    out
}

#[test]
fn each_chapter_adds_its_steps_to_the_one_before() {
    let facts = root_facts(hybrid());
    let mut text = String::new();
    let (mut parent_before, mut child_before) = (Vec::new(), Vec::new());
    for n in 1..=8 {
        let plan = plan(&id(), &chapter_spec(n, &facts), &facts).expect("plans");
        let (parent, child) = (kinds_of(&plan.parent), kinds_of(&plan.child));
        text.push_str(&format!(
            "chapter {n}: {} steps on the host, {} in the container\n",
            plan.parent.len(),
            plan.child.len()
        ));
        for (side, before, now) in [
            ("host", &parent_before, &parent),
            ("container", &child_before, &child),
        ] {
            let changed = changes(before, now);
            if !changed.is_empty() {
                text.push_str(&format!("  {side:<9} {}\n", changed.join(", ")));
            }
        }
        (parent_before, child_before) = (parent, child);
    }
    // Every chapter adds something, and chapter 4 trades chroot for pivot_root.
    assert_eq!(text.matches("chapter ").count(), 8);
    assert!(text.contains("-chroot"), "{text}");
    snapshot_text("plan_chapter_by_chapter", &text);
}

/// Snapshot `text` under `name`.
fn snapshot_text(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn the_clone_makes_neither_the_time_nor_the_cgroup_namespace() {
    // CLONE_NEWTIME's bit is in clone(2)'s exit-signal byte, and a cgroup namespace made
    // at the clone would be rooted at the caller's cgroup: the first process makes both.
    let facts = root_facts(hybrid());
    let plan = plan(&id(), &everything(&facts), &facts).expect("plans");
    let cloned = plan
        .parent
        .iter()
        .find_map(|step| match step {
            nutshell::launch::ParentStep::Clone { namespaces } => Some(namespaces.clone()),
            _ => None,
        })
        .expect("a clone step");
    assert_eq!(
        cloned,
        [
            Namespace::Ipc,
            Namespace::Net,
            Namespace::Mount,
            Namespace::Pid,
            Namespace::User,
            Namespace::Uts
        ]
    );
    let text = plan.to_string();
    assert!(text.contains("make a time namespace"), "{text}");
    assert!(text.contains("make a cgroup namespace"), "{text}");
}

#[test]
fn a_plan_round_trips_as_json() {
    let facts = root_facts(v2());
    let plan = plan(&id(), &everything(&facts), &facts).expect("plans");
    let json = serde_json::to_string(&plan).expect("serialize");
    let back: LaunchPlan = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, plan);
}

/// `spec` with one change, planned as root on a hybrid host: the error.
fn refused(change: impl FnOnce(&mut ContainerSpec)) -> PlanError {
    let facts = root_facts(hybrid());
    let mut spec = chapter_spec(5, &facts);
    change(&mut spec);
    plan(&id(), &spec, &facts).expect_err("refused")
}

#[test]
fn features_without_their_namespace_are_refused() {
    let no_uts = refused(|s| *s.namespaces.mode_mut(Namespace::Uts) = NamespaceMode::Host);
    assert_eq!(
        no_uts.to_string(),
        "a hostname needs a new uts namespace of the container's own"
    );
    let no_time = refused(|s| *s.namespaces.mode_mut(Namespace::Time) = NamespaceMode::Host);
    assert_eq!(
        no_time.to_string(),
        "time offsets needs a new time namespace of the container's own"
    );
    let no_user = refused(|s| {
        s.uid_maps = vec![nutshell::userns::IdMap {
            inside: 0,
            outside: 5,
            count: 1,
        }]
    });
    assert!(
        no_user
            .to_string()
            .starts_with("id maps needs a new user namespace"),
        "{no_user}"
    );
    let no_mnt = refused(|s| *s.namespaces.mode_mut(Namespace::Mount) = NamespaceMode::Host);
    assert!(
        no_mnt.to_string().contains("needs a new mnt namespace"),
        "{no_mnt}"
    );
}

#[test]
fn a_joined_pid_namespace_is_joined_by_nutshell_before_the_clone() {
    // setns(2) into a PID namespace moves only the caller's children: nutshell joins it
    // itself, and the first process is cloned inside (chapter 11's exec).
    let facts = root_facts(hybrid());
    let mut spec = chapter_spec(5, &facts);
    *spec.namespaces.mode_mut(Namespace::Pid) = NamespaceMode::Join("/proc/1/ns/pid".into());
    let planned = plan(&id(), &spec, &facts).expect("plans");
    let join = planned
        .parent
        .iter()
        .position(|s| matches!(s, ParentStep::JoinForChildren { paths } if paths == &[PathBuf::from("/proc/1/ns/pid")]))
        .expect("nutshell joins it");
    let clone = planned
        .parent
        .iter()
        .position(|s| matches!(s, ParentStep::Clone { .. }))
        .expect("a clone");
    assert!(join < clone, "before the clone");
    assert!(
        !planned.child.iter().any(|s| matches!(
            s,
            ChildStep::JoinNamespace {
                kind: Namespace::Pid,
                ..
            }
        )),
        "the first process does not join it again"
    );
}

#[test]
fn what_nutshell_cannot_do_is_refused_with_the_reason() {
    let relative =
        refused(|s| *s.namespaces.mode_mut(Namespace::Net) = NamespaceMode::Join("ns/net".into()));
    assert_eq!(
        relative.to_string(),
        "namespace ns/net: must be an absolute path"
    );
    let terminal = refused(|s| s.process.terminal = true);
    assert!(terminal.to_string().contains("terminal"), "{terminal}");
    let empty = refused(|s| s.process.program = Program::Args(Vec::new()));
    assert!(empty.to_string().starts_with("an empty command"), "{empty}");
    let cwd = refused(|s| s.process.cwd = "tmp".into());
    assert_eq!(
        cwd.to_string(),
        "the working directory tmp: must be an absolute path"
    );
}

#[test]
fn a_cgroup_outside_nutshell_or_for_a_normal_user_is_refused() {
    let outside = refused(|s| {
        s.cgroup = Some(CgroupSpec {
            path: Some("system.slice/x".into()),
            resources: Resources::default(),
            ..Default::default()
        })
    });
    assert!(
        outside.to_string().contains("must start with nutshell/"),
        "{outside}"
    );
    let facts = alice_facts();
    let mut spec = chapter_spec(6, &facts);
    spec.cgroup = Some(CgroupSpec::default());
    let err = plan(&id(), &spec, &facts).expect_err("rootless cgroup");
    assert!(
        err.to_string()
            .starts_with("a cgroup of the container's own needs root"),
        "{err}"
    );
    spec.cgroup = Some(CgroupSpec {
        path: None,
        resources: Resources {
            pids_max: Some(10),
            ..Resources::default()
        },
        ..Default::default()
    });
    let err = plan(&id(), &spec, &facts).expect_err("rootless limits");
    assert!(
        err.to_string()
            .starts_with("limits need a cgroup, and a cgroup needs root: a normal user"),
        "{err}"
    );
}

#[test]
fn an_idmapped_root_needs_root_and_a_user_namespace() {
    let facts = alice_facts();
    let mut spec = chapter_spec(7, &facts);
    spec.root.fs = RootFs::Overlay {
        lowers: vec![IMAGE.into()],
        upper: Upper::Managed { keep: false },
        idmap: true,
    };
    let err = plan(&id(), &spec, &facts).expect_err("rootless idmap");
    assert!(
        err.to_string().starts_with("an idmapped root needs root"),
        "{err}"
    );
}

#[test]
fn capabilities_the_caller_lacks_are_refused() {
    let mut facts = root_facts(hybrid());
    // This machine's own bounding set lacks CAP_SYS_RESOURCE, for one.
    facts
        .bounding
        .remove(nutshell::capabilities::Capability::SysResource);
    let mut spec = chapter_spec(4, &facts);
    if let Some(caps) = spec.process.capabilities.as_mut() {
        caps.bounding
            .insert(nutshell::capabilities::Capability::SysResource);
    }
    let err = plan(&id(), &spec, &facts).expect_err("beyond bounding");
    assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
}

#[test]
fn the_root_range_overlapping_a_users_is_refused_only_for_the_default_maps() {
    let mut facts = root_facts(hybrid());
    facts.subuids = Err(
        "/etc/subuid: the nutshell range 150000-215535 overlaps alice's range 100000-165535".into(),
    );
    let spec = chapter_spec(6, &facts);
    let err = plan(&id(), &spec, &facts).expect_err("overlap");
    assert!(matches!(err, PlanError::SubIds(_)), "{err:?}");
    assert!(err.to_string().contains("overlaps alice's range"), "{err}");
    let mut given = spec.clone();
    given.uid_maps = vec![nutshell::userns::IdMap {
        inside: 0,
        outside: 300_000,
        count: 65_536,
    }];
    assert!(plan(&id(), &given, &facts).is_ok());
}
