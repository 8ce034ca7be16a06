//! Tests for exercise ch08-network. The statement is at the top of `dnat.rs`.
//!
//! Pure data: no root, no nftables. Each test parses `-p` specs as nutshell does, builds
//! the rules of a container at 10.88.0.2 in its chain `nut1a2b3c4d-dnat`, and compares
//! them as `nft list` would print them; a failure shows the rules expected and the rules
//! that came back.

#[cfg_attr(not(feature = "solution"), path = "dnat.rs")]
#[cfg_attr(feature = "solution", path = "../solutions/ch08-network/dnat.rs")]
mod dnat;
#[allow(dead_code)] // all of nutshell's variants; the starter builds no rule yet
mod rules;

use std::net::Ipv4Addr;

use dnat::port_rules;
use rules::{PortMapping, Rule};

/// The container's DNAT chain, as nutshell names it after its veth.
const CHAIN: &str = "nut1a2b3c4d-dnat";

/// The container's address on the bridge.
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);

/// The `-p` specs, parsed as nutshell parses them.
fn mappings(specs: &[&str]) -> Vec<PortMapping> {
    specs
        .iter()
        .map(|spec| spec.parse().unwrap_or_else(|e| panic!("the test's {e}")))
        .collect()
}

/// The rules `port_rules` builds for the container at `address` publishing `specs` in
/// `chain`, as `nft list` prints them.
fn rules_in(chain: &str, address: Ipv4Addr, specs: &[&str]) -> Vec<String> {
    port_rules(chain, address, &mappings(specs))
        .iter()
        .map(Rule::to_string)
        .collect()
}

/// The same, for the container at [`ADDRESS`] with its chain [`CHAIN`].
fn rules_for(specs: &[&str]) -> Vec<String> {
    rules_in(CHAIN, ADDRESS, specs)
}

#[test]
fn a_published_port_becomes_one_dnat_rule_in_the_containers_chain() {
    assert_eq!(
        rules_for(&["8080:80"]),
        ["nut1a2b3c4d-dnat: tcp dport 8080 dnat ip to 10.88.0.2:80"],
        "-p 8080:80 should give exactly one rule, in the container's chain: tcp to the \
         host's port 8080 is DNATed to the container's 10.88.0.2:80 (no address to match, \
         no comment)"
    );
}

#[test]
fn a_host_ip_is_matched_before_the_port() {
    assert_eq!(
        rules_for(&["127.0.0.1:8080:80"]),
        ["nut1a2b3c4d-dnat: ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.88.0.2:80"],
        "-p 127.0.0.1:8080:80 publishes on 127.0.0.1 alone: Match::Daddr(127.0.0.1) comes \
         first, then the port"
    );
}

#[test]
fn a_udp_port_is_matched_as_udp() {
    assert_eq!(
        rules_for(&["5353:53/udp"]),
        ["nut1a2b3c4d-dnat: udp dport 5353 dnat ip to 10.88.0.2:53"],
        "-p 5353:53/udp publishes a UDP port: match the mapping's protocol, not always tcp"
    );
}

#[test]
fn several_ports_give_one_rule_each_in_their_order() {
    assert_eq!(
        rules_for(&["8080:80", "127.0.0.1:5353:53/udp", "8443:443"]),
        [
            "nut1a2b3c4d-dnat: tcp dport 8080 dnat ip to 10.88.0.2:80",
            "nut1a2b3c4d-dnat: ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.88.0.2:53",
            "nut1a2b3c4d-dnat: tcp dport 8443 dnat ip to 10.88.0.2:443",
        ],
        "three published ports should give three rules, one per port, in the order the \
         ports were given"
    );
}

#[test]
fn no_published_port_gives_no_rule() {
    assert_eq!(
        rules_for(&[]),
        Vec::<String>::new(),
        "a container that publishes no port needs no DNAT rule"
    );
}

#[test]
fn the_chain_the_address_and_the_ports_are_the_ones_given() {
    assert_eq!(
        rules_in(
            "nutdeadbeef-dnat",
            Ipv4Addr::new(10, 89, 3, 7),
            &["80:8080", "192.168.1.10:2222:22"]
        ),
        [
            "nutdeadbeef-dnat: tcp dport 80 dnat ip to 10.89.3.7:8080",
            "nutdeadbeef-dnat: ip daddr 192.168.1.10 tcp dport 2222 dnat ip to 10.89.3.7:22",
        ],
        "the rules go in the chain given and DNAT to the address given; the packet arrives \
         for the HOST port (the first in the spec) and goes to the CONTAINER port (the last)"
    );
}
