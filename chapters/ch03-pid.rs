//! Chapter 3: a new PID namespace, and a real PID 1 in it.
//!
//! The book walks through this file: book/src/ch03-pid.md.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use nix::unistd::Pid;
use nutshell::cli::{ContainerArgs, NamespaceArgs, main_with, require_root, shell_line};
use nutshell::init;
use nutshell::launch::{self};
use nutshell::process::Exit;
use nutshell::spec::{Program, chapters};

/// Chapter 3: run a command as the only process tree of a new PID namespace.
///
/// The container's PID 1 is nutshell's init: it starts the command as PID 2, passes on
/// the signals you send, reaps every zombie and exits with the command's status. Without
/// a command it takes a short tour: `echo $$` and `ps` inside. Then try `--orphans` and
/// `--orphans --no-init` (look for STAT Z), `-- sleep 60` with `kill -TERM PID` from
/// another terminal (PID as printed), with and without `--no-init`, and `--plan`.
#[derive(Parser)]
#[command(name = "ch03-pid")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
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

const BIN: &str = "ch03-pid";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        if !args.container.plan {
            require_root(
                BIN,
                "clone(2) with CLONE_NEWPID and the other new namespaces needs CAP_SYS_ADMIN",
            )?;
        }
        let rootfs = args.container.rootfs()?;
        let argv: Vec<String> = if args.orphans {
            vec!["sh".into(), "-c".into(), ORPHANS.into()]
        } else if args.command.is_empty() {
            vec!["sh".into(), "-c".into(), tour_script()]
        } else {
            args.command.clone()
        };
        // ANCHOR: spec
        let mut spec = chapters::for_chapter(3, &rootfs, Program::Args(argv.clone()));
        args.namespaces.apply(&mut spec)?;
        spec.process.init = !args.no_init;
        // ANCHOR_END: spec
        let Some((plan, facts)) = args.container.plan_or_print(&spec, &rootfs, true)? else {
            return Ok(0);
        };

        println!("ch03-pid: a new PID namespace in {}", rootfs.display());
        if args.no_init {
            println!("No init (--no-init): the command itself is PID 1.");
        } else {
            println!("PID 1 is nutshell's init; the command runs as its child, PID 2.");
        }
        if args.orphans {
            explain_orphans(args.no_init);
            println!("\n$ sh -c '{ORPHANS}'");
        } else if !args.command.is_empty() {
            println!("\n$ {}", shell_line(&args.command));
        }

        // Before the clone, so that no signal sent to this process from here on kills it
        // and orphans the container: each waits, pending, to be forwarded.
        init::block_handled_signals().context("block the signals to forward")?;
        let mut container = launch::create(plan, &spec, &facts)?;
        let host_pid = container
            .pid()
            .context("the container has no first process")?;
        let nspid = nspid_line(host_pid);
        // One write: the container shares this stderr.
        let line = format!(
            "ch03-pid: the container's PID 1 is pid {host_pid} on the host; try `kill -TERM {host_pid}` from another terminal\n"
        );
        std::io::stderr()
            .write_all(line.as_bytes())
            .context("write to stderr")?;
        container
            .start()
            .with_context(|| format!("run `{}`", argv.join(" ")))?;
        let exit = container
            .wait_forwarding_signals()
            .context("wait for the container")?;
        container.remove()?;

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
