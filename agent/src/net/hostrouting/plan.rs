//! Host routing, decided (pure, unit-tested): from this node's devices and
//! the cluster's pod CIDRs, what the pinned maps and links should hold,
//! and the changes that turn what they hold into that.
//!
//! - `from_pod` on the TC ingress of every host-side pod veth (keel-cni's,
//!   told by its `keel-cni:` alias); `to_pod` on the uplink and the VXLAN
//!   device.
//! - [`CIDRS_MAP`](keel_ebpf_common::net::CIDRS_MAP): every node's pod CIDR
//!   (this node's flagged local).
//! - [`ENDPOINTS_MAP`](keel_ebpf_common::net::ENDPOINTS_MAP): this node's
//!   pods: address → host-side veth and both MACs (keel-cni's /32 route
//!   and permanent neighbour on that veth say which address is whose).
//!
//! Links are pinned as `<program>-<ifindex>` (bpffs refuses dots in
//! names); a pinned link whose device
//! went away (the kernel then reports it attached nowhere) is unpinned, and
//! a device that came back under a new ifindex gets a new one.

use std::{collections::BTreeMap, fmt, net::Ipv4Addr};

use ipnet::Ipv4Net;
use keel_ebpf_common::net::{CIDR_F_LOCAL, FROM_POD_PROG, TO_POD_PROG};
use keel_sys::netlink::{Mac, format_mac};

/// Which of the two programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prog {
    FromPod,
    ToPod,
}

impl Prog {
    pub const ALL: [Prog; 2] = [Prog::FromPod, Prog::ToPod];

    /// The program's name in the BPF object.
    pub fn name(&self) -> &'static str {
        match self {
            Prog::FromPod => FROM_POD_PROG,
            Prog::ToPod => TO_POD_PROG,
        }
    }

    /// The prefix of its pins.
    fn pin_prefix(&self) -> &'static str {
        match self {
            Prog::FromPod => "from_pod",
            Prog::ToPod => "to_pod",
        }
    }
}

/// A network device of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub ifindex: u32,
    pub name: String,
}

/// A pod on this node as the endpoint map holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// Its host-side veth.
    pub ifindex: u32,
    /// That veth's MTU.
    pub mtu: u32,
    pub pod_mac: Mac,
    /// The host-side veth's MAC.
    pub host_mac: Mac,
}

/// A host-side pod veth and the pods' addresses behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDev {
    pub dev: Device,
    pub mac: Mac,
    pub mtu: u32,
    /// Each address routed to this veth (a /32) with its neighbour's MAC.
    pub pods: Vec<(Ipv4Addr, Mac)>,
}

/// What host routing is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// keel-cni's host-side pod veths.
    pub pod_devs: Vec<PodDev>,
    /// The device holding the node IP.
    pub uplink: Option<Device>,
    /// keel's VXLAN device, when the mode made one.
    pub vxlan: Option<Device>,
    /// Every node's pod CIDR; `true` for this node's.
    pub cidrs: BTreeMap<Ipv4Net, bool>,
}

/// A link to attach: which program, on which device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attachment {
    pub prog: Prog,
    pub ifindex: u32,
    /// The device's name (TCX attaches by name).
    pub dev: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Pod CIDR → `CIDR_F_*`.
    pub cidrs: BTreeMap<Ipv4Net, u32>,
    pub endpoints: BTreeMap<Ipv4Addr, Endpoint>,
    /// Pin name → attachment.
    pub links: BTreeMap<String, Attachment>,
}

/// A pinned link as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedLink {
    /// The device it is attached to; 0 once that device is gone.
    pub ifindex: u32,
    /// Attached at TCX ingress (not egress).
    pub ingress: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub cidrs: BTreeMap<Ipv4Net, u32>,
    pub endpoints: BTreeMap<Ipv4Addr, Endpoint>,
    /// Pin name → link.
    pub links: BTreeMap<String, ObservedLink>,
}

/// One change, in the order [`plan`] emits them: removals first, then
/// map entries, then attachments (any order would be safe: the programs
/// ask the routing table, and a device without its program, or a pod CIDR
/// not yet listed, only means the kernel's slower path).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Unpin (and so detach) a link.
    Detach(String),
    DelEndpoint(Ipv4Addr),
    DelCidr(Ipv4Net),
    PutCidr(Ipv4Net, u32),
    PutEndpoint(Ipv4Addr, Endpoint),
    Attach {
        pin: String,
        at: Attachment,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Detach(pin) => write!(f, "detach {pin}"),
            Op::DelEndpoint(a) => write!(f, "forget pod {a}"),
            Op::DelCidr(c) => write!(f, "forget pod CIDR {c}"),
            Op::PutCidr(c, flags) => write!(f, "pod CIDR {c} flags={flags}"),
            Op::PutEndpoint(a, e) => write!(
                f,
                "pod {a} on #{} mtu={} mac={} gw={}",
                e.ifindex,
                e.mtu,
                format_mac(&e.pod_mac),
                format_mac(&e.host_mac)
            ),
            Op::Attach { pin, at } => write!(f, "attach {} to {} as {pin}", at.prog.name(), at.dev),
        }
    }
}

/// The pin name of `prog` on the device with `ifindex`.
pub fn pin_name(prog: Prog, ifindex: u32) -> String {
    format!("{}-{ifindex}", prog.pin_prefix())
}

/// The program and ifindex a pin name stands for, if it is one of ours.
pub fn parse_pin(name: &str) -> Option<(Prog, u32)> {
    let (prefix, index) = name.rsplit_once('-')?;
    let prog = Prog::ALL.into_iter().find(|p| p.pin_prefix() == prefix)?;
    let ifindex: u32 = index.parse().ok()?;
    (ifindex > 0 && index == ifindex.to_string()).then_some((prog, ifindex))
}

pub fn desired(inputs: &Inputs) -> Desired {
    let mut want = Desired {
        cidrs: inputs
            .cidrs
            .iter()
            .map(|(c, local)| (c.trunc(), if *local { CIDR_F_LOCAL } else { 0 }))
            .collect(),
        ..Desired::default()
    };
    let mut attach = |prog: Prog, d: &Device| {
        want.links.insert(
            pin_name(prog, d.ifindex),
            Attachment {
                prog,
                ifindex: d.ifindex,
                dev: d.name.clone(),
            },
        );
    };
    for p in &inputs.pod_devs {
        attach(Prog::FromPod, &p.dev);
    }
    for d in inputs.uplink.iter().chain(inputs.vxlan.iter()) {
        attach(Prog::ToPod, d);
    }
    for p in &inputs.pod_devs {
        for (addr, pod_mac) in &p.pods {
            want.endpoints.insert(
                *addr,
                Endpoint {
                    ifindex: p.dev.ifindex,
                    mtu: p.mtu,
                    pod_mac: *pod_mac,
                    host_mac: p.mac,
                },
            );
        }
    }
    want
}

pub fn plan(want: &Desired, have: &Observed) -> Vec<Op> {
    let mut ops = Vec::new();
    for (pin, link) in &have.links {
        let keep = want
            .links
            .get(pin)
            .is_some_and(|a| a.ifindex == link.ifindex && link.ingress);
        if !keep {
            ops.push(Op::Detach(pin.clone()));
        }
    }
    ops.extend(
        have.endpoints
            .keys()
            .filter(|a| !want.endpoints.contains_key(a))
            .map(|a| Op::DelEndpoint(*a)),
    );
    ops.extend(
        have.cidrs
            .keys()
            .filter(|c| !want.cidrs.contains_key(c))
            .map(|c| Op::DelCidr(*c)),
    );
    ops.extend(
        want.cidrs
            .iter()
            .filter(|(c, flags)| have.cidrs.get(c) != Some(flags))
            .map(|(c, flags)| Op::PutCidr(*c, *flags)),
    );
    ops.extend(
        want.endpoints
            .iter()
            .filter(|(a, e)| have.endpoints.get(a) != Some(e))
            .map(|(a, e)| Op::PutEndpoint(*a, *e)),
    );
    for (pin, a) in &want.links {
        let present = have
            .links
            .get(pin)
            .is_some_and(|l| l.ifindex == a.ifindex && l.ingress);
        if !present {
            ops.push(Op::Attach {
                pin: pin.clone(),
                at: a.clone(),
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests;
