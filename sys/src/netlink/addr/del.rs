//! `ip addr del`.

use ipnet::IpNet;
use netlink_packet_route::{RouteNetlinkMessage, address::AddressScope};

use crate::netlink::{Handle, NetlinkError};

#[derive(Debug, Clone)]
pub struct AddrDel {
    pub index: u32,
    pub addr: IpNet,
}

impl AddrDel {
    pub fn new(index: u32, addr: IpNet) -> Self {
        Self { index, addr }
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        RouteNetlinkMessage::DelAddress(super::message(
            self.index,
            self.addr.addr(),
            self.addr.prefix_len(),
            AddressScope::Universe,
        ))
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("deleting address {} from link #{}", self.addr, self.index),
            self.message(),
            0,
        )
    }
}

impl crate::netlink::Change for AddrDel {
    fn message(&self) -> RouteNetlinkMessage {
        AddrDel::message(self)
    }

    fn flags(&self) -> u16 {
        0
    }

    fn describe(&self) -> String {
        format!("deleting address {} from link #{}", self.addr, self.index)
    }
}
