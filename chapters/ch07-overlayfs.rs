//! Chapter 7: the chapter 6 container on an overlay root: the image read-only below, a
//! directory of the container's own above, and every write landing there.
//!
//! The book walks through this file: book/src/ch07-overlayfs.md.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    LimitArgs, NamespaceArgs, RootfsArgs, UserArgs, main_with, shell_line, transcript,
};
use nutshell::container::{describe_mapping, start_container};
use nutshell::init;
use nutshell::overlay::{self, ContainerDirs, OverlayRoot};
use nutshell::process::{Command, Exit, ProcessError};
use nutshell::rootfs::require_shell;
use nutshell::store::data_dir;
use nutshell::userns::{self, MappingPlan};

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
    rootfs: RootfsArgs,
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
    /// Print the layers, the overlay's mount options and the mount plan, and exit
    #[arg(long, conflicts_with_all = ["command", "break_it"])]
    plan: bool,
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

fn main() -> std::process::ExitCode {
    main_with("ch07-overlayfs", || {
        let args = Args::parse();
        // Everything is checked before anything is created: bad input leaves nothing.
        args.namespaces.validate()?;
        let mapping = args.user.plan()?;
        let privileged = nix::unistd::geteuid().is_root();
        args.limits.check(privileged)?;
        let layers = args
            .layers
            .iter()
            .map(|dir| nutshell::rootfs::resolve_rootfs(dir).context("--layer"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;
        // The container attaches its lowers and mounts the overlay under the data dir.
        mapping.check_reachable(&data_dir())?;
        let name = format!("nutshell-{}", std::process::id());
        // The container's upper and work belong to its root, as the host knows it (a
        // normal user's own dirs are its root's already).
        let owner = mapping.maps.host_root().filter(|_| privileged);
        let mut dirs = ContainerDirs::create(&data_dir(), &name, owner)?;
        if args.break_it {
            let code = break_it(&rootfs, &dirs, &mapping, &args.namespaces);
            dirs.remove(false)?;
            return code;
        }
        let tour = args.command.is_empty();
        // Top first: the --layer dirs (or the tour's demo layers), then the image.
        let mut lowers = if tour && layers.is_empty() {
            demo_layers(dirs.root())?
        } else {
            layers
        };
        lowers.push(rootfs.clone());
        let root = OverlayRoot::prepare(&dirs, &lowers, &mapping, privileged)?;
        let plan = root.mount_plan(&dirs, &mapping)?;
        if args.plan {
            print!("{}", describe_mapping(&mapping));
            println!("\nlayers, top first:");
            for (i, lower) in lowers.iter().enumerate() {
                println!("  lower {}: {}", i + 1, lower.display());
            }
            println!(
                "  upper:   {}\n  work:    {}",
                dirs.upper().display(),
                dirs.work().display()
            );
            print!("\nmount plan:\n{plan}");
            dirs.remove(false)?;
            return Ok(0);
        }
        let (mut cgroup, no_cgroup) = args.limits.cgroup(&name, privileged)?;
        let before = overlay::tree_digest(&rootfs)?;

        println!(
            "ch07-overlayfs: an overlay root{}, on {}",
            if privileged { "" } else { " (rootless)" },
            rootfs.display()
        );
        for (i, lower) in lowers.iter().enumerate() {
            println!("lower {}: {}", i + 1, lower.display());
        }
        println!("upper:   {}", dirs.upper().display());
        if let Some(why) = no_cgroup {
            println!("cgroup:  none: {why}");
        }
        let argv: Vec<String> = if tour {
            vec!["sh".into(), "-c".into(), transcript(&TOUR)]
        } else {
            println!("\n$ {}", shell_line(&args.command));
            args.command.clone()
        };
        let command = Command::new(&argv)?;
        init::block_handled_signals().context("block the signals to forward")?;
        let overlay_layers = dirs.layers(root.lowers().to_vec(), true);
        let child = start_container(&mapping, cgroup.as_ref(), &plan, &args.namespaces, || {
            init::run_as_init(&command)
        })
        .map_err(|err| explain_overlay_failure(err, &overlay_layers, dirs.merged()))
        .with_context(|| format!("run `{}`", argv.join(" ")))?;
        let exit = init::wait_forwarding_signals(child).context("wait for the container")?;
        // The overlay was mounted in the container's mount namespace, which ended with it.
        drop(root);

        inspect_and_remove(&mut dirs, &lowers, &mapping, privileged, args.keep_upper)?;
        let after = overlay::tree_digest(&rootfs)?;
        println!(
            "\nThe image, hashed before and after: {}",
            if before == after {
                "unchanged"
            } else {
                "CHANGED"
            }
        );
        println!("  {before}\n  {after}");
        if let Some(cgroup) = cgroup.as_mut() {
            cgroup.remove()?;
        }
        // inspect_and_remove removed them, perhaps in a child: this finds nothing left
        // to remove, marks them removed here, and says where a kept upper is.
        match dirs.remove(args.keep_upper)? {
            Some(upper) => println!("\nKept the upper dir: {}", upper.display()),
            None => println!("\nRemoved the upper and work dirs with the container."),
        }
        if let Exit::Signal(_) = exit {
            eprintln!("ch07-overlayfs: the container's PID 1 {exit}");
        }
        Ok(exit.code())
    })
}

// ANCHOR: inspect_and_remove
/// List what the container left in its upper dir, then remove its dirs (the upper too,
/// unless `keep_upper`). A rootless container with subordinate ids may have left files
/// and directories its user cannot read or remove from out here, so then this runs as
/// the container's root, in a user namespace with the same maps.
fn inspect_and_remove(
    dirs: &mut ContainerDirs,
    lowers: &[PathBuf],
    mapping: &MappingPlan,
    privileged: bool,
    keep_upper: bool,
) -> anyhow::Result<()> {
    let mut work = || -> anyhow::Result<()> {
        println!("\nThe upper dir, {}:", dirs.upper().display());
        for change in overlay::upper_changes(dirs.upper(), lowers)? {
            println!("  {change}");
        }
        remove_demo_layers(dirs.root())?;
        dirs.remove(keep_upper)?;
        Ok(())
    };
    if privileged || mapping.maps.uid_count() == 1 {
        return work();
    }
    let exit = userns::run_as_mapped_root(mapping, || match work() {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("ch07-overlayfs: error: {}", nutshell::cli::one_line(&err));
            1
        }
    })?;
    anyhow::ensure!(
        exit == Exit::Code(0),
        "listing and removing the container's dirs as its root {exit}"
    );
    Ok(())
}
// ANCHOR_END: inspect_and_remove

/// A refused overlay mount, with what its errno most likely means here: the child can
/// report only the errno.
fn explain_overlay_failure(
    err: anyhow::Error,
    layers: &overlay::OverlayLayers,
    merged: &Path,
) -> anyhow::Error {
    // The plan's step for the overlay is named by the mount operation it performs.
    let overlay_step = layers.mount_op(merged).ok().map(|op| op.to_string());
    match err.downcast_ref::<ProcessError>() {
        Some(ProcessError::ChildStep { step, errno }) if overlay_step.as_ref() == Some(step) => {
            let why = overlay::explain_mount_error(*errno, layers, true);
            anyhow::anyhow!("{err} ({why})")
        }
        _ => err,
    }
}

/// Two tiny layers for the tour, top first, that both have /etc/motd: the top one's
/// wins.
fn demo_layers(container: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut layers = Vec::new();
    for (name, text) in [
        ("demo-top", "from the top layer (lower 1)\n"),
        ("demo-base", "from the layer below it (lower 2)\n"),
    ] {
        let etc = container.join(name).join("etc");
        std::fs::create_dir_all(&etc).with_context(|| format!("create {}", etc.display()))?;
        std::fs::write(etc.join("motd"), text).context("write a demo layer's /etc/motd")?;
        layers.push(container.join(name));
    }
    Ok(layers)
}

/// Remove what [`demo_layers`] and [`OverlayRoot::prepare`] made in the container dir.
fn remove_demo_layers(container: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(container).context("read the container dir")? {
        let path = entry.context("read the container dir")?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("demo-") {
            std::fs::remove_dir_all(&path).with_context(|| format!("remove {}", path.display()))?;
        } else if name.starts_with("lower") {
            std::fs::remove_dir(&path).with_context(|| format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}

// ANCHOR: break_it
/// The break-it demo: chapter 6's container with a copy of the image as its root, no
/// overlay. The tour's writes change the copy itself, and a second container started on
/// it finds them.
fn break_it(
    rootfs: &Path,
    dirs: &ContainerDirs,
    mapping: &MappingPlan,
    namespaces: &NamespaceArgs,
) -> anyhow::Result<i32> {
    let copy = dirs.root().join("image-copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(&copy)
        .status()
        .context("run cp -a")?;
    anyhow::ensure!(status.success(), "cp -a {} failed", rootfs.display());
    println!("ch07-overlayfs --break-it: no overlay; the root is a copy of the image");
    let before = overlay::tree_digest(&copy)?;
    let privileged = nix::unistd::geteuid().is_root();
    let run = |script: &str| -> anyhow::Result<()> {
        // A detached tree can be attached once: each container gets its own.
        let root = OverlayRoot::prepare(dirs, std::slice::from_ref(&copy), mapping, privileged)?;
        // The copy itself is the container's root: attached (idmapped) on its mount
        // point, or used as it is.
        let plan = root.plain_root_plan();
        let command = Command::new(&["sh".to_string(), "-c".to_string(), script.to_string()])?;
        println!("\n[container]  {script}");
        start_container(mapping, None, &plan, namespaces, || {
            init::run_as_init(&command)
        })?
        .wait()?;
        drop(root);
        Ok(())
    };
    run("rm /etc/group; echo '# changed' >> /etc/passwd; echo done")?;
    run("cat /etc/group 2>&1; tail -1 /etc/passwd")?;
    let after = overlay::tree_digest(&copy)?;
    println!(
        "\nThe image copy, hashed before and after: {}",
        if before == after {
            "unchanged"
        } else {
            "CHANGED"
        }
    );
    remove_demo_layers(dirs.root())?;
    std::fs::remove_dir_all(&copy).with_context(|| format!("remove {}", copy.display()))?;
    println!("The second container inherited the first one's changes: without an overlay,");
    println!("every container on an image writes into that image, or needs a copy of its own.");
    Ok(i32::from(before == after))
}
// ANCHOR_END: break_it
