//! Chapter 1: chroot(2) into a root filesystem, and the escape that shows its limits.
//!
//! The book walks through this file: book/src/ch01-chroot.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{RootfsArgs, main_with, require_root};
use nutshell::process::{self, Exit, Isolation, Step};
use nutshell::rootfs::{
    DirId, chroot_escape, enter_chroot, escape_scratch_name, list_dir, remove_escape_scratch,
};

/// Chapter 1: run a command with its root directory changed by chroot(2).
///
/// Without a command it takes a short tour: `ls /` and `pwd` inside the new root.
/// Then try `-- hostname` (the host's name: the UTS namespace is shared), `-- kill -0 1`
/// (the host's PID 1 can still be signalled), and `--escape`, where a root process walks
/// out of the chroot.
#[derive(Parser)]
#[command(name = "ch01-chroot")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
    /// From inside the chroot, break out (mkdir, chroot, chdir("..") …) and list the host's real root
    #[arg(long, conflicts_with = "command")]
    escape: bool,
    /// The command to run inside [default: `ls /`, then `pwd`]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> std::process::ExitCode {
    main_with("ch01-chroot", || {
        let args = Args::parse();
        require_root(
            "ch01-chroot",
            "chroot(2) needs the CAP_SYS_CHROOT capability",
        )?;
        let rootfs = args.rootfs.resolve()?;
        if args.escape {
            return escape(&rootfs);
        }
        println!("ch01-chroot: chroot(2) into {}", rootfs.display());
        println!("The command sees that directory as /. Everything else is still the host's:");
        println!("its processes, mounts, network, hostname, users and privileges.");
        if args.command.is_empty() {
            for command in [
                vec!["ls".to_string(), "/".to_string()],
                vec!["pwd".to_string()],
            ] {
                let exit = run_in_root(&rootfs, &command)?;
                if exit != Exit::Code(0) {
                    return Ok(exit.code());
                }
            }
            return Ok(0);
        }
        let exit = run_in_root(&rootfs, &args.command)?;
        if let Exit::Signal(_) = exit {
            eprintln!("ch01-chroot: {} {exit}", args.command.join(" "));
        }
        Ok(exit.code())
    })
}

// ANCHOR: run_in_root
/// Print the command like a shell transcript, run it chrooted into `rootfs`, and wait.
fn run_in_root(rootfs: &Path, command: &[String]) -> anyhow::Result<Exit> {
    println!("\n$ {}", command.join(" "));
    let enter = Step::new(format!("chroot into {}", rootfs.display()), || {
        enter_chroot(rootfs)
    });
    let child = process::spawn(&Isolation::none(), vec![enter], command)
        .with_context(|| format!("run `{}`", command.join(" ")))?;
    Ok(child.wait()?)
}
// ANCHOR_END: run_in_root

// ANCHOR: escape
/// The break-it demo: a root process inside the chroot gets out.
fn escape(rootfs: &Path) -> anyhow::Result<i32> {
    // Who the host's "/" is, by device and inode: the honest test of "escaped".
    let host_root = DirId::of(Path::new("/")).context("stat the host's /")?;
    let scratch = escape_scratch_name();
    println!("ch01-chroot --escape: breaking out of a chroot, from the inside");
    println!("chroot(2) into {}", rootfs.display());
    let enter = Step::new(format!("chroot into {}", rootfs.display()), || {
        enter_chroot(rootfs)
    });
    let child = process::spawn_fn(&Isolation::none(), vec![enter], || {
        let inside = list_dir(Path::new("/")).unwrap_or_default();
        println!("[inside]  / holds: {}", inside.join(" "));
        match chroot_escape(&Path::new("/").join(&scratch), host_root) {
            Err(e) => {
                println!("[inside]  the escape failed: {e}");
                1
            }
            Ok(report) => {
                println!("[inside]  mkdir(\"/{scratch}\")  — a directory inside the chroot");
                println!(
                    "[inside]  chroot(\"/{scratch}\")  — the root moves down into it; the working directory stays above it"
                );
                println!(
                    "[inside]  chdir(\"..\") x {}  — nothing stops the walk until \".\" is its own parent",
                    report.steps_up
                );
                println!("[inside]  chroot(\".\")  — make where we stand the root");
                if !report.escaped {
                    println!("NOT ESCAPED: \"/\" is still not the host's root");
                    return 1;
                }
                println!("ESCAPED: \"/\" is now the host's real root (the same device and inode).");
                println!("[outside] / holds: {}", report.root_entries.join(" "));
                0
            }
        }
    })?;
    let exit = child.wait()?;
    remove_escape_scratch(rootfs, &scratch)
        .with_context(|| format!("remove {}", rootfs.join(&scratch).display()))?;
    if exit == Exit::Code(0) {
        println!();
        println!("Why it works: chroot(2) changes which directory \"/\" means for path lookups,");
        println!("and nothing else. The working directory is not moved into the new root, a");
        println!("root process may call chroot again, and \"..\" stops only at the process's own");
        println!("root. Chapter 4 (ch04-mount) closes the hole: pivot_root(2) in a new mount");
        println!("namespace takes the host's root out of the container's mount tree entirely.");
    }
    Ok(exit.code())
}
// ANCHOR_END: escape
