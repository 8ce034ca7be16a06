//! Given, for exercise ch08-network: the types the exercise works with, as nutshell's
//! src/net/ports.rs and src/net/nft.rs define them (the exercises do not depend on the
//! nutshell crate, so they are copied here). Read them, but do not change them: the
//! tests compare your rules by the text they print, the way `nft list` shows a rule.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP, the default.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The name nftables and the flags use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port: connections to `host_ip:host_port` on the host go to
/// `container_port` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// The host address it is published on; `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = String;

    /// A `-p` value: `[hostIP:]hostPort:containerPort[/tcp|/udp]`, as docker and podman
    /// take it.
    fn from_str(s: &str) -> Result<PortMapping, String> {
        let bad = |why: String| {
            format!(
                "-p {s:?}: {why}; write [hostIP:]hostPort:containerPort[/tcp|/udp], such as 8080:80"
            )
        };
        let (ports, protocol) = match s.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => return Err(bad(format!("unknown protocol {other:?}"))),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match parts[..] {
            [host, container] => (None, host, container),
            [ip, host, container] => {
                let ip = ip
                    .parse()
                    .map_err(|_| bad(format!("{ip:?} is not an IPv4 address")))?;
                (Some(ip), host, container)
            }
            _ => return Err(bad("it needs a host port and a container port".to_string())),
        };
        let port = |p: &str, which: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(format!(
                "{which} port {p:?} is not a port from 1 to 65535"
            ))),
            Ok(n) => Ok(n),
        };
        Ok(PortMapping {
            host_ip,
            host_port: port(host_port, "host")?,
            container_port: port(container_port, "container")?,
            protocol,
        })
    }
}

/// One condition of a rule. (nutshell's also has `SaddrIn`, a source subnet, for the
/// masquerade rules of a network.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The packet is addressed to one of this host's own addresses.
    ToThisHost,
    /// Its destination address.
    Daddr(Ipv4Addr),
    /// It leaves through this interface.
    Oif(String),
    /// It leaves through any interface but this one.
    OifNot(String),
    /// Its connection was DNATed (a published port).
    Dnatted,
    /// Its protocol and destination port.
    Dport(Protocol, u16),
}

/// What a rule does to a packet that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on in another chain.
    Jump(String),
    /// Rewrite the destination.
    Dnat(Ipv4Addr, u16),
    /// Rewrite the source to the address of the interface it leaves by.
    Masquerade,
}

/// One rule: in a chain, conditions, an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The chain it is in.
    pub chain: String,
    /// Its conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// What it does.
    pub action: Action,
    /// Its comment: who it belongs to.
    pub comment: Option<String>,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::ToThisHost => write!(f, "fib daddr type local"),
            Match::Daddr(a) => write!(f, "ip daddr {a}"),
            Match::Oif(name) => write!(f, "oifname \"{name}\""),
            Match::OifNot(name) => write!(f, "oifname != \"{name}\""),
            Match::Dnatted => write!(f, "ct status dnat"),
            Match::Dport(protocol, port) => write!(f, "{} dport {port}", protocol.name()),
        }
    }
}

impl fmt::Display for Rule {
    /// The rule as `nft list` prints it, chain first: `nut1a2b3c4d-dnat: tcp dport
    /// 8080 dnat ip to 10.88.0.2:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.chain)?;
        for m in &self.matches {
            write!(f, " {m}")?;
        }
        match &self.action {
            Action::Jump(chain) => write!(f, " jump {chain}")?,
            Action::Dnat(address, port) => write!(f, " dnat ip to {address}:{port}")?,
            Action::Masquerade => write!(f, " masquerade")?,
        }
        if let Some(comment) = &self.comment {
            write!(f, " comment \"{comment}\"")?;
        }
        Ok(())
    }
}
