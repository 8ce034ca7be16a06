//! Published ports: `-p [hostIP:]hostPort:containerPort[/tcp|/udp]`, as docker and podman
//! take them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A `-p` value nutshell cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-p {given:?}: {why}; write [hostIP:]hostPort:containerPort[/tcp|/udp], such as 8080:80")]
pub struct PortError {
    given: String,
    why: String,
}

impl FromStr for PortMapping {
    type Err = PortError;

    fn from_str(s: &str) -> Result<PortMapping, PortError> {
        let bad = |why: String| PortError {
            given: s.to_string(),
            why,
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

impl fmt::Display for PortMapping {
    /// The way `docker port` prints it: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_spec_reads_like_dockers_with_tcp_by_default() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(
            p,
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        let p: PortMapping = "127.0.0.1:5353:53/udp".parse().unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(p.to_string(), "127.0.0.1:5353->53/udp");
    }

    #[test]
    fn a_bad_port_spec_says_what_is_wrong_and_how_to_write_it() {
        for (given, why) in [
            ("80", "needs a host port"),
            ("0:80", "host port \"0\""),
            ("8080:99999", "container port \"99999\""),
            ("8080:80/sctp", "unknown protocol \"sctp\""),
            ("localhost:8080:80", "\"localhost\" is not an IPv4 address"),
        ] {
            let err = given.parse::<PortMapping>().unwrap_err().to_string();
            assert!(err.contains(why), "{given}: {err}");
            assert!(err.ends_with("such as 8080:80"), "{err}");
        }
    }
}
