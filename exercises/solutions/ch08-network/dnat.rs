//! # Reference solution: ch08-network, build the DNAT rules from a port spec

use std::net::Ipv4Addr;

use crate::rules::{Action, Match, PortMapping, Rule};

/// The DNAT rules of a container at `address` publishing `ports`, in its own `chain`.
pub fn port_rules(chain: &str, address: Ipv4Addr, ports: &[PortMapping]) -> Vec<Rule> {
    // FIX: one rule per published port, in the order given: none for no port.
    ports
        .iter()
        .map(|port| {
            let mut matches = Vec::new();
            // FIX: the destination address only when the port is published on one host
            // IP; without one it is every address of the host, so there is none to match.
            matches.extend(port.host_ip.map(Match::Daddr));
            // FIX: the HOST port, with the mapping's protocol: what the packet arrives for.
            matches.push(Match::Dport(port.protocol, port.host_port));
            Rule {
                chain: chain.to_string(),
                matches,
                // FIX: rewrite to the container's address and the CONTAINER port.
                action: Action::Dnat(address, port.container_port),
                comment: None,
            }
        })
        .collect()
}
