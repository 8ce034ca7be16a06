//! IPv4 subnets: parsed, checked, and counted through.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet, `10.88.0.0/16`: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix: u8,
}

/// A subnet nutshell cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subnet {given:?}: {why}")]
pub struct SubnetError {
    given: String,
    why: &'static str,
}

impl Ipv4Net {
    /// The subnet of `address` with `prefix` bits, host bits cleared.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, SubnetError> {
        let given = format!("{address}/{prefix}");
        if !(8..=30).contains(&prefix) {
            return Err(SubnetError {
                given,
                why: "the prefix length must be 8 to 30: a bridge network needs a gateway, a broadcast address and room for containers",
            });
        }
        let network = Ipv4Addr::from(u32::from(address) & mask(prefix));
        if network != address {
            return Err(SubnetError {
                given,
                why: "it has host bits set: give the network address, such as 10.88.0.0/16",
            });
        }
        Ok(Ipv4Net { network, prefix })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The `n`th address of the subnet (0 is the network address), if it is one of its
    /// host addresses: not the network or broadcast address.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        (n >= 1 && n < self.size() - 1).then(|| Ipv4Addr::from(u32::from(self.network) + n))
    }

    /// The gateway, the bridge's own address: the first host, `.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// How many addresses the subnet spans, network and broadcast included.
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// Whether `address` is in the subnet.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix) == u32::from(self.network)
    }

    /// Where `address` is in the subnet: the `n` of [`Ipv4Net::host`].
    pub fn offset(&self, address: Ipv4Addr) -> Option<u32> {
        self.contains(address)
            .then(|| u32::from(address) - u32::from(self.network))
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX << (32 - u32::from(prefix))
}

impl FromStr for Ipv4Net {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Ipv4Net, SubnetError> {
        let bad = |why| SubnetError {
            given: s.to_string(),
            why,
        };
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("write it as ADDRESS/PREFIX, such as 10.88.0.0/16"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| bad("not an IPv4 address before the /"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("not a prefix length after the /"))?;
        Ipv4Net::new(address, prefix).map_err(|e| SubnetError {
            given: s.to_string(),
            why: e.why,
        })
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = SubnetError;

    fn try_from(s: String) -> Result<Ipv4Net, SubnetError> {
        s.parse()
    }
}

impl From<Ipv4Net> for String {
    fn from(net: Ipv4Net) -> String {
        net.to_string()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_subnet_has_its_gateway_at_dot_one_and_hosts_up_to_the_broadcast() {
        let net: Ipv4Net = "10.88.0.0/16".parse().unwrap();
        assert_eq!(net.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(net.host(2), Some(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(net.host(65534), Some(Ipv4Addr::new(10, 88, 255, 254)));
        assert_eq!(net.host(65535), None, "the broadcast address");
        assert_eq!(net.host(0), None, "the network address");
        assert!(net.contains(Ipv4Addr::new(10, 88, 3, 4)));
        assert!(!net.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(net.offset(Ipv4Addr::new(10, 88, 1, 0)), Some(256));
    }

    #[test]
    fn a_subnet_with_host_bits_or_no_room_is_refused_saying_why() {
        let err = "10.88.0.1/16".parse::<Ipv4Net>().unwrap_err();
        assert!(err.to_string().contains("host bits"), "{err}");
        let err = "10.88.0.0/31".parse::<Ipv4Net>().unwrap_err();
        assert!(err.to_string().contains("8 to 30"), "{err}");
        let err = "10.88.0.0".parse::<Ipv4Net>().unwrap_err();
        assert!(err.to_string().contains("ADDRESS/PREFIX"), "{err}");
        let err = "ten/8".parse::<Ipv4Net>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "subnet \"ten/8\": not an IPv4 address before the /"
        );
    }
}
