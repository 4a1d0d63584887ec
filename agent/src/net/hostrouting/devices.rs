//! The devices host routing attaches to, read from the kernel (so pods that
//! containerd or podman attached through keel-cni count as much as the
//! agent's own), and a netlink subscription that wakes the reconciler when
//! links or addresses change.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    thread,
};

use ipnet::IpNet;
use keel_cni::attach::ALIAS_PREFIX;
use keel_sys::netlink::{
    Handle, Mac, NetlinkError,
    addr::AddrList,
    link::LinkList,
    neigh::NeighList,
    route::{MAIN_TABLE, RouteList},
};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use super::plan::{Device, PodDev};
use crate::net::plan::VXLAN_DEV;

/// rtnetlink multicast groups (`enum rtnetlink_groups`).
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_NEIGH: u32 = 3;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;

/// The node's devices as host routing sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Devices {
    pub pod_devs: Vec<PodDev>,
    pub uplink: Option<Device>,
    pub vxlan: Option<Device>,
}

/// keel-cni's host-side pod veths (its alias, a veth whose peer lives in
/// another namespace: what `bpf_redirect_peer` needs) with the pods behind
/// each (a /32 route through it and that address's neighbour on it, as
/// keel-cni's ADD leaves them), the device holding the node IP and keel's
/// VXLAN device.
pub fn observe(h: &mut Handle, node_ip: Ipv4Addr) -> Result<Devices, NetlinkError> {
    let links = LinkList.execute(h)?;
    let uplink_index = AddrList::v4()
        .execute(h)?
        .into_iter()
        .find(|a| a.addr.addr() == std::net::IpAddr::V4(node_ip))
        .map(|a| a.index);
    let mut d = Devices::default();
    let keel_alias = format!("{ALIAS_PREFIX}:");
    for l in links {
        let dev = Device {
            ifindex: l.index,
            name: l.name.clone(),
        };
        if Some(l.index) == uplink_index {
            d.uplink = Some(dev);
        } else if l.name == VXLAN_DEV {
            d.vxlan = Some(dev);
        } else if l.kind.as_deref() == Some("veth")
            && l.link_netnsid.is_some()
            && l.alias
                .as_deref()
                .is_some_and(|a| a.starts_with(&keel_alias))
            && let Some(mac) = l.mac
        {
            d.pod_devs.push(PodDev {
                dev,
                mac,
                mtu: l.mtu,
                pods: Vec::new(),
            });
        }
    }
    if d.pod_devs.is_empty() {
        return Ok(d);
    }
    // The pods' addresses and MACs, from the routes and neighbours the
    // plugin put on each veth; an address without its neighbour yet (an ADD
    // still running) waits for the next pass.
    let mut macs: BTreeMap<(u32, Ipv4Addr), Mac> = BTreeMap::new();
    for n in NeighList::v4().execute(h)? {
        let usable = !matches!(
            n.state,
            NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::Noarp
        );
        if let (Some(IpAddr::V4(ip)), Some(mac), true) = (n.dst, n.lladdr, usable) {
            macs.insert((n.index, ip), mac);
        }
    }
    for r in RouteList::v4().table(MAIN_TABLE).execute(h)? {
        let (IpNet::V4(dst), None, Some(oif)) = (r.dst, r.gateway, r.oif) else {
            continue;
        };
        if dst.prefix_len() != 32 {
            continue;
        }
        if let Some(p) = d.pod_devs.iter_mut().find(|p| p.dev.ifindex == oif)
            && let Some(mac) = macs.get(&(oif, dst.addr()))
        {
            p.pods.push((dst.addr(), *mac));
        }
    }
    Ok(d)
}

/// Calls `changed` whenever a link, an IPv4 address or route, or a
/// neighbour of the calling thread's namespace changes (and once if the
/// subscription overflows); ends when `changed` returns false.
pub fn monitor(
    mut changed: impl FnMut() -> bool + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.add_membership(RTNLGRP_LINK)?;
    socket.add_membership(RTNLGRP_IPV4_IFADDR)?;
    socket.add_membership(RTNLGRP_IPV4_ROUTE)?;
    socket.add_membership(RTNLGRP_NEIGH)?;
    thread::Builder::new()
        .name("hostrouting-monitor".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                // What changed is re-read by the reconciler; the message is
                // only a wake-up. ENOBUFS (missed messages) wakes it too;
                // anything else is not retried in a tight loop.
                if let Err(e) = socket.recv(&mut &mut buf[..], 0)
                    && e.raw_os_error() != Some(libc::ENOBUFS)
                {
                    thread::sleep(std::time::Duration::from_secs(1));
                }
                if !changed() {
                    return;
                }
            }
        })
}
