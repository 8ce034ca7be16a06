//! ch12-scheduler through the chapter binary: the placement of the demo pods and kube's
//! reason for the one left pending, spreading against packing, bad input refused before
//! anything is made, and, as root, nodes made as cgroup slices whose counters show each
//! node held to its quota, with nothing left behind.
//!
//! The pure parts (filters, scorers, packers, bounds, the exact solver, the workload
//! files) are unit-tested in src/sched/.

mod common;

use std::path::Path;
use std::process::Output;

use common::{
    assert_help_mentions, binary, cgroups_named, data_dir, require_root, snapshot_settings, stderr,
    stderr_as_nobody, stdout,
};
use regex::Regex;

const CH12: &str = env!("CARGO_BIN_EXE_ch12-scheduler");

fn run(data: &Path, args: &[&str]) -> Output {
    binary(CH12, data)
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("run ch12-scheduler")
}

/// Run with `args`, expecting success; its stdout.
fn run_ok(data: &Path, args: &[&str]) -> String {
    let output = run(data, args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// The node of each pod in a placement table.
fn nodes_of(text: &str) -> Vec<(String, String)> {
    let row = Regex::new(r"(?m)^([a-z0-9-]+)\s+\d+m?\s+\d+[KMG]i\s+\S+\s+(node-\d+|pending)$")
        .expect("regex");
    row.captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

#[test]
fn help_says_what_to_try() {
    assert_help_mentions(
        CH12,
        &[
            "--plan",
            "--policy",
            "--spread-vs-pack",
            "nutshell/nodes/node-<n>",
        ],
    );
}

#[test]
fn the_demo_pods_are_placed_and_the_one_too_big_says_why() {
    let data = data_dir();
    let text = run_ok(data.path(), &["--plan"]);
    let settings = snapshot_settings(data.path());
    settings.bind(|| insta::assert_snapshot!("ch12_plan", text));
    let nodes = nodes_of(&text);
    assert_eq!(nodes.len(), 10, "{text}");
    let node = |pod: &str| {
        nodes
            .iter()
            .find(|(p, _)| p == pod)
            .map(|(_, n)| n.as_str())
            .unwrap_or_else(|| panic!("no row for {pod}"))
    };
    // Each filter did its part: the host port spread the web pods, the selector sent db
    // to an SSD node, only train tolerates the GPU node's taint, and huge fits nowhere.
    let webs = [node("web-1"), node("web-2"), node("web-3")];
    assert!(webs[0] != webs[1] && webs[1] != webs[2] && webs[0] != webs[2]);
    assert!(["node-1", "node-2"].contains(&node("db")));
    assert_eq!(node("train"), "node-4");
    assert!(nodes.iter().filter(|(_, n)| n == "node-4").count() == 1);
    assert_eq!(node("huge"), "pending");
    assert!(text.contains(
        "pod huge is pending: 0/4 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 3 Insufficient cpu."
    ));
}

#[test]
fn best_fit_keeps_a_node_nearly_empty_where_least_allocated_evens_them_out() {
    let data = data_dir();
    // The CPU requested on node-1 to node-3, in percent, from the allocation table.
    let cpu_percent = |policy: &str| -> Vec<u64> {
        let text = run_ok(data.path(), &["--plan", "--policy", policy]);
        let row = Regex::new(r"(?m)^node-[123]\s+\d+\s+\S+ of \S+ \((\d+)%\)").expect("regex");
        row.captures_iter(&text)
            .map(|c| c[1].parse().expect("a number"))
            .collect()
    };
    // The same pods, the same nodes: best fit fills two and leaves the third with room
    // for a 350m pod; least-allocated leaves 150m free on each, room for none.
    assert_eq!(cpu_percent("best-fit-l2"), [90, 90, 30]);
    assert_eq!(cpu_percent("least-allocated"), [70, 70, 70]);
}

#[test]
fn spreading_needs_more_nodes_than_packing_for_the_same_pods() {
    let data = data_dir();
    let text = run_ok(data.path(), &["--spread-vs-pack"]);
    let settings = snapshot_settings(data.path());
    settings.bind(|| insta::assert_snapshot!("ch12_spread_vs_pack", text));
    let nodes = |policy: &str| -> usize {
        let row = Regex::new(&format!(r"(?m)^{policy}\s+(\d+)")).expect("regex");
        row.captures(&text)
            .unwrap_or_else(|| panic!("no row for {policy}:\n{text}"))[1]
            .parse()
            .expect("a number")
    };
    let bound: usize = Regex::new(r"fewer than (\d+) nodes")
        .expect("regex")
        .captures(&text)
        .expect("the bound")[1]
        .parse()
        .expect("a number");
    assert!(nodes("least-allocated") > nodes("best-fit-l2"), "{text}");
    for policy in ["kube-default", "most-allocated", "best-fit-l2", "batch"] {
        assert!(
            nodes(policy) >= bound,
            "{policy} beat the lower bound:\n{text}"
        );
    }
}

#[test]
fn bad_input_is_refused_in_one_line_before_anything_is_made() {
    let data = data_dir();
    let bad_pods = data.path().join("bad.toml");
    std::fs::write(
        &bad_pods,
        "[[pod]]\nname = \"web\"\nrequests = { cpu = \"12x\", memory = \"64Mi\" }\n",
    )
    .expect("write");
    let missing = data.path().join("missing.toml");
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--nodes", "0"], "--nodes 0: must be between 1 and 16"),
        (vec!["--node-cpu", "lots"], "--node-cpu"),
        (vec!["--pods", bad_pods.to_str().expect("utf-8")], "12x"),
        (
            vec!["--pods", missing.to_str().expect("utf-8")],
            "missing.toml",
        ),
        (vec!["--name", "x"], "--name"),
    ];
    for (args, needle) in cases {
        let output = run(data.path(), &args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&output).is_empty(), "{args:?} printed a placement");
    }
}

#[test]
fn a_normal_user_is_refused_up_front() {
    let data = common::data_dir_for_nobody();
    let err = stderr_as_nobody(CH12, data.path());
    assert!(err.contains("needs root"), "{err}");
}

/// One node's row of the measured table: pods, quota, CPUs used, periods throttled.
fn measured(text: &str, node: &str) -> (u32, f64, f64, u64) {
    let row = Regex::new(&format!(
        r"(?m)^{node}\s+(\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+) periods$"
    ))
    .expect("regex");
    let c = row
        .captures(text)
        .unwrap_or_else(|| panic!("no measured row for {node}:\n{text}"));
    (
        c[1].parse().expect("pods"),
        c[2].parse().expect("quota"),
        c[3].parse().expect("used"),
        c[4].parse().expect("throttled"),
    )
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn nodes_are_cgroup_slices_that_hold_their_pods_to_the_nodes_quota() {
    require_root();
    let data = data_dir();
    let text = run_ok(data.path(), &["--seconds", "3"]);
    let mut settings = snapshot_settings(data.path());
    settings.add_filter(
        r"(?m)^(node-\d+\s+\d+\s+\d+\.\d+)\s+\d+\.\d+\s+\d+ periods$",
        "$1   [CPU]  [N] periods",
    );
    settings.bind(|| insta::assert_snapshot!("ch12_run", text));
    // Three nodes have more busy threads than their 0.5 CPU: each is held to its quota
    // and throttled. node-3's one pod is held by its own 250m limit, below the node's.
    for node in ["node-1", "node-2", "node-4"] {
        let (pods, quota, used, throttled) = measured(&text, node);
        assert!(pods >= 1);
        assert!(
            (0.8 * quota..=1.1 * quota).contains(&used),
            "{node} used {used} of {quota}:\n{text}"
        );
        assert!(throttled > 0, "{node} was never throttled:\n{text}");
    }
    let (pods, _, used, _) = measured(&text, "node-3");
    assert_eq!(pods, 1);
    assert!((0.2..=0.275).contains(&used), "node-3 used {used}:\n{text}");
    assert!(
        text.contains("node-1-db in nutshell/nodes/node-1/db"),
        "{text}"
    );
    for node in ["node-1", "node-2", "node-3", "node-4"] {
        let left = cgroups_named(node);
        assert!(left.is_empty(), "node cgroups left: {left:?}");
    }
    common::assert_nothing_left(data.path());
}
