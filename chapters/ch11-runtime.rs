//! Chapter 11: the OCI runtime. A bundle — a `config.json` whose root is the default
//! image — goes through the runtime spec's lifecycle by the same functions `nutshell
//! create`, `state`, `start`, `kill` and `delete` call: created (its first process
//! waiting in nutshell-init, before its program), running, stopped, gone. `--break-it`
//! hands the runtime what the spec says it must refuse.
//!
//! The book walks through this file: book/src/ch11-runtime.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::main_with;
use nutshell::image::{ImageStore, Source};
use nutshell::launch::{ContainerId, HostFacts};
use nutshell::oci::runtime::{self, CreateOptions};
use serde_json::{Value, json};

/// Chapter 11: the OCI runtime. Without flags, the tour: a bundle is created, its
/// state shown, started, signalled, stopped and deleted, as podman would drive it with
/// `--runtime nutshell`. Then try `--break-it`: a config nutshell cannot honour, a
/// start out of order, a hook that fails.
#[derive(Parser)]
#[command(name = "ch11-runtime")]
struct Args {
    /// Break it: what the runtime spec says a runtime must refuse
    #[arg(long)]
    break_it: bool,
}

const BIN: &str = "ch11-runtime";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        let facts = HostFacts::detect();
        ImageStore::new(&facts.data_dir).ensure_default(Source::Auto, Path::new("/"))?;
        let bundle = Bundle::new(&facts)?;
        if args.break_it {
            return break_it(&bundle, &facts);
        }
        tour(&bundle, &facts)?;
        Ok(0)
    })
}

/// A bundle in a temp dir of the data dir: only `config.json`, whose root is the
/// default image's, read-only, so that nothing is copied.
struct Bundle {
    dir: tempfile::TempDir,
    rootfs: PathBuf,
}

impl Bundle {
    fn new(facts: &HostFacts) -> anyhow::Result<Bundle> {
        let dir = tempfile::Builder::new()
            .prefix("ch11-bundle-")
            .tempdir_in(&facts.data_dir)
            .context("make the bundle directory")?;
        let rootfs = facts.data_dir.join("images/default/rootfs");
        Ok(Bundle { dir, rootfs })
    }

    /// Write `config.json`: `nutshell spec`'s default, running `args`, then `edit`.
    fn write(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> anyhow::Result<()> {
        let mut config = serde_json::to_value(runtime::default_config(false))?;
        config["root"] = json!({"path": self.rootfs, "readonly": true});
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["hostname"] = json!("bundle");
        edit(&mut config);
        let path = self.dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&config)?)
            .with_context(|| format!("write {}", path.display()))
    }

    fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.dir.path().to_path_buf(),
            ..CreateOptions::default()
        }
    }
}

/// A created container: deleted, by force, when this goes, whatever happened.
struct Created<'a> {
    id: String,
    facts: &'a HostFacts,
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        let _ = runtime::delete(&self.id, true, self.facts);
    }
}

// ANCHOR: tour
fn tour(bundle: &Bundle, facts: &HostFacts) -> anyhow::Result<()> {
    bundle.write(&["sleep", "300"], |_| ())?;
    let id = ContainerId::random().to_string();
    println!("ch11-runtime: a bundle, {}", bundle.dir.path().display());
    println!("  config.json: `nutshell spec`'s, running sleep 300, its root the default image\n");

    println!("$ nutshell create --bundle BUNDLE {id}");
    runtime::create(&id, &bundle.options(), facts)?;
    let container = Created { id, facts };
    let state = runtime::state(&container.id, facts)?;
    println!("$ nutshell state {}\n{}", container.id, state_json(&state)?);
    println!(
        "  its process waits before its program: {}\n",
        what_runs(state.pid)
    );

    println!("$ nutshell start {}", container.id);
    runtime::start(&container.id, facts)?;
    let state = runtime::state(&container.id, facts)?;
    println!("  status {}: {}\n", state.status, what_runs(state.pid));

    println!("$ nutshell kill {} TERM", container.id);
    runtime::kill(&container.id, "TERM", false, facts)?;
    std::thread::sleep(Duration::from_millis(300));
    let state = runtime::state(&container.id, facts)?;
    println!(
        "  status {}: PID 1 of a namespace gets no signal it has no handler for, but KILL",
        state.status
    );
    println!("$ nutshell kill {} KILL", container.id);
    runtime::kill(&container.id, "KILL", false, facts)?;
    let state = wait_for_stopped(&container.id, facts)?;
    println!("  status {}, pid {}\n", state.status, state.pid);

    println!("$ nutshell delete {}", container.id);
    runtime::delete(&container.id, false, facts)?;
    match runtime::state(&container.id, facts) {
        Err(err) => println!("$ nutshell state {}\n  {err}", container.id),
        Ok(state) => anyhow::bail!("{} is still there: {}", container.id, state.status),
    }
    Ok(())
}
// ANCHOR_END: tour

/// The state as `nutshell state` prints it.
fn state_json(state: &runtime::OciState) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(state)?)
}

/// What process `pid` runs: its exe and argv, as /proc shows them.
fn what_runs(pid: i32) -> String {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_or_else(|e| format!("({e})"), |p| p.display().to_string());
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv: Vec<String> = argv
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    format!("exe {exe}, argv {}", argv.join(" "))
}

fn wait_for_stopped(id: &str, facts: &HostFacts) -> anyhow::Result<runtime::OciState> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = runtime::state(id, facts)?;
        if state.status == "stopped" {
            return Ok(state);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{id} did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ANCHOR: break_it
/// What a runtime must refuse, each in one line, with nothing left behind.
fn break_it(bundle: &Bundle, facts: &HostFacts) -> anyhow::Result<i32> {
    println!("ch11-runtime --break-it\n");
    println!("1. a config asking for an AppArmor profile, on a host nutshell confines without one");
    bundle.write(&["true"], |config| {
        config["process"]["apparmorProfile"] = json!("docker-default");
    })?;
    refused(runtime::create("broken-1", &bundle.options(), facts));

    println!("\n2. start twice: the runtime spec allows start only on a created container");
    bundle.write(&["sleep", "300"], |_| ())?;
    runtime::create("broken-2", &bundle.options(), facts)?;
    let container = Created {
        id: "broken-2".to_string(),
        facts,
    };
    runtime::start(&container.id, facts)?;
    refused(runtime::start(&container.id, facts));
    drop(container);

    println!("\n3. a createRuntime hook that fails: create fails, and the container is gone");
    bundle.write(&["true"], |config| {
        config["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", "echo no network for you >&2; exit 1"],
        }]});
    })?;
    refused(runtime::create("broken-3", &bundle.options(), facts));
    refused(runtime::state("broken-3", facts).map(drop));
    Ok(0)
}
// ANCHOR_END: break_it

fn refused(result: Result<(), runtime::RuntimeError>) {
    match result {
        Err(err) => println!("   refused: {}", nutshell::cli::one_line(&err)),
        Ok(()) => println!("   accepted (a bug: this should have been refused)"),
    }
}
