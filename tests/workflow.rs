//! The book's closing page, *Putting it together*: docker's workflow on nutshell, from a
//! Containerfile to a published web page, against a real registry (Debian's
//! `docker-registry` on 127.0.0.1). Then the same rootless through pasta, a terminal
//! driven through a pty, a monitor killed, and the commands' bad input.
//!
//! Each root test makes its own network namespace for the containers' bridge, veths and
//! rules (see [`Netns`]); the registry is on the host's loopback, which the build, push
//! and pull reach. Each test checks that nothing is left.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::registry::Registry;
use common::{output_within, snapshot_settings, state_dir, stderr, stdout};

const NUTSHELL: &str = env!("CARGO_BIN_EXE_nutshell");
const TIMEOUT: Duration = Duration::from_secs(180);

/// examples/webapp, the application chapter 10 builds.
fn webapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webapp")
}

/// Where a `nutshell` command runs.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// This process's network namespace, whose loopback the registry listens on.
    Host,
    /// The test's own network namespace.
    In(&'a Netns),
}

/// `nutshell ARGS` with data directory `data`, in `place`, to its end.
fn nutshell(place: Place, data: &Path, args: &[&str]) -> Output {
    let mut command = match place {
        Place::Host => Command::new(NUTSHELL),
        Place::In(netns) => netns.command(NUTSHELL),
    };
    command
        .args(args)
        .env("NUTSHELL_DATA", data)
        .env("NUTSHELL_ROOT", state_dir(data))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    output_within(command.spawn().expect("spawn nutshell"), TIMEOUT)
}

/// The commands a test ran and what they printed, as a reader would see them in a
/// terminal.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    /// Run `nutshell ARGS`, which must succeed; note the command and what it printed,
    /// stderr then stdout. Returns that text.
    fn ok(&mut self, place: Place, data: &Path, args: &[&str]) -> String {
        let output = nutshell(place, data, args);
        assert!(
            output.status.success(),
            "nutshell {}: {}{}",
            args.join(" "),
            stderr(&output),
            stdout(&output)
        );
        // Progress comes on stderr before the result on stdout.
        let printed = stderr(&output) + &stdout(&output);
        self.note(&format!("nutshell {}", args.join(" ")), &printed);
        printed
    }

    fn note(&mut self, command: &str, output: &str) {
        self.0.push_str(&format!("$ {command}\n{output}"));
        if !output.is_empty() && !output.ends_with('\n') {
            self.0.push('\n');
        }
    }
}

/// GET `path` from 127.0.0.1:`port` in `netns`, retried while the server comes up: the
/// response's body.
fn get(netns: &Netns, port: u16, path: &str) -> String {
    netns.sh(&format!(
        "for i in $(seq 50); do out=$(printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 127.0.0.1 {port}) && [ -n \"$out\" ] && break; sleep 0.1; done; printf '%s\\n' \"$out\" | sed '1,/^\\r\\?$/d'"
    ))
}

/// `ps`'s table with times, ids and the registry's port as placeholders, its columns
/// padded again as `ps` pads them: their widths depend on how long ago things happened.
fn normalize_table(text: &str) -> String {
    let placeholders = [
        (
            r"(Less than a second|About a minute|About an hour|\d+ (second|minute|hour|day)s?)",
            "[TIME]",
        ),
        (r"^[0-9a-f]{12}$", "[ID]"),
        (r"localhost:\d+", "localhost:[PORT]"),
    ]
    .map(|(pattern, with)| (regex::Regex::new(pattern).unwrap(), with));
    let replace = |cell: &str| {
        placeholders
            .iter()
            .fold(cell.to_string(), |text, (pattern, with)| {
                pattern.replace_all(&text, *with).into_owned()
            })
    };
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|line| {
            regex::Regex::new(r" {3,}")
                .unwrap()
                .split(line)
                .map(replace)
                .collect()
        })
        .collect();
    nutshell::image::listing::columns(&rows)
}

fn settings(data: &Path) -> insta::Settings {
    let mut settings = snapshot_settings(data);
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[ID]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[SHORT-ID]");
    settings.add_filter(r"sha256:\[ID\]", "sha256:[DIGEST]");
    settings.add_filter(r"localhost:\d+", "localhost:[PORT]");
    settings.add_filter(r"DONE \d+\.\d+s", "DONE [TIME]");
    settings.add_filter(r"\]:\d+: ", "]:[PORT]: ");
    settings
}

/// Removes the test's containers (`rm -f`) when it ends, also when it fails first.
struct Containers<'a> {
    place: Place<'a>,
    data: &'a Path,
    names: Vec<&'static str>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = nutshell(self.place, self.data, &["rm", "-f", name]);
        }
    }
}

/// Whether process `pid` runs: it exists and is not a zombie waiting to be reaped.
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// The `State.MonitorPid` that `inspect` shows.
fn monitor_pid(place: Place, data: &Path, name: &str) -> i64 {
    let output = nutshell(place, data, &["inspect", name]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("inspect JSON");
    json[0]["State"]["MonitorPid"]
        .as_i64()
        .expect("a monitor pid")
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_seeds_workflow_from_a_containerfile_to_a_published_page() {
    common::require_root();
    let registry = Registry::start();
    let netns = Netns::new();
    let data = common::open_data_dir();
    let d = data.path();
    let containers = Containers {
        place: Place::In(&netns),
        data: d,
        names: vec!["web"],
    };
    let port = registry.address.rsplit(':').next().expect("a port");
    let remote = format!("localhost:{port}/webapp");
    let context = webapp();
    let context = context.to_str().expect("utf-8");
    let mut transcript = Transcript::default();
    // ANCHOR: workflow
    transcript.ok(Place::Host, d, &["build", "-t", "webapp", context]);
    transcript.ok(Place::Host, d, &["push", "webapp", &remote]);
    transcript.ok(Place::Host, d, &["rmi", "webapp"]);
    transcript.ok(Place::Host, d, &["pull", &remote]);
    let here = Place::In(&netns);
    let id = transcript.ok(
        here,
        d,
        &["run", "-d", "--name", "web", "-p", "8080:80", &remote],
    );
    let page = get(&netns, 8080, "/");
    transcript.note("curl http://127.0.0.1:8080/", &page);
    let ps = transcript.ok(here, d, &["ps"]);
    let logs = transcript.ok(here, d, &["logs", "web"]);
    let ls = transcript.ok(here, d, &["exec", "web", "ls", "/"]);
    let log = std::fs::read_to_string(d.join("monitor").join(id.trim()).join("container.log"));
    let monitor = monitor_pid(here, d, "web");
    transcript.ok(here, d, &["stop", "web"]);
    let ps_all = transcript.ok(here, d, &["ps", "-a"]);
    transcript.ok(here, d, &["rm", "web"]);
    // ANCHOR_END: workflow
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    assert!(
        page.contains("<h1>Hello from a nutshell container</h1>"),
        "{page}"
    );
    let web = ps.lines().find(|l| l.ends_with(" web")).unwrap_or_default();
    assert!(web.starts_with(&id[..12]), "{ps}");
    assert!(
        web.contains("0.0.0.0:8080->80/tcp") && web.contains(" Up "),
        "{ps}"
    );
    // httpd -v logs each request on stderr; the log keeps it as a json-file line.
    assert!(logs.contains("response:200"), "{logs}");
    let log = log.expect("the container's log");
    assert!(
        log.lines()
            .any(|l| l.contains("response:200") && l.contains(r#""stream":"stderr""#)),
        "{log}"
    );
    assert!(ls.lines().any(|l| l == "www"), "{ls}");
    assert!(
        ps_all.contains("Exited (143)"),
        "httpd ends with SIGTERM: {ps_all}"
    );
    assert!(!alive(monitor), "the monitor is gone");
    assert!(common::cgroups_named(id).is_empty(), "cgroup left");
    assert!(!d.join("monitor").exists(), "records left");
    drop(containers);
    netns.assert_nothing_left(d);
    registry.stop();
    let mut text = transcript.0;
    text = text.replace(
        &format!("$ nutshell ps\n{ps}"),
        &format!("$ nutshell ps\n{}", normalize_table(&ps)),
    );
    text = text.replace(
        &format!("$ nutshell ps -a\n{ps_all}"),
        &format!("$ nutshell ps -a\n{}", normalize_table(&ps_all)),
    );
    text = text.replace(
        &format!("build -t webapp {context}"),
        "build -t webapp examples/webapp",
    );
    settings(d).bind(|| insta::assert_snapshot!("workflow_webapp", text));
}

/// `nutshell ARGS` as `nobody`, in a mount namespace of its own where /dev/net/tun is
/// open to everyone (0666, as udev makes it on most distributions; these machines have
/// no udev) and /etc/subuid gives nobody a range: what a normal user's machine has.
struct Rootless {
    data: tempfile::TempDir,
    tun: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Rootless {
    fn new() -> Rootless {
        let files = tempfile::tempdir().expect("temp dir");
        for name in ["subuid", "subgid"] {
            std::fs::write(files.path().join(name), "nobody:200000:65536\n").expect("write");
        }
        Rootless {
            data: common::data_dir_for_nobody(),
            tun: tempfile::tempdir().expect("temp dir"),
            files,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let script = r#"mount --make-rprivate / && mount -t tmpfs tmpfs "$1" && mknod -m 0666 "$1/tun" c 10 200 && mount --bind "$1/tun" /dev/net/tun && mount --bind "$2/subuid" /etc/subuid && mount --bind "$2/subgid" /etc/subgid && shift 2 && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@""#;
        let child = Command::new("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .arg(self.tun.path())
            .arg(self.files.path())
            .arg(NUTSHELL)
            .args(args)
            .env("NUTSHELL_DATA", self.data.path())
            .env("NUTSHELL_ROOT", state_dir(self.data.path()))
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nutshell as nobody");
        output_within(child, TIMEOUT)
    }

    /// `run`, which must succeed: its stderr and stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "nutshell {} as nobody: {}{}",
            args.join(" "),
            stderr(&output),
            stdout(&output)
        );
        stderr(&output) + &stdout(&output)
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "web"]);
    }
}

/// GET `path` from 127.0.0.1:`port` on the host's loopback, retried while the server
/// comes up: the whole response.
fn get_on_loopback(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut stream =
                std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })();
        match attempt {
            Ok(response) if !response.is_empty() => return response,
            _ if Instant::now() > deadline => panic!("no answer on 127.0.0.1:{port}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn the_same_workflow_rootless_through_pasta() {
    common::require_root();
    let registry = Registry::start();
    let nobody = Rootless::new();
    let port = registry.address.rsplit(':').next().expect("a port");
    let remote = format!("localhost:{port}/webapp");
    let published = common::registry::free_port();
    // Published on the host's loopback only: pasta listens in this network namespace.
    let publish = format!("127.0.0.1:{published}:80");
    let context = webapp();
    nobody.ok(&["build", "-t", "webapp", context.to_str().expect("utf-8")]);
    nobody.ok(&["push", "webapp", &remote]);
    nobody.ok(&["rmi", "webapp"]);
    nobody.ok(&["pull", &remote]);
    let id = nobody.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "pasta",
        "-p",
        &publish,
        &remote,
    ]);
    let index = get_on_loopback(published, "/");
    let page = get_on_loopback(published, "/cgi-bin/hello");
    let ps = nobody.ok(&["ps"]);
    let logs = nobody.ok(&["logs", "web"]);
    let ls = nobody.ok(&["exec", "web", "ls", "/"]);
    let inspect = nobody.ok(&["inspect", "web"]);
    nobody.ok(&["stop", "web"]);
    nobody.ok(&["rm", "web"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 "),
        "{page}"
    );
    assert!(page.contains("hello"), "the CGI script answers: {page}");
    assert!(index.contains("Hello from a nutshell container"), "{index}");
    assert!(
        ps.contains(&format!("127.0.0.1:{published}->80/tcp")) && ps.contains(" web"),
        "{ps}"
    );
    assert!(logs.contains("response:200"), "{logs}");
    assert!(ls.lines().any(|l| l == "www"), "{ls}");
    assert!(inspect.contains("\"NetworkMode\": \"pasta\""), "{inspect}");
    // pasta ended with the container, and so did everything else.
    let data = nobody.data.path().display().to_string();
    let processes = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .expect("ps");
    let left: Vec<String> = stdout(&processes)
        .lines()
        .filter(|l| l.contains(&data) || l.contains(id))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(!nobody.data.path().join("monitor").exists(), "records left");
    common::assert_nothing_left(nobody.data.path());
    registry.stop();
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn logs_shows_both_streams_and_follow_ends_with_the_container() {
    common::require_root();
    let netns = Netns::new();
    let data = common::open_data_dir();
    let d = data.path();
    let here = Place::In(&netns);
    let _containers = Containers {
        place: here,
        data: d,
        names: vec!["talker"],
    };
    let script = "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 4";
    let run = nutshell(
        here,
        d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "--network",
            "none",
            "default",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let follow = nutshell(here, d, &["logs", "-f", "talker"]);
    assert_eq!(stdout(&follow), "out 1\nout 2\nout 3\n");
    assert_eq!(stderr(&follow), "err 1\nerr 2\nerr 3\n");
    let tail = nutshell(here, d, &["logs", "--tail", "1", "--timestamps", "talker"]);
    let line = stderr(&tail);
    assert!(
        line.ends_with(" err 3\n") && line.starts_with("20"),
        "{line}"
    );
    let ps = stdout(&nutshell(here, d, &["ps", "-a", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&ps).expect("ps JSON");
    assert_eq!(json[0]["Names"][0], "talker");
    assert_eq!(json[0]["State"], "exited");
    assert_eq!(json[0]["ExitCode"], 4);
    let rm = nutshell(here, d, &["rm", "talker"]);
    assert_eq!(stdout(&rm), "talker\n");
    netns.assert_nothing_left(d);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn run_flags_reach_the_container_and_rm_leaves_nothing() {
    common::require_root();
    let data = common::open_data_dir();
    let d = data.path();
    let volume = tempfile::tempdir().expect("temp dir");
    std::fs::write(volume.path().join("note"), "from the host\n").unwrap();
    let env_file = volume.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n").unwrap();
    let script = "echo $GREETING $FROM_FILE; id -u; pwd; hostname; cat /data/note; \
                  touch /data/x 2>/dev/null || echo data read-only; \
                  touch /x 2>/dev/null || echo root read-only; \
                  touch /scratch/x && echo tmpfs writable; \
                  grep CapEff /proc/self/status";
    let vol = format!("{}:/data:ro", volume.path().display());
    let env_file = env_file.display().to_string();
    let output = nutshell(
        Place::Host,
        d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "GREETING=hi",
            "--env-file",
            &env_file,
            "-v",
            &vol,
            "--tmpfs",
            "/scratch",
            "--read-only",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "--hostname",
            "box",
            "--cap-drop",
            "ALL",
            "--entrypoint",
            "sh",
            "default",
            "-c",
            script,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "hi yes\n1000\n/tmp\nbox\nfrom the host\ndata read-only\nroot read-only\ntmpfs writable\nCapEff:\t0000000000000000\n"
    );
    let mut cat = Command::new(NUTSHELL)
        .args(["run", "-i", "--rm", "--network", "none", "default", "cat"])
        .env("NUTSHELL_DATA", d)
        .env("NUTSHELL_ROOT", state_dir(d))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nutshell run -i");
    cat.stdin
        .take()
        .expect("stdin")
        .write_all(b"through stdin\n")
        .expect("write");
    let cat = output_within(cat, TIMEOUT);
    assert_eq!(stdout(&cat), "through stdin\n", "-i: {}", stderr(&cat));
    let exit = nutshell(
        Place::Host,
        d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "default",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(exit.status.code(), Some(7), "run passes on the exit code");
    assert!(!d.join("monitor").exists(), "--rm removed the records");
    common::assert_nothing_left(d);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn stop_kills_after_the_grace_time_and_kill_rm_top_and_names_work_as_dockers() {
    common::require_root();
    let data = common::open_data_dir();
    let d = data.path();
    let h = Place::Host;
    let _containers = Containers {
        place: h,
        data: d,
        names: vec!["stubborn", "victim"],
    };
    // sh ignores SIGTERM; nutshell's init passes the signal on, and nothing happens.
    let stubborn = "trap '' TERM; while :; do sleep 1; done";
    let run = |name: &str, script: &str| {
        let output = nutshell(
            h,
            d,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "none",
                "default",
                "sh",
                "-c",
                script,
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_string()
    };
    let stubborn_id = run("stubborn", stubborn);
    let victim = nutshell(
        h,
        d,
        &[
            "run",
            "-d",
            "--name",
            "victim",
            "--network",
            "none",
            "--pids-limit",
            "20",
            "--memory",
            "64m",
            "default",
            "sleep",
            "600",
        ],
    );
    assert!(victim.status.success(), "{}", stderr(&victim));
    let victim_id = stdout(&victim).trim().to_string();
    // The limits are in the container's cgroup, which the host sees.
    let limits: Vec<String> = common::cgroups_named(&victim_id)
        .iter()
        .flat_map(|dir| {
            ["pids.max", "memory.max", "memory.limit_in_bytes"].map(|f| format!("{dir}/{f}"))
        })
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .map(|value| value.trim().to_string())
        .collect();
    assert!(limits.contains(&"20".to_string()), "{limits:?}");
    assert!(limits.contains(&"67108864".to_string()), "{limits:?}");
    // exec's -e, -w and -u (a name from the image's /etc/passwd: nobody).
    let exec = nutshell(
        h,
        d,
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "victim",
            "sh",
            "-c",
            "echo $X; pwd; id -u",
        ],
    );
    assert_eq!(stdout(&exec), "1\n/tmp\n65534\n", "{}", stderr(&exec));
    let port = nutshell(h, d, &["port", "victim"]);
    assert_eq!(stdout(&port), "", "nothing published");
    let taken = nutshell(
        h,
        d,
        &[
            "run",
            "-d",
            "--name",
            "victim",
            "--network",
            "none",
            "default",
            "true",
        ],
    );
    assert_eq!(taken.status.code(), Some(125));
    assert!(
        stderr(&taken).starts_with("Error: the container name \"victim\" is already in use by "),
        "{}",
        stderr(&taken)
    );
    let top = stdout(&nutshell(h, d, &["top", "victim"]));
    assert!(top.lines().any(|l| l.ends_with("sleep 600")), "{top}");
    let quiet = stdout(&nutshell(h, d, &["ps", "-q"]));
    assert!(quiet.lines().any(|l| stubborn_id.starts_with(l)), "{quiet}");
    let refused = nutshell(h, d, &["rm", "victim"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "Error: container victim is running: stop it first (nutshell stop), or use rm -f\n"
    );
    let started = Instant::now();
    let stop = nutshell(h, d, &["stop", "-t", "1", "stubborn"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited the grace time"
    );
    let kill = nutshell(h, d, &["kill", "-s", "SIGKILL", "victim"]);
    assert_eq!(stdout(&kill), "victim\n", "{}", stderr(&kill));
    let deadline = Instant::now() + Duration::from_secs(30);
    let ps = loop {
        let ps = stdout(&nutshell(h, d, &["ps", "-a"]));
        if ps.matches("Exited (137)").count() == 2 || Instant::now() > deadline {
            break ps;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ps.matches("Exited (137)").count(),
        2,
        "both SIGKILLed: {ps}"
    );
    let rm = nutshell(h, d, &["rm", "stubborn", "victim"]);
    assert_eq!(stdout(&rm), "stubborn\nvictim\n", "{}", stderr(&rm));
    common::assert_nothing_left(d);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_detached_container_outlives_the_terminal_it_was_started_from() {
    common::require_root();
    let data = common::open_data_dir();
    let d = data.path();
    let _containers = Containers {
        place: Place::Host,
        data: d,
        names: vec!["hup"],
    };
    let mut terminal = Terminal::start(
        d,
        &[
            "run",
            "-d",
            "--name",
            "hup",
            "--network",
            "none",
            "default",
            "sleep",
            "600",
        ],
    );
    assert_eq!(terminal.wait(), Some(0), "run -d returns");
    // The terminal goes away: its session would get SIGHUP.
    drop(terminal);
    std::thread::sleep(Duration::from_millis(300));
    let ps = stdout(&nutshell(Place::Host, d, &["ps"]));
    assert!(
        ps.lines()
            .any(|l| l.ends_with(" hup") && l.contains(" Up ")),
        "{ps}"
    );
    let rm = nutshell(Place::Host, d, &["rm", "-f", "hup"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    common::assert_nothing_left(d);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn run_pulls_an_image_the_store_lacks_and_inspect_shows_images_too() {
    common::require_root();
    let registry = Registry::start();
    let port = registry.address.rsplit(':').next().expect("a port");
    let remote = format!("localhost:{port}/tiny");
    let pusher = common::open_data_dir();
    let pushed = nutshell(Place::Host, pusher.path(), &["image", "default"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let pushed = nutshell(Place::Host, pusher.path(), &["push", "default", &remote]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let data = common::open_data_dir();
    let d = data.path();
    let run = nutshell(
        Place::Host,
        d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &remote,
            "echo",
            "pulled and run",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stdout(&run), "pulled and run\n");
    let inspect = stdout(&nutshell(Place::Host, d, &["inspect", &remote]));
    let json: serde_json::Value = serde_json::from_str(&inspect).expect("inspect JSON");
    assert!(
        json[0]["name"]
            .as_str()
            .is_some_and(|n| n.contains("/tiny")),
        "{inspect}"
    );
    common::assert_nothing_left(d);
    common::assert_nothing_left(pusher.path());
    registry.stop();
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn a_killed_monitor_is_noticed_and_what_it_left_is_removed() {
    common::require_root();
    let netns = Netns::new();
    let data = common::open_data_dir();
    let d = data.path();
    let here = Place::In(&netns);
    let _containers = Containers {
        place: here,
        data: d,
        names: vec!["sleeper"],
    };
    let run = nutshell(
        here,
        d,
        &[
            "run", "-d", "--name", "sleeper", "-p", "8081:80", "default", "sleep", "600",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let id = stdout(&run).trim().to_string();
    let monitor = monitor_pid(here, d, "sleeper");
    // SAFETY: kill(2) of the monitor this test started, by its pid, still alive.
    assert!(alive(monitor));
    unsafe { libc::kill(monitor as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(monitor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ps = stdout(&nutshell(here, d, &["ps", "-a"]));
    assert!(ps.contains("Exited (unknown)"), "{ps}");
    let inspect = stdout(&nutshell(here, d, &["inspect", "sleeper"]));
    assert!(inspect.contains("its monitor was killed"), "{inspect}");
    assert!(
        common::cgroups_named(&id).is_empty(),
        "the sweep removed its cgroup"
    );
    let rm = nutshell(here, d, &["rm", "sleeper"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    netns.assert_nothing_left(d);
}

/// A terminal of the test's own, as a terminal emulator makes one: `nutshell ARGS`
/// runs on its slave end as the leader of a new session whose controlling terminal it
/// is (`setsid -c`), and the test types on the master end and reads what comes back.
struct Terminal {
    master: std::fs::File,
    /// Kept, to read the terminal's modes: a pty master has modes of its own.
    slave: OwnedFd,
    nutshell: Option<common::background::Background>,
    seen: String,
}

impl Terminal {
    fn start(data: &Path, args: &[&str]) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = |pty: &OwnedFd| Stdio::from(pty.try_clone().expect("dup the slave"));
        let child = Command::new("setsid")
            .args(["-c", NUTSHELL])
            .args(args)
            .env("NUTSHELL_DATA", data)
            .env("NUTSHELL_ROOT", state_dir(data))
            .stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave))
            .spawn()
            .expect("spawn nutshell on the pty");
        Terminal {
            master: std::fs::File::from(pty.master),
            slave: pty.slave,
            nutshell: Some(common::background::Background::new(child)),
            seen: String::new(),
        }
    }

    fn type_in(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type on the terminal");
    }

    /// Read until `want` has come, for at most a minute; forget what came up to it.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(want) {
            assert!(
                Instant::now() < deadline,
                "never saw {want:?} in {:?}",
                self.seen
            );
            if poll_in(self.master.as_fd(), Duration::from_millis(200)) {
                let mut buffer = [0u8; 4096];
                match self.master.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
                }
            }
        }
        let at = self.seen.find(want).map_or(0, |i| i + want.len());
        self.seen.drain(..at);
    }

    /// Whether the terminal is in canonical (cooked) mode.
    fn canonical(&self) -> bool {
        nix::sys::termios::tcgetattr(self.slave.as_fd())
            .expect("tcgetattr")
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON)
    }

    /// Wait for nutshell to end: its exit code.
    fn wait(&mut self) -> Option<i32> {
        let nutshell = self.nutshell.take().expect("nutshell runs");
        nutshell.wait(TIMEOUT).expect("nutshell ends").status.code()
    }
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn run_it_gives_a_raw_terminal_that_follows_the_window_and_takes_ctrl_c() {
    common::require_root();
    let data = common::open_data_dir();
    let d = data.path();
    let mut terminal = Terminal::start(
        d,
        &["run", "-it", "--rm", "--network", "none", "default", "sh"],
    );
    terminal.type_in(b"stty size; echo ready$((6*7))\r");
    terminal.expect("24 80");
    terminal.expect("ready42");
    assert!(
        !terminal.canonical(),
        "the caller's terminal is in raw mode while the container runs"
    );
    // A new size: the kernel sends nutshell SIGWINCH, and it resizes the container's.
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a winsize on our pty master.
    unsafe { libc::ioctl(terminal.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    std::thread::sleep(Duration::from_millis(300));
    terminal.type_in(b"stty size\r");
    terminal.expect("40 100");
    // Ctrl-C reaches the container's foreground process (sleep), not nutshell.
    terminal.type_in(b"echo sleep$((1+0)); sleep 100\r");
    terminal.expect("sleep1");
    std::thread::sleep(Duration::from_millis(300));
    terminal.type_in(&[0x03]);
    terminal.type_in(b"echo after$((1+1))\r");
    terminal.expect("after2");
    terminal.type_in(b"exit 7\r");
    assert_eq!(terminal.wait(), Some(7), "the shell's exit code");
    assert!(terminal.canonical(), "the terminal's modes are restored");
    common::assert_nothing_left(d);
}

#[test]
#[ignore = "needs root: run `just test-all`"]
fn exec_it_gives_a_terminal_in_a_running_container() {
    common::require_root();
    let data = common::open_data_dir();
    let d = data.path();
    let _containers = Containers {
        place: Place::Host,
        data: d,
        names: vec!["box"],
    };
    let run = nutshell(
        Place::Host,
        d,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "--network",
            "none",
            "default",
            "sleep",
            "600",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let mut terminal = Terminal::start(d, &["exec", "-it", "box", "sh"]);
    terminal.type_in(b"tty; echo sum$((2+3)); exit 3\r");
    terminal.expect("/dev/pts/");
    terminal.expect("sum5");
    assert_eq!(terminal.wait(), Some(3), "exec passes on the exit code");
    let rm = nutshell(Place::Host, d, &["rm", "-f", "box"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    common::assert_nothing_left(d);
}

fn poll_in(fd: std::os::fd::BorrowedFd, timeout: Duration) -> bool {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one fd of ours.
    unsafe { libc::poll(&mut pollfd, 1, timeout.as_millis() as i32) > 0 }
}

/// `nutshell ARGS` must fail with exactly one line on stderr, and exit `code`.
fn refused(data: &Path, args: &[&str], code: i32) -> String {
    let output = nutshell(Place::Host, data, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        stderr(&output)
    );
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err
}

#[test]
fn commands_on_a_missing_container_say_so_docker_style() {
    let data = common::data_dir();
    for command in ["rm", "stop", "logs", "port", "top", "inspect"] {
        let err = refused(data.path(), &[command, "nosuch"], 1);
        let want = if command == "inspect" {
            "Error: no such object: \"nosuch\" (neither a container nor an image: see nutshell ps -a and nutshell images)\n"
        } else {
            "Error: no container with name or ID \"nosuch\" found\n"
        };
        assert_eq!(err, want, "{command}");
    }
    assert_eq!(
        stdout(&nutshell(Place::Host, data.path(), &["ps", "-a"]))
            .lines()
            .count(),
        1
    );
}

#[test]
fn bad_run_flags_are_refused_in_one_line_and_leave_nothing() {
    let data = common::data_dir();
    let d = data.path();
    let cases: [(&[&str], &str); 4] = [
        (
            &["-v", "data:/data"],
            "Error: -v data:/data: write HOST:CONTAINER[:ro], both absolute paths (named volumes are not kept)\n",
        ),
        (
            &["-v", "/no/such/dir:/data"],
            "Error: -v /no/such/dir:/data: /no/such/dir: No such file or directory (os error 2)\n",
        ),
        (
            &["--cap-add", "FLY"],
            "Error: --cap-add FLY: no such capability (write NET_ADMIN or CAP_NET_ADMIN)\n",
        ),
        (
            &["--name", "no/slash"],
            "Error: container id \"no/slash\" is not valid: use 1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit\n",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["default", "true"]);
        assert_eq!(refused(d, &args, 125), want, "{flags:?}");
    }
    let err = refused(d, &["run", "--network", "none", "localhost:1/nosuch"], 125);
    assert!(
        err.starts_with("Error: ") && err.contains("localhost:1"),
        "{err}"
    );
    assert!(!d.join("monitor").exists(), "no record left");
    common::assert_nothing_left(d);
}
