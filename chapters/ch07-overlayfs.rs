//! Chapter 7: the chapter 6 container on an overlay root: the image read-only below, a
//! directory of the container's own above, and every write landing there.
//!
//! The book walks through this file: book/src/ch07-overlayfs.md.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    ContainerArgs, LimitArgs, NamespaceArgs, UserArgs, main_with, shell_line, transcript,
};
use nutshell::image::ImageStore;
use nutshell::launch::{self, HostFacts, LaunchPlan, NO_ROOTLESS_CGROUP};
use nutshell::overlay;
use nutshell::process::Exit;
use nutshell::spec::{ContainerSpec, Program, RootFs, Upper, chapters};
use nutshell::workloads::Builtin;

/// Chapter 7: run the chapter 6 container on an overlay root: the image and any
/// --layer dirs read-only below, an upper dir of its own on top.
///
/// Without a command it takes the tour: it changes a file, adds one, deletes one and
/// replaces a directory, then shows the upper dir (copy-ups, a whiteout, an opaque
/// directory) and checks by hash that the image did not change. Then try `--keep-upper`,
/// `--layer DIR` (stack your own layer over the image), `--plan`, `--break-it` (the same
/// writes without an overlay), the same as a normal user (rootless, with userxattr), and
/// `-- sh`.
#[derive(Parser)]
#[command(name = "ch07-overlayfs")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    #[command(flatten)]
    user: UserArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// A read-only layer over the image, top first; repeatable [tour default: two small
    /// demo layers that both have /etc/motd]
    #[arg(long = "layer", value_name = "DIR")]
    layers: Vec<PathBuf>,
    /// Keep the container's upper dir when it ends, to look at what it changed
    #[arg(long)]
    keep_upper: bool,
    /// Break it: the tour's writes without an overlay, on a copy of the image, and what a
    /// second container on that copy then finds
    #[arg(long, conflicts_with_all = ["command", "layers", "keep_upper"])]
    break_it: bool,
    /// The command to run inside [default: the tour]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The tour, one shell: each command is echoed like a transcript, its errors included.
const TOUR: [&str; 6] = [
    "cat /etc/motd",
    "echo \"# changed in the container\" >> /etc/passwd",
    "echo hello > /root/hello",
    "rm /etc/group",
    "rm -r /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/only-me",
    "ls /etc /usr/sbin",
];

const BIN: &str = "ch07-overlayfs";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        let privileged = nix::unistd::geteuid().is_root();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        args.user.validate()?;
        args.limits.validate(privileged)?;
        let rootfs = args.container.rootfs()?;
        // A bad --name is refused here, before the demo layers are made.
        args.container.id()?;
        let facts = HostFacts::detect();
        if args.break_it {
            return break_it(&args, &rootfs, &facts);
        }
        let tour = args.command.is_empty();
        let program = if tour {
            Program::shell(transcript(&TOUR))
        } else {
            Program::Args(args.command.clone())
        };
        // Top first: the --layer dirs (or the tour's demo layers), then the image.
        let store = ImageStore::new(&facts.data_dir);
        let mut lowers = if !(tour && args.layers.is_empty()) {
            args.layers
                .iter()
                .map(|dir| nutshell::rootfs::resolve_rootfs(dir).context("--layer"))
                .collect::<anyhow::Result<_>>()?
        } else if args.container.plan {
            store.demo_layer_dirs()
        } else {
            store.demo_layers()?
        };
        lowers.push(rootfs.clone());
        // ANCHOR: spec
        let mut spec = chapters::for_chapter(7, &rootfs, program);
        spec.root.fs = RootFs::Overlay {
            lowers: lowers.clone(),
            upper: Upper::Managed {
                keep: args.keep_upper,
            },
            // Root's container sees the layers through its maps; a user's owns them.
            idmap: privileged,
        };
        args.namespaces.apply(&mut spec)?;
        args.user.apply(&mut spec)?;
        args.limits.apply(&mut spec, privileged)?;
        // ANCHOR_END: spec
        match args.container.plan_or_print(&spec, &rootfs, true)? {
            Some((plan, facts)) => run(&args, plan, &spec, &facts, &lowers, &rootfs),
            None => Ok(0),
        }
    })
}

/// Run the container, and show what it changed.
fn run(
    args: &Args,
    plan: LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
    lowers: &[PathBuf],
    rootfs: &Path,
) -> anyhow::Result<i32> {
    let mapping = plan
        .mapping
        .clone()
        .context("no user namespace in the plan")?;
    let container_dir = plan
        .owned
        .container_dir
        .clone()
        .context("no container dir in the plan")?;
    let upper = container_dir.join("upper");
    let before = overlay::tree_digest(rootfs)?;
    let rootless = if facts.caller.privileged {
        ""
    } else {
        " (rootless)"
    };
    println!(
        "ch07-overlayfs: an overlay root{rootless}, on {}",
        rootfs.display()
    );
    for (i, lower) in lowers.iter().enumerate() {
        println!("lower {}: {}", i + 1, lower.display());
    }
    println!("upper:   {}", upper.display());
    if !facts.caller.privileged {
        println!("cgroup:  none: {NO_ROOTLESS_CGROUP}");
    }
    if !args.command.is_empty() {
        println!("\n$ {}", shell_line(&args.command));
    }
    nutshell::init::block_handled_signals().context("block the signals to forward")?;
    let mut container = launch::create(plan, spec, facts)?;
    container.start().context("start the container")?;
    let exit = container
        .wait_forwarding_signals()
        .context("wait for the container")?;
    // ANCHOR: upper_report
    // The container is gone, its directories not yet. What it left in its upper may
    // belong to its subordinate ids: then only its root, in a user namespace with the
    // same maps, may read all of it.
    let report = Builtin::UpperReport {
        upper: upper.clone(),
        lowers: lowers.to_vec(),
    };
    if facts.caller.privileged || mapping.maps.uid_count() == 1 {
        report.run();
    } else {
        launch::run_as_mapped_root(&mapping.maps, report, facts)?;
    }
    // ANCHOR_END: upper_report
    container.remove()?;
    let after = overlay::tree_digest(rootfs)?;
    let same = if before == after {
        "unchanged"
    } else {
        "CHANGED"
    };
    println!("\nThe image, hashed before and after: {same}\n  {before}\n  {after}");
    if args.keep_upper {
        println!("\nKept the upper dir: {}", upper.display());
    } else {
        println!("\nRemoved the upper and work dirs with the container.");
    }
    if let Exit::Signal(_) = exit {
        eprintln!("ch07-overlayfs: the container's PID 1 {exit}");
    }
    Ok(exit.code())
}

/// Remove `dir` if no other run has something in it.
fn remove_if_empty(dir: Option<&Path>) {
    if let Some(dir) = dir {
        // ENOTEMPTY: another run's dir is in it, and that run removes it.
        let _ = std::fs::remove_dir(dir);
    }
}

// ANCHOR: break_it
/// The break-it demo: chapter 6's container with a copy of the image as its root, no
/// overlay. The tour's writes change the copy itself, and a second container started on
/// it finds them.
fn break_it(args: &Args, rootfs: &Path, facts: &HostFacts) -> anyhow::Result<i32> {
    args.container.prepare_rootfs(rootfs, true)?;
    let copy = facts
        .data_dir
        .join("break-it")
        .join(args.container.id()?.as_str());
    std::fs::create_dir_all(copy.parent().unwrap_or(&copy)).context("make the break-it dir")?;
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(&copy)
        .status()
        .context("run cp -a")?;
    anyhow::ensure!(status.success(), "cp -a {} failed", rootfs.display());
    println!("ch07-overlayfs --break-it: no overlay; the root is a copy of the image");
    let before = overlay::tree_digest(&copy)?;
    let run = |script: &str| -> anyhow::Result<()> {
        let mut spec = chapters::for_chapter(7, &copy, Program::shell(script));
        // The copy itself is the root: idmapped for root's container, as it is for a user.
        spec.root.fs = RootFs::Dir {
            path: copy.clone(),
            idmap: facts.caller.privileged,
        };
        args.namespaces.apply(&mut spec)?;
        args.user.apply(&mut spec)?;
        println!("\n[container]  {script}");
        let plan = launch::plan(&args.container.id()?, &spec, facts)?;
        launch::run_to_end(plan, &spec, facts)?;
        Ok(())
    };
    let result = run("rm /etc/group; echo '# changed' >> /etc/passwd; echo done")
        .and_then(|()| run("cat /etc/group 2>&1; tail -1 /etc/passwd"));
    let after = overlay::tree_digest(&copy);
    std::fs::remove_dir_all(&copy).with_context(|| format!("remove {}", copy.display()))?;
    remove_if_empty(copy.parent());
    result?;
    let same = after? == before;
    println!(
        "\nThe image copy, hashed before and after: {}",
        if same { "unchanged" } else { "CHANGED" }
    );
    println!("The second container inherited the first one's changes: without an overlay,");
    println!("every container on an image writes into that image, or needs a copy of its own.");
    Ok(i32::from(same))
}
// ANCHOR_END: break_it
