//! `ip neigh replace` and `bridge fdb replace`.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
};

use crate::netlink::{Handle, Mac, NetlinkError, format_mac};

/// A permanent neighbour entry: `dst` is at `lladdr` on link `index`.
#[derive(Debug, Clone)]
pub struct NeighAdd {
    pub index: u32,
    pub dst: IpAddr,
    pub lladdr: Mac,
}

impl NeighAdd {
    pub fn new(index: u32, dst: IpAddr, lladdr: Mac) -> Self {
        Self { index, dst, lladdr }
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.family = super::family(self.dst);
        msg.header.ifindex = self.index;
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(super::neigh_addr(self.dst)));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(self.lladdr.to_vec()));
        RouteNetlinkMessage::NewNeighbour(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || {
                format!(
                    "adding neighbour {} lladdr {} on link #{}",
                    self.dst,
                    format_mac(&self.lladdr),
                    self.index
                )
            },
            self.message(),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }
}

/// A permanent FDB entry on a VXLAN device: frames for `mac` go to the
/// VTEP at `dst`.
#[derive(Debug, Clone)]
pub struct FdbAdd {
    pub index: u32,
    pub mac: Mac,
    pub dst: IpAddr,
}

impl FdbAdd {
    pub fn new(index: u32, mac: Mac, dst: IpAddr) -> Self {
        Self { index, mac, dst }
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = self.index;
        msg.header.state = NeighbourState::Permanent;
        msg.header.flags = NeighbourFlags::Own;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(self.mac.to_vec()));
        msg.attributes
            .push(NeighbourAttribute::Destination(super::neigh_addr(self.dst)));
        RouteNetlinkMessage::NewNeighbour(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || {
                format!(
                    "adding fdb entry {} dst {} on link #{}",
                    format_mac(&self.mac),
                    self.dst,
                    self.index
                )
            },
            self.message(),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }
}

impl crate::netlink::Change for NeighAdd {
    fn message(&self) -> RouteNetlinkMessage {
        NeighAdd::message(self)
    }

    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_REPLACE
    }

    fn describe(&self) -> String {
        format!(
            "adding neighbour {} lladdr {} on link #{}",
            self.dst,
            format_mac(&self.lladdr),
            self.index
        )
    }
}

impl crate::netlink::Change for FdbAdd {
    fn message(&self) -> RouteNetlinkMessage {
        FdbAdd::message(self)
    }

    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_REPLACE
    }

    fn describe(&self) -> String {
        format!(
            "adding fdb entry {} dst {} on link #{}",
            format_mac(&self.mac),
            self.dst,
            self.index
        )
    }
}
