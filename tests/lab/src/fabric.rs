//! Creating and removing the lab's network: namespaces, the bridge of each
//! segment, one veth per host into its segment, addresses, default routes
//! via the router and the sysctls each namespace needs. Everything happens
//! inside the lab's own namespaces; the host's namespace is never touched.

use std::{
    net::IpAddr,
    os::fd::{AsFd, AsRawFd},
};

use anyhow::Context;
use ipnet::{IpNet, Ipv4Net};
use keel_sys::{
    netlink::{
        Handle,
        addr::AddrAdd,
        link::{LinkAdd, LinkGet, LinkKind, LinkSet, VethPeer},
        route::{Route, RouteAdd, RouteDel},
    },
    ns::NetNs,
    sysctl,
};
use netlink_packet_route::route::{RouteScope, RouteType};

use crate::topology::{Host, Topology};

/// Name of the bridge in every segment namespace.
const BRIDGE: &str = "br0";

fn index(h: &mut Handle, name: &str) -> anyhow::Result<u32> {
    Ok(LinkGet::Name(name.into())
        .execute(h)?
        .with_context(|| format!("link {name} is missing"))?
        .index)
}

/// Creates every namespace and link of the topology.
pub fn create(t: &Topology) -> anyhow::Result<()> {
    for name in t.namespaces() {
        NetNs::create(&name).with_context(|| format!("creating network namespace {name}"))?;
        let ns = NetNs::open(NetNs::named_path(&name))?;
        let h = &mut Handle::in_netns(&ns)?;
        let lo = index(h, "lo")?;
        LinkSet::index(lo).up().execute(h)?;
    }
    for seg in &t.segments {
        let ns = NetNs::open(NetNs::named_path(&seg.netns))?;
        let h = &mut Handle::in_netns(&ns)?;
        LinkAdd::new(BRIDGE, LinkKind::Bridge).up().execute(h)?;
        // A segment is a switch: frames it bridges do not go through
        // netfilter (a kernel with br_netfilter would otherwise run the IP
        // hooks on every bridged packet, a cost no real fabric has and one
        // that would hide what the nodes themselves spend).
        ns.run(|| -> anyhow::Result<()> {
            for family in ["iptables", "ip6tables", "arptables"] {
                let key = format!("net.bridge.bridge-nf-call-{family}");
                if std::path::Path::new(&format!("/proc/sys/{}", key.replace('.', "/"))).exists() {
                    sysctl::set(&key, "0")?;
                }
            }
            Ok(())
        })??;
    }
    // The router: one leg per segment, forwarding between them.
    let router = NetNs::open(NetNs::named_path(&t.router))?;
    for (s, seg) in t.segments.iter().enumerate() {
        attach(
            t,
            s,
            &format!("router{s}"),
            &router,
            &format!("seg{s}"),
            IpNet::V4(Ipv4Net::new(seg.router_ip, 24)?),
            None,
        )?;
    }
    router.run(|| sysctl::set("net.ipv4.ip_forward", "1"))??;
    outside(t, &router)?;
    let mut hosts: Vec<&Host> = t.controls();
    hosts.extend(&t.etcd);
    hosts.push(&t.ext);
    hosts.extend(&t.nodes);
    for host in hosts {
        let ns = NetNs::open(NetNs::named_path(&host.netns))?;
        attach(
            t,
            host.segment,
            &host.role,
            &ns,
            "eth0",
            IpNet::V4(Ipv4Net::new(host.ip, 24)?),
            Some(host.gateway),
        )?;
    }
    // The nodes' forwarding and reverse-path settings are their agents'
    // (keel_agent::net::plan::sysctls), as on a real node.
    Ok(())
}

/// The outside host: a veth from the router straight into its namespace,
/// its two addresses, and routes back to the fabric's subnets only (no
/// default route, none to a pod CIDR: a reply to a pod's own address finds
/// no route, as on the internet).
fn outside(t: &Topology, router: &NetNs) -> anyhow::Result<()> {
    let o = &t.outside;
    let ns = NetNs::open(NetNs::named_path(&o.netns))?;
    let h = &mut Handle::in_netns(router)?;
    let mut peer = VethPeer::new("eth0");
    peer.netns_fd = Some(ns.as_fd().as_raw_fd());
    LinkAdd::veth("outside", peer)
        .execute(h)
        .with_context(|| format!("creating veth outside in {}", t.router))?;
    let i = index(h, "outside")?;
    AddrAdd::new(
        i,
        IpNet::V4(Ipv4Net::new(o.router_ip, o.subnet.prefix_len())?),
    )
    .execute(h)?;
    LinkSet::index(i).up().execute(h)?;
    let h = &mut Handle::in_netns(&ns)?;
    let i = index(h, "eth0")?;
    for ip in o.ips {
        AddrAdd::new(i, IpNet::V4(Ipv4Net::new(ip, o.subnet.prefix_len())?)).execute(h)?;
    }
    LinkSet::index(i).up().execute(h)?;
    for seg in &t.segments {
        RouteAdd(Route::via(
            IpNet::V4(seg.subnet),
            IpAddr::V4(o.router_ip),
            Some(i),
        ))
        .execute(h)?;
    }
    Ok(())
}

/// Cuts `host` off from `peers` by a blackhole route to each in its
/// namespace (an unreachable network: packets vanish, connections time
/// out); [`heal`] removes them. Only this host's own namespace changes.
pub fn partition(host: &Host, peers: &[&Host]) -> anyhow::Result<()> {
    let ns = NetNs::open(NetNs::named_path(&host.netns))?;
    let h = &mut Handle::in_netns(&ns)?;
    for p in peers {
        RouteAdd(blackhole(p.ip))
            .execute(h)
            .with_context(|| format!("cutting {} off from {}", host.role, p.role))?;
    }
    Ok(())
}

/// Removes the routes [`partition`] added.
pub fn heal(host: &Host, peers: &[&Host]) -> anyhow::Result<()> {
    let ns = NetNs::open(NetNs::named_path(&host.netns))?;
    let h = &mut Handle::in_netns(&ns)?;
    for p in peers {
        RouteDel(blackhole(p.ip))
            .execute(h)
            .with_context(|| format!("reconnecting {} to {}", host.role, p.role))?;
    }
    Ok(())
}

fn blackhole(ip: std::net::Ipv4Addr) -> Route {
    Route {
        kind: RouteType::BlackHole,
        scope: RouteScope::Universe,
        oif: None,
        ..Route::direct(IpNet::V4(Ipv4Net::from(ip)), 0)
    }
}

/// Connects `ns` to segment `s` with a veth: `port` on the segment's bridge,
/// `ifname` with `addr` inside `ns`, and a default route via `gateway`.
fn attach(
    t: &Topology,
    s: usize,
    port: &str,
    ns: &NetNs,
    ifname: &str,
    addr: IpNet,
    gateway: Option<std::net::Ipv4Addr>,
) -> anyhow::Result<()> {
    let seg = NetNs::open(NetNs::named_path(&t.segments[s].netns))?;
    let fd = ns.as_fd().as_raw_fd();
    let h = &mut Handle::in_netns(&seg)?;
    let mut peer = VethPeer::new(ifname);
    peer.netns_fd = Some(fd);
    LinkAdd::veth(port, peer)
        .execute(h)
        .with_context(|| format!("creating veth {port} in {}", t.segments[s].netns))?;
    let br = index(h, BRIDGE)?;
    let p = index(h, port)?;
    LinkSet::index(p).master(br).up().execute(h)?;
    let h = &mut Handle::in_netns(ns)?;
    let i = index(h, ifname)?;
    AddrAdd::new(i, addr).execute(h)?;
    LinkSet::index(i).up().execute(h)?;
    if let Some(gw) = gateway {
        RouteAdd(Route::via("0.0.0.0/0".parse()?, IpAddr::V4(gw), Some(i))).execute(h)?;
    }
    Ok(())
}
