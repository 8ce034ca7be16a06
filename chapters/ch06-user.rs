//! Chapter 6: the chapter 5 container in a user namespace of its own, where root is an
//! unprivileged user of the host — and, run by a normal user, a rootless container.
//!
//! The book walks through this file: book/src/ch06-user.md.

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    LimitArgs, NamespaceArgs, RootfsArgs, UserArgs, main_with, shell_line, transcript,
};
use nutshell::container::{describe_mapping, host_view, start_container};
use nutshell::init;
use nutshell::mounts::{self, MountOp, MountPlan};
use nutshell::process::{Command, Exit, Gate};
use nutshell::rootfs::require_shell;
use nutshell::userns::{self, MappingPlan};

/// Chapter 6: run the chapter 5 container in a user namespace, where its root is an
/// unprivileged user of the host. Run by a normal user, it is a rootless container.
///
/// Without a command it takes the tour: `id` and the maps inside, beside what the host
/// sees of the same process in /proc/PID/status. Then try `--break-it` (root inside tries
/// to reach the host), `--plan` (the maps and the mounts, without running anything), the
/// same command as a normal user (rootless), `--uid-map 0:200000:1000`, and `-- sh`.
#[derive(Parser)]
#[command(name = "ch06-user")]
struct Args {
    #[command(flatten)]
    rootfs: RootfsArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    #[command(flatten)]
    user: UserArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the id maps and the mount plan and exit, without running anything
    #[arg(long, conflicts_with_all = ["command", "break_it"])]
    plan: bool,
    /// Break it: root in the container tries to write a host root's file, read a secret,
    /// make a device node, load a module and set the clock
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
    main_with("ch06-user", || {
        let args = Args::parse();
        // Everything is checked before anything is created: bad input leaves nothing.
        args.namespaces.validate()?;
        let mapping = args.user.plan()?;
        let privileged = nix::unistd::geteuid().is_root();
        if args.break_it && mapping.maps.maps_host_root() {
            anyhow::bail!(
                "--break-it with the host's root mapped into the container would really write host files: leave host uid 0 out of --uid-map"
            );
        }
        args.limits.check(privileged)?;
        let rootfs = args.rootfs.resolve()?;
        require_shell(&rootfs)?;
        mapping.check_reachable(&rootfs)?;
        let plan = mount_plan(&rootfs, &mapping);
        if args.plan {
            print!("{}", describe_mapping(&mapping));
            print!("\nmount plan:\n{plan}");
            return Ok(0);
        }
        if args.break_it {
            return break_it(&rootfs, plan, &mapping, &args.namespaces);
        }
        let name = format!("nutshell-{}", std::process::id());
        let (mut cgroup, no_cgroup) = args.limits.cgroup(&name, privileged)?;

        println!(
            "ch06-user: a user namespace{}, with {} as its root",
            if privileged { "" } else { " (rootless)" },
            rootfs.display()
        );
        print!("{}", describe_mapping(&mapping));
        match (&cgroup, &no_cgroup) {
            (Some(cgroup), _) => println!("cgroup:  {}", cgroup.name()),
            (None, Some(why)) => println!("cgroup:  none: {why}"),
            (None, None) => {}
        }
        if !privileged {
            println!(
                "network: the host's. A veth pair (chapter 8) needs CAP_NET_ADMIN in the host's network namespace; rootless runtimes use slirp4netns or pasta instead"
            );
        }

        let argv: Vec<String> = if args.command.is_empty() {
            vec!["sh".into(), "-c".into(), transcript(&TOUR)]
        } else {
            println!("\n$ {}", shell_line(&args.command));
            args.command.clone()
        };
        let command = Command::new(&argv)?;
        // Before the clone: a signal sent from here on waits, pending, to be forwarded.
        init::block_handled_signals().context("block the signals to forward")?;
        // The host looks at the container's PID 1 before it runs the command, so that
        // the view is there to print even if the command ends at once.
        let (waiter, opener) = Gate::new()?.split();
        let child = start_container(&mapping, cgroup.as_ref(), &plan, &args.namespaces, || {
            if !waiter.wait() {
                return 1;
            }
            init::run_as_init(&command)
        })
        .with_context(|| format!("run `{}`", argv.join(" ")))?;
        let host_view = host_view(child.pid().as_raw());
        opener.open().context("let the container go on")?;
        let exit = init::wait_forwarding_signals(child).context("wait for the container")?;
        println!();
        for line in host_view? {
            println!("[host]    {line}");
        }
        if args.command.is_empty() {
            explain_tour(&mapping);
        }
        if let Some(cgroup) = cgroup.as_mut() {
            cgroup.remove()?;
        }
        if let Exit::Signal(_) = exit {
            eprintln!("ch06-user: the container's PID 1 {exit}");
        }
        Ok(exit.code())
    })
}

// ANCHOR: mount_plan
/// Chapter 4's mount plan, adjusted for a user namespace. The tty group owns new
/// terminals only if it is mapped: devpts refuses a gid the namespace does not have.
fn mount_plan(rootfs: &Path, mapping: &MappingPlan) -> MountPlan {
    let tty_gid = mounts::tty_gid(rootfs).filter(|&gid| mapping.maps.host_gid(gid).is_some());
    MountPlan::for_rootfs(rootfs, tty_gid).in_user_namespace()
}
// ANCHOR_END: mount_plan

/// What the tour showed.
fn explain_tour(mapping: &MappingPlan) {
    let root = mapping
        .maps
        .host_uid(0)
        .map_or("?".to_string(), |uid| uid.to_string());
    println!();
    println!("Inside, `id` says root; to the host the same process is uid {root}. Its");
    println!("capabilities are all there, but they are capabilities in its own user");
    println!("namespace: over the namespaces that namespace owns (hostname, mounts, PIDs)");
    println!("and over files whose owner is mapped into it. A file of an unmapped owner");
    println!("shows as 65534 (nobody), and root inside gets only what \"others\" may do.");
}

// ANCHOR: break_it
/// The break-it demo: the host's /etc, owned by the host's root, is bound read-write
/// over the container's /etc, and root inside tries to act on the host. (`main` has
/// refused a map that includes the host's root.)
fn break_it(
    rootfs: &Path,
    mut plan: MountPlan,
    mapping: &MappingPlan,
    namespaces: &NamespaceArgs,
) -> anyhow::Result<i32> {
    plan.add_before_pivot(MountOp::Bind {
        source: "/etc".into(),
        target: rootfs.join("etc"),
        recursive: false,
        read_only: false,
    });
    println!("ch06-user --break-it: root in the container tries to act on the host");
    print!("{}", describe_mapping(mapping));
    println!("The host's /etc is bound read-write over the container's /etc.\n");
    let child = start_container(mapping, None, &plan, namespaces, || {
        let attempts = userns::try_host_actions(
            Path::new("/etc/passwd"),
            Path::new("/etc/shadow"),
            Path::new("/tmp"),
        );
        let mut escaped = false;
        for attempt in &attempts {
            println!("[inside]  {attempt}");
            escaped |= attempt.escaped();
        }
        if escaped {
            println!("ESCAPED: root in the container acted on the host");
            return 1;
        }
        println!("\nNOT ESCAPED: every attempt on the host was refused.");
        0
    })?;
    let exit = child.wait()?;
    Ok(exit.code())
}
// ANCHOR_END: break_it
