//! Routes: add-or-replace, delete, list (`ip route`).

mod add;
mod del;
mod list;

pub use add::RouteAdd;
pub use del::RouteDel;
pub use list::RouteList;

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::{
    AddressFamily,
    route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol,
        RouteScope, RouteType,
    },
};

/// The main routing table.
pub const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// A route as keel builds and reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub scope: RouteScope,
    pub table: u32,
    pub protocol: RouteProtocol,
    pub kind: RouteType,
    /// Use the gateway even if it is not on a connected subnet (routes via a
    /// peer node's VXLAN address).
    pub onlink: bool,
    pub priority: Option<u32>,
    pub prefsrc: Option<IpAddr>,
}

impl Route {
    /// A route to `dst` reached directly on link `oif` (scope link).
    pub fn direct(dst: IpNet, oif: u32) -> Self {
        Self {
            dst,
            gateway: None,
            oif: Some(oif),
            scope: RouteScope::Link,
            table: MAIN_TABLE,
            protocol: RouteProtocol::Boot,
            kind: RouteType::Unicast,
            onlink: false,
            priority: None,
            prefsrc: None,
        }
    }

    /// A route to `dst` via `gateway` (scope universe), optionally pinned to
    /// a link.
    pub fn via(dst: IpNet, gateway: IpAddr, oif: Option<u32>) -> Self {
        Self {
            gateway: Some(gateway),
            oif,
            scope: RouteScope::Universe,
            ..Self::direct(dst, 0)
        }
    }

    pub(crate) fn to_message(&self) -> RouteMessage {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(self.dst.addr());
        msg.header.destination_prefix_length = self.dst.prefix_len();
        msg.header.protocol = self.protocol;
        msg.header.scope = self.scope;
        msg.header.kind = self.kind;
        if self.table < 256 {
            msg.header.table = self.table as u8;
        } else {
            msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
            msg.attributes.push(RouteAttribute::Table(self.table));
        }
        if self.onlink {
            msg.header.flags = RouteFlags::Onlink;
        }
        if self.dst.prefix_len() > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(route_addr(self.dst.addr())));
        }
        if let Some(gw) = self.gateway {
            msg.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        if let Some(oif) = self.oif.filter(|&i| i != 0) {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(p) = self.priority {
            msg.attributes.push(RouteAttribute::Priority(p));
        }
        if let Some(src) = self.prefsrc {
            msg.attributes
                .push(RouteAttribute::PrefSource(route_addr(src)));
        }
        msg
    }

    pub(crate) fn from_message(msg: &RouteMessage) -> Option<Self> {
        let h = &msg.header;
        let mut dst = None;
        let mut route = Route {
            dst: IpNet::new(unspecified(h.address_family)?, 0).ok()?,
            gateway: None,
            oif: None,
            scope: h.scope,
            table: h.table as u32,
            protocol: h.protocol,
            kind: h.kind,
            onlink: h.flags.contains(RouteFlags::Onlink),
            priority: None,
            prefsrc: None,
        };
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst = ip_of(a),
                RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
                RouteAttribute::Oif(i) => route.oif = Some(*i),
                RouteAttribute::Table(t) => route.table = *t,
                RouteAttribute::Priority(p) => route.priority = Some(*p),
                RouteAttribute::PrefSource(a) => route.prefsrc = ip_of(a),
                _ => {}
            }
        }
        if let Some(d) = dst {
            route.dst = IpNet::new(d, h.destination_prefix_length).ok()?;
        }
        Some(route)
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some((*a).into()),
        RouteAddress::Inet6(a) => Some((*a).into()),
        _ => None,
    }
}

fn unspecified(f: AddressFamily) -> Option<IpAddr> {
    match f {
        AddressFamily::Inet => Some(std::net::Ipv4Addr::UNSPECIFIED.into()),
        AddressFamily::Inet6 => Some(std::net::Ipv6Addr::UNSPECIFIED.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
