//! # Exercise ch08-network: build the DNAT rules from a port spec
//!
//! `-p 8080:80` publishes the container's port 80 on the host's port 8080. The container
//! sits behind the bridge at an address of its own, 10.88.0.2 say, that only this host
//! can reach; so for each connection to the host's port 8080 the kernel must rewrite the
//! destination to 10.88.0.2:80 (DNAT: destination NAT) and route it on to the container.
//! It undoes the rewrite on the replies by itself: conntrack remembers the connection.
//!
//! nutshell tells nftables so with one rule per published port, in a chain of the
//! container's own, `nut<hash>-dnat`, into which the host's prerouting and output chains
//! jump for every packet addressed to one of the host's own addresses. Write
//! `port_rules`, which builds those rules: for each mapping in `ports`, in the order
//! given, one [`Rule`] with
//!
//! - `chain`: the `chain` given;
//! - `matches`, in this order:
//!   1. `Match::Daddr(ip)`, only if the mapping has a host IP: `-p 127.0.0.1:8080:80`
//!      publishes on that address alone, `-p 8080:80` on every address of the host (so
//!      no address to match);
//!   2. `Match::Dport(protocol, host_port)`: the mapping's protocol (tcp unless the spec
//!      ends in `/udp`) and the port on the HOST, which is what the packet arrives for;
//! - `action`: `Action::Dnat(address, container_port)`: to the container's address, and
//!   the port in the CONTAINER;
//! - `comment`: `None`. (Comments mark the jumps into the chain, which is how teardown
//!   finds them again; the rules inside need none.)
//!
//! No published port, no rule. Printed the way `nft list` shows them (`Rule`'s Display):
//!
//! ```text
//! -p 8080:80                nut1a2b3c4d-dnat: tcp dport 8080 dnat ip to 10.88.0.2:80
//! -p 127.0.0.1:5353:53/udp  nut1a2b3c4d-dnat: ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.88.0.2:53
//! ```
//!
//! The types are given in `rules.rs`, next to this file, as nutshell defines them:
//! `PortMapping` (a parsed `-p [hostIP:]hostPort:containerPort[/tcp|/udp]`), `Protocol`,
//! and `Rule`, `Match` and `Action`. Do not change that file.
//!
//! Read book/src/ch08-network.md first. Check your work with `just exercise ch08-network`
//! (no root needed: the rules are only built, not sent to the kernel).

use std::net::Ipv4Addr;

use crate::rules::{PortMapping, Rule};

/// The DNAT rules of a container at `address` publishing `ports`, in its own `chain`.
pub fn port_rules(chain: &str, address: Ipv4Addr, ports: &[PortMapping]) -> Vec<Rule> {
    // TODO: one Rule per mapping in `ports`, in their order, each in `chain`
    //       (Match and Action are in crate::rules too).
    // TODO: its matches: Match::Daddr(ip) first, only when port.host_ip is Some(ip);
    //       then Match::Dport with port.protocol and port.host_port.
    // TODO: its action: Action::Dnat(address, port.container_port); its comment: None.
    let _ = (chain, address, ports);
    todo!("port_rules: one DNAT rule per published port")
}
