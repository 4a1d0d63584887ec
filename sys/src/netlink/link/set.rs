//! `ip link set`: up/down, MTU, alias, master (enslave to a bridge).

use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkFlags, LinkMessage},
};

use crate::netlink::{Handle, NetlinkError};

/// Changes to one link, by index. Only the fields that are set change.
#[derive(Debug, Clone, Default)]
pub struct LinkSet {
    pub index: u32,
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub alias: Option<String>,
    /// Ifindex of the bridge to attach to.
    pub master: Option<u32>,
}

impl LinkSet {
    pub fn index(index: u32) -> Self {
        Self {
            index,
            ..Default::default()
        }
    }

    pub fn up(mut self) -> Self {
        self.up = Some(true);
        self
    }

    pub fn down(mut self) -> Self {
        self.up = Some(false);
        self
    }

    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    pub fn master(mut self, bridge_index: u32) -> Self {
        self.master = Some(bridge_index);
        self
    }

    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = self.index;
        if let Some(up) = self.up {
            msg.header.change_mask = LinkFlags::Up;
            if up {
                msg.header.flags = LinkFlags::Up;
            }
        }
        if let Some(mtu) = self.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(alias) = &self.alias {
            msg.attributes.push(LinkAttribute::IfAlias(alias.clone()));
        }
        if let Some(master) = self.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        RouteNetlinkMessage::SetLink(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("changing link #{}", self.index),
            self.message(),
            0,
        )
    }
}

impl crate::netlink::Change for LinkSet {
    fn message(&self) -> RouteNetlinkMessage {
        LinkSet::message(self)
    }

    fn flags(&self) -> u16 {
        0
    }

    fn describe(&self) -> String {
        format!("changing link #{}", self.index)
    }
}
