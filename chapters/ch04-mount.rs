//! Chapter 4: a mount namespace of the container's own, entered by pivot_root(2), and a
//! root that keeps only the privileges a container needs.
//!
//! The book walks through this file: book/src/ch04-mount.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    ContainerArgs, NamespaceArgs, main_with, require_root, shell_line, transcript,
};
use nutshell::launch::{self};
use nutshell::process::Exit;
use nutshell::rootfs::{DirId, escape_scratch_name, remove_escape_scratch};
use nutshell::spec::{Program, chapters};
use nutshell::workloads::Builtin;

/// Chapter 4: run a command in its own mount namespace, with the image as its root
/// mount (pivot_root), a fresh /proc, a minimal /dev, a read-only /sys, the dangerous
/// /proc and /sys paths masked or read-only, and Docker's capabilities only.
///
/// Without a command it takes a short tour: the mounts inside, /dev, a masked
/// /proc/timer_list, a read-only /proc/sys, the capabilities and the open fds. Then try
/// `--plan` (every step, the mounts as a checklist), `--escape` (chapter 1's chroot
/// escape, which fails here), and `-- sh` to look around.
#[derive(Parser)]
#[command(name = "ch04-mount")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
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
const TOUR: [&str; 8] = [
    "mount",
    "ls -l /dev",
    "wc -c /proc/timer_list",
    "echo box > /proc/sys/kernel/hostname",
    "cat /proc/sys/kernel/hostname",
    "grep -e CapEff -e NoNewPrivs /proc/self/status",
    "umount /proc/sys",
    "ls /proc/self/fd",
];

const BIN: &str = "ch04-mount";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        if !args.container.plan {
            require_root(
                BIN,
                "mount(2), pivot_root(2) and clone(2) with new namespaces need CAP_SYS_ADMIN",
            )?;
        }
        let rootfs = args.container.rootfs()?;
        let program = if args.escape {
            // Who the host's "/" is, by device and inode, taken out here where it is reachable.
            let host_root = DirId::of(Path::new("/")).context("stat the host's /")?;
            Program::Builtin(Builtin::Escape {
                scratch: escape_scratch_name(),
                host_root,
                expect_escape: false,
            })
        } else if args.command.is_empty() {
            Program::shell(transcript(&TOUR))
        } else {
            Program::Args(args.command.clone())
        };
        // ANCHOR: spec
        let mut spec = chapters::for_chapter(4, &rootfs, program);
        args.namespaces.apply(&mut spec)?;
        // ANCHOR_END: spec
        let Some((plan, facts)) = args.container.plan_or_print(&spec, &rootfs, true)? else {
            return Ok(0);
        };
        if args.escape {
            println!(
                "ch04-mount --escape: chapter 1's chroot escape, inside this chapter's container"
            );
        } else {
            println!(
                "ch04-mount: a new mount namespace, with {} as its root",
                rootfs.display()
            );
            println!(
                "{} mount operations (see --plan), then pivot_root; PID 1 is nutshell's init.",
                plan.mount_ops().count()
            );
            if !args.command.is_empty() {
                println!("\n$ {}", shell_line(&args.command));
            }
        }
        let exit = launch::run_to_end(plan, &spec, &facts).context("run the container")?;
        if let Program::Builtin(Builtin::Escape { scratch, .. }) = &spec.process.program {
            remove_escape_scratch(&rootfs, scratch)
                .with_context(|| format!("remove {}", rootfs.join(scratch).display()))?;
            if exit == Exit::Code(0) {
                explain_escape();
            }
        } else if args.command.is_empty() {
            explain_tour();
        }
        if let Exit::Signal(_) = exit {
            eprintln!("ch04-mount: the container's PID 1 {exit}");
        }
        Ok(exit.code())
    })
}

fn explain_tour() {
    println!();
    println!("/proc/timer_list reads as empty: /dev/null is bound over it, as over every");
    println!("masked file this kernel has (the plan skips the ones it lacks). /proc/sys");
    println!("refuses writes: it is a read-only bind mount, and root inside cannot unmount");
    println!("it: it kept Docker's 14 capabilities less CAP_MKNOD, and CAP_SYS_ADMIN is not");
    println!("one of them.");
    println!("No exec can give it more (NoNewPrivs: 1), and no fd of the caller's came in.");
    println!("None of these mounts exists on the host: they were made in the container's");
    println!("own mount namespace, whose mounts are private, and went away with it.");
}

// ANCHOR: escape
fn explain_escape() {
    println!();
    println!("Why it fails: the container's / is not a directory picked by chroot(2) but the");
    println!("root mount of its own mount namespace. pivot_root(2) made the image that");
    println!("mount, and umount2(MNT_DETACH) took the host's root out of this namespace's");
    println!("mount tree. \"..\" at the root of the root mount is itself, so the walk");
    println!("cannot climb; there is no path, relative or absolute, to the host's /.");
}
// ANCHOR_END: escape
