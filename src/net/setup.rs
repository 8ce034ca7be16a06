//! Carrying out a container's [`NetStep`]s, and taking all of it down again.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_packet_route::link::LinkAttribute;
use nix::errno::Errno;

use super::ipam::Leases;
use super::netlink::{self, NetlinkError, RouteSocket};
use super::ports::{PortMapping, Protocol};
use super::{NetError, NetStep, OwnedNetwork, names, nft, pasta};
use crate::launch::{ProcessRef, pidfd_open, pidfd_send_signal, poll_readable};
use crate::store::FileLock;

/// How long a container waits for another that is setting up or taking down the same
/// network: a few milliseconds each.
const NETWORK_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// A container's network being set up: what the steps so far made and found.
#[derive(Debug)]
pub struct Setup {
    id: String,
    address: Option<Ipv4Addr>,
    host: Option<RouteSocket>,
    inside: Option<RouteSocket>,
    netns: Option<OwnedFd>,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.to_path_buf();
    move |source| NetError::Io { op, path, source }
}

impl Setup {
    /// Container `id`'s network, before its first step.
    pub fn new(id: &str) -> Setup {
        Setup {
            id: id.to_string(),
            address: None,
            host: None,
            inside: None,
            netns: None,
        }
    }

    /// The address it leased, once it has.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.address
    }

    /// The leased address, for a step that needs it.
    fn leased(&self) -> Result<Ipv4Addr, NetError> {
        self.address.ok_or(NetError::Netlink(NetlinkError {
            op: "find the leased address".to_string(),
            source: Errno::EADDRNOTAVAIL,
        }))
    }

    fn host(&mut self) -> Result<&mut RouteSocket, NetError> {
        if self.host.is_none() {
            self.host = Some(RouteSocket::open()?);
        }
        Ok(self.host.as_mut().expect("just opened"))
    }

    fn inside(&mut self, pid: i32) -> Result<&mut RouteSocket, NetError> {
        if self.inside.is_none() {
            let socket = RouteSocket::open_in(self.netns(pid)?.as_fd())?;
            self.inside = Some(socket);
        }
        Ok(self.inside.as_mut().expect("just opened"))
    }

    fn netns(&mut self, pid: i32) -> Result<&OwnedFd, NetError> {
        if self.netns.is_none() {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let file = fs::File::open(&path).map_err(io("open", &path))?;
            self.netns = Some(file.into());
        }
        Ok(self.netns.as_ref().expect("just opened"))
    }

    /// Carry out `step` for the container whose first process is `pid` (once cloned).
    /// Returns pasta's process when the step started it.
    pub fn run(
        &mut self,
        step: &NetStep,
        pid: Option<i32>,
    ) -> Result<Option<ProcessRef>, NetError> {
        let pid = || {
            pid.ok_or(NetError::Netlink(NetlinkError {
                op: "find the container's first process".to_string(),
                source: Errno::ESRCH,
            }))
        };
        match step {
            NetStep::ReservePorts { ports, dir } => reserve_ports(dir, ports, &self.id)?,
            NetStep::Lease {
                bridge,
                subnet,
                dir,
            } => {
                // Under the network's lock, for a moment: the last container leaving
                // removes the network once it sees no lease. From this lease on, it
                // sees one, and the bridge and the rules stay.
                let _lock = lock_network(dir)?;
                check_subnet(dir, bridge, *subnet)?;
                self.address = Some(Leases::new(dir, bridge, *subnet).allocate(&self.id)?);
            }
            NetStep::WriteNameFiles { dir, hostname } => {
                write_name_files(dir, hostname, self.address)?;
            }
            // ANCHOR: run_host
            NetStep::EnsureBridge { bridge, subnet } => {
                // Two containers may both find no bridge: the second is told EEXIST,
                // and uses the first one's.
                let host = self.host()?;
                if host.link_index(bridge)?.is_none() {
                    exists_is_fine(host.create_link(
                        &format!("ip link add {bridge} type bridge"),
                        netlink::new_bridge(bridge),
                    ))?;
                }
                let index = host.existing_link(bridge)?;
                exists_is_fine(host.add_address(
                    &format!(
                        "ip addr add {}/{} dev {bridge}",
                        subnet.gateway(),
                        subnet.prefix()
                    ),
                    netlink::new_address(index, subnet.gateway(), subnet.prefix()),
                ))?;
                host.change_link(&format!("ip link set {bridge} up"), netlink::link_up(index))?;
            }
            NetStep::EnableForwarding { bridge } => {
                for path in [
                    PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
                    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet")),
                ] {
                    fs::write(&path, "1").map_err(io("write 1 to", &path))?;
                }
            }
            NetStep::CreateVeth { host, peer, mtu } => {
                self.host()?.create_link(
                    &format!("ip link add {host} type veth peer name {peer}"),
                    netlink::new_veth(host, peer, *mtu),
                )?;
            }
            NetStep::AttachToBridge { link, bridge } => {
                let socket = self.host()?;
                let master = socket.existing_link(bridge)?;
                let index = socket.existing_link(link)?;
                socket.change_link(
                    &format!("ip link set {link} master {bridge}"),
                    netlink::set_link(index, vec![LinkAttribute::Controller(master)]),
                )?;
                socket.change_port(
                    &format!("ip link set {link} type bridge_slave hairpin on"),
                    netlink::hairpin(index),
                )?;
                socket.change_link(&format!("ip link set {link} up"), netlink::link_up(index))?;
            }
            NetStep::MoveIntoContainer { link } => {
                let pid = pid()?;
                // The fd stays open in self.netns while the kernel reads its number.
                let netns = self.netns(pid)?.as_raw_fd();
                let socket = self.host()?;
                let index = socket.existing_link(link)?;
                socket.change_link(
                    &format!("ip link set {link} netns {pid}"),
                    netlink::set_link(index, vec![LinkAttribute::NetNsFd(netns)]),
                )?;
            }
            // ANCHOR_END: run_host
            // ANCHOR: run_inside
            NetStep::Rename { from, to } => {
                let socket = self.inside(pid()?)?;
                let index = socket.existing_link(from)?;
                socket.change_link(
                    &format!("ip link set {from} name {to}"),
                    netlink::set_link(index, vec![LinkAttribute::IfName(to.clone())]),
                )?;
            }
            NetStep::AddAddress { link, subnet } => {
                let address = self.leased()?;
                let socket = self.inside(pid()?)?;
                let index = socket.existing_link(link)?;
                socket.add_address(
                    &format!("ip addr add {address}/{} dev {link}", subnet.prefix()),
                    netlink::new_address(index, address, subnet.prefix()),
                )?;
            }
            NetStep::LinkUp { link } => {
                let socket = self.inside(pid()?)?;
                let index = socket.existing_link(link)?;
                socket.change_link(&format!("ip link set {link} up"), netlink::link_up(index))?;
            }
            NetStep::DefaultRoute { gateway } => {
                self.inside(pid()?)?.add_route(
                    &format!("ip route add default via {gateway}"),
                    netlink::default_route(*gateway),
                )?;
            }
            // ANCHOR_END: run_inside
            // ANCHOR: run_nat
            NetStep::Nat {
                bridge,
                subnet,
                chain,
                ports,
                dir,
            } => {
                // The network's lock: so that two containers do not both add the jump
                // into the network's chain. Chains come before the jumps into them in
                // the batch: a jump to a missing chain is refused.
                let _lock = lock_network(dir)?;
                let mut batch = nft::Batch::new();
                batch
                    .ensure_table()
                    .fresh_chain(&nft::network_chain(bridge))
                    .add(&nft::network_rules(bridge, *subnet));
                let listing = nft::list_table()?.unwrap_or_default();
                if listing
                    .commented(&nft::network_comment(bridge))
                    .next()
                    .is_none()
                {
                    batch.add(&[nft::network_jump(bridge)]);
                }
                if !ports.is_empty() {
                    let address = self.leased()?;
                    batch
                        .fresh_chain(chain)
                        .add(&nft::port_rules(chain, address, ports))
                        .add(&nft::container_jumps(chain, &self.id));
                }
                batch.apply()?;
            }
            // ANCHOR_END: run_nat
            NetStep::StartPasta { ports, dir } => {
                return start_pasta(pid()?, ports, dir).map(Some);
            }
        }
        Ok(None)
    }
}

/// A create that found what it makes already made is fine.
fn exists_is_fine(result: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    match result {
        Err(NetlinkError {
            source: Errno::EEXIST,
            ..
        }) => Ok(()),
        other => other,
    }
}

/// Take the lock of the network whose leases are in `dir`: `.<bridge>.lock` beside it,
/// so that the lease directory can go with the network while others wait for the lock.
fn lock_network(dir: &Path) -> Result<FileLock, NetError> {
    let parent = dir.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(io("make", parent))?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let path = parent.join(format!(".{name}.lock"));
    FileLock::acquire(&path, NETWORK_LOCK_TIMEOUT)
        .map_err(io("lock", &path))?
        .ok_or_else(|| NetError::Io {
            op: "lock",
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("another nutshell held it for {NETWORK_LOCK_TIMEOUT:?}"),
            ),
        })
}

/// The network's subnet is recorded with its first lease; a container asking for
/// another while it has containers is refused.
fn check_subnet(dir: &Path, bridge: &str, subnet: super::Ipv4Net) -> Result<(), NetError> {
    fs::create_dir_all(dir).map_err(io("make", dir))?;
    let path = dir.join(".subnet");
    let recorded = fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<super::Ipv4Net>().ok());
    if let Some(existing) = recorded.filter(|e| *e != subnet) {
        let in_use = !Leases::new(dir, bridge, existing).held()?.is_empty();
        if in_use {
            return Err(NetError::SubnetMismatch {
                bridge: bridge.to_string(),
                existing,
                asked: subnet,
            });
        }
    }
    fs::write(&path, subnet.to_string()).map_err(io("write", &path))
}

/// The reservation file of a host port: `<dir>/tcp-8080`.
fn reservation(dir: &Path, port: &PortMapping) -> PathBuf {
    dir.join(format!("{}-{}", port.protocol.name(), port.host_port))
}

// ANCHOR: reserve_ports
/// Reserve each host port for container `id`: refused if another container has it (its
/// reservation file exists) or something on the host listens on it (a bind fails). On
/// a refusal, the ports reserved so far are given back.
fn reserve_ports(dir: &Path, ports: &[PortMapping], id: &str) -> Result<(), NetError> {
    fs::create_dir_all(dir).map_err(io("make", dir))?;
    let mut reserved = Vec::new();
    let result = (|| {
        for port in ports {
            let path = reservation(dir, port);
            let mut file = match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let by = fs::read_to_string(&path).unwrap_or_default();
                    return Err(NetError::PortTaken {
                        port: format!("{}/{}", port.host_port, port.protocol.name()),
                        by: format!(" by container {by}"),
                    });
                }
                Err(source) => return Err(io("make", &path)(source)),
            };
            reserved.push(path.clone());
            std::io::Write::write_all(&mut file, id.as_bytes()).map_err(io("write", &path))?;
            check_no_listener(port)?;
        }
        Ok(())
    })();
    if result.is_err() {
        for path in reserved {
            let _ = fs::remove_file(path);
        }
    }
    result
}
// ANCHOR_END: reserve_ports

// ANCHOR: check_no_listener
/// Whether something on this host has `port`: try to bind it, as a listener would.
fn check_no_listener(port: &PortMapping) -> Result<(), NetError> {
    let address = SocketAddrV4::new(
        port.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port.host_port,
    );
    let bound = match port.protocol {
        Protocol::Tcp => TcpListener::bind(address).map(drop),
        Protocol::Udp => UdpSocket::bind(address).map(drop),
    };
    match bound {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::PortTaken {
            port: format!("{}/{}", port.host_port, port.protocol.name()),
            by: " on this host".to_string(),
        }),
        // Another address than this host's (EADDRNOTAVAIL) is nftables' concern, not a
        // conflict.
        _ => Ok(()),
    }
}
// ANCHOR_END: check_no_listener

/// Write the container's name files into its state directory, readable by its root
/// whoever that is on the host, and the directory passable (0711) but not listable.
fn write_name_files(dir: &Path, hostname: &str, address: Option<Ipv4Addr>) -> Result<(), NetError> {
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for (name, text) in [
        ("hostname", names::hostname_file(hostname)),
        ("hosts", names::hosts_file(hostname, address)),
        ("resolv.conf", names::resolv_conf(&host_resolv)),
    ] {
        let path = dir.join(name);
        fs::write(&path, text).map_err(io("write", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .map_err(io("chmod", &path))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).map_err(io("chmod", dir))
}

// ANCHOR: teardown
/// Remove everything container `id` owns of the network: its pasta, its veth, its NAT
/// rules, its lease and port reservations; and the bridge and the table with the last
/// container. Each part that is already gone is skipped, so that this also finishes a
/// teardown a killed owner left half-done. Returns what it removed.
pub fn teardown(id: &str, owned: &OwnedNetwork) -> Result<Vec<String>, NetError> {
    let mut removed = Vec::new();
    if let Some(pasta) = owned.pasta
        && stop_process(pasta)
    {
        removed.push(format!("pasta (pid {})", pasta.pid));
    }
    let Some((bridge, subnet)) = &owned.bridge else {
        return Ok(removed);
    };
    let mut host = RouteSocket::open()?;
    if let Some(link) = &owned.host_link
        && let Some(index) = host.link_index(link)?
    {
        match host.delete_link(&format!("ip link del {link}"), index) {
            // Gone with the container's namespace in the meantime.
            Ok(())
            | Err(NetlinkError {
                source: Errno::ENODEV,
                ..
            }) => {
                removed.push(format!("veth {link}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let dir = owned.dir.join(bridge);
    // Without <data>/net, no container of this data directory is left on the network
    // to lock it against; teardown makes nothing, not even a lock file.
    let _lock = owned.dir.exists().then(|| lock_network(&dir)).transpose()?;
    // The lease and the ports first: whatever fails after, they are free again.
    for address in Leases::new(&dir, bridge, *subnet).release(id)? {
        removed.push(format!("lease {address}"));
    }
    removed.extend(release_ports(&owned.dir.join("ports"), id)?);
    let mut listing = nft::list_table()?;
    let mut batch = nft::Batch::new();
    if let (Some(listing), Some(link)) = (&mut listing, &owned.host_link) {
        for rule in listing.commented(id) {
            batch.delete_rule(&rule.chain, rule.handle);
        }
        let chain = nft::container_chain(link);
        if listing.has_chain(&chain) {
            batch.delete_chain(&chain);
            listing.chains.retain(|c| *c != chain);
            removed.push(format!("nft chain {chain}"));
        }
    }
    let last = Leases::new(&dir, bridge, *subnet).held()?.is_empty();
    if last {
        removed.extend(remove_network(
            &mut host,
            &dir,
            listing.as_ref(),
            &mut batch,
        )?);
    }
    batch.apply()?;
    Ok(removed)
}
// ANCHOR_END: teardown

/// Remove the network whose (empty) lease directory is `dir`: its bridge, its lease
/// directory, and its rules (the whole table when no other network has rules in it),
/// into `batch`. The caller holds the network's lock.
fn remove_network(
    host: &mut RouteSocket,
    dir: &Path,
    listing: Option<&nft::Listing>,
    batch: &mut nft::Batch,
) -> Result<Vec<String>, NetError> {
    let bridge = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let bridge = bridge.as_str();
    let mut removed = Vec::new();
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", dir)(e)),
        _ => {}
    }
    if let Some(index) = host.link_index(bridge)? {
        host.delete_link(&format!("ip link del {bridge}"), index)?;
        removed.push(format!("bridge {bridge}"));
    }
    let Some(listing) = listing else {
        return Ok(removed);
    };
    let own_chain = nft::network_chain(bridge);
    let others = listing.chains.iter().any(|c| {
        !["prerouting", "output", "postrouting", own_chain.as_str()].contains(&c.as_str())
    });
    if others {
        for rule in listing.commented(&nft::network_comment(bridge)) {
            batch.delete_rule(&rule.chain, rule.handle);
        }
        if listing.has_chain(&own_chain) {
            batch.delete_chain(&own_chain);
        }
    } else {
        // The whole table goes, with whatever else the batch was to delete in it.
        *batch = nft::Batch::new();
        batch.delete_table();
        removed.push(format!("nft table {} {}", nft::FAMILY, nft::TABLE));
    }
    Ok(removed)
}

/// Give back every host port container `id` reserved.
fn release_ports(dir: &Path, id: &str) -> Result<Vec<String>, NetError> {
    let mut released = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(released);
    };
    for entry in entries.flatten() {
        if fs::read_to_string(entry.path()).is_ok_and(|owner| owner == id) {
            fs::remove_file(entry.path()).map_err(io("remove", &entry.path()))?;
            released.push(format!("port {}", entry.file_name().to_string_lossy()));
        }
    }
    Ok(released)
}

/// Stop `process` if it is still the one recorded; whether it was running.
fn stop_process(process: ProcessRef) -> bool {
    // A pidfd first, then the check: a pid handed out again after the check cannot be
    // hit by the signal.
    let Ok(pidfd) = pidfd_open(nix::unistd::Pid::from_raw(process.pid)) else {
        return false;
    };
    if !process.alive() {
        return false;
    }
    // SIGKILL: pasta keeps nothing that needs a clean exit, and it does not end on
    // SIGTERM while its namespace is held. A pidfd turns readable when its process
    // ends: wait for that, a moment. Either failing leaves nothing to do.
    let _ = pidfd_send_signal(pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
    let _ = poll_readable(pidfd.as_fd(), STOP_WAIT);
    true
}

/// How long teardown waits for a killed pasta to be gone.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What containers whose state is gone left in `<data>/net`: leases, port reservations,
/// and then bridges and rules no container uses. For `nutshell cleanup` and the
/// sweep, which call it after removing the dead containers; `live` says whether a
/// container id still has its state.
pub fn remove_unused(
    data_dir: &Path,
    live: impl Fn(&str) -> bool,
) -> Result<Vec<String>, NetError> {
    let dir = super::net_dir(data_dir);
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(removed);
    };
    let ports = dir.join("ports");
    for entry in fs::read_dir(&ports).into_iter().flatten().flatten() {
        let owner = fs::read_to_string(entry.path()).unwrap_or_default();
        if !live(&owner) {
            let _ = fs::remove_file(entry.path());
            removed.push(format!(
                "port {} of {owner}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    let mut host = None;
    for entry in entries.flatten() {
        let bridge = entry.file_name().to_string_lossy().into_owned();
        if bridge == "ports" || bridge.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let lease_dir = entry.path();
        let Some(subnet) = fs::read_to_string(lease_dir.join(".subnet"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        else {
            continue;
        };
        let leases = Leases::new(&lease_dir, &bridge, subnet);
        let held = leases.held()?;
        if !held.is_empty() && held.iter().all(|(_, owner)| live(owner)) {
            // The common case, at every container's start: nothing to do, no lock taken.
            continue;
        }
        let _lock = lock_network(&lease_dir)?;
        for (address, owner) in leases.held()? {
            if !live(&owner) {
                leases.release(&owner)?;
                removed.push(format!("lease {address} of {owner}"));
            }
        }
        if leases.held()?.is_empty() {
            if host.is_none() {
                host = Some(RouteSocket::open()?);
            }
            let listing = nft::list_table()?;
            let mut batch = nft::Batch::new();
            let socket = host.as_mut().expect("just opened");
            removed.extend(remove_network(
                socket,
                &lease_dir,
                listing.as_ref(),
                &mut batch,
            )?);
            batch.apply()?;
        }
    }
    Ok(removed)
}

/// Start pasta for container `id` (see [`pasta::start`]).
pub fn start_pasta(
    pid: i32,
    ports: &[PortMapping],
    state_dir: &Path,
) -> Result<ProcessRef, NetError> {
    let pasta_pid = pasta::start(pid, ports, state_dir)?;
    ProcessRef::of(pasta_pid)
        .ok_or_else(|| NetError::Pasta(format!("pasta (pid {pasta_pid}) ended at once")))
}
