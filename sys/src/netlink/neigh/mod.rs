//! Neighbours: static ARP/NDP entries (`ip neigh replace … nud permanent`)
//! and VXLAN forwarding-database entries (`bridge fdb replace … self`).

mod add;
mod del;
mod list;

pub use add::{FdbAdd, NeighAdd};
pub use del::NeighDel;
pub use list::NeighList;

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily,
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
    },
};

use super::{Mac, mac_from};

/// One neighbour or FDB entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    pub index: u32,
    pub family: AddressFamily,
    /// The IP (a neighbour), or the remote VTEP (an FDB entry).
    pub dst: Option<IpAddr>,
    pub lladdr: Option<Mac>,
    pub state: NeighbourState,
    pub flags: NeighbourFlags,
}

impl Neigh {
    pub(crate) fn from_message(msg: &NeighbourMessage) -> Self {
        let mut n = Neigh {
            index: msg.header.ifindex,
            family: msg.header.family,
            dst: None,
            lladdr: None,
            state: msg.header.state,
            flags: msg.header.flags,
        };
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    n.dst = Some((*a).into())
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    n.dst = Some((*a).into())
                }
                // FDB entries (AF_BRIDGE) carry the remote VTEP raw.
                NeighbourAttribute::Destination(NeighbourAddress::Other(raw)) => {
                    n.dst = match raw.len() {
                        4 => <[u8; 4]>::try_from(raw.as_slice()).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(raw.as_slice()).ok().map(IpAddr::from),
                        _ => None,
                    }
                }
                NeighbourAttribute::LinkLayerAddress(l) => n.lladdr = mac_from(l),
                _ => {}
            }
        }
        n
    }
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}
