//! `ip route del`.

use netlink_packet_route::{
    RouteNetlinkMessage,
    route::{RouteProtocol, RouteScope, RouteType},
};

use super::Route;
use crate::netlink::{Handle, NetlinkError};

/// Deletes the route to `dst` in the route's table; gateway and oif narrow
/// the match when set. Scope and type match anything.
#[derive(Debug, Clone)]
pub struct RouteDel(pub Route);

impl RouteDel {
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = self.0.to_message();
        msg.header.scope = RouteScope::NoWhere;
        msg.header.kind = RouteType::Unspec;
        msg.header.protocol = RouteProtocol::Unspec;
        RouteNetlinkMessage::DelRoute(msg)
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        handle.request(
            || format!("deleting route {}", self.0.dst),
            self.message(),
            0,
        )
    }
}

impl crate::netlink::Change for RouteDel {
    fn message(&self) -> RouteNetlinkMessage {
        RouteDel::message(self)
    }

    fn flags(&self) -> u16 {
        0
    }

    fn describe(&self) -> String {
        format!("deleting route {}", self.0.dst)
    }
}
