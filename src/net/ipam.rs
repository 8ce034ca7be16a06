//! IP address management, host-local style: one file per leased address.
//!
//! A network's leases live in `<data>/net/<network>/`, one file per address, named by it
//! (`10.88.0.2`) and holding the id of the container that has it — the layout of the CNI
//! `host-local` plugin, which podman used before netavark. Taking an address is making
//! its file, and the kernel decides the race: of two containers that try the same
//! address at once, exactly one makes the file. The file appears whole: it is written
//! under a temporary name (made with O_EXCL) and then hard-linked to the address, and
//! link(2), like O_EXCL, fails if the name exists.
//!
//! The gateway, the bridge's own address, is `.1`; the first lease is `.2`.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::addr::Ipv4Net;

/// Why no address could be leased.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every host address of the subnet is leased.
    #[error(
        "network {network}: no free address left in {subnet} ({leased} leased, the gateway {gateway} too): remove a container, or use a larger --subnet"
    )]
    Exhausted {
        /// The network's name.
        network: String,
        /// Its subnet.
        subnet: Ipv4Net,
        /// How many addresses are leased.
        leased: usize,
        /// The gateway.
        gateway: Ipv4Addr,
    },
    /// The lease directory could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The leases of one network.
#[derive(Debug, Clone)]
pub struct Leases {
    dir: PathBuf,
    network: String,
    subnet: Ipv4Net,
}

impl Leases {
    /// The leases of network `network` on `subnet`, kept in `dir`.
    pub fn new(dir: &Path, network: &str, subnet: Ipv4Net) -> Leases {
        Leases {
            dir: dir.to_path_buf(),
            network: network.to_string(),
            subnet,
        }
    }

    // ANCHOR: allocate
    /// Lease the lowest free address to `owner`, a container id.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| IpamError::Io { op, path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io("make", &self.dir))?;
        let temp = self.dir.join(format!(".new-{owner}"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(io("make", &temp))?;
        let written = file.write_all(owner.as_bytes());
        drop(file);
        let leased = written.map_err(io("write", &temp)).and_then(|()| {
            // .0 is the network, .1 the gateway: the first lease is .2.
            for n in 2.. {
                let Some(address) = self.subnet.host(n) else {
                    break;
                };
                let lease = self.dir.join(address.to_string());
                match fs::hard_link(&temp, &lease) {
                    Ok(()) => return Ok(address),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(source) => return Err(io("make", &lease)(source)),
                }
            }
            Err(IpamError::Exhausted {
                network: self.network.clone(),
                subnet: self.subnet,
                leased: self.held().map(|h| h.len()).unwrap_or_default(),
                gateway: self.subnet.gateway(),
            })
        });
        let _ = fs::remove_file(&temp);
        leased
    }
    // ANCHOR_END: allocate

    /// Every lease: the address and the container that holds it.
    pub fn held(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(IpamError::Io {
                    op: "read",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let Some(address) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // A lease removed since the listing is no lease.
            if let Ok(owner) = fs::read_to_string(entry.path()) {
                held.push((address, owner));
            }
        }
        held.sort();
        Ok(held)
    }

    /// Release every address `owner` holds; returns them. Releasing twice is harmless.
    pub fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let mut released = Vec::new();
        for (address, _) in self.held()?.into_iter().filter(|(_, o)| o == owner) {
            let path = self.dir.join(address.to_string());
            match fs::remove_file(&path) {
                Ok(()) => released.push(address),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(IpamError::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
            }
        }
        let _ = fs::remove_file(self.dir.join(format!(".new-{owner}")));
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(dir: &Path, subnet: &str) -> Leases {
        Leases::new(dir, "test0", subnet.parse().unwrap())
    }

    #[test]
    fn the_first_lease_is_dot_two_and_a_released_address_is_leased_again() {
        let dir = tempfile::tempdir().unwrap();
        let net = leases(dir.path(), "10.88.0.0/16");
        assert_eq!(net.allocate("a").unwrap(), Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(net.allocate("b").unwrap(), Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("10.88.0.3")).unwrap(),
            "b"
        );
        assert_eq!(net.release("a").unwrap(), vec![Ipv4Addr::new(10, 88, 0, 2)]);
        assert!(net.release("a").unwrap().is_empty());
        assert_eq!(net.allocate("c").unwrap(), Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(
            net.held().unwrap(),
            vec![
                (Ipv4Addr::new(10, 88, 0, 2), "c".to_string()),
                (Ipv4Addr::new(10, 88, 0, 3), "b".to_string())
            ]
        );
    }

    #[test]
    fn twenty_owners_at_once_get_twenty_distinct_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let net = leases(dir.path(), "10.88.0.0/16");
        let addresses: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20)
                .map(|i| {
                    let net = &net;
                    s.spawn(move || net.allocate(&format!("c{i}")).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut distinct = addresses.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 20, "{addresses:?}");
        assert_eq!(net.held().unwrap().len(), 20);
    }

    #[test]
    fn an_exhausted_subnet_says_so_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        // A /29: .0 network, .1 gateway, .2 to .6 for containers, .7 broadcast.
        let net = leases(dir.path(), "10.99.0.0/29");
        for i in 0..5 {
            net.allocate(&format!("c{i}")).unwrap();
        }
        let err = net.allocate("late").unwrap_err().to_string();
        assert_eq!(
            err,
            "network test0: no free address left in 10.99.0.0/29 (5 leased, the gateway 10.99.0.1 too): remove a container, or use a larger --subnet"
        );
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 5, "only the five leases");
    }
}
