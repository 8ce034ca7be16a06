//! rtnetlink: links, addresses and routes, as messages to the kernel.
//!
//! `ip link add`, `ip addr add` and `ip route add` are each one message on a
//! `NETLINK_ROUTE` socket: a header (what to do: RTM_NEWLINK, RTM_NEWADDR ...; with which
//! flags: create, fail if it exists, acknowledge) and attributes (the name, the kind of
//! link, the peer, the address). This module builds those messages as data with the
//! rust-netlink crates, sends them, and reads the kernel's acknowledgement, which
//! carries an errno when it refused.
//!
//! A netlink socket talks to the network namespace it was made in, for as long as it
//! lives. To configure a container's namespace from the host, nutshell makes a socket
//! there: a short-lived thread joins the namespace (setns(2) moves only the calling
//! thread), opens the socket, and ends; the socket stays bound to the container's
//! namespace.
//!
//! See also [rtnetlink(7)](https://man7.org/linux/man-pages/man7/rtnetlink.7.html).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;

/// How long the kernel may take to answer one request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A request the kernel refused, or a socket that failed.
#[derive(Debug, thiserror::Error)]
#[error("netlink: {op}: {source}")]
pub struct NetlinkError {
    /// What was asked, as `ip` would say it.
    pub op: String,
    /// The errno.
    pub source: Errno,
}

// ANCHOR: messages
/// `ip link add NAME type bridge`.
pub fn new_bridge(name: &str) -> LinkMessage {
    let mut link = LinkMessage::default();
    link.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ];
    link
}

/// `ip link add NAME mtu MTU type veth peer name PEER`: both ends are made at once.
pub fn new_veth(name: &str, peer: &str, mtu: u32) -> LinkMessage {
    let mut peer_end = LinkMessage::default();
    peer_end.attributes = vec![
        LinkAttribute::IfName(peer.to_string()),
        LinkAttribute::Mtu(mtu),
    ];
    let mut link = LinkMessage::default();
    link.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(netlink_packet_route::link::InfoData::Veth(InfoVeth::Peer(
                peer_end,
            ))),
        ]),
    ];
    link
}

/// A change to the link with index `index`: `ip link set` with these attributes.
pub fn set_link(index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut link = LinkMessage::default();
    link.header.index = index;
    link.attributes = attributes;
    link
}

/// `ip link set dev ... up`.
pub fn link_up(index: u32) -> LinkMessage {
    let mut link = set_link(index, Vec::new());
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    link
}

/// `ip link set dev ... type bridge_slave hairpin on`: the bridge may send a frame back
/// out of the port it came in by, so that a container reaches its own published port.
pub fn hairpin(index: u32) -> LinkMessage {
    set_link(
        index,
        vec![LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ])],
    )
}

/// `ip addr add ADDRESS/PREFIX dev ...`.
pub fn new_address(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    message.attributes = vec![
        AddressAttribute::Local(address.into()),
        AddressAttribute::Address(address.into()),
    ];
    message
}

/// `ip route add default via GATEWAY`.
pub fn default_route(gateway: Ipv4Addr) -> RouteMessage {
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = RouteHeader::RT_TABLE_MAIN;
    route.header.protocol = RouteProtocol::Static;
    route.header.scope = RouteScope::Universe;
    route.header.kind = RouteType::Unicast;
    route.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
    route
}
// ANCHOR_END: messages

/// A `NETLINK_ROUTE` socket in one network namespace.
#[derive(Debug)]
pub struct RouteSocket {
    socket: Socket,
    sequence: u32,
}

impl RouteSocket {
    /// A socket in this thread's network namespace.
    pub fn open() -> Result<RouteSocket, NetlinkError> {
        let failed = |source| NetlinkError {
            op: "open a NETLINK_ROUTE socket".to_string(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| failed(errno_of(&e)))?;
        socket.bind_auto().map_err(|e| failed(errno_of(&e)))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| failed(errno_of(&e)))?;
        let timeout = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: setsockopt on our own socket with a timeval of the size passed.
        Errno::result(unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })
        .map_err(failed)?;
        Ok(RouteSocket {
            socket,
            sequence: 0,
        })
    }

    // ANCHOR: open_in
    /// A socket in the network namespace `netns` refers to (an fd of
    /// `/proc/PID/ns/net`, or a pidfd): made by a thread that joins it, and ends.
    pub fn open_in(netns: BorrowedFd) -> Result<RouteSocket, NetlinkError> {
        let netns: OwnedFd = netns.try_clone_to_owned().map_err(|e| NetlinkError {
            op: "duplicate the network namespace's fd".to_string(),
            source: errno_of(&e),
        })?;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                    |source| NetlinkError {
                        op: "join the container's network namespace (setns)".to_string(),
                        source,
                    },
                )?;
                RouteSocket::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetlinkError {
                    op: "join the container's network namespace".to_string(),
                    source: Errno::EIO,
                })
            })
        })
    }
    // ANCHOR_END: open_in

    /// Send `message` with `flags` and read the kernel's answers up to its ack (or the
    /// end of a dump).
    fn request(
        &mut self,
        op: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let failed = |source| NetlinkError {
            op: op.to_string(),
            source,
        };
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| failed(errno_of(&e)))?;
        let mut answers = Vec::new();
        loop {
            let mut reply = Vec::with_capacity(64 * 1024);
            let n = self
                .socket
                .recv(&mut reply, 0)
                .map_err(|e| failed(errno_of(&e)))?;
            let mut at = 0;
            while at < n {
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply[at..n])
                    .map_err(|_| failed(Errno::EBADMSG))?;
                let len = message.header.length as usize;
                if message.header.sequence_number == self.sequence {
                    match message.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(answers),
                                Some(code) => Err(failed(Errno::from_raw(-code.get()))),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                at += netlink_align(len);
            }
        }
    }

    /// The index of the link named `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut query = LinkMessage::default();
        query.attributes = vec![LinkAttribute::IfName(name.to_string())];
        match self.request(
            &format!("ip link show {name}"),
            RouteNetlinkMessage::GetLink(query),
            NLM_F_ACK,
        ) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| match a {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })),
            Err(e) if e.source == Errno::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, which must exist.
    pub fn existing_link(&mut self, name: &str) -> Result<u32, NetlinkError> {
        self.link_index(name)?.ok_or(NetlinkError {
            op: format!("find link {name}"),
            source: Errno::ENODEV,
        })
    }

    /// The names of every link in the namespace.
    pub fn link_names(&mut self) -> Result<Vec<String>, NetlinkError> {
        let answers = self.request(
            "ip link show",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewLink(link) => {
                    link.attributes.into_iter().find_map(|attr| match attr {
                        LinkAttribute::IfName(name) => Some(name),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Create a link (RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: EEXIST if one of its
    /// names is taken).
    pub fn create_link(&mut self, op: &str, link: LinkMessage) -> Result<(), NetlinkError> {
        self.request(
            op,
            RouteNetlinkMessage::NewLink(link),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Change a link.
    pub fn change_link(&mut self, op: &str, link: LinkMessage) -> Result<(), NetlinkError> {
        self.request(op, RouteNetlinkMessage::SetLink(link), NLM_F_ACK)
            .map(drop)
    }

    /// Change a bridge port's settings: RTM_NEWLINK on the existing link, without
    /// NLM_F_CREATE. The kernel reads a port's IFLA_INFO_SLAVE_DATA only there, and
    /// ignores it in RTM_SETLINK.
    pub fn change_port(&mut self, op: &str, link: LinkMessage) -> Result<(), NetlinkError> {
        self.request(op, RouteNetlinkMessage::NewLink(link), NLM_F_ACK)
            .map(drop)
    }

    /// Delete the link with `index` (a veth takes its peer with it).
    pub fn delete_link(&mut self, op: &str, index: u32) -> Result<(), NetlinkError> {
        self.request(
            op,
            RouteNetlinkMessage::DelLink(set_link(index, Vec::new())),
            NLM_F_ACK,
        )
        .map(drop)
    }

    /// Add an address.
    pub fn add_address(&mut self, op: &str, message: AddressMessage) -> Result<(), NetlinkError> {
        self.request(
            op,
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Add a route.
    pub fn add_route(&mut self, op: &str, message: RouteMessage) -> Result<(), NetlinkError> {
        self.request(
            op,
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

/// Netlink messages are padded to 4 bytes.
fn netlink_align(len: usize) -> usize {
    (len + 3) & !3
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    #[test]
    fn a_veth_message_carries_its_peer_inside_its_link_info() {
        let link = new_veth("nut1a2b3c4d", "nut1a2b3c4dc", 1500);
        let mut bytes = vec![0; link.buffer_len()];
        link.emit(&mut bytes);
        // The peer's name is inside the message, after the link's own.
        let text = String::from_utf8_lossy(&bytes);
        let first = text.find("nut1a2b3c4d\0").unwrap();
        let peer = text.find("nut1a2b3c4dc\0").unwrap();
        assert!(first < peer, "{text:?}");
        assert!(text.contains("veth\0"));
    }

    #[test]
    fn link_up_changes_only_the_up_flag() {
        let up = link_up(7);
        assert_eq!(up.header.index, 7);
        assert_eq!(up.header.flags, LinkFlags::Up);
        assert_eq!(up.header.change_mask, LinkFlags::Up);
    }
}
