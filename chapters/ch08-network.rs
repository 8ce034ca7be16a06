//! Chapter 8: the chapter 7 container in a network namespace of its own, connected to a
//! bridge on the host through a veth pair, with an address, a default route, NAT, and
//! published ports.
//!
//! The book walks through this file: book/src/ch08-network.md.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nutshell::cli::{
    ContainerArgs, LimitArgs, NamespaceArgs, NetworkArgs, UserArgs, main_with, shell_line,
    transcript,
};
use nutshell::launch::{self, Container, ContainerId, HostFacts};
use nutshell::net::{Network, probe};
use nutshell::spec::{ContainerSpec, NamespaceMode, Program, RootFs, Upper, chapters};

/// Chapter 8: run the chapter 7 container in a network namespace of its own: as root on
/// a bridge (a veth pair, an address, NAT, -p to publish ports), as a normal user
/// through pasta.
///
/// Without a command it takes the tour: a web server container publishing port 8080,
/// a second container that fetches its page over the bridge, and the host fetching it
/// through the published port. Then try `--plan`, `--network none`, `--break-it` (a
/// fresh network namespace, as the kernel makes it), `-p 8080:80 -- httpd -f -p 80`,
/// and `-- sh`.
#[derive(Parser)]
#[command(name = "ch08-network")]
struct Args {
    #[command(flatten)]
    container: ContainerArgs,
    #[command(flatten)]
    namespaces: NamespaceArgs,
    #[command(flatten)]
    user: UserArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    network: NetworkArgs,
    /// Break it: a network namespace left as the kernel makes it, beside one whose `lo`
    /// nutshell brought up: even 127.0.0.1 needs a link that is up
    #[arg(long, conflicts_with = "command")]
    break_it: bool,
    /// The command to run inside [default: the tour]
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The client's half of the tour; `{server}` is the server's address.
const CLIENT: [&str; 4] = [
    "ip -4 -o addr show",
    "ip route",
    "cat /etc/hosts",
    "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {server} 80 | tail -1",
];

/// The web server: a page that says whose it is, served by busybox's httpd.
const SERVER: &str = "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www";

/// The break-it demo's commands, in each of its two containers.
const BREAK_IT: [&str; 3] = [
    "ip -o link show lo | cut -d' ' -f2,3",
    "nc -l -p 7 & sleep 0.3; echo ping | nc -w 1 127.0.0.1 7",
    "kill $! 2>/dev/null; true",
];

const BIN: &str = "ch08-network";

fn main() -> std::process::ExitCode {
    main_with(BIN, || -> anyhow::Result<i32> {
        let args = Args::parse();
        let privileged = nix::unistd::geteuid().is_root();
        // Everything is checked before anything is made: bad input leaves nothing.
        args.namespaces.validate()?;
        args.user.validate()?;
        args.limits.validate(privileged)?;
        args.network.network(privileged)?;
        let rootfs = args.container.rootfs()?;
        let id = args.container.id()?;
        if args.break_it {
            return break_it(&args, &id);
        }
        let tour = args.command.is_empty();
        let program = if tour && privileged {
            Program::shell(SERVER)
        } else if tour {
            Program::shell(transcript(&CLIENT[..3]))
        } else {
            Program::Args(args.command.clone())
        };
        let mut spec = spec(&args, program, privileged)?;
        let bridge_tour = tour && privileged;
        if bridge_tour && let Some(Network::Bridge(net)) = &mut spec.network {
            // The tour's first container is the web server, publishing 8080 unless
            // told otherwise; --plan shows its plan.
            spec.hostname = Some("web".to_string());
            if net.ports.is_empty() {
                net.ports.push("8080:80".parse()?);
            }
        }
        let Some((plan, facts)) = args.container.plan_or_print(&spec, &rootfs, true)? else {
            return Ok(0);
        };
        if bridge_tour {
            return tour_on_the_bridge(plan, &spec, &facts, &id);
        }
        if !args.command.is_empty() {
            println!("$ {}", shell_line(&args.command));
        }
        run(plan, &spec, &facts)
    })
}

// ANCHOR: spec
/// The chapter 7 container (an overlay root, idmapped for root) in a network namespace
/// of its own, connected as the flags say.
fn spec(args: &Args, program: Program, privileged: bool) -> anyhow::Result<ContainerSpec> {
    let rootfs = args.container.rootfs()?;
    let mut spec = chapters::for_chapter(8, &rootfs, program);
    spec.root.fs = RootFs::Overlay {
        lowers: vec![rootfs],
        upper: Upper::Managed { keep: false },
        idmap: privileged,
    };
    args.namespaces.apply(&mut spec)?;
    args.user.apply(&mut spec)?;
    args.limits.apply(&mut spec, privileged)?;
    args.network.apply(&mut spec, privileged)?;
    Ok(spec)
}
// ANCHOR_END: spec

/// Run one container to its end, saying on stderr how it is connected.
fn run(plan: launch::LaunchPlan, spec: &ContainerSpec, facts: &HostFacts) -> anyhow::Result<i32> {
    nutshell::init::block_handled_signals().context("block the signals to forward")?;
    let mut container = launch::create(plan, spec, facts)?;
    eprintln!("{BIN}: {}", connected(&container, spec));
    container.start().context("start the container")?;
    let exit = container.wait_forwarding_signals()?;
    container.remove()?;
    Ok(exit.code())
}

/// One line on how `container` is connected: its address, its network, its ports.
fn connected(container: &Container, spec: &ContainerSpec) -> String {
    let mut line = format!("container {}", container.id());
    match (&spec.network, container.address()) {
        (Some(Network::Bridge(net)), Some(address)) => {
            line += &format!(
                ": eth0 {address}/{} on bridge {}, gateway {}",
                net.subnet.prefix(),
                net.bridge,
                net.subnet.gateway()
            );
        }
        (Some(Network::Pasta { .. }), _) => line += ": a network through pasta",
        (Some(Network::Loopback), _) => line += ": only lo",
        _ if spec.namespaces.net == NamespaceMode::Host => line += ": the host's network",
        _ => line += ": a network namespace as the kernel makes it",
    }
    for port in spec.network.iter().flat_map(Network::ports) {
        line += &format!(", publishes {port}");
    }
    line
}

// ANCHOR: tour
/// The tour: a web server publishing port 8080, a client container fetching its page
/// over the bridge, and this process fetching it from the host, through the published
/// port, at 127.0.0.1 and at the bridge's address.
fn tour_on_the_bridge(
    plan: launch::LaunchPlan,
    spec: &ContainerSpec,
    facts: &HostFacts,
    id: &ContainerId,
) -> anyhow::Result<i32> {
    let Some(Network::Bridge(net)) = &spec.network else {
        anyhow::bail!("the tour runs on a bridge network: give a command for --network none");
    };
    println!(
        "{BIN}: two containers on bridge {} ({}), NAT in nftables' table inet nutshell",
        net.bridge, net.subnet
    );
    let mut server = launch::create(plan, spec, facts)?;
    server.start().context("start the server")?;
    let address = server.address().context("the server has no address")?;
    println!("\n[web]    {}", connected(&server, spec));
    println!("[web]    {SERVER}");

    let client_id = ContainerId::parse(&format!("{}-client", id.as_str()))?;
    let script = CLIENT.map(|c| c.replace("{server}", &address.to_string()));
    let mut client_spec = spec.clone();
    client_spec.process.program =
        Program::shell(transcript(&script.each_ref().map(String::as_str)));
    client_spec.hostname = Some("client".to_string());
    if let Some(Network::Bridge(net)) = &mut client_spec.network {
        net.ports.clear();
    }
    let plan = launch::plan(&client_id, &client_spec, facts)?;
    let mut client = launch::create(plan, &client_spec, facts)?;
    println!("\n[client] {}", connected(&client, &client_spec));
    client.start().context("start the client")?;
    let exit = client.wait()?;
    client.remove()?;

    let port = net.ports[0];
    for (what, host) in [
        (
            "localhost: DNAT in output, then masquerade",
            Ipv4Addr::LOCALHOST,
        ),
        ("the bridge's address: DNAT in output", net.subnet.gateway()),
    ] {
        let to = SocketAddr::from((port.host_ip.unwrap_or(host), port.host_port));
        let page = probe::http_get(to, Duration::from_secs(5))
            .with_context(|| format!("GET http://{to}/"))?;
        print!("\n[host]   GET http://{to}/ ({what})\n{page}");
    }
    server.remove()?;
    Ok(exit.code())
}
// ANCHOR_END: tour

// ANCHOR: break_it
/// The break-it demo: the same commands in a network namespace as the kernel makes it
/// (no network step at all) and in one whose `lo` nutshell brought up.
fn break_it(args: &Args, id: &ContainerId) -> anyhow::Result<i32> {
    let privileged = nix::unistd::geteuid().is_root();
    args.container
        .prepare_rootfs(&args.container.rootfs()?, true)?;
    let facts = HostFacts::detect();
    println!("{BIN} --break-it: a new network namespace, then the same with lo up");
    for (network, what) in [
        (
            None,
            "no network step: the namespace as the kernel makes it",
        ),
        (
            Some(Network::Loopback),
            "--network none: nutshell brings lo up",
        ),
    ] {
        let mut spec = spec(args, Program::shell(transcript(&BREAK_IT)), privileged)?;
        *spec
            .namespaces
            .mode_mut(nutshell::namespaces::Namespace::Net) = NamespaceMode::New;
        spec.network = network;
        println!("\n[container] {what}");
        let plan = launch::plan(id, &spec, &facts)?;
        launch::run_to_end(plan, &spec, &facts)?;
    }
    Ok(0)
}
// ANCHOR_END: break_it
