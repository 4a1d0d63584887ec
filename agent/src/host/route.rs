//! The node's default route: the node IP and uplink when the flags name
//! neither (the interface the node reaches the rest of the network by, as
//! the kubelet's and flannel's defaults).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use keel_sys::netlink::{
    Handle, NetlinkError, addr::Addr, addr::AddrList, route::Route, route::RouteList,
};
use netlink_packet_route::address::AddressScope;

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;

/// Where the default route leaves, and the node's address there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The link's index.
    pub oif: u32,
    /// The route's preferred source, else the link's first global IPv4 address.
    pub ip: Ipv4Addr,
}

/// Picks the IPv4 default route of lowest metric that leaves by a link,
/// and the node's address for it.
pub fn pick(routes: &[Route], addrs: &[Addr]) -> Option<DefaultRoute> {
    let route = routes
        .iter()
        .filter(|r| r.dst.prefix_len() == 0 && matches!(r.dst, IpNet::V4(_)) && r.oif.is_some())
        .min_by_key(|r| r.priority.unwrap_or(0))?;
    let oif = route.oif?;
    let ip = match route.prefsrc {
        Some(IpAddr::V4(ip)) => ip,
        _ => addrs
            .iter()
            .filter(|a| a.index == oif && a.scope == AddressScope::Universe)
            .find_map(|a| match a.addr.addr() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })?,
    };
    Some(DefaultRoute { oif, ip })
}

/// The default route of the agent's network namespace, if it has one.
pub fn detect() -> Result<Option<DefaultRoute>, NetlinkError> {
    let mut h = Handle::new()?;
    let routes = RouteList::v4().execute(&mut h)?;
    let addrs = AddrList::v4().execute(&mut h)?;
    Ok(pick(&routes, &addrs))
}
