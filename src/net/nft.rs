//! NAT with nftables: published ports (DNAT) and the way out (MASQUERADE), as data.
//!
//! Everything lives in one table nutshell owns, `table inet nutshell`, and nothing of it
//! anywhere else. Its three base chains hook the kernel's NAT points; each jumps into
//! chains of nutshell's own:
//!
//! ```text
//! prerouting  (nat, dstnat)   packets arriving for this host  ─┐ jump nut-<hash>: one chain
//! output      (nat, -100)     this host's own packets to itself┘   per container, its DNATs
//! postrouting (nat, srcnat)   jump net-<bridge>: one chain per network, its MASQUERADEs
//! ```
//!
//! A rule is built here as data ([`Rule`]), printed the way `nft list` shows it (for
//! `--plan` and the book), and sent to the kernel as nft's JSON in one `nft -j -f -`
//! batch, which the kernel applies atomically: all of a container's rules appear at
//! once, or none. Jumps carry the container's id (or the network's name) as their
//! comment, which is how teardown finds exactly that container's jumps again.
//!
//! See also [nft(8)](https://man7.org/linux/man-pages/man8/nft.8.html) and
//! [libnftables-json(5)](https://manpages.debian.org/libnftables-json).

use std::fmt;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::addr::Ipv4Net;
use super::ports::{PortMapping, Protocol};

/// The table's family and name.
pub const FAMILY: &str = "inet";
/// The table nutshell owns.
pub const TABLE: &str = "nutshell";

/// How long one `nft` run may take: it is a few milliseconds, unless something is stuck.
const NFT_TIMEOUT: Duration = Duration::from_secs(20);

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The packet is addressed to one of this host's own addresses.
    ToThisHost,
    /// Its destination address.
    Daddr(Ipv4Addr),
    /// Its source address is in this subnet.
    SaddrIn(Ipv4Net),
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Go on in another chain.
    Jump(String),
    /// Rewrite the destination.
    Dnat(Ipv4Addr, u16),
    /// Rewrite the source to the address of the interface it leaves by.
    Masquerade,
}

/// One rule: in a chain, conditions, an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// One of the table's base chains, where the kernel hands packets to nutshell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BaseChain {
    name: &'static str,
    hook: &'static str,
    priority: i32,
}

// ANCHOR: base_chains
/// prerouting at dstnat (-100) and postrouting at srcnat (100), the priorities nft names;
/// output at -100, so that a connection to a published port from this host itself, to
/// 127.0.0.1 too, is DNATed before it is routed.
const BASE_CHAINS: [BaseChain; 3] = [
    BaseChain {
        name: "prerouting",
        hook: "prerouting",
        priority: -100,
    },
    BaseChain {
        name: "output",
        hook: "output",
        priority: -100,
    },
    BaseChain {
        name: "postrouting",
        hook: "postrouting",
        priority: 100,
    },
];
// ANCHOR_END: base_chains

/// The chain of a container's DNATs, `nut-<hash>`, named like its veth.
pub fn container_chain(host_link: &str) -> String {
    format!("{host_link}-dnat")
}

/// The chain of a network's MASQUERADEs.
pub fn network_chain(bridge: &str) -> String {
    format!("net-{bridge}")
}

// ANCHOR: network_rules
/// The rules of a network on `bridge` with `subnet`: what its containers send out gets
/// the host's address; a DNATed connection from this host itself, or from a container
/// on the bridge, gets the gateway's, so that the reply comes back the same way.
pub fn network_rules(bridge: &str, subnet: Ipv4Net) -> Vec<Rule> {
    let chain = network_chain(bridge);
    let rule = |matches, action| Rule {
        chain: chain.clone(),
        matches,
        action,
        comment: None,
    };
    let localhost = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("127.0.0.0/8");
    vec![
        rule(
            vec![Match::SaddrIn(subnet), Match::OifNot(bridge.to_string())],
            Action::Masquerade,
        ),
        rule(
            vec![
                Match::SaddrIn(localhost),
                Match::Oif(bridge.to_string()),
                Match::Dnatted,
            ],
            Action::Masquerade,
        ),
        rule(
            vec![
                Match::SaddrIn(subnet),
                Match::Oif(bridge.to_string()),
                Match::Dnatted,
            ],
            Action::Masquerade,
        ),
    ]
}
// ANCHOR_END: network_rules

// ANCHOR: port_rules
/// The DNAT rules of a container at `address` publishing `ports`, in its own chain.
pub fn port_rules(chain: &str, address: Ipv4Addr, ports: &[PortMapping]) -> Vec<Rule> {
    ports
        .iter()
        .map(|port| {
            let mut matches = Vec::new();
            matches.extend(port.host_ip.map(Match::Daddr));
            matches.push(Match::Dport(port.protocol, port.host_port));
            Rule {
                chain: chain.to_string(),
                matches,
                action: Action::Dnat(address, port.container_port),
                comment: None,
            }
        })
        .collect()
}
// ANCHOR_END: port_rules

// ANCHOR: jumps
/// The jumps into a container's chain, one from prerouting and one from output, both
/// only for packets to this host's own addresses, commented with its id.
pub fn container_jumps(chain: &str, id: &str) -> Vec<Rule> {
    ["prerouting", "output"]
        .into_iter()
        .map(|base| Rule {
            chain: base.to_string(),
            matches: vec![Match::ToThisHost],
            action: Action::Jump(chain.to_string()),
            comment: Some(id.to_string()),
        })
        .collect()
}

/// The jump into a network's chain, from postrouting.
pub fn network_jump(bridge: &str) -> Rule {
    Rule {
        chain: "postrouting".to_string(),
        matches: Vec::new(),
        action: Action::Jump(network_chain(bridge)),
        comment: Some(network_comment(bridge)),
    }
}

/// The comment of a network's jump, by which teardown finds it.
pub fn network_comment(bridge: &str) -> String {
    format!("network {bridge}")
}
// ANCHOR_END: jumps

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::ToThisHost => write!(f, "fib daddr type local"),
            Match::Daddr(a) => write!(f, "ip daddr {a}"),
            Match::SaddrIn(net) => write!(f, "ip saddr {net}"),
            Match::Oif(name) => write!(f, "oifname \"{name}\""),
            Match::OifNot(name) => write!(f, "oifname != \"{name}\""),
            Match::Dnatted => write!(f, "ct status dnat"),
            Match::Dport(protocol, port) => write!(f, "{} dport {port}", protocol.name()),
        }
    }
}

impl fmt::Display for Rule {
    /// The rule as `nft list` prints it, chain first: `nut-1a2b3c4d-dnat: tcp dport
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

impl Match {
    fn json(&self) -> Value {
        let eq = |left: Value, right: Value| json!({"match": {"op": "==", "left": left, "right": right}});
        let ip = |field: &str| json!({"payload": {"protocol": "ip", "field": field}});
        match self {
            Match::ToThisHost => eq(
                json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                json!("local"),
            ),
            Match::Daddr(a) => eq(ip("daddr"), json!(a.to_string())),
            Match::SaddrIn(net) => eq(
                ip("saddr"),
                json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix()}}),
            ),
            Match::Oif(name) => eq(json!({"meta": {"key": "oifname"}}), json!(name)),
            Match::OifNot(name) => {
                json!({"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": name}})
            }
            Match::Dnatted => {
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}})
            }
            Match::Dport(protocol, port) => eq(
                json!({"payload": {"protocol": protocol.name(), "field": "dport"}}),
                json!(port),
            ),
        }
    }
}

impl Rule {
    /// The rule as an `add rule` command of nft's JSON.
    fn json(&self) -> Value {
        let mut expr: Vec<Value> = self.matches.iter().map(Match::json).collect();
        expr.push(match &self.action {
            Action::Jump(chain) => json!({"jump": {"target": chain}}),
            Action::Dnat(address, port) => {
                json!({"dnat": {"family": "ip", "addr": address.to_string(), "port": port}})
            }
            Action::Masquerade => json!({"masquerade": null}),
        });
        let mut rule = json!({"family": FAMILY, "table": TABLE, "chain": self.chain, "expr": expr});
        if let Some(comment) = &self.comment {
            rule["comment"] = json!(comment);
        }
        json!({"add": {"rule": rule}})
    }
}

/// A batch of nft commands, applied at once.
#[derive(Debug, Default)]
pub struct Batch {
    commands: Vec<Value>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Make the table and its base chains where they are missing (`add` of a table or a
    /// chain that exists changes nothing).
    pub fn ensure_table(&mut self) -> &mut Batch {
        self.commands
            .push(json!({"add": {"table": {"family": FAMILY, "name": TABLE}}}));
        for base in BASE_CHAINS {
            self.commands.push(json!({"add": {"chain": {
                "family": FAMILY, "table": TABLE, "name": base.name,
                "type": "nat", "hook": base.hook, "prio": base.priority, "policy": "accept",
            }}}));
        }
        self
    }

    /// Make `chain` if it is missing, and empty it.
    pub fn fresh_chain(&mut self, chain: &str) -> &mut Batch {
        let chain = json!({"family": FAMILY, "table": TABLE, "name": chain});
        self.commands.push(json!({"add": {"chain": chain.clone()}}));
        self.commands.push(json!({"flush": {"chain": chain}}));
        self
    }

    /// Add `rules`.
    pub fn add(&mut self, rules: &[Rule]) -> &mut Batch {
        self.commands.extend(rules.iter().map(Rule::json));
        self
    }

    /// Delete the rule with `handle` in `chain`.
    pub fn delete_rule(&mut self, chain: &str, handle: u64) -> &mut Batch {
        self.commands.push(json!({"delete": {"rule": {
            "family": FAMILY, "table": TABLE, "chain": chain, "handle": handle,
        }}}));
        self
    }

    /// Delete `chain` (empty it first: a chain with rules cannot be deleted).
    pub fn delete_chain(&mut self, chain: &str) -> &mut Batch {
        let chain = json!({"family": FAMILY, "table": TABLE, "name": chain});
        self.commands
            .push(json!({"flush": {"chain": chain.clone()}}));
        self.commands.push(json!({"delete": {"chain": chain}}));
        self
    }

    /// Delete the whole table.
    pub fn delete_table(&mut self) -> &mut Batch {
        self.commands
            .push(json!({"delete": {"table": {"family": FAMILY, "name": TABLE}}}));
        self
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The batch as nft's JSON.
    pub fn to_json(&self) -> Value {
        json!({"nftables": self.commands})
    }

    /// Send the batch to the kernel through `nft -j -f -`: all of it, or nothing.
    pub fn apply(&self) -> Result<(), NftError> {
        if self.is_empty() {
            return Ok(());
        }
        nft(&["-j", "-f", "-"], &self.to_json().to_string()).map(drop)
    }
}

/// Why nft failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// nft is not installed.
    #[error(
        "nft (nftables) is not installed: nutshell publishes ports and masquerades with it; `just setup` installs Debian's nftables"
    )]
    Missing,
    /// nft could not be run, or took too long.
    #[error("run nft: {0}")]
    Run(std::io::Error),
    /// nft refused the batch.
    #[error("nft {args} failed: {stderr}")]
    Refused {
        /// Its arguments.
        args: String,
        /// What it said.
        stderr: String,
    },
    /// Its output is not the JSON it should be.
    #[error("nft -j list printed something that is not nftables JSON: {0}")]
    BadOutput(serde_json::Error),
}

/// Run nft with `args` and `input` on stdin, with a time limit; its stdout.
fn nft(args: &[&str], input: &str) -> Result<String, NftError> {
    let program = super::find_program("nft").ok_or(NftError::Missing)?;
    let output = crate::process::run_within(
        Command::new(program).args(args),
        input.as_bytes(),
        NFT_TIMEOUT,
    )
    .map_err(NftError::Run)?;
    if !output.status.success() {
        return Err(NftError::Refused {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A rule of the table as the kernel holds it: where it is, its handle, its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    /// Its chain.
    pub chain: String,
    /// Its handle, to delete it by.
    pub handle: u64,
    /// Its comment.
    pub comment: Option<String>,
}

/// What the table holds: its chains and rules, or `None` if there is no table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The chains' names.
    pub chains: Vec<String>,
    /// The rules.
    pub rules: Vec<ListedRule>,
}

/// Read nutshell's table from the kernel; `None` if there is none, or no nft to have
/// made one with.
pub fn list_table() -> Result<Option<Listing>, NftError> {
    match nft(&["-j", "list", "table", FAMILY, TABLE], "") {
        Ok(out) => parse_listing(&out).map(Some),
        Err(NftError::Missing) => Ok(None),
        Err(NftError::Refused { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Read `nft -j list table` output.
fn parse_listing(out: &str) -> Result<Listing, NftError> {
    let value: Value = serde_json::from_str(out).map_err(NftError::BadOutput)?;
    let mut listing = Listing::default();
    for item in value["nftables"].as_array().into_iter().flatten() {
        if let Some(name) = item["chain"]["name"].as_str() {
            listing.chains.push(name.to_string());
        }
        let rule = &item["rule"];
        if let (Some(chain), Some(handle)) = (rule["chain"].as_str(), rule["handle"].as_u64()) {
            listing.rules.push(ListedRule {
                chain: chain.to_string(),
                handle,
                comment: rule["comment"].as_str().map(str::to_string),
            });
        }
    }
    Ok(listing)
}

impl Listing {
    /// The rules whose comment is `comment`.
    pub fn commented<'a>(&'a self, comment: &'a str) -> impl Iterator<Item = &'a ListedRule> {
        self.rules
            .iter()
            .filter(move |r| r.comment.as_deref() == Some(comment))
    }

    /// Whether the table has `chain`.
    pub fn has_chain(&self, chain: &str) -> bool {
        self.chains.iter().any(|c| c == chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(s: &str) -> PortMapping {
        s.parse().unwrap()
    }

    #[test]
    fn a_published_port_becomes_a_dnat_rule_in_the_containers_chain() {
        let rules = port_rules(
            "nut1a2b3c4d-dnat",
            Ipv4Addr::new(10, 88, 0, 2),
            &[port("8080:80"), port("127.0.0.1:5353:53/udp")],
        );
        let text: Vec<String> = rules.iter().map(Rule::to_string).collect();
        assert_eq!(
            text,
            [
                "nut1a2b3c4d-dnat: tcp dport 8080 dnat ip to 10.88.0.2:80",
                "nut1a2b3c4d-dnat: ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.88.0.2:53",
            ]
        );
        assert_eq!(
            rules[0].json()["add"]["rule"]["expr"],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
                {"dnat": {"family": "ip", "addr": "10.88.0.2", "port": 80}},
            ])
        );
    }

    #[test]
    fn a_network_masquerades_what_leaves_it_and_dnatted_connections_into_it() {
        let rules = network_rules("nutshell0", "10.88.0.0/16".parse().unwrap());
        let text: Vec<String> = rules.iter().map(Rule::to_string).collect();
        assert_eq!(
            text,
            [
                "net-nutshell0: ip saddr 10.88.0.0/16 oifname != \"nutshell0\" masquerade",
                "net-nutshell0: ip saddr 127.0.0.0/8 oifname \"nutshell0\" ct status dnat masquerade",
                "net-nutshell0: ip saddr 10.88.0.0/16 oifname \"nutshell0\" ct status dnat masquerade",
            ]
        );
    }

    #[test]
    fn a_containers_jumps_carry_its_id_and_are_found_by_it_in_a_listing() {
        let jumps = container_jumps("nutab-dnat", "web");
        assert_eq!(
            jumps[1].to_string(),
            "output: fib daddr type local jump nutab-dnat comment \"web\""
        );
        let listing = parse_listing(
            r#"{"nftables":[{"metainfo":{}},{"table":{"family":"inet","name":"nutshell","handle":1}},
            {"chain":{"family":"inet","table":"nutshell","name":"prerouting","handle":1}},
            {"chain":{"family":"inet","table":"nutshell","name":"nutab-dnat","handle":4}},
            {"rule":{"family":"inet","table":"nutshell","chain":"prerouting","handle":7,"comment":"web","expr":[]}},
            {"rule":{"family":"inet","table":"nutshell","chain":"prerouting","handle":9,"comment":"other","expr":[]}}]}"#,
        )
        .unwrap();
        let handles: Vec<u64> = listing.commented("web").map(|r| r.handle).collect();
        assert_eq!(handles, [7]);
        assert!(listing.has_chain("nutab-dnat"));
    }
}
