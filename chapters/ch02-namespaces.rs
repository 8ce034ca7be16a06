//! Chapter 2: new UTS, IPC and time namespaces around chapter 1's chroot.
//!
//! The book walks through this file: book/src/ch02-namespaces.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{NamespaceArgs, RootfsArgs, main_with, require_root};
use nutshell::ipc::{Found, QueueGuard, QueueNames};
use nutshell::namespaces::{self, Clocks, Namespace, read_uptime};
use nutshell::process::{self, Exit, Isolation, Step};
use nutshell::rootfs::{enter_chroot, mount_fresh_proc, require_shell};
use nutshell::uts::{hostname, hostname_step};

/// Chapter 2: run a command chrooted as in chapter 1, in new UTS, IPC and time namespaces.
///
/// Without a command it takes a tour: the hostname set inside while the host's stays, IPC
/// queues made on the host invisible inside and those made inside gone with the container,
/// and the uptime moved by `--uptime-offset` while the wall clock stays. Then try
/// `--uptime-offset 86400 -- cat /proc/uptime`, `-- cat /proc/sysvipc/msg`, `-- date`, and
/// `--no-namespaces` to see the same steps leak into the host.
#[derive(Parser)]
#[command(name = "ch02-namespaces")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
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
    main_with(BIN, || {
        let args = Args::parse();
        args.namespaces.validate()?;
        require_root(
            BIN,
            "new namespaces need CAP_SYS_ADMIN and chroot(2) needs CAP_SYS_CHROOT",
        )?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;
        let container = Container {
            rootfs: &rootfs,
            hostname: &args.namespaces.hostname,
            isolation: isolation(&args.namespaces, !args.no_namespaces),
        };
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
            let exit = container.run(&args.command)?;
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

// ANCHOR: isolation
/// The namespaces of this chapter's container: new UTS, IPC and time namespaces, or none
/// of them for the break-it demo. Both get a mount namespace, only so that the container
/// can have a /proc of its own (chapter 4 is about mount namespaces).
fn isolation(flags: &NamespaceArgs, new_namespaces: bool) -> Isolation {
    if !new_namespaces {
        return Isolation {
            namespaces: vec![Namespace::Mount],
            time_offsets: None,
        };
    }
    Isolation {
        namespaces: vec![Namespace::Uts, Namespace::Ipc, Namespace::Mount],
        // Not a clone flag: the parent makes the time namespace and writes its offsets
        // before the child is cloned into it. See namespaces::new_time_namespace_for_children.
        time_offsets: Some(flags.time_offsets()),
    }
}
// ANCHOR_END: isolation

/// Everything needed to start this chapter's container.
struct Container<'a> {
    rootfs: &'a Path,
    hostname: &'a str,
    isolation: Isolation,
}

impl Container<'_> {
    // ANCHOR: steps
    /// What the child does between clone and exec, in order: the fresh /proc is mounted
    /// through a host path, so before the chroot; the hostname is set in the (new) UTS
    /// namespace; then chapter 1's chroot.
    fn steps(&self) -> Vec<Step<'_>> {
        let proc_dir = self.rootfs.join("proc");
        vec![
            Step::new(
                format!("mount a fresh /proc on {}", proc_dir.display()),
                || mount_fresh_proc(self.rootfs),
            ),
            hostname_step(self.hostname),
            Step::new(format!("chroot into {}", self.rootfs.display()), || {
                enter_chroot(self.rootfs)
            }),
        ]
    }
    // ANCHOR_END: steps

    /// Print the command like a shell transcript, run it in the container, and wait.
    fn run(&self, command: &[String]) -> anyhow::Result<Exit> {
        println!("\n$ {}", command.join(" "));
        let child = process::spawn(&self.isolation, self.steps(), command)
            .with_context(|| format!("run `{}`", command.join(" ")))?;
        Ok(child.wait()?)
    }

    /// Run `body` in the container instead of a command, and wait.
    fn run_fn(&self, what: &str, body: impl FnOnce() -> i32) -> anyhow::Result<Exit> {
        let child = process::spawn_fn(&self.isolation, self.steps(), body)
            .with_context(|| format!("start the container to {what}"))?;
        Ok(child.wait()?)
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
/// The hostname on the host, in the container, and on the host again.
fn uts_tour(container: &Container) -> anyhow::Result<Exit> {
    println!("\n== UTS namespace: the hostname ==");
    let before = hostname();
    println!("[host]    hostname: {before}");
    let exit = container.run(&["hostname".to_string()])?;
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

    let (host_names, inside_names) = (host.names().clone(), inside.names().clone());
    let exit = container.run_fn("look up IPC objects", move || {
        if report("[inside]", &host_names).is_none() {
            return 1;
        }
        if let Err(err) = inside_names.create() {
            println!("[inside]  {err}");
            return 1;
        }
        println!("[inside]  made {inside_names}");
        report("[inside]", &inside_names).map_or(1, |_| 0)
    })?;
    if exit != Exit::Code(0) {
        return Ok(exit);
    }
    println!("[host]    the container has exited");
    let left = report("[host]", inside.names()).context("look up the container's queues")?;
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

/// Look `names` up and print what was found, each line prefixed with `who`.
fn report(who: &str, names: &QueueNames) -> Option<Found> {
    let found = match names.lookup() {
        Ok(found) => found,
        Err(err) => {
            println!("{who:9} {err}");
            return None;
        }
    };
    let seen = |yes: bool| if yes { "found" } else { "not found" };
    println!(
        "{who:9} System V key {:#010x}: {}",
        names.sysv_key,
        seen(found.sysv_id.is_some())
    );
    println!("{who:9} POSIX {}: {}", names.posix_name, seen(found.posix));
    Some(found)
}
// ANCHOR_END: ipc_tour

// ANCHOR: time_tour
/// The uptime on the host and inside, and how far each clock is from the host's.
fn time_tour(container: &Container) -> anyhow::Result<Exit> {
    println!("\n== time namespace: CLOCK_MONOTONIC and CLOCK_BOOTTIME ==");
    let host_uptime = read_uptime(Path::new("/proc")).context("read the host's /proc/uptime")?;
    println!("[host]    /proc/uptime: up {host_uptime:.2} s");
    let host = Clocks::now().context("read the host's clocks")?;
    container.run_fn("read its clocks", move || {
        // The container's own /proc, mounted by the first step.
        match read_uptime(Path::new("/proc")) {
            Ok(uptime) => println!("[inside]  /proc/uptime: up {uptime:.2} s"),
            Err(err) => println!("[inside]  read /proc/uptime: {err}"),
        }
        let Ok(inside) = Clocks::now() else {
            return 1;
        };
        // Whole seconds: the few milliseconds between the two readings are not the point.
        let shift = |inside: f64, host: f64| format!("{:+.0} s", inside - host);
        println!("[inside]  clock            container - host");
        println!(
            "[inside]  CLOCK_MONOTONIC  {}",
            shift(inside.monotonic, host.monotonic)
        );
        println!(
            "[inside]  CLOCK_BOOTTIME   {}  (what /proc/uptime shows)",
            shift(inside.boottime, host.boottime)
        );
        println!(
            "[inside]  CLOCK_REALTIME   {}  (the wall clock, what `date` shows: never moved)",
            shift(inside.realtime, host.realtime)
        );
        0
    })
}
// ANCHOR_END: time_tour
