//! Chapter 12: a tiny scheduler. Nodes are cgroup slices on this machine; pods are placed
//! on them by kube-scheduler's filters and a scorer, then run there as containers.
//!
//! The book walks through this file: book/src/ch12-scheduler.md.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use nutshell::cgroups::CpuStats;
use nutshell::cli::{ContainerArgs, main_with, require_root};
use nutshell::launch::{self, Container, ContainerId, HostFacts};
use nutshell::sched::cluster::{Cluster, Placement, Placing, Policy};
use nutshell::sched::slices::NodeSlice;
use nutshell::sched::{Amounts, Node, Pod};
use nutshell::sched::{bounds, demo, report, workloads};
use nutshell::spec::Program;
use nutshell::workloads::Builtin;

/// Chapter 12: place pods on nodes that are real cgroup slices, the way kube-scheduler
/// does, and run them there.
///
/// It makes `--nodes` nodes as cgroups `nutshell/nodes/node-<n>`, each with a CPU quota
/// and a memory limit (`--node-cpu`, `--node-memory`); the first two are labelled
/// `disk=ssd`, the last is a GPU node tainted `gpu=yes:NoSchedule`. It places the pods
/// of `examples/scheduler/pods.toml` (or `--pods FILE`) with `--policy`, prints where each
/// went and why any stayed pending, starts each pod's container in its node's slice with
/// busy threads, and measures each node's CPU use from the slice's own counters.
///
/// Try `--plan` (placement only, no root), `--policy least-allocated` (kube's default
/// spreads), `--policy batch`, `--nodes 3`, and `--spread-vs-pack`: the nodes each policy
/// needs for 300 Kubernetes-like pods, against the lower bound.
#[derive(Parser)]
#[command(name = "ch12-scheduler")]
struct Args {
    // --rootfs and --plan; --name is refused: each container is named after its pod.
    #[command(flatten)]
    container: ContainerArgs,
    /// How many nodes to make
    #[arg(long, value_name = "N", default_value_t = 4)]
    nodes: usize,
    /// Each node's CPU, as kube writes it (`500m`, `1`)
    #[arg(long, value_name = "CPU", default_value = "500m")]
    node_cpu: String,
    /// Each node's memory (`256Mi`, `1Gi`)
    #[arg(long, value_name = "SIZE", default_value = "256Mi")]
    node_memory: String,
    /// The pods to place, a TOML file like examples/scheduler/pods.toml
    #[arg(long, value_name = "FILE")]
    pods: Option<std::path::PathBuf>,
    /// How nodes are ranked, or `batch`: the whole list placed at once, bin-centric
    #[arg(long, value_enum, default_value_t = PolicyArg::BestFitL2)]
    policy: PolicyArg,
    /// How long the pods' busy threads are measured, in seconds; then they are ended
    #[arg(long, value_name = "N", default_value_t = 3)]
    seconds: u64,
    /// Break it: the nodes spreading and packing need for the same pods, against the
    /// lower bound (no root, nothing is run)
    #[arg(long, conflicts_with_all = ["pods", "plan"])]
    spread_vs_pack: bool,
}

/// The policies `--policy` names.
#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    KubeDefault,
    LeastAllocated,
    MostAllocated,
    BalancedAllocation,
    BestFitL2,
    DotProduct,
    Batch,
}

impl PolicyArg {
    /// How the pods are placed.
    fn placing(self) -> Placing {
        match self {
            PolicyArg::KubeDefault => Placing::Online(Policy::KubeDefault),
            PolicyArg::LeastAllocated => Placing::Online(Policy::LeastAllocated),
            PolicyArg::MostAllocated => Placing::Online(Policy::MostAllocated),
            PolicyArg::BalancedAllocation => Placing::Online(Policy::BalancedAllocation),
            PolicyArg::BestFitL2 => Placing::Online(Policy::BestFitL2),
            PolicyArg::DotProduct => Placing::Online(Policy::DotProduct),
            PolicyArg::Batch => Placing::Batch,
        }
    }
}

/// Most nodes it makes: enough to see spreading, and a typo makes no thousand cgroups.
const MAX_NODES: usize = 16;
const MAX_SECONDS: u64 = 60;
/// How much longer than the measuring window a pod's busy thread runs.
const SPIN_MARGIN_SECONDS: u64 = 60;
/// Pods in the spread-vs-pack demo, and the seed of their mix.
const DEMO_PODS: usize = 300;
const DEMO_SEED: u64 = 12;

fn main() -> std::process::ExitCode {
    main_with("ch12-scheduler", || -> anyhow::Result<i32> {
        let args = Args::parse();
        if args.spread_vs_pack {
            return spread_vs_pack();
        }
        // Everything is checked before anything is created: bad input leaves nothing.
        anyhow::ensure!(
            args.container.name.is_none(),
            "--name: ch12-scheduler names each container after its node and pod"
        );
        anyhow::ensure!(
            (1..=MAX_NODES).contains(&args.nodes),
            "--nodes {}: must be between 1 and {MAX_NODES}",
            args.nodes
        );
        anyhow::ensure!(
            (1..=MAX_SECONDS).contains(&args.seconds),
            "--seconds {}: must be between 1 and {MAX_SECONDS}",
            args.seconds
        );
        let capacity = Amounts::new(
            workloads::parse_cpu(&args.node_cpu).context("--node-cpu")?,
            workloads::parse_memory(&args.node_memory).context("--node-memory")?,
        );
        let pods = match &args.pods {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                workloads::read_pods(&text).with_context(|| format!("{}", path.display()))?
            }
            None => workloads::read_pods(demo::DEMO_PODS).context(demo::DEMO_PODS_PATH)?,
        };
        // ANCHOR: place
        let nodes = demo::demo_nodes(args.nodes, capacity);
        let mut cluster = Cluster::new(nodes.clone());
        let placing = args.policy.placing();
        let placement = cluster.place_by(&pods, &placing);
        // ANCHOR_END: place
        println!(
            "ch12-scheduler: {} nodes, {} pods\n",
            nodes.len(),
            pods.len()
        );
        print!("{}", report::nodes_table(&nodes));
        println!("\nplacement ({}):", placing.name());
        print!("{}", report::placement_table(&pods, &cluster, &placement));
        println!("\nrequested on each node:");
        print!("{}", report::allocation_table(&cluster));
        if args.container.plan {
            return Ok(0);
        }
        require_root(
            "ch12-scheduler",
            "creating cgroups and clone(2) with new namespaces need root",
        )?;
        let rootfs = args.container.rootfs()?;
        args.container.prepare_rootfs(&rootfs, false)?;
        run(&cluster, &pods, &placement, &rootfs, args.seconds)?;
        Ok(0)
    })
}

// ANCHOR: run
/// Makes each node's slice, starts each placed pod's container in it, and measures each
/// node's CPU use from its slice's counters while they run.
fn run(
    cluster: &Cluster,
    pods: &[Pod],
    placement: &Placement,
    rootfs: &std::path::Path,
    seconds: u64,
) -> anyhow::Result<()> {
    let facts = HostFacts::detect();
    let layout = facts
        .cgroups
        .as_ref()
        .context("no cgroup hierarchy is mounted on this host")?;
    // Before the clones: a signal now waits, pending, until the teardown is done.
    nutshell::init::block_handled_signals().context("block the signals to forward")?;
    let slices = cluster
        .nodes()
        .iter()
        .map(|info| NodeSlice::create(layout, facts.swap_accounting, &info.node))
        .collect::<Result<Vec<_>, _>>()?;
    // Declared after the slices, so dropped before them: a node's cgroup can only be
    // removed once its pods' cgroups are gone.
    let mut containers: Vec<Container> = Vec::new();
    for (pod, node) in pods.iter().zip(&placement.nodes) {
        let Some(node) = *node else { continue };
        let slice = &slices[node];
        // Each pod spins past the measuring window, however long the containers after it
        // take to start (seconds each in an emulated guest); it is ended after the window.
        let program = Program::Builtin(Builtin::Spin {
            seconds: seconds + SPIN_MARGIN_SECONDS,
        });
        let spec = slice.pod_spec(pod, rootfs, program)?;
        let id = ContainerId::parse(&format!("{}-{}", slice.node().name, pod.name))?;
        let container = launch::launch(Some(id), &spec, &facts)
            .with_context(|| format!("create the container of pod {}", pod.name))?;
        containers.push(container);
    }
    println!(
        "\nstarting {} containers, each in its node's slice:",
        containers.len()
    );
    for container in &mut containers {
        container.start()?;
        let cgroup = container.cgroup().context("a container without a cgroup")?;
        println!("  {} in {}", container.id(), cgroup.path());
    }
    // Measure inside the run: after the threads have started, before they stop.
    let settle = Duration::from_millis(300);
    thread::sleep(settle);
    let sample = || -> anyhow::Result<Vec<CpuStats>> {
        Ok(slices
            .iter()
            .map(|slice| slice.cgroup().cpu_stats())
            .collect::<Result<_, _>>()?)
    };
    let (start, before) = (Instant::now(), sample()?);
    thread::sleep(Duration::from_secs(seconds).saturating_sub(2 * settle));
    let (wall, after) = (start.elapsed(), sample()?);
    println!("\nCPU used by each node, from its slice's counters:");
    println!("NODE    PODS  QUOTA  USED   THROTTLED");
    for (index, slice) in slices.iter().enumerate() {
        let used = after[index].usage_ns.saturating_sub(before[index].usage_ns);
        let cpus = used as f64 / wall.as_nanos() as f64;
        let quota = slice.node().allocatable.cpu_milli as f64 / 1000.0;
        let throttled = after[index]
            .nr_throttled
            .saturating_sub(before[index].nr_throttled);
        println!(
            "{:<6}  {:>4}  {quota:>5.2}  {cpus:>5.2}  {throttled} periods",
            slice.node().name,
            cluster.nodes()[index].pods,
        );
    }
    for container in &mut containers {
        container.kill(nix::sys::signal::Signal::SIGKILL)?;
        container
            .wait_timeout(Duration::from_secs(10))?
            .context("a pod's container outlived SIGKILL by 10 s")?;
    }
    for container in containers {
        container.remove()?;
    }
    drop(slices);
    println!("\ncontainers and node slices removed.");
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: spread_vs_pack
/// Break it: the same Kubernetes-like pods under each policy, on a cluster that opens a
/// node whenever a pod fits none: spreading leaves every node part-empty and needs more.
fn spread_vs_pack() -> anyhow::Result<i32> {
    let pods = workloads::kube_mix(DEMO_PODS, DEMO_SEED);
    let template = Node::new("node", workloads::KUBE_NODE);
    let sizes: Vec<Amounts> = pods.iter().map(|p| p.requests).collect();
    let lower = bounds::lower_bounds(&sizes, template.allocatable)?.best;
    let ways = [
        Placing::Online(Policy::KubeDefault),
        Placing::Online(Policy::LeastAllocated),
        Placing::Online(Policy::MostAllocated),
        Placing::Online(Policy::BestFitL2),
        Placing::Online(Policy::DotProduct),
        Placing::Batch,
    ];
    println!(
        "ch12-scheduler --spread-vs-pack: {DEMO_PODS} Kubernetes-like pods (seed {DEMO_SEED}), nodes of {}",
        template.allocatable
    );
    println!("no placement can use fewer than {lower} nodes (the lower bound)\n");
    println!("POLICY               NODES  OVER THE BOUND");
    for result in demo::compare_policies(&pods, &template, &ways) {
        let over = (result.nodes_used as f64 / lower as f64 - 1.0) * 100.0;
        println!(
            "{:<19}  {:>5}  {over:>+5.1}%",
            result.policy, result.nodes_used
        );
    }
    Ok(0)
}
// ANCHOR_END: spread_vs_pack
