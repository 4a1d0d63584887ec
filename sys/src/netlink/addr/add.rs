//! `ip addr replace`.

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::{RouteNetlinkMessage, address::AddressScope};

use crate::netlink::{Handle, NetlinkError};

/// Adds an address to a link; an identical address already there is fine
/// (NLM_F_REPLACE), so repeating it is idempotent.
#[derive(Debug, Clone)]
pub struct AddrAdd {
    pub index: u32,
    pub addr: IpNet,
    pub scope: AddressScope,
}

impl AddrAdd {
    pub fn new(index: u32, addr: IpNet) -> Self {
        Self {
            index,
            addr,
            scope: AddressScope::Universe,
        }
    }

    pub fn scope(mut self, scope: AddressScope) -> Self {
        self.scope = scope;
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        RouteNetlinkMessage::NewAddress(super::message(
            self.index,
            self.addr.addr(),
            self.addr.prefix_len(),
            self.scope,
        ))
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("adding address {} to link #{}", self.addr, self.index),
            self.message(),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }
}

impl crate::netlink::Change for AddrAdd {
    fn message(&self) -> RouteNetlinkMessage {
        AddrAdd::message(self)
    }

    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_REPLACE
    }

    fn describe(&self) -> String {
        format!("adding address {} to link #{}", self.addr, self.index)
    }
}
