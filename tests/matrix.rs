//! One spec with every feature on — all eight namespaces, an overlay root, a read-only
//! root with a tmpfs and a bind mount, a nested cgroup with limits, a user namespace, a
//! process user with extra groups, a umask, rlimits, an OOM score, capabilities and
//! no_new_privs — run through `nutshell run-spec` as root and rootless as `nobody`, and
//! each feature checked from inside.

mod common;

use std::fs;
use std::path::Path;

use common::{
    assert_no_cgroup_left, assert_nothing_left, binary, data_dir, data_dir_for_nobody,
    require_root, run_as_nobody, stderr, stdout, unique_name,
};
use nutshell::cgroups::{CpuQuota, Resources};
use nutshell::namespaces::{Namespace, TimeOffsets};
use nutshell::spec::{
    CgroupSpec, ContainerSpec, Mount, MountKind, MountOptions, Namespaces, Program, Rlimit,
    RlimitResource, RootFs, Upper, User, chapters,
};

const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");

/// What the container reports about itself, one `name=value` a line.
const SCRIPT: &str = "\
echo hostname=$(hostname); \
echo uptime=$(cut -d. -f1 /proc/uptime); \
echo groups=$(id -G | tr ' ' ,); \
echo umask=$(umask); \
echo nofile=$(ulimit -n); \
echo oom=$(cat /proc/self/oom_score_adj); \
echo cwd=$(pwd); \
echo env=$MATRIX; \
echo links=$(ls /sys/class/net | tr '\\n' ' '); \
echo pid=$$; \
echo $(grep -e CapEff -e NoNewPrivs /proc/self/status | tr '\\t\\n' '= '); \
echo fds=$(ls /proc/self/fd | tr '\\n' ' '); \
touch /root-is-ro 2>/dev/null && echo root=rw || echo root=ro; \
touch /tmp/x && echo tmp=rw; \
echo bound=$(cat /mnt/host/file); \
echo uid_map=$(awk '{printf \"%s:%s:%s,\", $1, $2, $3}' /proc/self/uid_map); \
echo cgroups=$(cut -d: -f3- /proc/self/cgroup | sort -u | tr '\\n' ,)";

/// The spec with everything on, over `image`, for `name`; `privileged` adds the cgroup
/// and the idmapped lowers that only root can have.
fn matrix_spec(image: &Path, host_dir: &Path, name: &str, privileged: bool) -> ContainerSpec {
    let mut spec = chapters::for_chapter(7, image, Program::shell(SCRIPT));
    spec.namespaces = Namespaces::new_for(&Namespace::ALL);
    spec.root.fs = RootFs::Overlay {
        lowers: vec![image.to_path_buf()],
        upper: Upper::Managed { keep: false },
        idmap: privileged,
    };
    spec.root.readonly = true;
    spec.hostname = Some("matrix".into());
    spec.time_offsets = Some(TimeOffsets::uptime(86_400));
    spec.mounts.push(Mount::new(
        "/tmp",
        MountKind::Tmpfs,
        MountOptions::inert().with_data(&["mode=1777", "size=1m"]),
    ));
    spec.mounts.push(Mount::bind(host_dir, "/mnt/host", true));
    if privileged {
        spec.cgroup = Some(CgroupSpec {
            path: Some(format!("nutshell/matrix/{name}")),
            resources: Resources {
                cpu_quota: Some(CpuQuota {
                    quota_us: 50_000,
                    period_us: 100_000,
                }),
                memory_bytes: Some(128 << 20),
                pids_max: Some(64),
                ..Resources::default()
            },
            ..Default::default()
        });
    }
    spec.process.user = User {
        uid: 0,
        gid: 0,
        additional_gids: vec![10],
        umask: Some(0o027),
    };
    spec.process.cwd = "/tmp".into();
    spec.process.env.push("MATRIX=every-feature".into());
    spec.process.rlimits = vec![Rlimit {
        resource: RlimitResource::Nofile,
        soft: 256,
        hard: 256,
    }];
    spec.process.oom_score_adj = Some(500);
    spec
}

/// The `name=value` lines of the container's report.
fn report(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .flat_map(|line| line.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A host directory with one file, bound read-only into the container.
fn host_dir(data: &Path) -> std::path::PathBuf {
    let dir = data.join("host-dir");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("file"), "from-the-host").expect("write");
    dir
}

/// Check what every run reports, whoever runs it.
fn assert_every_feature(text: &str) {
    let got = report(text);
    let expect = |key: &str, value: &str| {
        assert_eq!(
            got.get(key).map(String::as_str),
            Some(value),
            "{key} in:\n{text}"
        );
    };
    expect("hostname", "matrix");
    let uptime: u64 = got["uptime"].parse().expect("uptime");
    assert!(uptime > 86_400, "the time namespace's offset: {text}");
    expect("groups", "0,10");
    expect("umask", "0027");
    expect("nofile", "256");
    expect("oom", "500");
    expect("cwd", "/tmp");
    expect("env", "every-feature");
    // Its own network namespace: only a loopback, down.
    expect("links", "lo");
    expect("pid", "2");
    expect("CapEff:", "00000000a80425fb");
    expect("NoNewPrivs:", "1");
    expect("root", "ro");
    expect("tmp", "rw");
    expect("bound", "from-the-host");
    // Its own cgroup namespace: every hierarchy (one on v2, each controller's on v1, both
    // on hybrid) shows the container's cgroup as `/`.
    expect("cgroups", "/,");
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn every_feature_at_once_as_root() {
    require_root();
    let data = data_dir();
    let built = binary(NUTSHELL, data.path())
        .args(["image", "default"])
        .output()
        .expect("build the image");
    assert!(built.status.success(), "{}", stderr(&built));
    let image = data.path().join("images/default/rootfs");
    let name = unique_name("matrix");
    let spec = matrix_spec(&image, &host_dir(data.path()), &name, true);
    let file = data.path().join("spec.json");
    fs::write(&file, serde_json::to_string_pretty(&spec).expect("json")).expect("write");
    let output = binary(NUTSHELL, data.path())
        .args(["run-spec", "--name", &name])
        .arg(&file)
        .output()
        .expect("run-spec");
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert_every_feature(&text);
    assert!(text.contains("uid_map=0:2000000000:65536,"), "{text}");
    assert_no_cgroup_left(&name);
    assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all` (it makes the unprivileged user's files)"]
fn every_feature_at_once_rootless_as_nobody() {
    require_root();
    let data = data_dir_for_nobody();
    let subids = "nobody:300000:65536\n";
    let built = run_as_nobody(NUTSHELL, data.path(), subids, subids, &["image", "default"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let image = data.path().join("images/default/rootfs");
    let dir = host_dir(data.path());
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let name = unique_name("matrix-rootless");
    let write = |spec: &ContainerSpec, file: &str| {
        let path = data.path().join(file);
        fs::write(&path, serde_json::to_string_pretty(spec).expect("json")).expect("write");
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
        path.display().to_string()
    };
    // With limits, a normal user is told why there can be none, and nothing is made.
    let mut limited = matrix_spec(&image, &dir, &name, false);
    limited.cgroup = Some(CgroupSpec {
        path: None,
        resources: nutshell::cgroups::Resources {
            pids_max: Some(64),
            ..Default::default()
        },
        ..Default::default()
    });
    let refused = run_as_nobody(
        NUTSHELL,
        data.path(),
        subids,
        subids,
        &[
            "run-spec",
            "--name",
            &name,
            &write(&limited, "limited.json"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).starts_with(
            "nutshell: error: limits need a cgroup, and a cgroup needs root: a normal user can make cgroups only"
        ),
        "{}",
        stderr(&refused)
    );
    assert_nothing_left(data.path());
    // Without, every other feature works rootless.
    let spec = matrix_spec(&image, &dir, &name, false);
    let output = run_as_nobody(
        NUTSHELL,
        data.path(),
        subids,
        subids,
        &["run-spec", "--name", &name, &write(&spec, "spec.json")],
    );
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert_every_feature(&text);
    assert!(text.contains("uid_map=0:65534:1,1:300000:65535,"), "{text}");
    assert_nothing_left(data.path());
}
