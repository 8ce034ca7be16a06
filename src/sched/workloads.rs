//! Workloads to place: pod lists read from a TOML file, and seeded generators.
//!
//! Two generators. [`kube_mix`] draws pods the way a small Kubernetes cluster sees them,
//! in kube's usual request sizes. [`caprara_toth`] draws the ten classes of
//! 2-dimensional vector packing instances of the packing literature, the benchmark every
//! paper on the problem reports, so that a packer here can be compared with published
//! numbers. Both draw from [`Rng`], a generator written out here, so that a seed gives
//! the same workload on every machine and with every version of every crate.
//!
//! A pod list file names each pod with what it requests, in kube's quantity syntax:
//!
//! ```toml
//! [[pod]]
//! name = "web"
//! requests = { cpu = "500m", memory = "256Mi" }
//! limits = { cpu = "1", memory = "512Mi" }
//! node_selector = { disk = "ssd" }
//! tolerations = [{ key = "gpu", operator = "Exists", effect = "NoSchedule" }]
//! host_ports = [8080]           # or { port = 8080, protocol = "UDP" }
//! count = 3                     # web-1, web-2, web-3
//! ```
//!
//! See also kube's [resource units](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#resource-units-in-kubernetes).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use thiserror::Error;

use super::model::{
    Amounts, HostPort, Pod, Protocol, TaintEffect, Toleration, TolerationOperator, memory_text,
};

/// Why a workload could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkloadError {
    /// Not one of the ten Caprara–Toth classes.
    #[error("Caprara-Toth class {class} does not exist; the classes are 1 to 10")]
    UnknownClass {
        /// The class asked for.
        class: u8,
    },
    /// Class 10 is made of triplets.
    #[error("Caprara-Toth class 10 is made of triplets: {items} items is not a multiple of 3")]
    NotTriplets {
        /// The number of items asked for.
        items: usize,
    },
    /// Not a CPU quantity.
    #[error("\"{text}\" is not a CPU quantity (like 500m or 2)")]
    NotCpu {
        /// The text given.
        text: String,
    },
    /// Not a memory quantity.
    #[error("\"{text}\" is not a memory quantity (like 128Mi, 1Gi or 1000000)")]
    NotMemory {
        /// The text given.
        text: String,
    },
    /// The file is not TOML, or not a pod list.
    #[error("pod list, line {line}: {message}")]
    File {
        /// The line where it goes wrong, from 1.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A field of a pod is wrong.
    #[error("pod \"{pod}\": {field} {source}")]
    Field {
        /// The pod's name.
        pod: String,
        /// The field, such as `requests.cpu`.
        field: String,
        /// What is wrong with it.
        source: Box<WorkloadError>,
    },
    /// A zero `count`.
    #[error("pod \"{pod}\": count is 0; give at least 1, or leave count out for one pod")]
    ZeroCount {
        /// The pod's name.
        pod: String,
    },
    /// A name used twice.
    #[error("pod \"{pod}\" is listed twice; pod names must be unique")]
    DuplicateName {
        /// The name.
        pod: String,
    },
    /// Limits that give one resource but not the other.
    #[error("pod \"{pod}\": limits.{resource} is missing; give both cpu and memory, or no limits")]
    PartialLimits {
        /// The pod's name.
        pod: String,
        /// The resource left out.
        resource: &'static str,
    },
    /// A limit below its request.
    #[error("pod \"{pod}\": limits.{resource} {limit} is below requests.{resource} {request}")]
    LimitBelowRequest {
        /// The pod's name.
        pod: String,
        /// `cpu` or `memory`.
        resource: &'static str,
        /// The limit, in kube's notation.
        limit: String,
        /// The request, in kube's notation.
        request: String,
    },
}

// ANCHOR: rng
/// A small seeded generator, splitmix64 (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014): a 64-bit counter stepped by a fixed
/// odd constant and scrambled. Written out so that workloads do not change when a
/// crate does.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`, each equally likely; `0` when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // `x % n` alone favours small results when 2^64 is not a multiple of n; drawing
        // again above the last whole multiple removes that bias.
        let limit = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < limit {
                return x % n;
            }
        }
    }

    /// A number in `lo..=hi`, each equally likely; `lo` when `hi < lo`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi < lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// One of `choices`, each as likely as its weight.
    fn weighted<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        let total: u64 = choices.iter().map(|&(_, w)| w).sum();
        let mut pick = self.below(total);
        for &(choice, weight) in choices {
            if pick < weight {
                return choice;
            }
            pick -= weight;
        }
        choices[choices.len() - 1].0
    }

    /// Shuffles `items` in place (Fisher–Yates).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
// ANCHOR_END: rng

const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;

/// The node [`kube_mix`] pods are packed into: 4 CPUs and 16 GiB, a common small cloud
/// machine (AWS m5.xlarge, GCP e2-standard-4).
pub const KUBE_NODE: Amounts = Amounts::new(4000, 16 * GI);

/// CPU requests of [`kube_mix`], with weights.
const KUBE_CPU: [(u64, u64); 5] = [(100, 30), (250, 25), (500, 25), (1000, 15), (2000, 5)];
/// Memory requests of [`kube_mix`], with weights.
const KUBE_MEMORY: [(u64, u64); 6] = [
    (128 * MI, 25),
    (256 * MI, 25),
    (512 * MI, 20),
    (GI, 15),
    (2 * GI, 10),
    (4 * GI, 5),
];

/// `n` pods named `pod-0001`, `pod-0002`, …, with requests drawn from kube's usual sizes,
/// weighted toward small, CPU and memory drawn independently:
///
/// | CPU request | share | memory request | share |
/// |-------------|-------|----------------|-------|
/// | 100m        | 30%   | 128Mi          | 25%   |
/// | 250m        | 25%   | 256Mi          | 25%   |
/// | 500m        | 25%   | 512Mi          | 20%   |
/// | 1000m       | 15%   | 1Gi            | 15%   |
/// | 2000m       | 5%    | 2Gi            | 10%   |
/// |             |       | 4Gi            | 5%    |
///
/// A pod asks on average for about 470m and 760Mi, so a [`KUBE_NODE`] holds about eight
/// by CPU and twenty-one by memory: CPU is the scarce resource, as on most clusters.
pub fn kube_mix(n: usize, seed: u64) -> Vec<Pod> {
    let mut rng = Rng::new(seed);
    (1..=n)
        .map(|i| {
            let cpu = rng.weighted(&KUBE_CPU);
            let memory = rng.weighted(&KUBE_MEMORY);
            Pod::new(format!("pod-{i:04}"), Amounts::new(cpu, memory))
        })
        .collect()
}

/// A vector packing instance: identical nodes and the pods to pack into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Every node's capacity.
    pub capacity: Amounts,
    /// The items, as pods requesting dimension 1 as `cpu_milli` and dimension 2 as
    /// `memory`, in plain units.
    pub pods: Vec<Pod>,
    /// The optimum number of nodes, when the construction fixes it.
    pub known_optimum: Option<usize>,
}

/// An instance of class `class` (1 to 10) of the 2-dimensional vector packing benchmark,
/// with `n` items, drawn from `seed`.
///
/// The classes are those of Caprara and Toth, "Lower bounds and algorithms for the
/// 2-dimensional vector packing problem", Discrete Applied Mathematics 111 (2001)
/// 231–262, who gather classes 1–8 from earlier vector packing experiments (Spieksma,
/// "A branch-and-bound algorithm for the two-dimensional vector packing problem",
/// Computers & Operations Research 21, 1994, among them) and add classes 9 and 10.
/// Sizes are uniform integers `U[a,b]`, `w` in dimension 1 and `v` in dimension 2,
/// drawn independently unless the class says:
///
/// | class | capacity (both) | w            | v                                 |
/// |-------|-----------------|--------------|-----------------------------------|
/// | 1     | 1000            | `U[100,400]` | `U[100,400]`                      |
/// | 2     | 1000            | `U[1,1000]`  | `U[1,1000]`                       |
/// | 3     | 1000            | `U[200,800]` | `U[200,800]`                      |
/// | 4     | 1000            | `U[50,200]`  | `U[50,200]`                       |
/// | 5     | 1000            | `U[25,100]`  | `U[25,100]`                       |
/// | 6     | 150             | `U[20,100]`  | `U[20,100]`                       |
/// | 7     | 150             | `U[20,100]`  | `U[w−10,w+10]`: correlated        |
/// | 8     | 150             | `U[20,100]`  | `U[110−w,130−w]`: anti-correlated |
/// | 9     | see below       | `U[100,400]` | `U[100,400]`                      |
/// | 10    | 100             | triplets     | triplets                          |
///
/// Class 9 sizes its nodes to the items: with `L = ⌈max_d Σ r_d / 1000⌉`, capacity `d`
/// is `⌈Σ r_d / L⌉`, so the volume bound is `L` and the items fill nodes to about 1000
/// in both dimensions: tight instances. (With very few items that can fall below the
/// largest item; the capacity is raised to it there.) Class 10 is made of triplets: two
/// items of `U[25,50]` in each dimension and a third that fills the node exactly
/// (`100 − a − b`), so the optimum is `n/3` nodes with three items each; the items are
/// shuffled, and the pods named `triplet-0001-a`, `-b`, `-c` say which belong together.
///
/// The table follows the generator of Mark Stillwell's `vpack` library, which implements
/// these classes from the paper.
pub fn caprara_toth(class: u8, n: usize, seed: u64) -> Result<Instance, WorkloadError> {
    let mut rng = Rng::new(seed);
    let uniform = |rng: &mut Rng, a: u64, b: u64| Amounts::new(rng.range(a, b), rng.range(a, b));
    let numbered = |sizes: Vec<Amounts>| -> Vec<Pod> {
        sizes
            .into_iter()
            .enumerate()
            .map(|(i, size)| Pod::new(format!("item-{:04}", i + 1), size))
            .collect()
    };
    let independent = |rng: &mut Rng, a, b, capacity| Instance {
        capacity: Amounts::new(capacity, capacity),
        pods: numbered((0..n).map(|_| uniform(rng, a, b)).collect()),
        known_optimum: None,
    };
    let instance = match class {
        1 => independent(&mut rng, 100, 400, 1000),
        2 => independent(&mut rng, 1, 1000, 1000),
        3 => independent(&mut rng, 200, 800, 1000),
        4 => independent(&mut rng, 50, 200, 1000),
        5 => independent(&mut rng, 25, 100, 1000),
        6 => independent(&mut rng, 20, 100, 150),
        7 | 8 => {
            let sizes = (0..n)
                .map(|_| {
                    let w = rng.range(20, 100);
                    let v = if class == 7 {
                        rng.range(w - 10, w + 10)
                    } else {
                        rng.range(110 - w, 130 - w)
                    };
                    Amounts::new(w, v)
                })
                .collect();
            Instance {
                capacity: Amounts::new(150, 150),
                pods: numbered(sizes),
                known_optimum: None,
            }
        }
        9 => {
            let sizes: Vec<Amounts> = (0..n).map(|_| uniform(&mut rng, 100, 400)).collect();
            let cpu: u64 = sizes.iter().map(|s| s.cpu_milli).sum();
            let memory: u64 = sizes.iter().map(|s| s.memory).sum();
            let nodes = cpu.max(memory).div_ceil(1000).max(1);
            // For a handful of items ⌈Σ/L⌉ can fall below the largest item; raise it
            // there so that every item fits (it never happens past a few dozen items).
            let largest = |get: fn(&Amounts) -> u64| sizes.iter().map(get).max().unwrap_or(0);
            Instance {
                capacity: Amounts::new(
                    cpu.div_ceil(nodes).max(largest(|s| s.cpu_milli)),
                    memory.div_ceil(nodes).max(largest(|s| s.memory)),
                ),
                pods: numbered(sizes),
                known_optimum: None,
            }
        }
        10 => {
            if !n.is_multiple_of(3) {
                return Err(WorkloadError::NotTriplets { items: n });
            }
            let mut pods = Vec::with_capacity(n);
            for t in 1..=n / 3 {
                let a = uniform(&mut rng, 25, 50);
                let b = uniform(&mut rng, 25, 50);
                let c = Amounts::new(100, 100).minus(a).minus(b);
                for (part, size) in [("a", a), ("b", b), ("c", c)] {
                    pods.push(Pod::new(format!("triplet-{t:04}-{part}"), size));
                }
            }
            rng.shuffle(&mut pods);
            Instance {
                capacity: Amounts::new(100, 100),
                pods,
                known_optimum: Some(n / 3),
            }
        }
        _ => return Err(WorkloadError::UnknownClass { class }),
    };
    Ok(instance)
}

/// The digits of a decimal `int.frac`, as (mantissa, number of fraction digits), or
/// `None` when it is not one.
fn decimal(text: &str) -> Option<(u128, u32)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || frac.len() > 18 {
        return None;
    }
    if text.ends_with('.') || int.len() > 20 {
        return None;
    }
    let mut mantissa: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(u128::from(b - b'0'))?;
    }
    Some((mantissa, frac.len() as u32))
}

/// `mantissa / 10^scale · unit`, when that is a whole number that fits a `u64`.
fn whole(mantissa: u128, scale: u32, unit: u128) -> Option<u64> {
    let value = mantissa.checked_mul(unit)?;
    let divisor = 10u128.pow(scale);
    if value % divisor != 0 {
        return None;
    }
    u64::try_from(value / divisor).ok()
}

/// CPU in kube's syntax, in millicores: `500m` is 500, `0.5` is 500, `2` is 2000.
/// Finer than a millicore is refused, as kube refuses it.
pub fn parse_cpu(text: &str) -> Result<u64, WorkloadError> {
    let bad = || WorkloadError::NotCpu { text: text.into() };
    let trimmed = text.trim();
    let (number, unit) = match trimmed.strip_suffix('m') {
        Some(milli) => (milli, 1),
        None => (trimmed, 1000),
    };
    let (mantissa, scale) = decimal(number).ok_or_else(bad)?;
    whole(mantissa, scale, unit).ok_or_else(bad)
}

/// Memory in kube's syntax, in bytes: binary suffixes `Ki Mi Gi Ti Pi Ei`, decimal ones
/// `k M G T P E`, or plain bytes; a decimal point is allowed where the result is whole
/// (`1.5Gi`).
pub fn parse_memory(text: &str) -> Result<u64, WorkloadError> {
    let bad = || WorkloadError::NotMemory { text: text.into() };
    let trimmed = text.trim();
    const SUFFIXES: [(&str, u128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let (number, unit) = SUFFIXES
        .iter()
        .find_map(|&(suffix, unit)| trimmed.strip_suffix(suffix).map(|n| (n, unit)))
        .unwrap_or((trimmed, 1));
    let (mantissa, scale) = decimal(number).ok_or_else(bad)?;
    whole(mantissa, scale, unit).ok_or_else(bad)
}

/// A quantity as TOML gives it: kube's string, or a bare number (`cpu = 2`).
#[derive(Deserialize)]
#[serde(untagged)]
enum QuantityEntry {
    Text(String),
    Integer(u64),
    Float(f64),
}

impl QuantityEntry {
    fn text(&self) -> String {
        match self {
            QuantityEntry::Text(text) => text.clone(),
            QuantityEntry::Integer(n) => n.to_string(),
            QuantityEntry::Float(x) => x.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountsEntry {
    cpu: Option<QuantityEntry>,
    memory: Option<QuantityEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TolerationEntry {
    #[serde(default)]
    key: String,
    #[serde(default)]
    operator: TolerationOperator,
    #[serde(default)]
    value: String,
    effect: Option<TaintEffect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortSpec {
    port: u16,
    #[serde(default)]
    protocol: Protocol,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortEntry {
    Number(u16),
    Spec(PortSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PodEntry {
    name: String,
    requests: Option<AmountsEntry>,
    limits: Option<AmountsEntry>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    #[serde(default)]
    tolerations: Vec<TolerationEntry>,
    #[serde(default)]
    host_ports: Vec<PortEntry>,
    count: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PodFile {
    #[serde(default)]
    pod: Vec<PodEntry>,
}

/// Parses one quantity of a pod's field, naming the pod and field if it is wrong.
fn quantity(
    pod: &str,
    field: &str,
    entry: Option<&QuantityEntry>,
    parse: fn(&str) -> Result<u64, WorkloadError>,
) -> Result<Option<u64>, WorkloadError> {
    entry
        .map(|entry| {
            parse(&entry.text()).map_err(|source| WorkloadError::Field {
                pod: pod.into(),
                field: field.into(),
                source: Box::new(source),
            })
        })
        .transpose()
}

/// Reads a pod list in TOML (the format is in the [module docs](self)).
///
/// A missing request is zero, or the limit when one is given (as kube defaults it);
/// limits, when given, need both resources and may not be below the requests. With
/// `count = N` the pod is repeated as `name-1` … `name-N`. Unknown fields, zero counts
/// and duplicate names are refused; every error is one line naming the pod and field.
pub fn read_pods(text: &str) -> Result<Vec<Pod>, WorkloadError> {
    let file: PodFile = toml::from_str(text).map_err(|err| {
        let line = err.span().map_or(0, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        });
        WorkloadError::File {
            line,
            message: err.message().replace('\n', " "),
        }
    })?;
    let mut pods = Vec::new();
    let mut names = HashSet::new();
    for entry in file.pod {
        let name = entry.name.as_str();
        let req = entry.requests.as_ref();
        let lim = entry.limits.as_ref();
        let req_cpu = quantity(
            name,
            "requests.cpu",
            req.and_then(|r| r.cpu.as_ref()),
            parse_cpu,
        )?;
        let req_mem = quantity(
            name,
            "requests.memory",
            req.and_then(|r| r.memory.as_ref()),
            parse_memory,
        )?;
        let lim_cpu = quantity(
            name,
            "limits.cpu",
            lim.and_then(|l| l.cpu.as_ref()),
            parse_cpu,
        )?;
        let lim_mem = quantity(
            name,
            "limits.memory",
            lim.and_then(|l| l.memory.as_ref()),
            parse_memory,
        )?;
        let limits = match (lim, lim_cpu, lim_mem) {
            (None, _, _) => None,
            (Some(_), Some(cpu), Some(memory)) => Some(Amounts::new(cpu, memory)),
            (Some(_), None, _) => {
                return Err(WorkloadError::PartialLimits {
                    pod: name.into(),
                    resource: "cpu",
                });
            }
            (Some(_), Some(_), None) => {
                return Err(WorkloadError::PartialLimits {
                    pod: name.into(),
                    resource: "memory",
                });
            }
        };
        let requests = Amounts::new(
            req_cpu.or(lim_cpu).unwrap_or(0),
            req_mem.or(lim_mem).unwrap_or(0),
        );
        if let Some(limits) = limits {
            if limits.cpu_milli < requests.cpu_milli {
                return Err(WorkloadError::LimitBelowRequest {
                    pod: name.into(),
                    resource: "cpu",
                    limit: format!("{}m", limits.cpu_milli),
                    request: format!("{}m", requests.cpu_milli),
                });
            }
            if limits.memory < requests.memory {
                return Err(WorkloadError::LimitBelowRequest {
                    pod: name.into(),
                    resource: "memory",
                    limit: memory_text(limits.memory),
                    request: memory_text(requests.memory),
                });
            }
        }
        let pod = Pod {
            name: entry.name.clone(),
            requests,
            limits,
            node_selector: entry.node_selector.clone(),
            tolerations: entry
                .tolerations
                .iter()
                .map(|t| Toleration {
                    key: t.key.clone(),
                    operator: t.operator,
                    value: t.value.clone(),
                    effect: t.effect,
                })
                .collect(),
            host_ports: entry
                .host_ports
                .iter()
                .map(|p| match p {
                    PortEntry::Number(port) => HostPort {
                        port: *port,
                        protocol: Protocol::Tcp,
                    },
                    PortEntry::Spec(spec) => HostPort {
                        port: spec.port,
                        protocol: spec.protocol,
                    },
                })
                .collect(),
        };
        let copies: Vec<Pod> = match entry.count {
            None => vec![pod],
            Some(0) => return Err(WorkloadError::ZeroCount { pod: name.into() }),
            Some(count) => (1..=count)
                .map(|i| Pod {
                    name: format!("{name}-{i}"),
                    ..pod.clone()
                })
                .collect(),
        };
        for copy in copies {
            if !names.insert(copy.name.clone()) {
                return Err(WorkloadError::DuplicateName { pod: copy.name });
            }
            pods.push(copy);
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_workload() {
        assert_eq!(kube_mix(50, 42), kube_mix(50, 42));
        assert_ne!(kube_mix(50, 42), kube_mix(50, 43));
        for class in 1..=10 {
            assert_eq!(caprara_toth(class, 30, 5), caprara_toth(class, 30, 5));
        }
    }

    #[test]
    fn splitmix64_gives_its_published_first_outputs() {
        // The reference implementation's first output from seed 0.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn range_stays_inclusive_and_reaches_both_ends() {
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..1000).map(|_| rng.range(3, 6)).collect();
        assert!(draws.iter().all(|&x| (3..=6).contains(&x)));
        assert!(draws.contains(&3) && draws.contains(&6));
        assert_eq!(rng.range(7, 7), 7);
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn kube_mix_pods_are_numbered_and_fit_a_node() {
        let pods = kube_mix(120, 9);
        assert_eq!(pods[0].name, "pod-0001");
        assert_eq!(pods[119].name, "pod-0120");
        assert!(pods.iter().all(|p| p.requests.fits_in(KUBE_NODE)));
    }

    #[test]
    fn every_caprara_toth_item_fits_its_node() {
        for class in 1..=10 {
            for seed in 0..5 {
                for n in [3, 30, 99] {
                    let instance = caprara_toth(class, n, seed).expect("class exists");
                    assert_eq!(instance.pods.len(), n);
                    assert!(
                        instance
                            .pods
                            .iter()
                            .all(|p| p.requests.fits_in(instance.capacity)),
                        "class {class} seed {seed} n {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn class_10_triplets_fill_a_node_exactly_in_both_resources() {
        let instance = caprara_toth(10, 60, 3).expect("60 is a multiple of 3");
        assert_eq!(instance.known_optimum, Some(20));
        let mut sums: BTreeMap<String, Amounts> = BTreeMap::new();
        for pod in &instance.pods {
            let triplet = pod.name.rsplit_once('-').map_or("", |(t, _)| t).to_string();
            let sum = sums.entry(triplet).or_default();
            *sum = sum.plus(pod.requests);
        }
        assert_eq!(sums.len(), 20);
        assert!(sums.values().all(|&s| s == instance.capacity));
    }

    #[test]
    fn class_7_is_correlated_and_class_8_anti_correlated() {
        let seven = caprara_toth(7, 200, 1).expect("class exists");
        assert!(
            seven
                .pods
                .iter()
                .all(|p| p.requests.cpu_milli.abs_diff(p.requests.memory) <= 10)
        );
        let eight = caprara_toth(8, 200, 1).expect("class exists");
        assert!(eight.pods.iter().all(|p| {
            let sum = p.requests.cpu_milli + p.requests.memory;
            (110..=130).contains(&sum)
        }));
    }

    #[test]
    fn unknown_classes_and_broken_triplets_are_refused() {
        assert_eq!(
            caprara_toth(11, 9, 0).map_err(|e| e.to_string()),
            Err("Caprara-Toth class 11 does not exist; the classes are 1 to 10".into())
        );
        assert_eq!(
            caprara_toth(10, 10, 0).map_err(|e| e.to_string()),
            Err(
                "Caprara-Toth class 10 is made of triplets: 10 items is not a multiple of 3".into()
            )
        );
    }

    #[test]
    fn cpu_quantities_are_millicores() {
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("1.25"), Ok(1250));
        assert_eq!(parse_cpu(".1"), Ok(100));
    }

    #[test]
    fn cpu_finer_than_a_millicore_or_with_a_unit_is_refused() {
        for bad in ["12x", "0.0005", "", "m", "-1", "1.", "1Gi", "1.5m"] {
            assert_eq!(
                parse_cpu(bad).map_err(|e| e.to_string()),
                Err(format!("\"{bad}\" is not a CPU quantity (like 500m or 2)")),
                "{bad}"
            );
        }
    }

    #[test]
    fn memory_quantities_are_bytes() {
        assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory("512Ki"), Ok(512 << 10));
        assert_eq!(parse_memory("1000"), Ok(1000));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
    }

    #[test]
    fn memory_that_is_not_whole_bytes_or_has_no_known_suffix_is_refused() {
        for bad in ["1.5", "12x", "1GB", "", "Mi", "100m", "0.1Ki"] {
            assert_eq!(
                parse_memory(bad).map_err(|e| e.to_string()),
                Err(format!(
                    "\"{bad}\" is not a memory quantity (like 128Mi, 1Gi or 1000000)"
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_example_pod_list_parses() {
        let pods = read_pods(include_str!("../../tests/fixtures/sched/pods.toml"))
            .expect("the fixture is valid");
        let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web-1", "web-2", "web-3", "db", "train", "dns"]);
        assert_eq!(pods[0].requests, Amounts::new(500, 256 << 20));
        assert_eq!(pods[0].limits, Some(Amounts::new(1000, 512 << 20)));
        assert_eq!(
            pods[3].node_selector.get("disk").map(String::as_str),
            Some("ssd")
        );
        assert_eq!(pods[4].tolerations[0].key, "gpu");
        assert_eq!(
            pods[5].host_ports,
            [
                HostPort {
                    port: 53,
                    protocol: Protocol::Udp
                },
                HostPort {
                    port: 53,
                    protocol: Protocol::Tcp
                },
            ]
        );
    }

    fn error_of(text: &str) -> String {
        read_pods(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
            .expect_err("bad file")
    }

    #[test]
    fn a_bad_quantity_names_the_pod_and_field() {
        assert_eq!(
            error_of("[[pod]]\nname = \"web\"\nrequests = { cpu = \"12x\" }\n"),
            "pod \"web\": requests.cpu \"12x\" is not a CPU quantity (like 500m or 2)"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let err = error_of("[[pod]]\nname = \"web\"\nreplicas = 3\n");
        assert!(
            err.starts_with("pod list, line 3: unknown field `replicas`"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn zero_counts_duplicates_and_low_limits_are_refused() {
        assert_eq!(
            error_of("[[pod]]\nname = \"web\"\ncount = 0\n"),
            "pod \"web\": count is 0; give at least 1, or leave count out for one pod"
        );
        assert_eq!(
            error_of("[[pod]]\nname = \"web\"\n[[pod]]\nname = \"web\"\n"),
            "pod \"web\" is listed twice; pod names must be unique"
        );
        assert_eq!(
            error_of("[[pod]]\nname = \"a\"\ncount = 2\n[[pod]]\nname = \"a-2\"\n"),
            "pod \"a-2\" is listed twice; pod names must be unique"
        );
        assert_eq!(
            error_of(
                "[[pod]]\nname = \"web\"\nrequests = { cpu = \"1\", memory = \"1Gi\" }\nlimits = { cpu = \"500m\", memory = \"1Gi\" }\n"
            ),
            "pod \"web\": limits.cpu 500m is below requests.cpu 1000m"
        );
        assert_eq!(
            error_of("[[pod]]\nname = \"web\"\nlimits = { cpu = \"1\" }\n"),
            "pod \"web\": limits.memory is missing; give both cpu and memory, or no limits"
        );
    }

    #[test]
    fn a_missing_request_defaults_to_the_limit() {
        let pods = read_pods("[[pod]]\nname = \"a\"\nlimits = { cpu = 2, memory = \"1Gi\" }\n")
            .expect("valid");
        assert_eq!(pods[0].requests, Amounts::new(2000, 1 << 30));
    }
}
