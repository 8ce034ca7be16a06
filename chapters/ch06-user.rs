//! Chapter 6: the chapter 5 container in a user namespace of its own, where root is an
//! unprivileged user of the host — and, run by a normal user, a rootless container.
//!
//! The book walks through this file: book/src/ch06-user.md.

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    ContainerArgs, LimitArgs, NamespaceArgs, UserArgs, main_with, shell_line, transcript,
};
use nutshell::launch::{self, NO_ROOTLESS_CGROUP};
use nutshell::process::Exit;
use nutshell::spec::{Mount, Program, chapters};
use nutshell::userns::{describe_mapping, host_view};
use nutshell::workloads::Builtin;

/// Chapter 6: run the chapter 5 container in a user namespace, where its root is an
/// unprivileged user of the host. Run by a normal user, it is a rootless container.
///
/// Without a command it takes the tour: `id` and the maps inside, beside what the host
/// sees of the same process in /proc/PID/status. Then try `--break-it` (root inside, with
/// every capability, tries to reach the host), `--plan` (every step, the maps and the
/// mounts, without running anything), the same command as a normal user (rootless),
/// `--uid-map 0:200000:1000`, and `-- sh`.
#[derive(Parser)]
#[command(name = "ch06-user")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    #[command(flatten)]
    user: UserArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Break it: root in the container, with every capability, tries to write a host
    /// root's file, read a secret, make a device node, load a module and set the clock
    #[arg(long, conflicts_with = "command")]
    break_it: bool,
    /// The command to run inside [default: the tour: id, the maps, capabilities]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The tour, one shell: each command is echoed like a transcript, its errors included.
const TOUR: [&str; 4] = [
    "id",
    "cat /proc/self/uid_map /proc/self/gid_map",
    "grep -e Uid -e Gid -e CapEff /proc/self/status",
    "stat -c \"%u:%g %A %n\" /etc/passwd /dev",
];

fn main() -> std::process::ExitCode {
    main_with("ch06-user", || -> anyhow::Result<i32> {
        let args = Args::parse();
        let privileged = nix::unistd::geteuid().is_root();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        args.user.validate()?;
        args.limits.validate(privileged)?;
        let rootfs = args.container.rootfs()?;
        let program = if args.break_it {
            Program::Builtin(Builtin::TryTheHost {
                host_file: "/etc/passwd".into(),
                host_secret: "/etc/shadow".into(),
                scratch: "/tmp".into(),
            })
        } else if args.command.is_empty() {
            Program::shell(transcript(&TOUR))
        } else {
            Program::Args(args.command.clone())
        };
        // ANCHOR: spec
        let mut spec = chapters::for_chapter(6, &rootfs, program);
        args.namespaces.apply(&mut spec)?;
        args.user.apply(&mut spec)?;
        // Root's containers have a cgroup that counts; a normal user's only if it asks
        // for limits, which the plan then refuses with the reason.
        args.limits.apply(&mut spec, privileged)?;
        if args.break_it {
            // The host's /etc, owned by the host's root, bound read-write over the
            // container's; and root inside with every capability it can have, so that
            // only the user namespace stands between it and the host.
            spec.mounts.push(Mount::bind("/etc", "/etc", false));
            spec.process.capabilities = None;
        }
        // ANCHOR_END: spec
        // The default maps never include the host's root; given ones may.
        if args.break_it && spec.uid_maps.iter().any(|map| map.outside == 0) {
            anyhow::bail!(
                "--break-it with the host's root mapped into the container would really write host files: leave host uid 0 out of --uid-map"
            );
        }
        let Some((plan, facts)) = args.container.plan_or_print(&spec, &rootfs, true)? else {
            return Ok(0);
        };
        let mapping = plan
            .mapping
            .clone()
            .context("no user namespace in the plan")?;
        if args.break_it {
            println!("ch06-user --break-it: root in the container tries to act on the host");
        } else {
            let rootless = if privileged { "" } else { " (rootless)" };
            println!(
                "ch06-user: a user namespace{rootless}, with {} as its root",
                rootfs.display()
            );
        }
        print!("{}", describe_mapping(&mapping));
        if args.break_it {
            println!("The host's /etc is bound read-write over the container's /etc.\n");
        } else if privileged {
            println!("cgroup:  nutshell/{}", plan.id);
        } else {
            println!("cgroup:  none: {NO_ROOTLESS_CGROUP}");
            println!(
                "network: the host's. A veth pair (chapter 8) needs CAP_NET_ADMIN in the host's network namespace; rootless runtimes use slirp4netns or pasta instead"
            );
        }
        if !args.command.is_empty() {
            println!("\n$ {}", shell_line(&args.command));
        }
        nutshell::init::block_handled_signals().context("block the signals to forward")?;
        let mut container = launch::create(plan, &spec, &facts)?;
        // Created, not started: the host looks at the container's PID 1 now, so that the
        // view is there to print even if the command ends at once.
        let pid = container.pid().context("no first process")?;
        let view = host_view(pid.as_raw()).context("read the container's /proc/PID/status")?;
        container.start().context("start the container")?;
        let exit = container
            .wait_forwarding_signals()
            .context("wait for the container")?;
        container.remove()?;
        if !args.break_it {
            println!();
            for line in view {
                println!("[host]    {line}");
            }
        }
        if args.command.is_empty() && !args.break_it {
            explain_tour(mapping.maps.host_uid(0));
        }
        if let Exit::Signal(_) = exit {
            eprintln!("ch06-user: the container's PID 1 {exit}");
        }
        Ok(exit.code())
    })
}

/// What the tour showed.
fn explain_tour(root: Option<u32>) {
    let root = root.map_or("?".to_string(), |uid| uid.to_string());
    println!();
    println!("Inside, `id` says root; to the host the same process is uid {root}. The");
    println!("capabilities it kept (chapter 4's set, with CAP_MKNOD) count in its own user");
    println!("namespace only: over the processes in it, and over files whose owner is");
    println!("mapped into it. A file of an unmapped owner shows as 65534 (nobody), and");
    println!("root inside gets only what \"others\" may do.");
}
