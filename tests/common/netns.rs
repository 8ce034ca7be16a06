//! A network namespace of the test's own: the "host" a networking test makes its
//! bridges, veths and nftables rules in, so that nothing touches the machine's own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::background::Background;
use super::{output_within, stderr, stdout};

/// A network namespace of the test's own, held by a `sleep` that dies with the thread
/// that started it (PR_SET_PDEATHSIG), and killed on drop.
pub struct Netns {
    holder: Child,
}

impl Netns {
    pub fn new() -> Netns {
        let holder = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "unshare", "--net", "sleep", "600"])
            .spawn()
            .expect("start the namespace's holder");
        let netns = Netns { holder };
        // unshare has exec'd sleep once its namespace differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(netns.path()).ok().as_ref() == Some(&ours) || !netns.is_sleeping()
        {
            assert!(
                Instant::now() < deadline,
                "the holder never made its namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        netns.sh("ip link set lo up");
        netns
    }

    pub fn is_sleeping(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/comm", self.holder.id()))
            .is_ok_and(|comm| comm.trim() == "sleep")
    }

    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// A command run in the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net={}", self.path())).arg(program);
        command
    }

    /// Run `script` with sh in the namespace; its stdout, or a failure.
    pub fn sh(&self, script: &str) -> String {
        let child = self
            .command("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsenter");
        let output = output_within(child, Duration::from_secs(30));
        assert!(output.status.success(), "{script}: {}", stderr(&output));
        stdout(&output)
    }

    /// Start `program` in the namespace in the background, stopped with the guard.
    pub fn start_program(&self, program: &str, args: &[&str]) -> Background {
        Background::new(
            self.command(program)
                .args(args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {program}: {e}")),
        )
    }

    /// The names of the links in the namespace.
    pub fn links(&self) -> Vec<String> {
        self.sh("ip -o link show | cut -d: -f2")
            .lines()
            .map(|l| l.trim().split('@').next().unwrap_or_default().to_string())
            .collect()
    }

    /// Nothing nutshell made is left in the namespace or under `data`.
    pub fn assert_nothing_left(&self, data: &Path) {
        assert_eq!(self.links(), ["lo"], "links left");
        assert_eq!(self.sh("nft list ruleset"), "", "nftables rules left");
        let leases: Vec<_> = walk(&data.join("net"))
            .into_iter()
            .filter(|p| {
                !p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .filter(|p| p.is_file())
            .collect();
        assert!(
            leases.is_empty(),
            "leases or port reservations left: {leases:?}"
        );
        super::assert_nothing_left(data);
    }

    /// Wait until a link named `nut…` exists: a container is connected.
    pub fn wait_for_veth(&self) {
        self.wait_for("a veth", || {
            self.links()
                .iter()
                .any(|l| l.starts_with("nut") && l != "nutshell0")
        });
    }

    /// Wait until `port` is published: its DNAT rule is in nftables, the last step.
    pub fn wait_for_published(&self, port: u16) {
        self.wait_for("the DNAT rule", || {
            self.sh("nft list ruleset")
                .contains(&format!("dport {port} dnat"))
        });
    }

    pub fn wait_for(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what} never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
