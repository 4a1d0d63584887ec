//! `ip route replace`.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;

use super::Route;
use crate::netlink::{Handle, NetlinkError};

/// Adds a route, replacing one to the same destination (same table, TOS
/// and priority): repeating it converges instead of failing with EEXIST.
#[derive(Debug, Clone)]
pub struct RouteAdd(pub Route);

impl RouteAdd {
    pub fn message(&self) -> RouteNetlinkMessage {
        RouteNetlinkMessage::NewRoute(self.0.to_message())
    }

    pub fn execute(&self, handle: &mut Handle) -> Result<(), NetlinkError> {
        let r = &self.0;
        handle.request(
            || match r.gateway {
                Some(gw) => format!("adding route {} via {gw}", r.dst),
                None => format!("adding route {} dev #{}", r.dst, r.oif.unwrap_or(0)),
            },
            self.message(),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }
}

impl crate::netlink::Change for RouteAdd {
    fn message(&self) -> RouteNetlinkMessage {
        RouteAdd::message(self)
    }

    fn flags(&self) -> u16 {
        NLM_F_CREATE | NLM_F_REPLACE
    }

    fn describe(&self) -> String {
        let r = &self.0;
        match r.gateway {
            Some(gw) => format!("adding route {} via {gw}", r.dst),
            None => format!("adding route {} dev #{}", r.dst, r.oif.unwrap_or(0)),
        }
    }
}
