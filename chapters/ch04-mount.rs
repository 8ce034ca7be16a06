//! Chapter 4: a mount namespace of the container's own, entered by pivot_root(2).
//!
//! The book walks through this file: book/src/ch04-mount.md.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{NamespaceArgs, RootfsArgs, main_with, require_root, shell_line, transcript};
use nutshell::init;
use nutshell::mounts::{self, MountPlan};
use nutshell::namespaces::Namespace;
use nutshell::process::{self, Child, Command, Exit};
use nutshell::rootfs::{
    DirId, chroot_escape, escape_scratch_name, list_dir, remove_escape_scratch, require_shell,
};
use nutshell::uts::hostname_step;

/// Chapter 4: run a command in its own mount namespace, with the image as its root
/// mount (pivot_root), a fresh /proc, a minimal /dev, a read-only /sys, and the
/// dangerous /proc and /sys paths masked or read-only.
///
/// Without a command it takes a short tour: the mounts inside, /dev, a masked
/// /proc/timer_list, a read-only /proc/sys. Then try `--plan` (every mount, as a checklist),
/// `--escape` (chapter 1's chroot escape, which fails here), and `-- sh` to look around.
#[derive(Parser)]
#[command(name = "ch04-mount")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    /// Print the mount plan for the rootfs and exit, without running anything
    #[arg(long, conflicts_with_all = ["command", "escape"])]
    plan: bool,
    /// Inside the container, try chapter 1's chroot escape: it ends at the container's own root
    #[arg(long, conflicts_with = "command")]
    escape: bool,
    /// The command to run inside [default: a tour: mount, ls -l /dev, a masked file, /proc/sys]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The tour, one shell: each command is echoed like a transcript, its errors included.
/// `/proc/timer_list` stands for the masked files: /proc/kcore, the famous one, is missing
/// from kernels built without it, and timer_list is in every kernel.
const TOUR: [&str; 5] = [
    "mount",
    "ls -l /dev",
    "wc -c /proc/timer_list",
    "echo box > /proc/sys/kernel/hostname",
    "cat /proc/sys/kernel/hostname",
];

fn main() -> std::process::ExitCode {
    main_with("ch04-mount", || {
        let args = Args::parse();
        if args.plan {
            let rootfs = args.rootfs.resolve()?;
            let plan = MountPlan::for_rootfs(&rootfs, mounts::tty_gid(&rootfs));
            return match std::io::stdout().write_all(plan.to_string().as_bytes()) {
                // `--plan | head` is fine: the reader has seen what they wanted.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::new(e).context("print the plan"))
                }
                _ => Ok(0),
            };
        }
        require_root(
            "ch04-mount",
            "mount(2), pivot_root(2) and clone(2) with new namespaces need CAP_SYS_ADMIN",
        )?;
        args.namespaces.validate()?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;
        let plan = MountPlan::for_rootfs(&rootfs, mounts::tty_gid(&rootfs));
        if args.escape {
            return escape(&rootfs, &plan, &args.namespaces);
        }

        println!(
            "ch04-mount: a new mount namespace, with {} as its root",
            rootfs.display()
        );
        println!(
            "{} mount operations (see --plan), then pivot_root; PID 1 is nutshell's init.",
            plan.ops.len()
        );
        let argv: Vec<String> = if args.command.is_empty() {
            vec!["sh".into(), "-c".into(), transcript(&TOUR)]
        } else {
            println!("\n$ {}", shell_line(&args.command));
            args.command.clone()
        };
        // Before the clone: a signal sent from here on waits, pending, to be forwarded.
        init::block_handled_signals().context("block the signals to forward")?;
        let what = if args.command.is_empty() {
            "run the tour".to_string()
        } else {
            format!("run `{}`", argv.join(" "))
        };
        let command = Command::new(&argv).context(what.clone())?;
        let child = start_container(&plan, &args.namespaces, || init::run_as_init(&command))
            .context(what)?;
        let exit = init::wait_forwarding_signals(child).context("wait for the container")?;
        if args.command.is_empty() {
            println!();
            println!("/proc/timer_list reads as empty: /dev/null is bound over it, as over");
            println!(
                "/proc/kcore and /proc/keys. /proc/sys refuses writes: it is a read-only bind"
            );
            println!("mount, as /proc/sysrq-trigger is. None of these mounts exists on the host:");
            println!("they were made in the container's own mount namespace, whose mounts are");
            println!("private, and went away with it.");
        }
        if let Exit::Signal(_) = exit {
            eprintln!("ch04-mount: the container's PID 1 {exit}");
        }
        Ok(exit.code())
    })
}

// ANCHOR: start_container
/// Clone the container's first process into new UTS, IPC, time, mount and PID
/// namespaces; it sets the hostname, performs the mount plan (which ends inside the new
/// root), and then runs `body`: the init, or the escape.
fn start_container(
    plan: &MountPlan,
    namespaces: &NamespaceArgs,
    body: impl FnOnce() -> i32,
) -> anyhow::Result<Child> {
    let isolation = namespaces.isolation(&[
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
    ]);
    let mut steps = vec![hostname_step(&namespaces.hostname)];
    // One step per operation of the plan: a failure names the mount that failed.
    steps.extend(mounts::steps(plan));
    Ok(process::spawn_fn(&isolation, steps, body)?)
}
// ANCHOR_END: start_container

// ANCHOR: escape
/// The break-it demo: chapter 1's escape, run inside this container, gets nowhere.
fn escape(rootfs: &Path, plan: &MountPlan, namespaces: &NamespaceArgs) -> anyhow::Result<i32> {
    // Who the host's "/" is, by device and inode, taken out here where it is reachable.
    let host_root = DirId::of(Path::new("/")).context("stat the host's /")?;
    let scratch = escape_scratch_name();
    println!("ch04-mount --escape: chapter 1's chroot escape, inside this chapter's container");
    let child = start_container(plan, namespaces, || {
        let inside = list_dir(Path::new("/")).unwrap_or_default();
        println!("[inside]  / holds: {}", inside.join(" "));
        match chroot_escape(&Path::new("/").join(&scratch), host_root) {
            Err(e) => {
                println!("[inside]  the escape failed with an error: {e}");
                0
            }
            Ok(report) => {
                println!("[inside]  mkdir(\"/{scratch}\"), chroot(\"/{scratch}\")");
                println!(
                    "[inside]  chdir(\"..\") x {}  — \".\" is already its own parent",
                    report.steps_up
                );
                println!("[inside]  chroot(\".\")");
                println!("[inside]  / holds: {}", report.root_entries.join(" "));
                if report.escaped {
                    println!("ESCAPED: \"/\" is the host's real root: the container did not hold");
                    return 1;
                }
                println!("NOT ESCAPED: the walk ended at the container's own root.");
                0
            }
        }
    })?;
    let exit = child.wait()?;
    remove_escape_scratch(rootfs, &scratch)
        .with_context(|| format!("remove {}", rootfs.join(&scratch).display()))?;
    if exit == Exit::Code(0) {
        println!();
        println!("Why it fails: the container's / is not a directory picked by chroot(2) but the");
        println!("root mount of its own mount namespace. pivot_root(2) made the image that");
        println!("mount, and umount2(MNT_DETACH) took the host's root out of this namespace's");
        println!("mount tree. \"..\" at the root of the root mount is itself, so the walk");
        println!("cannot climb; there is no path, relative or absolute, to the host's /.");
    }
    Ok(exit.code())
}
// ANCHOR_END: escape
