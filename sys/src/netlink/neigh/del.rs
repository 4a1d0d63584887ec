//! `ip neigh del` and `bridge fdb del`.

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage},
};

use crate::netlink::{Handle, Mac, NetlinkError};

#[derive(Debug, Clone)]
pub enum NeighDel {
    /// The neighbour entry for `dst` on link `index`.
    Ip { index: u32, dst: IpAddr },
    /// The FDB entry for `mac` (towards `dst`) on VXLAN link `index`.
    Fdb { index: u32, mac: Mac, dst: IpAddr },
}

impl NeighDel {
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = NeighbourMessage::default();
        match self {
            NeighDel::Ip { index, dst } => {
                msg.header.family = super::family(*dst);
                msg.header.ifindex = *index;
                msg.attributes
                    .push(NeighbourAttribute::Destination(super::neigh_addr(*dst)));
            }
            NeighDel::Fdb { index, mac, dst } => {
                msg.header.family = AddressFamily::Bridge;
                msg.header.ifindex = *index;
                msg.header.flags = NeighbourFlags::Own;
                msg.attributes
                    .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
                msg.attributes
                    .push(NeighbourAttribute::Destination(super::neigh_addr(*dst)));
            }
        }
        RouteNetlinkMessage::DelNeighbour(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(|| format!("deleting neighbour {self:?}"), self.message(), 0)
    }
}

impl crate::netlink::Change for NeighDel {
    fn message(&self) -> RouteNetlinkMessage {
        NeighDel::message(self)
    }

    fn flags(&self) -> u16 {
        0
    }

    fn describe(&self) -> String {
        format!("deleting neighbour {self:?}")
    }
}
