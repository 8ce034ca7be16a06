//! Chapter 1: chroot(2) into a root filesystem, and the escape that shows its limits.
//!
//! The book walks through this file: book/src/ch01-chroot.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{ContainerArgs, main_with, require_root};
use nutshell::launch::{self};
use nutshell::process::Exit;
use nutshell::rootfs::{DirId, escape_scratch_name, remove_escape_scratch};
use nutshell::spec::{ContainerSpec, Program, chapters};
use nutshell::workloads::Builtin;

/// Chapter 1: run a command with its root directory changed by chroot(2).
///
/// Without a command it takes a short tour: `ls /` and `pwd` inside the new root.
/// Then try `-- hostname` (the host's name: the UTS namespace is shared), `-- kill -0 1`
/// (the host's PID 1 can still be signalled), `--escape`, where a root process walks
/// out of the chroot, and `--plan`, every step the launch takes.
#[derive(Parser)]
#[command(name = "ch01-chroot")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    /// From inside the chroot, break out (mkdir, chroot, chdir("..") …) and list the host's real root
    #[arg(long, conflicts_with = "command")]
    escape: bool,
    /// The command to run inside [default: `ls /`, then `pwd`]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

const BIN: &str = "ch01-chroot";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        if !args.container.plan {
            require_root(BIN, "chroot(2) needs the CAP_SYS_CHROOT capability")?;
        }
        let rootfs = args.container.rootfs()?;
        if args.escape {
            return escape(&args, &rootfs);
        }
        let commands = if args.command.is_empty() {
            vec![
                vec!["ls".to_string(), "/".to_string()],
                vec!["pwd".to_string()],
            ]
        } else {
            vec![args.command.clone()]
        };
        if !args.container.plan {
            println!("ch01-chroot: chroot(2) into {}", rootfs.display());
            println!("The command sees that directory as /. Everything else is still the host's:");
            println!("its processes, mounts, network, hostname, users and privileges.");
        }
        for command in commands {
            let exit = run_in_root(&args, &rootfs, &command)?;
            if let Exit::Signal(_) = exit {
                eprintln!("ch01-chroot: {} {exit}", command.join(" "));
            }
            if args.container.plan || exit != Exit::Code(0) {
                return Ok(exit.code());
            }
        }
        Ok(0)
    })
}

// ANCHOR: run_in_root
/// Print the command like a shell transcript, run it chrooted into `rootfs`, and wait.
fn run_in_root(args: &Args, rootfs: &Path, command: &[String]) -> anyhow::Result<Exit> {
    let spec = chapters::for_chapter(1, rootfs, Program::Args(command.to_vec()));
    run(args, &spec, &format!("run `{}`", command.join(" ")), || {
        println!("\n$ {}", command.join(" "));
    })
}
// ANCHOR_END: run_in_root

/// Plan `spec`; with `--plan` print the plan, else say `announce` and run it to the end.
fn run(
    args: &Args,
    spec: &ContainerSpec,
    what: &str,
    announce: impl FnOnce(),
) -> anyhow::Result<Exit> {
    let Some((plan, facts)) = args.container.plan_or_print(spec, root_of(spec), false)? else {
        return Ok(Exit::Code(0));
    };
    announce();
    launch::run_to_end(plan, spec, &facts).context(what.to_string())
}

/// The directory a chapter 1 spec chroots into.
fn root_of(spec: &ContainerSpec) -> &Path {
    match &spec.root.fs {
        nutshell::spec::RootFs::Dir { path, .. } => path,
        _ => Path::new("/"),
    }
}

// ANCHOR: escape
/// The break-it demo: a root process inside the chroot gets out.
fn escape(args: &Args, rootfs: &Path) -> anyhow::Result<i32> {
    // Who the host's "/" is, by device and inode: the honest test of "escaped".
    let host_root = DirId::of(Path::new("/")).context("stat the host's /")?;
    let scratch = escape_scratch_name();
    let builtin = Builtin::Escape {
        scratch: scratch.clone(),
        host_root,
        expect_escape: true,
    };
    let spec = chapters::for_chapter(1, rootfs, Program::Builtin(builtin));
    let exit = run(args, &spec, "run the escape", || {
        println!("ch01-chroot --escape: breaking out of a chroot, from the inside");
        println!("chroot(2) into {}", rootfs.display());
    })?;
    remove_escape_scratch(rootfs, &scratch)
        .with_context(|| format!("remove {}", rootfs.join(&scratch).display()))?;
    if exit == Exit::Code(0) && !args.container.plan {
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
