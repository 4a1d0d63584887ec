//! `ip link del`.

use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};

use crate::netlink::{Handle, NetlinkError};

/// Deletes a link by name or index (a veth takes its peer with it).
#[derive(Debug, Clone)]
pub enum LinkDel {
    Name(String),
    Index(u32),
}

impl LinkDel {
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        match self {
            LinkDel::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.clone())),
            LinkDel::Index(i) => msg.header.index = *i,
        }
        RouteNetlinkMessage::DelLink(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("deleting link {}", self.describe_target()),
            self.message(),
            0,
        )
    }

    fn describe_target(&self) -> String {
        match self {
            LinkDel::Name(n) => n.clone(),
            LinkDel::Index(i) => format!("#{i}"),
        }
    }
}

impl crate::netlink::Change for LinkDel {
    fn message(&self) -> RouteNetlinkMessage {
        LinkDel::message(self)
    }

    fn flags(&self) -> u16 {
        0
    }

    fn describe(&self) -> String {
        format!("deleting link {}", self.describe_target())
    }
}
