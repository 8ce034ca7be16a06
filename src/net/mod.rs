//! Networking: a network namespace of the container's own, and the ways to connect it.
//!
//! A new network namespace has nothing but a loopback device, and even that is down:
//! not even 127.0.0.1 answers until `lo` is brought up. nutshell connects it the way
//! docker's and podman's default bridge networks do:
//!
//! ```text
//!   container netns            host netns
//!  ┌───────────────┐      ┌──────────────────────────────────────────┐
//!  │ eth0 10.88.0.2├──────┤nut1a2b3c4d ─┐                             │
//!  │ lo   127.0.0.1│ veth │             ├ nutshell0 10.88.0.1/16 ─ NAT ─ eth0
//!  └───────────────┘      │nut5e6f7a8b ─┘  (bridge)   (nftables)     │
//!                         └──────────────────────────────────────────┘
//! ```
//!
//! a veth pair (two interfaces joined by a virtual cable) with one end on a bridge in the
//! host's namespace and the other moved into the container's and renamed `eth0`; an
//! address leased from the bridge's subnet ([`ipam`]); a default route via the bridge;
//! NAT in nftables ([`nft`]) so that the containers' packets leave with the host's
//! address and published ports (`-p 8080:80`) lead in. All of it is planned as
//! [`NetStep`]s, printed by `--plan`, and made by the host side between the clone and
//! the start, through netlink ([`netlink`]).
//!
//! A normal user cannot do this: a veth in the host's namespace needs CAP_NET_ADMIN
//! there, which only root has. Rootless containers get their network from `pasta`
//! ([`pasta`]), which runs as the user and carries the container's traffic through
//! ordinary sockets of the host.
//!
//! Introduced in chapter 8. See also
//! [network_namespaces(7)](https://man7.org/linux/man-pages/man7/network_namespaces.7.html),
//! [veth(4)](https://man7.org/linux/man-pages/man4/veth.4.html).

pub mod addr;
pub mod ipam;
pub mod names;
pub mod netlink;
pub mod nft;
pub mod pasta;
pub mod ports;
pub mod probe;
mod setup;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use addr::Ipv4Net;
pub use ports::{PortMapping, Protocol};
pub use setup::{Setup, remove_unused, teardown};

/// The default bridge's name.
pub const DEFAULT_BRIDGE: &str = "nutshell0";
/// The default bridge network's subnet.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";
/// The default MTU: Ethernet's.
pub const DEFAULT_MTU: u32 = 1500;
/// The container's end of its veth, once inside.
pub const CONTAINER_LINK: &str = "eth0";

// ANCHOR: network
/// How a container with a network namespace of its own is connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Network {
    /// `--network none`: only `lo`, brought up; no way out.
    Loopback,
    /// `--network bridge`: a veth to a bridge on the host, an address, NAT.
    Bridge(BridgeNetwork),
    /// `--network pasta`: a user-mode network, for rootless containers.
    Pasta {
        /// The published ports.
        ports: Vec<PortMapping>,
    },
}

/// A bridge network, and what the container publishes on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeNetwork {
    /// The bridge's name, which is the network's name.
    pub bridge: String,
    /// The subnet: the bridge is its `.1`, containers get the rest.
    pub subnet: Ipv4Net,
    /// The MTU of the container's link.
    pub mtu: u32,
    /// The published ports.
    pub ports: Vec<PortMapping>,
}
// ANCHOR_END: network

impl Default for BridgeNetwork {
    fn default() -> BridgeNetwork {
        BridgeNetwork {
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet: DEFAULT_SUBNET.parse().expect("the default subnet"),
            mtu: DEFAULT_MTU,
            ports: Vec::new(),
        }
    }
}

impl Network {
    /// The ports it publishes.
    pub fn ports(&self) -> &[PortMapping] {
        match self {
            Network::Loopback => &[],
            Network::Bridge(bridge) => &bridge.ports,
            Network::Pasta { ports } => ports,
        }
    }
}

/// One step of connecting a container, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetStep {
    /// Check that no listener and no other container has the host ports, and reserve them.
    ReservePorts {
        /// The ports.
        ports: Vec<PortMapping>,
        /// `<data>/net/ports`.
        dir: PathBuf,
    },
    /// Lease an address.
    Lease {
        /// The network.
        bridge: String,
        /// Its subnet.
        subnet: Ipv4Net,
        /// `<data>/net/<bridge>`.
        dir: PathBuf,
    },
    /// Write `hostname`, `hosts` and `resolv.conf` into the state directory.
    WriteNameFiles {
        /// The state directory.
        dir: PathBuf,
        /// The container's hostname.
        hostname: String,
    },
    /// Make the bridge, with the gateway address, if it is missing, and bring it up.
    EnsureBridge {
        /// Its name.
        bridge: String,
        /// Its subnet.
        subnet: Ipv4Net,
    },
    /// Let the host forward packets, and route 127.0.0.1 to the bridge.
    EnableForwarding {
        /// The bridge.
        bridge: String,
    },
    /// Make a veth pair in the host's namespace.
    CreateVeth {
        /// The end that stays on the host.
        host: String,
        /// The end that goes into the container.
        peer: String,
        /// Their MTU.
        mtu: u32,
    },
    /// Put the host end on the bridge and bring it up.
    AttachToBridge {
        /// The host end.
        link: String,
        /// The bridge.
        bridge: String,
    },
    /// Move the peer into the container's network namespace.
    MoveIntoContainer {
        /// The peer.
        link: String,
    },
    /// In the container: rename a link.
    Rename {
        /// Its name now.
        from: String,
        /// Its new name.
        to: String,
    },
    /// In the container: give a link the leased address.
    AddAddress {
        /// The link.
        link: String,
        /// The subnet the address is from.
        subnet: Ipv4Net,
    },
    /// In the container: bring a link up.
    LinkUp {
        /// The link.
        link: String,
    },
    /// In the container: the default route.
    DefaultRoute {
        /// Via.
        gateway: Ipv4Addr,
    },
    /// nftables: the network's masquerade and the container's DNATs, in one batch.
    Nat {
        /// The bridge.
        bridge: String,
        /// Its subnet.
        subnet: Ipv4Net,
        /// The container's DNAT chain.
        chain: String,
        /// The published ports.
        ports: Vec<PortMapping>,
        /// `<data>/net/<bridge>`, beside which the network's lock is.
        dir: PathBuf,
    },
    /// Start pasta on the container's namespaces.
    StartPasta {
        /// The published ports.
        ports: Vec<PortMapping>,
        /// The state directory, for pasta's pid file.
        dir: PathBuf,
    },
}

impl NetStep {
    // ANCHOR: before_clone
    /// Whether the step runs before the first process is cloned: the steps that can
    /// fail on the host's state (a taken port, a full subnet) come first, before
    /// anything else is made.
    pub fn before_clone(&self) -> bool {
        matches!(
            self,
            NetStep::ReservePorts { .. } | NetStep::Lease { .. } | NetStep::WriteNameFiles { .. }
        )
    }
    // ANCHOR_END: before_clone
}

fn port_list(ports: &[PortMapping]) -> String {
    let list: Vec<String> = ports.iter().map(PortMapping::to_string).collect();
    list.join(", ")
}

impl fmt::Display for NetStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inside = "in the container's network namespace:";
        match self {
            NetStep::ReservePorts { ports, dir } => write!(
                f,
                "reserve host ports {} (a file each in {}); refused if a listener or another container has one",
                port_list(ports),
                dir.display()
            ),
            NetStep::Lease {
                bridge,
                subnet,
                dir,
            } => write!(
                f,
                "lease the lowest free address of {subnet} on {bridge} (a file in {})",
                dir.display()
            ),
            NetStep::WriteNameFiles { dir, hostname } => write!(
                f,
                "write hostname ({hostname}), hosts and resolv.conf in {}, to bind over the image's /etc files",
                dir.display()
            ),
            NetStep::EnsureBridge { bridge, subnet } => write!(
                f,
                "if there is no bridge {bridge}: ip link add {bridge} type bridge; ip addr add {}/{} dev {bridge}; ip link set {bridge} up",
                subnet.gateway(),
                subnet.prefix()
            ),
            NetStep::EnableForwarding { bridge } => write!(
                f,
                "sysctl net.ipv4.ip_forward=1 (the host routes the containers' packets) and net.ipv4.conf.{bridge}.route_localnet=1 (127.0.0.1 may be DNATed to the bridge)"
            ),
            NetStep::CreateVeth { host, peer, mtu } => write!(
                f,
                "ip link add {host} mtu {mtu} type veth peer name {peer} mtu {mtu}"
            ),
            NetStep::AttachToBridge { link, bridge } => write!(
                f,
                "ip link set {link} master {bridge}; hairpin on; ip link set {link} up"
            ),
            NetStep::MoveIntoContainer { link } => write!(
                f,
                "ip link set {link} netns <the container's, /proc/PID/ns/net>"
            ),
            NetStep::Rename { from, to } => write!(f, "{inside} ip link set {from} name {to}"),
            NetStep::AddAddress { link, subnet } => write!(
                f,
                "{inside} ip addr add <the leased address>/{} dev {link}",
                subnet.prefix()
            ),
            NetStep::LinkUp { link } => write!(f, "{inside} ip link set {link} up"),
            NetStep::DefaultRoute { gateway } => {
                write!(f, "{inside} ip route add default via {gateway}")
            }
            NetStep::Nat {
                bridge,
                subnet,
                chain,
                ports,
                ..
            } => {
                write!(
                    f,
                    "nft (one batch): table {} {}, chain {}",
                    nft::FAMILY,
                    nft::TABLE,
                    nft::network_chain(bridge)
                )?;
                for rule in nft::network_rules(bridge, *subnet) {
                    write!(f, "\n       {rule}")?;
                }
                if !ports.is_empty() {
                    for rule in nft::container_jumps(chain, "<id>") {
                        write!(f, "\n       {rule}")?;
                    }
                    for port in ports {
                        let to = port
                            .host_ip
                            .map(|ip| format!("ip daddr {ip} "))
                            .unwrap_or_default();
                        write!(
                            f,
                            "\n       {chain}: {to}{} dport {} dnat ip to <the leased address>:{}",
                            port.protocol.name(),
                            port.host_port,
                            port.container_port
                        )?;
                    }
                }
                Ok(())
            }
            NetStep::StartPasta { ports, .. } => {
                write!(
                    f,
                    "pasta --config-net <the container's pid>: a tap device in the container, its traffic carried by the user's own sockets"
                )?;
                if !ports.is_empty() {
                    write!(f, "; publish {}", port_list(ports))?;
                }
                Ok(())
            }
        }
    }
}

/// What a container owns of the network, to remove with it. Every name is derived from
/// the container's id, so that a sweep finds them without anything else recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedNetwork {
    /// `<data>/net`: leases and port reservations.
    pub dir: PathBuf,
    /// The bridge it is on, and the bridge's subnet.
    pub bridge: Option<(String, Ipv4Net)>,
    /// The host end of its veth.
    pub host_link: Option<String>,
    /// Its address, once leased.
    pub address: Option<Ipv4Addr>,
    /// Its pasta, once started.
    pub pasta: Option<crate::launch::ProcessRef>,
}

// ANCHOR: host_link_name
/// A container's host-side link name: `nut` and 8 hex digits of its id's SHA-256, so
/// that a veth left behind says whose it was (`nutshell cleanup` finds it by the same
/// rule). Interface names are at most 15 bytes.
pub fn host_link_name(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("nut{hex}")
}
// ANCHOR_END: host_link_name

/// The program `name`: in `PATH`, or where Debian puts it (root's `PATH` has the sbin
/// directories, a user's may not).
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where nutshell keeps a data directory's network state.
pub fn net_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("net")
}

/// The steps that connect container `id` to `network`, and what it owns then.
pub fn plan(
    id: &str,
    network: &Network,
    hostname: &str,
    state_dir: &Path,
    data_dir: &Path,
) -> (Vec<NetStep>, OwnedNetwork) {
    let dir = net_dir(data_dir);
    let mut owned = OwnedNetwork {
        dir: dir.clone(),
        bridge: None,
        host_link: None,
        address: None,
        pasta: None,
    };
    let mut steps = Vec::new();
    let names = NetStep::WriteNameFiles {
        dir: state_dir.to_path_buf(),
        hostname: hostname.to_string(),
    };
    match network {
        Network::Loopback => {
            steps.push(names);
            steps.push(NetStep::LinkUp {
                link: "lo".to_string(),
            });
        }
        // ANCHOR: plan_bridge
        Network::Bridge(net) => {
            let host = host_link_name(id);
            let peer = format!("{host}c");
            if !net.ports.is_empty() {
                steps.push(NetStep::ReservePorts {
                    ports: net.ports.clone(),
                    dir: dir.join("ports"),
                });
            }
            steps.push(NetStep::Lease {
                bridge: net.bridge.clone(),
                subnet: net.subnet,
                dir: dir.join(&net.bridge),
            });
            steps.push(names);
            steps.extend([
                NetStep::EnsureBridge {
                    bridge: net.bridge.clone(),
                    subnet: net.subnet,
                },
                NetStep::EnableForwarding {
                    bridge: net.bridge.clone(),
                },
                NetStep::CreateVeth {
                    host: host.clone(),
                    peer: peer.clone(),
                    mtu: net.mtu,
                },
                NetStep::AttachToBridge {
                    link: host.clone(),
                    bridge: net.bridge.clone(),
                },
                NetStep::MoveIntoContainer { link: peer.clone() },
                NetStep::Rename {
                    from: peer,
                    to: CONTAINER_LINK.to_string(),
                },
                NetStep::AddAddress {
                    link: CONTAINER_LINK.to_string(),
                    subnet: net.subnet,
                },
                NetStep::LinkUp {
                    link: CONTAINER_LINK.to_string(),
                },
                NetStep::LinkUp {
                    link: "lo".to_string(),
                },
                NetStep::DefaultRoute {
                    gateway: net.subnet.gateway(),
                },
                NetStep::Nat {
                    bridge: net.bridge.clone(),
                    subnet: net.subnet,
                    chain: nft::container_chain(&host),
                    ports: net.ports.clone(),
                    dir: dir.join(&net.bridge),
                },
            ]);
            owned.bridge = Some((net.bridge.clone(), net.subnet));
            owned.host_link = Some(host);
        }
        // ANCHOR_END: plan_bridge
        Network::Pasta { ports } => {
            steps.push(names);
            steps.push(NetStep::StartPasta {
                ports: ports.clone(),
                dir: state_dir.to_path_buf(),
            });
        }
    }
    (steps, owned)
}

/// The bind mounts of the name files over the image's.
pub fn name_file_binds(state_dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    ["hostname", "hosts", "resolv.conf"]
        .into_iter()
        .map(|name| (state_dir.join(name), Path::new("/etc").join(name)))
        .collect()
}

/// Why a container's network could not be set up or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
    /// No address is left.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    /// nftables refused.
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    /// A host port is taken.
    #[error(
        "host port {port} is already in use{by}: choose another with -p, or stop what holds it"
    )]
    PortTaken {
        /// The port.
        port: String,
        /// By whom, if nutshell knows.
        by: String,
    },
    /// The network exists with another subnet.
    #[error(
        "network {bridge} is {existing} (it has containers): --subnet {asked} needs a bridge of its own (--bridge NAME)"
    )]
    SubnetMismatch {
        /// The bridge.
        bridge: String,
        /// Its subnet.
        existing: Ipv4Net,
        /// The one asked for.
        asked: Ipv4Net,
    },
    /// pasta failed.
    #[error("{0}")]
    Pasta(String),
    /// A file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_link_name_is_nut_and_a_hash_of_the_id_within_ifnamsiz() {
        let name = host_link_name("web");
        assert_eq!(name, host_link_name("web"));
        assert_ne!(name, host_link_name("db"));
        assert!(name.starts_with("nut") && name.len() == 11, "{name}");
        // The peer adds one letter: still under the kernel's 15.
        assert!(format!("{name}c").len() <= 15);
    }

    #[test]
    fn a_bridge_plan_leases_before_it_makes_anything_and_names_every_link() {
        let net = BridgeNetwork {
            ports: vec!["8080:80".parse().unwrap()],
            ..BridgeNetwork::default()
        };
        let (steps, owned) = plan(
            "web",
            &Network::Bridge(net),
            "web",
            Path::new("/run/nutshell/web"),
            Path::new("/var/lib/nutshell"),
        );
        let first_made = steps.iter().position(|s| !s.before_clone()).unwrap();
        assert!(steps[..first_made].iter().all(NetStep::before_clone));
        assert!(matches!(steps[0], NetStep::ReservePorts { .. }));
        assert!(matches!(steps[1], NetStep::Lease { .. }));
        assert_eq!(
            owned.host_link.as_deref(),
            Some(host_link_name("web").as_str())
        );
        assert!(matches!(steps.last(), Some(NetStep::Nat { .. })));
    }
}
