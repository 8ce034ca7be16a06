//! Chapter 3: a new PID namespace, and a real PID 1 in it.
//!
//! The book walks through this file: book/src/ch03-pid.md.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nix::unistd::Pid;
use nutshell::cli::{NamespaceArgs, RootfsArgs, main_with, require_root, shell_line};
use nutshell::init;
use nutshell::namespaces::Namespace;
use nutshell::process::{self, Child, Command, Exit, Step};
use nutshell::rootfs::{enter_chroot, mount_dev_with_null, mount_fresh_proc, require_shell};
use nutshell::uts::hostname_step;

/// Chapter 3: run a command as the only process tree of a new PID namespace.
///
/// The container's PID 1 is nutshell's init: it starts the command as PID 2, passes on
/// the signals you send, reaps every zombie and exits with the command's status. Without
/// a command it takes a short tour: `echo $$` and `ps` inside. Then try `--orphans` and
/// `--orphans --no-init` (look for STAT Z), and `-- sleep 60` with `kill -TERM PID` from
/// another terminal (PID as printed), with and without `--no-init`.
#[derive(Parser)]
#[command(name = "ch03-pid")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    /// No init: the command itself is PID 1 (orphans stay zombies, SIGTERM is ignored)
    #[arg(long)]
    no_init: bool,
    /// Leave an orphan behind and list the processes once it has ended: is it a zombie?
    #[arg(long, conflicts_with = "command")]
    orphans: bool,
    /// The command to run inside [default: a tour: `echo $$`, `ps`, PID 1's NSpid]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The tour: each command is echoed like a transcript, all in one shell so that the
/// process ids shown belong to one container.
const TOUR: [&str; 3] = [
    "echo $$",
    "ps -o pid,ppid,comm",
    "grep NSpid /proc/1/status",
];

/// `(sleep 0.1 &)`: a subshell starts `sleep 0.1` and exits at once, orphaning it. Half a
/// second later, when the orphan has ended, `ps` lists what is left. Meanwhile the shell
/// has replaced itself with `sleep 1`, a program that never waits for anyone.
const ORPHANS: &str = "(sleep 0.1 &); (sleep 0.5; ps -o pid,ppid,stat,comm) & exec sleep 1";

fn main() -> std::process::ExitCode {
    main_with("ch03-pid", || {
        let args = Args::parse();
        require_root(
            "ch03-pid",
            "clone(2) with CLONE_NEWPID and the other new namespaces needs CAP_SYS_ADMIN",
        )?;
        args.namespaces.validate()?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;

        println!("ch03-pid: a new PID namespace in {}", rootfs.display());
        if args.no_init {
            println!("No init (--no-init): the command itself is PID 1.");
        } else {
            println!("PID 1 is nutshell's init; the command runs as its child, PID 2.");
        }
        let argv: Vec<String> = if args.orphans {
            explain_orphans(args.no_init);
            vec!["sh".into(), "-c".into(), ORPHANS.into()]
        } else if args.command.is_empty() {
            vec!["sh".into(), "-c".into(), tour_script()]
        } else {
            args.command.clone()
        };
        if args.orphans {
            println!("\n$ sh -c '{ORPHANS}'");
        } else if !args.command.is_empty() {
            println!("\n$ {}", shell_line(&args.command));
        }

        // Before the clone, so that no signal sent to this process from here on kills it
        // and orphans the container: each waits, pending, to be forwarded.
        init::block_handled_signals().context("block the signals to forward")?;
        let child = start_container(&rootfs, &args.namespaces, args.no_init, &argv)?;
        let host_pid = child.pid();
        let nspid = nspid_line(host_pid);
        // One write: the container already shares this stderr.
        let line = format!(
            "ch03-pid: the container's PID 1 is pid {host_pid} on the host; try `kill -TERM {host_pid}` from another terminal\n"
        );
        std::io::stderr()
            .write_all(line.as_bytes())
            .context("write to stderr")?;
        let exit = init::wait_forwarding_signals(child).context("wait for the container")?;

        if args.command.is_empty() && !args.orphans {
            println!();
            println!(
                "From the host, the container's PID 1 is pid {host_pid}. Its /proc/{host_pid}/status says"
            );
            println!("{nspid}");
            println!(
                "its pid in each PID namespace it belongs to: the host's first, its own last."
            );
        }
        report_exit(exit, args.no_init);
        Ok(exit.code())
    })
}

// ANCHOR: start_container
/// Clone the container's first process into new UTS, IPC, time, mount and PID
/// namespaces; it mounts a /proc for its PID namespace, sets the hostname, enters the
/// root, and then becomes the init (or, with `no_init`, the command itself).
fn start_container(
    rootfs: &Path,
    namespaces: &NamespaceArgs,
    no_init: bool,
    argv: &[String],
) -> anyhow::Result<Child> {
    let isolation = namespaces.isolation(&[
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Pid,
    ]);
    let mut steps = vec![
        // Before the chroot: the mount points are named by their host paths. The /proc
        // step also makes every mount private, so neither mount reaches the host.
        Step::new(
            format!("mount a fresh /proc on {}/proc", rootfs.display()),
            || mount_fresh_proc(rootfs),
        ),
        Step::new(
            format!("mount a /dev with null on {}/dev", rootfs.display()),
            || mount_dev_with_null(rootfs),
        ),
        hostname_step(&namespaces.hostname),
        Step::new(format!("chroot into {}", rootfs.display()), || {
            enter_chroot(rootfs)
        }),
    ];
    let run = || format!("run `{}`", argv.join(" "));
    if no_init {
        // The child inherited our blocked signals; a command must start without them.
        steps.push(Step::new(
            "unblock the signals",
            init::unblock_handled_signals,
        ));
        return process::spawn(&isolation, steps, argv).with_context(run);
    }
    // The init keeps the blocked signals it inherited: one sent to it before its loop
    // starts waits, pending, instead of being dropped.
    let command = Command::new(argv).with_context(run)?;
    process::spawn_fn(&isolation, steps, || init::run_as_init(&command)).with_context(run)
}
// ANCHOR_END: start_container

/// The tour as one shell script that echoes each command before running it.
fn tour_script() -> String {
    TOUR.iter()
        .map(|command| format!("echo; echo '$ {command}'; {command}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `NSpid:` line of a host process's /proc status, or why it could not be read.
fn nspid_line(pid: Pid) -> String {
    let path = format!("/proc/{pid}/status");
    match std::fs::read_to_string(&path) {
        Ok(status) => status
            .lines()
            .find(|line| line.starts_with("NSpid:"))
            .unwrap_or("(no NSpid line: this kernel predates Linux 4.1)")
            .to_string(),
        Err(e) => format!("({path}: {e})"),
    }
}

fn explain_orphans(no_init: bool) {
    println!("A subshell starts `sleep 0.1` and exits at once: the sleep is an orphan, and the");
    println!(
        "kernel makes PID 1 its parent. When it ends it is a zombie until PID 1 waits for it."
    );
    if no_init {
        println!("Here PID 1 is `sleep 1` (the shell exec'd it), which never calls wait:");
        println!("the orphan stays a zombie (STAT Z) until the whole container ends.");
    } else {
        println!("Here PID 1 is the init, which reaps every child that ends: no zombie is left.");
    }
}

/// Say on stderr how the command ended, when a signal ended it.
fn report_exit(exit: Exit, no_init: bool) {
    let signal_name = |n: i32| {
        nix::sys::signal::Signal::try_from(n)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {n}"))
    };
    match exit {
        Exit::Signal(n) => eprintln!(
            "ch03-pid: the container's PID 1 was killed by {}",
            signal_name(n)
        ),
        // The init turns "killed by signal N" into the status 128 + N, as a shell does.
        Exit::Code(code) if !no_init && (129..=128 + 64).contains(&code) => eprintln!(
            "ch03-pid: exit status {code} = 128 + {}: the command was killed by {}",
            code - 128,
            signal_name(code - 128)
        ),
        Exit::Code(_) => {}
    }
}
