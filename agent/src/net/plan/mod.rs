//! Node networking, decided (pure, unit-tested): from this node, its peers
//! and the mode, what the kernel should hold — the VXLAN device, routes to
//! peers' pod CIDRs, static neighbours and FDB entries — and the changes
//! that turn what it holds into that.
//!
//! - vxlan: per peer, a route to its pod CIDR via its VTEP address (the
//!   CIDR's network address) onlink over the VXLAN device, a permanent
//!   neighbour VTEP address → VTEP MAC, and an FDB entry VTEP MAC → node IP
//!   (flannel's design: no multicast, no learning).
//! - route: per peer, a route to its pod CIDR via its node IP; only for
//!   peers on this node's L2 subnet, others are reported unreachable.
//! - vpc: nothing per peer (the VPC route table carries pod CIDRs).
//! - auto: route to peers on this subnet, VXLAN to the others.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::Ipv4Addr,
    str::FromStr,
};

use ipnet::Ipv4Net;
use keel_sys::netlink::Mac;

/// The name of keel's VXLAN device.
pub const VXLAN_DEV: &str = "keel.vxlan";
/// Bytes a VXLAN encapsulation adds (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
pub const VXLAN_OVERHEAD: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Node networking is not keel's job on this node.
    None,
    Vxlan,
    Route,
    Vpc,
    Auto,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Mode::None,
            "vxlan" => Mode::Vxlan,
            "route" => Mode::Route,
            "vpc" => Mode::Vpc,
            "auto" => Mode::Auto,
            _ => return Err(format!("{s:?} is not none, vxlan, route, vpc or auto")),
        })
    }
}

impl Mode {
    /// The pod MTU for an underlay MTU: VXLAN may carry pods' packets.
    pub fn pod_mtu(&self, underlay: u32) -> u32 {
        match self {
            Mode::Vxlan | Mode::Auto => underlay - VXLAN_OVERHEAD,
            _ => underlay,
        }
    }
}

/// This node as networking sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Net,
    /// The subnet of the interface holding `ip` (L2 adjacency).
    pub subnet: Ipv4Net,
    pub uplink: u32,
    pub uplink_mtu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Net,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanConfig {
    pub vni: u32,
    pub port: u16,
}

/// The VTEP MAC of the node with this IP: derived, so peers need not
/// publish it (locally administered, "keel" 0x6b).
pub fn vtep_mac(node_ip: Ipv4Addr) -> Mac {
    let o = node_ip.octets();
    [0x0e, 0x6b, o[0], o[1], o[2], o[3]]
}

/// The VTEP address of a node: its pod CIDR's network address.
pub fn vtep_ip(pod_cidr: Ipv4Net) -> Ipv4Addr {
    pod_cidr.network()
}

/// The device alias records its configuration, so a changed VNI, port or
/// local address is noticed and the device recreated.
pub fn vxlan_alias(cfg: VxlanConfig, local: Ipv4Addr) -> String {
    format!("keel:vxlan vni={} port={} local={local}", cfg.vni, cfg.port)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanDev {
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub mtu: u32,
    pub mac: Mac,
    pub alias: String,
    /// The VTEP address (/32) on the device.
    pub addr: Ipv4Addr,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// Through the VXLAN device, onlink to a peer's VTEP address.
    Vxlan(Ipv4Addr),
    /// Through the uplink, to a peer node directly.
    Uplink(Ipv4Addr),
}

/// The kernel state keel wants on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub vxlan: Option<VxlanDev>,
    pub routes: BTreeMap<Ipv4Net, Via>,
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
}

/// A peer this node cannot reach in the configured mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub peer: String,
    pub reason: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.peer, self.reason)
    }
}

pub fn desired(
    mode: Mode,
    me: &Me,
    peers: &[Peer],
    vx: VxlanConfig,
) -> (Desired, Vec<Unreachable>) {
    let mut d = Desired::default();
    let mut problems = Vec::new();
    let mut needs_vxlan = mode == Mode::Vxlan;
    for p in peers.iter().filter(|p| p.name != me.name) {
        if p.pod_cidr.contains(&me.pod_cidr.network())
            || me.pod_cidr.contains(&p.pod_cidr.network())
        {
            problems.push(Unreachable {
                peer: p.name.clone(),
                reason: format!(
                    "pod CIDR {} overlaps this node's {}",
                    p.pod_cidr, me.pod_cidr
                ),
            });
            continue;
        }
        let adjacent = me.subnet.contains(&p.ip);
        match mode {
            Mode::None | Mode::Vpc => {}
            Mode::Route if !adjacent => problems.push(Unreachable {
                peer: p.name.clone(),
                reason: format!(
                    "{} is not on this node's subnet {}; route mode needs L2 adjacency (use vxlan or auto)",
                    p.ip, me.subnet
                ),
            }),
            Mode::Route => {
                d.routes.insert(p.pod_cidr, Via::Uplink(p.ip));
            }
            Mode::Auto if adjacent => {
                d.routes.insert(p.pod_cidr, Via::Uplink(p.ip));
            }
            Mode::Vxlan | Mode::Auto => {
                needs_vxlan = true;
                let (ip, mac) = (vtep_ip(p.pod_cidr), vtep_mac(p.ip));
                d.routes.insert(p.pod_cidr, Via::Vxlan(ip));
                d.neighbours.insert(ip, mac);
                d.fdb.insert(mac, p.ip);
            }
        }
    }
    if needs_vxlan {
        d.vxlan = Some(VxlanDev {
            vni: vx.vni,
            port: vx.port,
            local: me.ip,
            mtu: me.uplink_mtu - VXLAN_OVERHEAD,
            mac: vtep_mac(me.ip),
            alias: vxlan_alias(vx, me.ip),
            addr: vtep_ip(me.pod_cidr),
        });
    }
    (d, problems)
}

/// What the kernel holds that keel manages (its device, and routes marked
/// with keel's route protocol), plus the destinations of routes that are
/// not keel's (never touched).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub vxlan: Option<ObservedVxlan>,
    pub routes: BTreeMap<Ipv4Net, Via>,
    pub foreign_routes: BTreeSet<Ipv4Net>,
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedVxlan {
    pub index: u32,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<Mac>,
    pub alias: Option<String>,
    pub addrs: BTreeSet<Ipv4Addr>,
}

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DeleteVxlan,
    CreateVxlan(VxlanDev),
    SetVxlanMtu(u32),
    SetVxlanUp,
    AddVxlanAddr(Ipv4Addr),
    DelVxlanAddr(Ipv4Addr),
    ReplaceRoute(Ipv4Net, Via),
    DelRoute(Ipv4Net),
    ReplaceNeighbour(Ipv4Addr, Mac),
    DelNeighbour(Ipv4Addr),
    ReplaceFdb(Mac, Ipv4Addr),
    DelFdb(Mac, Ipv4Addr),
}

/// The kernel parameters (paths under `/proc/sys`, values) the node's
/// network namespace needs for `want`, set there and nowhere else:
/// forwarding, as pods are routed through the node (BPF host routing's FIB
/// lookups refuse to forward without it too), and loose reverse-path
/// filtering on the VXLAN device, where packets from peer nodes' own
/// addresses (a NodePort's traffic SNATed to its node IP) arrive although
/// those addresses are routed via the uplink. A device's effective setting
/// is the larger of `all` and its own, so `all` is left as it is.
pub fn sysctls(want: &Desired) -> Vec<(String, &'static str)> {
    let mut v = vec![("net/ipv4/ip_forward".to_string(), "1")];
    if want.vxlan.is_some() {
        v.push((format!("net/ipv4/conf/{VXLAN_DEV}/rp_filter"), "2"));
    }
    v
}

/// The changes from `have` to `want`, in an order that never sends traffic
/// nowhere: device first, FDB and neighbours before the routes that use
/// them; removals of routes before their neighbours.
pub fn plan(want: &Desired, have: &Observed) -> (Vec<Op>, Vec<Ipv4Net>) {
    let mut ops = Vec::new();
    let mut skipped = Vec::new();
    // The device.
    let mut fresh_device = false;
    match (&want.vxlan, &have.vxlan) {
        (Some(w), Some(h))
            if h.alias.as_deref() == Some(w.alias.as_str()) && h.mac == Some(w.mac) =>
        {
            if h.mtu != w.mtu {
                ops.push(Op::SetVxlanMtu(w.mtu));
            }
            if !h.up {
                ops.push(Op::SetVxlanUp);
            }
            if !h.addrs.contains(&w.addr) {
                ops.push(Op::AddVxlanAddr(w.addr));
            }
            for a in h.addrs.iter().filter(|a| **a != w.addr) {
                ops.push(Op::DelVxlanAddr(*a));
            }
        }
        (Some(w), Some(_)) => {
            ops.push(Op::DeleteVxlan);
            ops.push(Op::CreateVxlan(w.clone()));
            ops.push(Op::AddVxlanAddr(w.addr));
            fresh_device = true;
        }
        (Some(w), None) => {
            ops.push(Op::CreateVxlan(w.clone()));
            ops.push(Op::AddVxlanAddr(w.addr));
            fresh_device = true;
        }
        (None, Some(_)) => {}
        (None, None) => {}
    }
    // What a fresh device holds: nothing.
    let empty = Observed::default();
    let have_entries = if fresh_device { &empty } else { have };
    for (mac, ip) in &want.fdb {
        if have_entries.fdb.get(mac) != Some(ip) {
            if let Some(old) = have_entries.fdb.get(mac) {
                ops.push(Op::DelFdb(*mac, *old));
            }
            ops.push(Op::ReplaceFdb(*mac, *ip));
        }
    }
    for (ip, mac) in &want.neighbours {
        if have_entries.neighbours.get(ip) != Some(mac) {
            ops.push(Op::ReplaceNeighbour(*ip, *mac));
        }
    }
    for (dst, via) in &want.routes {
        if have.foreign_routes.contains(dst) {
            // A route keel did not make already covers this CIDR: leave it.
            skipped.push(*dst);
            continue;
        }
        let current = if fresh_device && matches!(have.routes.get(dst), Some(Via::Vxlan(_))) {
            None
        } else {
            have.routes.get(dst)
        };
        if current != Some(via) {
            ops.push(Op::ReplaceRoute(*dst, *via));
        }
    }
    for dst in have.routes.keys() {
        if !want.routes.contains_key(dst) {
            ops.push(Op::DelRoute(*dst));
        }
    }
    if want.vxlan.is_none() {
        if have.vxlan.is_some() {
            // Removing the device removes its neighbours and FDB entries.
            ops.push(Op::DeleteVxlan);
        }
    } else if !fresh_device {
        for (ip, _) in have
            .neighbours
            .iter()
            .filter(|(ip, _)| !want.neighbours.contains_key(*ip))
        {
            ops.push(Op::DelNeighbour(*ip));
        }
        for (mac, ip) in have
            .fdb
            .iter()
            .filter(|(mac, _)| !want.fdb.contains_key(*mac))
        {
            ops.push(Op::DelFdb(*mac, *ip));
        }
    }
    (ops, skipped)
}

#[cfg(test)]
mod tests;
