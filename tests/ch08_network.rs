//! Chapter 8 for real, as root. Every test makes its own "host": a network namespace
//! held by a process of its own (see [`Netns`]), where nutshell makes its bridge, veths
//! and nftables table; all traffic stays between that namespace, the containers' and
//! the test's "outside" namespace. Each test checks that nothing is left: no veth, no
//! bridge, no rule, no lease.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::background::Background;
use common::netns::Netns;
use common::{data_dir, output_within, snapshot_settings, state_dir, stderr, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_ch08-network");
const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Chapter 8's runs in a namespace of the test's own.
impl Netns {
    /// A chapter 8 run in the namespace with data directory `data`.
    fn ch08(&self, data: &Path, args: &[&str]) -> Command {
        let mut command = self.command(BIN);
        command
            .args(args)
            .env("NUTSHELL_DATA", data)
            .env("NUTSHELL_ROOT", state_dir(data))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Start chapter 8 in the background: stopped (and so torn down) when the returned
    /// guard goes, also when the test fails first.
    fn start(&self, data: &Path, args: &[&str]) -> Background {
        Background::new(self.ch08(data, args).spawn().expect("spawn ch08-network"))
    }

    /// Run chapter 8 to its end.
    fn run(&self, data: &Path, args: &[&str]) -> Output {
        output_within(self.ch08(data, args).spawn().expect("spawn"), RUN_TIMEOUT)
    }
}

/// The last line of `text`: what a run printed after the lines it always prints (the
/// command it runs, the default image built on first use).
fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_string()
}

fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"\bnut[0-9a-f]{8}\b", "nut[HASH]");
    settings.add_filter(r"\b[0-9a-f]{12}-client\b", "[ID]-client");
    settings
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_tour_two_containers_talk_and_the_host_reaches_the_published_port() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let output = netns.run(data.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    // The client container over the bridge, then the host at 127.0.0.1 and at the
    // bridge's address, all through to the server container.
    assert_eq!(out.matches("hello from web").count(), 3, "{out}");
    assert!(out.contains("inet 10.88.0.3/16"), "{out}");
    assert!(out.contains("default via 10.88.0.1 dev eth0"), "{out}");
    netns.assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch08_tour", out));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_rules_in_nftables_while_a_port_is_published() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let child = netns.start(
        data.path(),
        &["--name", "web", "-p", "8080:80", "--", "sleep", "60"],
    );
    netns.wait_for_published(8080);
    let table = netns.sh("nft list table inet nutshell");
    let output = child.stop();
    assert!(table.contains("dnat ip to 10.88.0.2:80"), "{table}");
    assert!(table.contains("comment \"web\""), "{table}");
    assert!(
        stderr(&output).contains("publishes 0.0.0.0:8080->80/tcp"),
        "{}",
        stderr(&output)
    );
    netns.assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch08_nft_table", table));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_outside_client_reaches_the_published_port_and_sees_the_container_as_the_host() {
    let host = Netns::new();
    let outside = Netns::new();
    // A wire from the test's host to its outside, 198.51.100.0/24 (TEST-NET-2).
    host.sh(&format!(
        "ip link add vout type veth peer name vin netns {} && ip addr add 198.51.100.1/24 dev vout && ip link set vout up",
        outside.path()
    ));
    outside.sh("ip addr add 198.51.100.2/24 dev vin && ip link set vin up");
    // Outside, a web server that answers with the address a client comes from.
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir(www.path().join("cgi-bin")).unwrap();
    let cgi = www.path().join("cgi-bin/ip");
    std::fs::write(
        &cgi,
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let www_dir = www.path().display().to_string();
    let _server = outside.start_program("busybox", &["httpd", "-f", "-p", "9000", "-h", &www_dir]);
    let data = common::open_data_dir();
    let get_ip = "for i in 1 2 3 4 5; do printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 2 198.51.100.2 9000 | tail -1 | grep . && break; sleep 0.2; done";
    let output = host.run(data.path(), &["--", "sh", "-c", get_ip]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The last line: the address the outside saw (httpd prints it in IPv6 form).
    let seen = stdout(&output)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        seen.contains("198.51.100.1") && !seen.contains("10.88."),
        "masqueraded to the host's address: {seen}"
    );

    let page = "mkdir /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www";
    let child = host.start(data.path(), &["-p", "8080:80", "--", "sh", "-c", page]);
    host.wait_for_published(8080);
    let get = |netns: &Netns, to: &str| {
        netns.sh(&format!(
            "for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {to} 8080 | tail -1 | grep . && break; sleep 0.1; done"
        ))
    };
    let from_outside = get(&outside, "198.51.100.1");
    let from_localhost = get(&host, "127.0.0.1");
    let from_host_address = get(&host, "198.51.100.1");
    child.stop();
    assert_eq!(from_outside.trim(), "published", "prerouting DNAT");
    assert_eq!(
        from_localhost.trim(),
        "published",
        "output DNAT, route_localnet, masquerade"
    );
    assert_eq!(from_host_address.trim(), "published", "output DNAT");
    host.sh("ip link del vout");
    host.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn network_none_has_only_lo_and_it_is_up() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let output = netns.run(
        data.path(),
        &["--network", "none", "--", "ip", "-o", "link"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // After the `$ ip -o link` line the chapter prints.
    let links: Vec<String> = stdout(&output)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(
        links[0].starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
        "{links:?}"
    );
    netns.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn break_it_a_fresh_namespaces_lo_is_down_and_127_0_0_1_unreachable() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let output = netns.run(data.path(), &["--break-it"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("lo: <LOOPBACK>\n"), "{out}");
    assert!(out.contains("Network is unreachable"), "{out}");
    assert!(out.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{out}");
    assert!(
        out.trim_end().ends_with("$ kill $! 2>/dev/null; true"),
        "{out}"
    );
    assert_eq!(out.matches("\nping\n").count(), 1, "{out}");
    netns.assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch08_break_it", out));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_taken_host_port_is_refused_and_nothing_is_made() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    // Something of the host's listens on 8080.
    let listener = netns.start_program("busybox", &["nc", "-l", "-p", "8080"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while netns.sh("ss -Hltn 'sport = :8080'").is_empty() {
        assert!(Instant::now() < deadline, "the listener never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = netns.run(data.path(), &["-p", "8080:80", "--", "true"]);
    drop(listener);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        last_line(&stderr(&output)),
        "ch08-network: error: host port 8080/tcp is already in use on this host: choose another with -p, or stop what holds it"
    );
    netns.assert_nothing_left(data.path());

    // Another container's port, the same.
    let first = netns.start(
        data.path(),
        &["--name", "first", "-p", "8081:80", "--", "sleep", "60"],
    );
    netns.wait_for_veth();
    let output = netns.run(data.path(), &["-p", "8081:80", "--", "true"]);
    first.stop();
    assert_eq!(
        last_line(&stderr(&output)),
        "ch08-network: error: host port 8081/tcp is already in use by container first: choose another with -p, or stop what holds it"
    );
    netns.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn an_exhausted_subnet_is_refused_and_nothing_is_made() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    // A /30 has one address for a container: .1 is the bridge's, .3 the broadcast.
    let subnet = ["--subnet", "10.99.0.0/30"];
    let first = netns.start(data.path(), &[&subnet[..], &["--", "sleep", "60"]].concat());
    netns.wait_for_veth();
    let output = netns.run(data.path(), &[&subnet[..], &["--", "true"]].concat());
    first.stop();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        last_line(&stderr(&output)),
        "ch08-network: error: network nutshell0: no free address left in 10.99.0.0/30 (1 leased, the gateway 10.99.0.1 too): remove a container, or use a larger --subnet"
    );
    netns.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_killed_owner_leaves_nothing_after_cleanup() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let child = netns.start(
        data.path(),
        &["--name", "killed", "-p", "8082:80", "--", "sleep", "60"],
    );
    netns.wait_for_published(8082);
    // nsenter exec'd the chapter binary: its pid is the child's.
    child.kill();
    let mut cleanup = netns.command(NUTSHELL);
    cleanup
        .arg("cleanup")
        .env("NUTSHELL_DATA", data.path())
        .env("NUTSHELL_ROOT", state_dir(data.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = output_within(cleanup.spawn().expect("spawn"), RUN_TIMEOUT);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    for part in [
        "killed:",
        "nft chain nut",
        "lease 10.88.0.2",
        "port tcp-8082",
        "bridge nutshell0",
    ] {
        assert!(said.contains(part), "{part} in {said}");
    }
    netns.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn twenty_containers_at_once_get_twenty_addresses() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    // Built once first, so that twenty first runs do not all wait for it.
    let output = netns.run(data.path(), &["--network", "none", "--", "true"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let children: Vec<Background> = (0..20)
        .map(|_| {
            netns.start(
                data.path(),
                &[
                    "--",
                    "sh",
                    "-c",
                    // Each holds its lease a while: one that ended before the last one
                    // started would hand its address on, which is right, but not what
                    // this test counts.
                    "ip -4 -o addr show eth0 | awk '{print $4}'; sleep 5",
                ],
            )
        })
        .collect();
    let mut addresses: Vec<String> = children
        .into_iter()
        .map(|c| {
            let output = c.wait(RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
            assert!(output.status.success(), "{}", stderr(&output));
            last_line(&stdout(&output))
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    assert!(
        addresses
            .iter()
            .all(|a| a.starts_with("10.88.") && a.ends_with("/16")),
        "{addresses:?}"
    );
    netns.assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn rootless_two_way_tcp_through_pasta() {
    let netns = Netns::new();
    // The namespace's uplink for pasta to copy: an address and a default route on one
    // end of a veth pair that leads nowhere but itself. pasta maps the gateway to the
    // host's loopback, so nothing is sent on it.
    netns.sh(
        "ip link add up0 type veth peer name up1 && ip addr add 198.51.100.1/24 dev up0 && ip link set up1 up && ip link set up0 up && ip route add default via 198.51.100.254",
    );
    // The host side's listener, which the container connects to through the gateway.
    let listener = netns.start_program("busybox", &["nc", "-l", "-p", "19000"]);
    netns.wait_for("the listener", || {
        !netns.sh("ss -Hltn 'sport = :19000'").is_empty()
    });
    let data = common::data_dir_for_nobody();
    let tun = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");
    for name in ["subuid", "subgid"] {
        std::fs::write(files.path().join(name), "").expect("write");
    }
    let container = concat!(
        "ip -4 -o addr show eth0 | awk '{print \"eth0\", $4}'; ip route | head -1; ",
        "echo hello from the container | nc -w 5 198.51.100.254 19000; ",
        "mkdir -p /www && echo hello from the container on 18080 > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    // A normal user, in a mount namespace of the test's own where /dev/net/tun is open
    // to everyone (0666, as udev makes it on most distributions; these machines have no
    // udev) and /etc/subuid is empty: one id, the user's own.
    let script = r#"mount --make-rprivate / && mount -t tmpfs tmpfs "$1" && mknod -m 0666 "$1/tun" c 10 200 && mount --bind "$1/tun" /dev/net/tun && mount --bind "$2/subuid" /etc/subuid && mount --bind "$2/subgid" /etc/subgid && shift 2 && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@""#;
    let child = Background::new(
        netns
            .command("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .arg(tun.path())
            .arg(files.path())
            .args([
                BIN, "--name", "rootless", "-p", "18080:80", "--", "sh", "-c", container,
            ])
            .env("NUTSHELL_DATA", data.path())
            .env("NUTSHELL_ROOT", state_dir(data.path()))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let page = netns.sh(
        "for i in $(seq 100); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 127.0.0.1 18080 | tail -1 | grep . && break; sleep 0.1; done",
    );
    let output = child.stop();
    let heard = listener.stop();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        out.contains("eth0 198.51.100.1/24"),
        "pasta copied the uplink's address: {out}{err}"
    );
    assert_eq!(stdout(&heard).trim(), "hello from the container", "{err}");
    assert_eq!(page.trim(), "hello from the container on 18080", "{err}");
    let connected = err
        .lines()
        .find(|l| l.contains("through pasta"))
        .unwrap_or_default();
    let text = format!(
        "{connected}\n{out}\nthe host's listener on 19000 heard: {}\nthe host's GET http://127.0.0.1:18080/: {}\n",
        stdout(&heard).trim(),
        page.trim()
    );
    // pasta is gone with the container, and so is everything else.
    let data_path = data.path().display().to_string();
    let left: Vec<String> = netns
        .sh("ps -eo pid,args")
        .lines()
        .filter(|l| l.contains(&data_path))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    netns.sh("ip link del up0");
    netns.assert_nothing_left(data.path());
    settings(data.path()).bind(|| insta::assert_snapshot!("ch08_pasta", text));
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_normal_user_is_refused_a_bridge_because_the_host_namespace_is_roots() {
    // Why: in a user namespace of its own a normal user is root, but the host's network
    // namespace belongs to the initial user namespace, where it has no CAP_NET_ADMIN.
    let netns = Netns::new();
    let tried = netns
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args([
            "unshare",
            "--user",
            "--map-root-user",
            "ip",
            "link",
            "add",
            "v0",
            "type",
            "veth",
            "peer",
            "name",
            "v1",
        ])
        .output()
        .expect("run ip as nobody");
    assert!(!tried.status.success());
    assert!(
        stderr(&tried).contains("Operation not permitted"),
        "{}",
        stderr(&tried)
    );
    assert_eq!(netns.links(), ["lo"]);
    // So the plan refuses it, before anything is made, and says what to use.
    let data = common::data_dir_for_nobody();
    let output = common::run_as_nobody(
        BIN,
        data.path(),
        "",
        "",
        &["--network", "bridge", "--", "true"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "ch08-network: error: a normal user cannot connect a container to a bridge: a veth and a bridge in the host's network namespace need CAP_NET_ADMIN there, which only root has; use --network pasta\n"
    );
    common::assert_nothing_left(data.path());
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_container_reaches_its_own_published_port_at_the_hosts_address_hairpin() {
    // In at the bridge, DNATed back out of the port it came by (hairpin on), and
    // masqueraded so that the reply goes through the host too.
    let netns = Netns::new();
    let data = common::open_data_dir();
    let own = "mkdir /www && echo hairpin > /www/index.html && httpd -p 80 -h /www && for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 10.88.0.1 8080 | tail -1 | grep . && break; sleep 0.1; done";
    let output = netns.run(data.path(), &["-p", "8080:80", "--", "sh", "-c", own]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(last_line(&stdout(&output)), "hairpin");
    netns.assert_nothing_left(data.path());
}

#[test]
fn bad_network_flags_get_one_line_each_and_nothing_is_made() {
    let data = data_dir();
    for (args, says) in [
        (
            &["-p", "80", "--", "true"][..],
            "-p \"80\": it needs a host port and a container port; write [hostIP:]hostPort:containerPort[/tcp|/udp], such as 8080:80",
        ),
        (
            &["-p", "8080:80/sctp", "--", "true"][..],
            "-p \"8080:80/sctp\": unknown protocol \"sctp\"",
        ),
        (
            &["--subnet", "10.88.0.1/16", "--", "true"][..],
            "--subnet \"10.88.0.1/16\": it has host bits set: give the network address, such as 10.88.0.0/16",
        ),
        (
            &["--subnet", "10.88.0.0/31", "--", "true"][..],
            "the prefix length must be 8 to 30",
        ),
        (
            &["--network", "none", "-p", "8080:80", "--", "true"][..],
            "-p 8080:80: nothing to publish with --network none",
        ),
        (
            &["--bridge", "a-bridge-name-too-long", "--", "true"][..],
            "--bridge a-bridge-name-too-long: an interface name is 1 to 15 characters",
        ),
    ] {
        let output = Command::new(BIN)
            .args(args)
            .env("NUTSHELL_DATA", data.path())
            .env("NUTSHELL_ROOT", state_dir(data.path()))
            .output()
            .expect("run ch08-network");
        let err = stderr(&output);
        assert_ne!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("ch08-network: error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        0,
        "nothing made"
    );
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_test_that_fails_with_a_container_running_still_tears_it_down() {
    let netns = Netns::new();
    let data = common::open_data_dir();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _running = netns.start(
            data.path(),
            &["--name", "left", "-p", "8084:80", "--", "sleep", "60"],
        );
        netns.wait_for_published(8084);
        panic!("an assertion fails while the container runs");
    }));
    assert!(failed.is_err());
    // The guard stopped the run on the way out: the binary tore its container down.
    netns.assert_nothing_left(data.path());
    common::assert_no_cgroup_left("left");
}
