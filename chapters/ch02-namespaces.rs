//! Chapter 2: new UTS, IPC and time namespaces around chapter 1's chroot.
//!
//! The book walks through this file: book/src/ch02-namespaces.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{ContainerArgs, NamespaceArgs, main_with, print_plan, require_root};
use nutshell::ipc::QueueGuard;
use nutshell::ipc::QueueNames;
use nutshell::launch::{self, HostFacts};
use nutshell::namespaces::{self, Clocks, Namespace, read_uptime};
use nutshell::process::Exit;
use nutshell::spec::{ContainerSpec, Namespaces, Program, chapters};
use nutshell::uts::hostname;
use nutshell::workloads::{Builtin, report_queues};

/// Chapter 2: run a command chrooted as in chapter 1, in new UTS, IPC and time namespaces.
///
/// Without a command it takes a tour: the hostname set inside while the host's stays, IPC
/// queues made on the host invisible inside and those made inside gone with the container,
/// and the uptime moved by `--uptime-offset` while the wall clock stays. Then try
/// `--uptime-offset 86400 -- cat /proc/uptime`, `-- cat /proc/sysvipc/msg`, `-- date`,
/// `--plan`, and `--no-namespaces` to see the same steps leak into the host.
#[derive(Parser)]
#[command(name = "ch02-namespaces")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    /// Break it: the same steps without new UTS, IPC and time namespaces (the hostname is
    /// set in a scratch UTS namespace standing in for the host, never the machine's own)
    #[arg(long)]
    no_namespaces: bool,
    /// The command to run inside [default: a tour of what the new namespaces change]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

const BIN: &str = "ch02-namespaces";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        if !args.container.plan {
            require_root(
                BIN,
                "new namespaces need CAP_SYS_ADMIN and chroot(2) needs CAP_SYS_CHROOT",
            )?;
        }
        let rootfs = args.container.rootfs()?;
        let container = Container::new(&args, &rootfs)?;
        if args.container.plan {
            let program = Program::Args(if args.command.is_empty() {
                vec!["hostname".into()]
            } else {
                args.command.clone()
            });
            print_plan(&container.plan(program)?.0)?;
            return Ok(0);
        }
        args.container.prepare_rootfs(&rootfs, true)?;
        if args.no_namespaces {
            stand_in_for_the_host()?;
            println!(
                "{BIN} --no-namespaces: the same steps, without new UTS, IPC and time namespaces"
            );
            println!("chroot(2) into {}, as in chapter 1.", rootfs.display());
            println!(
                "To keep the machine's real hostname safe, this run first moved itself into a"
            );
            println!("scratch UTS namespace that stands in for the host: for the hostname, [host]");
            println!("below means that stand-in. The IPC objects and clocks are the real host's.");
        } else {
            println!("{BIN}: a container in new UTS, IPC and time namespaces");
            println!("chroot(2) into {}, as in chapter 1.", rootfs.display());
            println!(
                "hostname {}, uptime moved forward {} s.",
                args.namespaces.hostname, args.namespaces.uptime_offset
            );
        }
        println!("(A new mount namespace is used only to mount a fresh /proc inside: chapter 4");
        println!("explains mount namespaces.)");
        if !args.command.is_empty() {
            println!("\n$ {}", args.command.join(" "));
            let exit = container.run(Program::Args(args.command.clone()))?;
            if let Exit::Signal(_) = exit {
                eprintln!("{BIN}: {} {exit}", args.command.join(" "));
            }
            return Ok(exit.code());
        }
        for section in [uts_tour, ipc_tour, time_tour] {
            let exit = section(&container)?;
            if exit != Exit::Code(0) {
                return Ok(exit.code());
            }
        }
        println!();
        if args.no_namespaces {
            println!(
                "Without its own namespaces the container renamed the host, shared the host's"
            );
            println!(
                "IPC objects both ways, and read the host's clocks: a chroot isolates files only."
            );
        } else {
            println!("Each namespace gave the container its own copy of one kernel resource: the");
            println!(
                "hostname, the IPC objects, the clocks' offsets. The host's are untouched, and"
            );
            println!("the container's vanished with its last process.");
        }
        Ok(0)
    })
}

/// This chapter's container, once for each program the tour runs in it.
struct Container {
    spec: ContainerSpec,
    id: launch::ContainerId,
    facts: HostFacts,
    new_namespaces: bool,
}

impl Container {
    // ANCHOR: spec
    /// Chapter 2's spec, with the hostname and clock offset the flags ask for; or, for
    /// the break-it demo, the same without new UTS, IPC and time namespaces (the mount
    /// namespace stays, for a /proc of the container's own).
    fn new(args: &Args, rootfs: &Path) -> anyhow::Result<Container> {
        let placeholder = Program::Args(vec!["true".into()]);
        let mut spec = chapters::for_chapter(2, rootfs, placeholder);
        if args.no_namespaces {
            spec.namespaces = Namespaces::new_for(&[Namespace::Mount]);
            spec.hostname = None;
            spec.time_offsets = None;
        } else {
            args.namespaces.apply(&mut spec)?;
        }
        Ok(Container {
            spec,
            id: args.container.id()?,
            facts: HostFacts::detect(),
            new_namespaces: !args.no_namespaces,
        })
    }
    // ANCHOR_END: spec

    /// The plan for running `program`, and its spec.
    fn plan(&self, program: Program) -> anyhow::Result<(launch::LaunchPlan, ContainerSpec)> {
        let mut spec = self.spec.clone();
        spec.process.program = program;
        Ok((launch::plan(&self.id, &spec, &self.facts)?, spec))
    }

    /// Run `program` in the container, to the end.
    fn run(&self, program: Program) -> anyhow::Result<Exit> {
        let what = format!("run {program}");
        let (plan, spec) = self.plan(program)?;
        launch::run_to_end(plan, &spec, &self.facts).context(what)
    }
}

// ANCHOR: stand_in_for_the_host
/// The break-it demo sets a hostname without a new UTS namespace. So that it never renames
/// the real machine, this process first moves into a scratch UTS namespace, a copy of the
/// host's that stands in for it (the binary is single-threaded, so the whole process moves).
fn stand_in_for_the_host() -> anyhow::Result<()> {
    namespaces::unshare(&[Namespace::Uts])
        .context("make a scratch UTS namespace to stand in for the host")
}
// ANCHOR_END: stand_in_for_the_host

// ANCHOR: uts_tour
/// The hostname on the host, in the container, and on the host again. Without a UTS
/// namespace of its own the container has no hostname to be given, so it sets one itself.
fn uts_tour(container: &Container) -> anyhow::Result<Exit> {
    println!("\n== UTS namespace: the hostname ==");
    let before = hostname();
    println!("[host]    hostname: {before}");
    let command = if container.new_namespaces {
        "hostname"
    } else {
        "hostname nutshell; hostname"
    };
    println!("\n$ {command}");
    let exit = container.run(Program::shell(command))?;
    let after = hostname();
    if after == before {
        println!("[host]    hostname: {after}  (unchanged)");
    } else {
        println!("[host]    hostname: {after}  RENAMED by the container (the stand-in host)");
    }
    Ok(exit)
}
// ANCHOR_END: uts_tour

// ANCHOR: ipc_tour
/// Queues made on the host, looked up from inside; queues made inside, looked up from the
/// host once the container has exited. The host's are removed however this returns.
fn ipc_tour(container: &Container) -> anyhow::Result<Exit> {
    println!("\n== IPC namespace: System V and POSIX message queues ==");
    let pid = std::process::id();
    let host = QueueGuard::new(QueueNames::unique(pid, 0));
    // Guarded too: without an IPC namespace, the container's queues outlive it.
    let inside = QueueGuard::new(QueueNames::unique(pid, 1));
    host.names().create().context("make the host's queues")?;
    println!("[host]    made {}", host.names());
    let look = Builtin::Queues {
        host: host.names().clone(),
        inside: inside.names().clone(),
    };
    let exit = container.run(Program::Builtin(look))?;
    if exit != Exit::Code(0) {
        return Ok(exit);
    }
    println!("[host]    the container has exited");
    let left = report_queues("[host]", inside.names()).context("look up the container's queues")?;
    if left.sysv_id.is_some() || left.posix {
        println!("[host]    the container's queues outlived it, in the host's IPC namespace");
    } else {
        println!("[host]    its IPC namespace was destroyed with its last process, queues and all");
    }
    inside.remove().context("remove the container's queues")?;
    host.remove().context("remove the host's queues")?;
    println!("[host]    removed the queues this run made");
    Ok(Exit::Code(0))
}
// ANCHOR_END: ipc_tour

// ANCHOR: time_tour
/// The uptime on the host and inside, and how far each clock is from the host's.
fn time_tour(container: &Container) -> anyhow::Result<Exit> {
    println!("\n== time namespace: CLOCK_MONOTONIC and CLOCK_BOOTTIME ==");
    let host_uptime = read_uptime(Path::new("/proc")).context("read the host's /proc/uptime")?;
    println!("[host]    /proc/uptime: up {host_uptime:.2} s");
    let host = Clocks::now().context("read the host's clocks")?;
    container.run(Program::Builtin(Builtin::Clocks { host }))
}
// ANCHOR_END: time_tour
