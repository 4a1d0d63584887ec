//! BPF host routing: the maps shared by the TC programs that forward pod
//! traffic without the node's IP stack (`ebpf/programs/src/net`) and the
//! agent that fills them (`agent/src/net/hostrouting`).
//!
//! The kernel's routing table decides where a packet to another node goes
//! (the programs ask it with `bpf_fib_lookup`); the maps say which packets
//! may take the shortcut and how to hand a packet to a local pod:
//!
//! - [`CIDRS_MAP`]: the cluster's pod CIDRs (LPM trie, key
//!   `lpm_trie::Key<u32>`: prefix length and network address). Only packets to a
//!   pod address are fast-forwarded; everything else (the node, Services
//!   the kernel translates, the outside world) goes through the stack and
//!   its netfilter rules as before.
//! - [`ENDPOINTS_MAP`]: this node's pods, by address: the host-side veth
//!   and both MACs. A packet for one of them is handed straight to the
//!   pod's namespace (`bpf_redirect_peer`, skipping a trip through the
//!   backlog queue) without a route lookup. The agent derives every entry
//!   from the kernel (keel-cni's veth, its /32 route and permanent
//!   neighbour), so an entry is never more than a netlink event behind.
//! - [`STATS_MAP`]: per-CPU counters by [`NetStat`].
//!
//! Addresses are in network byte order, as in packets.

use core::fmt;

/// Pod CIDRs → [`CidrValue`].
pub const CIDRS_MAP: &str = "KEEL_NET_CIDRS";
/// Pod address (`u32`, network byte order) → [`Endpoint`].
pub const ENDPOINTS_MAP: &str = "KEEL_NET_EP";
/// Per-CPU `u64` counters indexed by [`NetStat`].
pub const STATS_MAP: &str = "KEEL_NET_STATS";

/// Every host-routing map, in the order the agent checks and pins them.
pub const MAPS: [&str; 3] = [CIDRS_MAP, ENDPOINTS_MAP, STATS_MAP];

pub const CIDRS_MAX: u32 = 16_384;
pub const ENDPOINTS_MAX: u32 = 65_536;

/// TC ingress of every host-side pod veth: traffic a pod sends.
pub const FROM_POD_PROG: &str = "keel_from_pod";
/// TC ingress of the uplink and the VXLAN device: traffic for this node's pods.
pub const TO_POD_PROG: &str = "keel_to_pod";

/// [`CidrValue::flags`]: this node's own pod CIDR.
pub const CIDR_F_LOCAL: u32 = 1;

/// Value of [`CIDRS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CidrValue {
    /// `CIDR_F_*`.
    pub flags: u32,
}
const _: () = assert!(size_of::<CidrValue>() == 4);

/// Value of [`ENDPOINTS_MAP`]: how to hand a packet to a local pod.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// The host-side veth (whose peer is the pod's interface).
    pub ifindex: u32,
    /// Its MTU (the pod's): larger packets go to the stack.
    pub mtu: u32,
    /// The pod interface's MAC (the frame's destination).
    pub pod_mac: [u8; 6],
    /// The host-side veth's MAC (the frame's source, the pod's gateway).
    pub host_mac: [u8; 6],
}
const _: () = assert!(size_of::<Endpoint>() == 20);

/// Indices into [`STATS_MAP`]. One thing is dropped: a packet a pod sends
/// with a source address that is not its own ([`NetStat::DropSpoofed`]).
/// Every other packet the programs do not forward goes to the kernel's
/// stack, which then does what it always did (ICMP errors, fragmentation,
/// neighbour resolution).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetStat {
    /// Handed straight into a local pod's namespace (`bpf_redirect_peer`).
    ToPod = 0,
    /// Sent out of the route's device (another node, the VXLAN device).
    ToDevice = 1,
    /// Sent out of the route's device, the next hop's MAC resolved by the
    /// kernel (`bpf_redirect_neigh`).
    ToNeigh = 2,
    /// To the stack: the FIB lookup did not give a forwarding route (local
    /// address, unreachable, forwarding disabled…).
    StackFib = 3,
    /// To the stack: the TTL would expire here.
    StackTtl = 4,
    /// To the stack: larger than the egress MTU.
    StackMtu = 5,
    /// Dropped: sent from a pod's veth with a source address that is not
    /// that pod's (spoofed; a pod has CAP_NET_RAW by default).
    DropSpoofed = 6,
}

pub const STATS_LEN: u32 = 7;

/// Name of every [`NetStat`], by index.
pub const STATS: [&str; STATS_LEN as usize] = [
    "to_pod",
    "to_device",
    "to_neigh",
    "stack_fib",
    "stack_ttl",
    "stack_mtu",
    "drop_spoofed_source",
];

/// A pod CIDR entry, for dumps: `CIDR 10.244.1.0/24 local`.
pub struct CidrEntry {
    /// Network byte order.
    pub addr: u32,
    pub prefix_len: u32,
    pub value: CidrValue,
}

impl fmt::Display for CidrEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr.to_ne_bytes();
        write!(f, "CIDR {a}.{b}.{c}.{d}/{}", self.prefix_len)?;
        if self.value.flags & CIDR_F_LOCAL != 0 {
            f.write_str(" local")?;
        }
        Ok(())
    }
}

/// An endpoint entry, for dumps: `EP 10.244.1.5 dev=#7 mtu=1450 mac=0a:58:… gw=02:…`.
pub struct EndpointEntry {
    /// Network byte order.
    pub addr: u32,
    pub value: Endpoint,
}

fn mac(f: &mut fmt::Formatter<'_>, m: &[u8; 6]) -> fmt::Result {
    write!(
        f,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl fmt::Display for EndpointEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr.to_ne_bytes();
        write!(
            f,
            "EP {a}.{b}.{c}.{d} dev=#{} mtu={} mac=",
            self.value.ifindex, self.value.mtu
        )?;
        mac(f, &self.value.pod_mac)?;
        f.write_str(" gw=")?;
        mac(f, &self.value.host_mac)
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: #[repr(C)] integers only, no implicit padding.
    unsafe impl aya::Pod for CidrValue {}
    unsafe impl aya::Pod for Endpoint {}
}

#[cfg(test)]
mod tests;
