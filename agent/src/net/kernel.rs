//! Reading and changing this node's kernel state for [`super::plan`]: the
//! only code of node networking that touches netlink. Routes keel makes
//! carry its own route protocol number, so they are told apart from every
//! other route, which is never changed.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use keel_sys::netlink::{
    Handle, NetlinkError,
    addr::{AddrAdd, AddrDel, AddrList},
    link::{LinkAdd, LinkDel, LinkGet, LinkKind, LinkList, LinkSet, Vxlan},
    neigh::{FdbAdd, NeighAdd, NeighDel, NeighList},
    route::{MAIN_TABLE, Route, RouteAdd, RouteDel, RouteList},
};
use netlink_packet_route::{
    neighbour::NeighbourState,
    route::{RouteProtocol, RouteScope},
};

use super::plan::{Observed, ObservedVxlan, Op, VXLAN_DEV, Via};

/// Route protocol marking keel's routes (`ip route … proto 77`).
pub const KEEL_ROUTE_PROTO: u8 = 77;

/// The uplink: the link holding `ip`, with its subnet and MTU.
pub fn uplink(h: &mut Handle, ip: Ipv4Addr) -> Result<Option<(u32, Ipv4Net, u32)>, NetlinkError> {
    let addrs = AddrList::v4().execute(h)?;
    let Some(a) = addrs.into_iter().find(|a| a.addr.addr() == IpAddr::V4(ip)) else {
        return Ok(None);
    };
    let IpNet::V4(net) = a.addr else {
        return Ok(None);
    };
    let mtu = LinkList
        .execute(h)?
        .into_iter()
        .find(|l| l.index == a.index)
        .map(|l| l.mtu)
        .unwrap_or(1500);
    Ok(Some((a.index, net.trunc(), mtu)))
}

/// Reads what keel manages (and which destinations foreign routes cover).
pub fn observe(h: &mut Handle, interesting: &[Ipv4Net]) -> Result<Observed, NetlinkError> {
    let mut o = Observed::default();
    let dev = LinkGet::Name(VXLAN_DEV.into()).execute(h)?;
    if let Some(d) = &dev {
        let addrs = AddrList::v4().link(d.index).execute(h)?;
        o.vxlan = Some(ObservedVxlan {
            index: d.index,
            mtu: d.mtu,
            up: d.up,
            mac: d.mac,
            alias: d.alias.clone(),
            addrs: addrs
                .iter()
                .filter(|a| a.index == d.index)
                .filter_map(|a| match a.addr.addr() {
                    IpAddr::V4(v) => Some(v),
                    _ => None,
                })
                .collect(),
        });
        for n in NeighList::v4().link(d.index).execute(h)? {
            if n.index != d.index || n.state != NeighbourState::Permanent {
                continue;
            }
            if let (Some(IpAddr::V4(ip)), Some(mac)) = (n.dst, n.lladdr) {
                o.neighbours.insert(ip, mac);
            }
        }
        for n in NeighList::fdb().link(d.index).execute(h)? {
            if n.index != d.index {
                continue;
            }
            if let (Some(IpAddr::V4(ip)), Some(mac)) = (n.dst, n.lladdr)
                && mac != [0; 6]
            {
                o.fdb.insert(mac, ip);
            }
        }
    }
    for r in RouteList::v4().table(MAIN_TABLE).execute(h)? {
        let IpNet::V4(dst) = r.dst else { continue };
        if r.protocol == RouteProtocol::Other(KEEL_ROUTE_PROTO) {
            let via = match (r.gateway, dev.as_ref()) {
                (Some(IpAddr::V4(gw)), Some(d)) if r.oif == Some(d.index) => Via::Vxlan(gw),
                (Some(IpAddr::V4(gw)), _) => Via::Uplink(gw),
                _ => continue,
            };
            o.routes.insert(dst, via);
        } else if interesting.contains(&dst) {
            o.foreign_routes.insert(dst);
        }
    }
    Ok(o)
}

fn keel_route(dst: Ipv4Net, gateway: Ipv4Addr, oif: u32, onlink: bool) -> Route {
    let mut r = Route::via(IpNet::V4(dst), IpAddr::V4(gateway), Some(oif));
    r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
    r.onlink = onlink;
    r.scope = RouteScope::Universe;
    r
}

/// Applies the ops in order; stops at the first error (the next pass
/// observes again and continues from there).
pub fn apply(h: &mut Handle, ops: &[Op], uplink: u32) -> Result<(), NetlinkError> {
    let vx = |h: &mut Handle| -> Result<u32, NetlinkError> {
        LinkGet::Name(VXLAN_DEV.into())
            .execute(h)?
            .map(|l| l.index)
            .ok_or_else(|| NetlinkError::Unexpected {
                what: VXLAN_DEV.into(),
                reason: "the device vanished while being programmed".into(),
            })
    };
    for op in ops {
        match op {
            Op::DeleteVxlan => match LinkDel::Name(VXLAN_DEV.into()).execute(h) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            },
            Op::CreateVxlan(d) => {
                let kind = LinkKind::Vxlan(Vxlan {
                    vni: d.vni,
                    local: Some(d.local),
                    dev: Some(uplink),
                    port: d.port,
                    learning: false,
                });
                LinkAdd::new(VXLAN_DEV, kind)
                    .mtu(d.mtu)
                    .mac(d.mac)
                    .up()
                    .execute(h)?;
                // The kernel ignores IFLA_IFALIAS when creating a link.
                LinkSet::index(vx(h)?).alias(d.alias.clone()).execute(h)?;
            }
            Op::SetVxlanMtu(mtu) => LinkSet::index(vx(h)?).mtu(*mtu).execute(h)?,
            Op::SetVxlanUp => LinkSet::index(vx(h)?).up().execute(h)?,
            Op::AddVxlanAddr(a) => {
                let net = IpNet::V4(Ipv4Net::new(*a, 32).expect("/32"));
                match AddrAdd::new(vx(h)?, net).execute(h) {
                    Err(e) if !e.is_exists() => return Err(e),
                    _ => {}
                }
            }
            Op::DelVxlanAddr(a) => {
                AddrDel::new(vx(h)?, IpNet::V4(Ipv4Net::new(*a, 32).expect("/32"))).execute(h)?
            }
            Op::ReplaceRoute(dst, Via::Vxlan(gw)) => {
                RouteAdd(keel_route(*dst, *gw, vx(h)?, true)).execute(h)?
            }
            Op::ReplaceRoute(dst, Via::Uplink(gw)) => {
                RouteAdd(keel_route(*dst, *gw, uplink, false)).execute(h)?
            }
            Op::DelRoute(dst) => {
                let mut r = Route::direct(IpNet::V4(*dst), 0);
                r.protocol = RouteProtocol::Other(KEEL_ROUTE_PROTO);
                r.scope = RouteScope::NoWhere;
                match RouteDel(r).execute(h) {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
            }
            Op::ReplaceNeighbour(ip, mac) => {
                NeighAdd::new(vx(h)?, IpAddr::V4(*ip), *mac).execute(h)?
            }
            Op::DelNeighbour(ip) => match (NeighDel::Ip {
                index: vx(h)?,
                dst: IpAddr::V4(*ip),
            })
            .execute(h)
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            },
            Op::ReplaceFdb(mac, dst) => FdbAdd::new(vx(h)?, *mac, IpAddr::V4(*dst)).execute(h)?,
            Op::DelFdb(mac, dst) => match (NeighDel::Fdb {
                index: vx(h)?,
                mac: *mac,
                dst: IpAddr::V4(*dst),
            })
            .execute(h)
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            },
        }
    }
    Ok(())
}
