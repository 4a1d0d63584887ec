//! Service load balancing: the maps shared by the cgroup `sock_addr`
//! programs (ClusterIP, translated once per connection), the TC programs on
//! the node's uplink (NodePort and externalIPs) and the agent that fills
//! them.
//!
//! Layout, in the spirit of Cilium's lb4 maps:
//!
//! - [`SERVICES_MAP`]: one entry per frontend (VIP, port, protocol) at
//!   `rev = 0, slot = 0` (the header: count, flags, affinity timeout, the
//!   live revision) plus its backend slots `1..=count` under that revision.
//!   A new backend set is written under the other revision first and the
//!   header is flipped last, so a lookup sees the old set or the new one,
//!   never a mix.
//! - [`BACKENDS_MAP`]: backend id → address, port, protocol, local flag.
//! - [`MAGLEV_MAP`]: Maglev lookup tables (slot numbers) of TC frontends,
//!   in chunks, under the same revision as the slots they point to.
//! - [`AFFINITY_MAP`]: ClientIP session affinity (LRU).
//! - [`SOCK_REVNAT_MAP`]: socket cookie + backend → frontend, so
//!   `recvmsg`/`getpeername` show the Service address (LRU).
//! - [`CT_MAP`]: connection tracking for NodePort/externalIP flows at TC
//!   (LRU), both directions.
//! - [`STATS_MAP`]: per-CPU counters, translations and drops by reason.
//!
//! Addresses and ports are stored in network byte order, exactly as they sit
//! in packets and in `struct bpf_sock_addr` (an address is
//! `u32::from_ne_bytes(ip.octets())`, a port `u16::from_ne_bytes(port.to_be_bytes())`).

use core::fmt;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Frontends: header and backend slots.
pub const SERVICES_MAP: &str = "KEEL_LB_SVC";
/// Backend id → [`Backend`].
pub const BACKENDS_MAP: &str = "KEEL_LB_BE";
/// [`MaglevKey`] → [`MaglevChunk`].
pub const MAGLEV_MAP: &str = "KEEL_LB_MAGLEV";
/// [`AffinityKey`] → [`AffinityValue`].
pub const AFFINITY_MAP: &str = "KEEL_LB_AFFIN";
/// [`SockRevNatKey`] → [`SockRevNatValue`].
pub const SOCK_REVNAT_MAP: &str = "KEEL_LB_SKRNAT";
/// [`CtKey`] → [`CtValue`].
pub const CT_MAP: &str = "KEEL_LB_CT";
/// Per-CPU `u64` counters indexed by [`Stat`].
pub const STATS_MAP: &str = "KEEL_LB_STATS";
/// One [`LbConfig`] at index 0, written by the agent.
pub const CONFIG_MAP: &str = "KEEL_LB_CFG";

/// Every LB map, in the order the agent checks and pins them.
pub const MAPS: [&str; 8] = [
    SERVICES_MAP,
    BACKENDS_MAP,
    MAGLEV_MAP,
    AFFINITY_MAP,
    SOCK_REVNAT_MAP,
    CT_MAP,
    STATS_MAP,
    CONFIG_MAP,
];

pub const SERVICES_MAX: u32 = 262_144;
pub const BACKENDS_MAX: u32 = 262_144;
pub const MAGLEV_MAX: u32 = 131_072;
pub const AFFINITY_MAX: u32 = 65_536;
pub const SOCK_REVNAT_MAX: u32 = 131_072;
pub const CT_MAX: u32 = 131_072;

/// cgroup/connect4: ClusterIP (and NodePort/externalIP for local clients).
pub const CONNECT4_PROG: &str = "keel_lb_conn4";
/// cgroup/sendmsg4: unconnected UDP to a Service.
pub const SENDMSG4_PROG: &str = "keel_lb_send4";
/// cgroup/recvmsg4: UDP replies show the Service as their source.
pub const RECVMSG4_PROG: &str = "keel_lb_recv4";
/// cgroup/getpeername4: connected sockets show the Service as their peer.
pub const GETPEERNAME4_PROG: &str = "keel_lb_peer4";
/// TC ingress on the uplink: NodePort/externalIP DNAT(+SNAT), reverse NAT of replies.
pub const TC_INGRESS_PROG: &str = "keel_lb_tc_in";
/// TC egress on the uplink: reverse NAT of replies from local backends.
pub const TC_EGRESS_PROG: &str = "keel_lb_tc_out";

/// [`ServiceValue::flags`]: translated by the cgroup socket hooks.
pub const SVC_F_SOCK: u8 = 1;
/// Translated by the TC programs on the uplink (traffic from outside).
pub const SVC_F_TC: u8 = 2;
/// ClientIP session affinity ([`ServiceValue::affinity_timeout`] seconds).
pub const SVC_F_AFFINITY: u8 = 4;
/// externalTrafficPolicy: Local: only node-local backends, and no backend
/// means drop (as Kubernetes does), not refuse.
pub const SVC_F_LOCAL_ONLY: u8 = 8;
/// The frontend is a NodePort (informational, for dumps).
pub const SVC_F_NODEPORT: u8 = 16;
/// The frontend is an externalIP (informational, for dumps).
pub const SVC_F_EXTERNAL_IP: u8 = 32;

/// Key of [`SERVICES_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceKey {
    /// Frontend address (network byte order).
    pub addr: u32,
    /// Frontend port (network byte order).
    pub port: u16,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub proto: u8,
    /// Revision of the backend set this slot belongs to; 0 for the header.
    pub rev: u8,
    /// 0: the header; `1..=count`: backend slots.
    pub slot: u16,
    pub _pad: u16,
}
const _: () = assert!(size_of::<ServiceKey>() == 12);

impl ServiceKey {
    pub const fn header(addr: u32, port: u16, proto: u8) -> Self {
        Self {
            addr,
            port,
            proto,
            rev: 0,
            slot: 0,
            _pad: 0,
        }
    }

    pub const fn slot(addr: u32, port: u16, proto: u8, rev: u8, slot: u16) -> Self {
        Self {
            addr,
            port,
            proto,
            rev,
            slot,
            _pad: 0,
        }
    }

    pub const fn is_header(&self) -> bool {
        self.slot == 0 && self.rev == 0
    }
}

/// Value of [`SERVICES_MAP`]: the header (slot 0) or one backend slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceValue {
    /// Slots: the backend id. Header: 0.
    pub backend_id: u32,
    /// Header: the frontend's id (key of its Maglev table and affinity).
    pub id: u32,
    /// Header: ClientIP affinity timeout in seconds (with [`SVC_F_AFFINITY`]).
    pub affinity_timeout: u32,
    /// Header: size M of the Maglev table, 0 when there is none.
    pub maglev_m: u32,
    /// Header: number of backend slots (0: refuse).
    pub count: u16,
    /// Header: `SVC_F_*`.
    pub flags: u8,
    /// Header: the live revision (1 or 2) of the slots and Maglev table.
    pub rev: u8,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ServiceValue>() == 24);

impl ServiceValue {
    pub const fn slot(backend_id: u32) -> Self {
        Self {
            backend_id,
            id: 0,
            affinity_timeout: 0,
            maglev_m: 0,
            count: 0,
            flags: 0,
            rev: 0,
            _pad: 0,
        }
    }
}

/// [`Backend::flags`]: the backend runs on this node (DNAT only, no SNAT).
pub const BACKEND_F_LOCAL: u8 = 1;

/// Value of [`BACKENDS_MAP`] (key: backend id, `u32`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    /// Network byte order.
    pub addr: u32,
    /// Network byte order.
    pub port: u16,
    pub proto: u8,
    /// `BACKEND_F_*`.
    pub flags: u8,
}
const _: () = assert!(size_of::<Backend>() == 8);

/// Slots per [`MaglevChunk`].
pub const MAGLEV_CHUNK: usize = 1024;
/// Maglev table sizes (primes).
///
/// Maglev's paper sizes M > 100·N for balance (shares within 1%). Keeping a
/// backend change from moving more than about 1% of *other* flows needs
/// more: measured with keel's hashes, plain Maglev moves 1.6-3% extra at
/// M ≈ 100·N, about 1% at 400·N and 0.5-0.7% at 1000·N. So a frontend with
/// N backends uses the smallest size with M ≥ 1000·N (N ≤ 262), which also
/// satisfies M > 100·N. Up to 16 backends that is 16381 (32 KiB per
/// NodePort/externalIP frontend, Cilium's default); M only changes when N
/// crosses 16, 32, 65, 131 or 262 (a new M reshuffles every flow).
pub const MAGLEV_SIZES: [u32; 5] = [16381, 32749, 65521, 131_071, 262_139];

/// The Maglev table size for `n` backends (see [`MAGLEV_SIZES`]).
pub const fn maglev_size(n: usize) -> u32 {
    let mut i = 0;
    while i < MAGLEV_SIZES.len() {
        if MAGLEV_SIZES[i] as usize >= 1000 * n {
            return MAGLEV_SIZES[i];
        }
        i += 1;
    }
    MAGLEV_SIZES[MAGLEV_SIZES.len() - 1]
}

/// Key of [`MAGLEV_MAP`]: one chunk of one frontend's table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaglevKey {
    /// [`ServiceValue::id`] of the frontend.
    pub id: u32,
    /// The revision of the slots the table points into.
    pub rev: u8,
    pub _pad: u8,
    /// Entries `chunk * MAGLEV_CHUNK ..` of the table.
    pub chunk: u16,
}
const _: () = assert!(size_of::<MaglevKey>() == 8);

/// Value of [`MAGLEV_MAP`]: slot numbers (1..=count), 0 past the table's end.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevChunk {
    pub slots: [u16; MAGLEV_CHUNK],
}
const _: () = assert!(size_of::<MaglevChunk>() == 2048);

impl Default for MaglevChunk {
    fn default() -> Self {
        Self {
            slots: [0; MAGLEV_CHUNK],
        }
    }
}

/// [`AffinityKey::kind`]: the client is a source IP (TC path).
pub const AFFINITY_CLIENT_IP: u32 = 0;
/// [`AffinityKey::kind`]: the client is a network namespace cookie (socket
/// path: the source IP is not known at `connect()`; one namespace is one pod).
pub const AFFINITY_NETNS: u32 = 1;

/// Key of [`AFFINITY_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AffinityKey {
    /// Client IP (network byte order) or netns cookie, per `kind`.
    pub client: u64,
    /// [`ServiceValue::id`] of the frontend.
    pub id: u32,
    /// `AFFINITY_*`.
    pub kind: u32,
}
const _: () = assert!(size_of::<AffinityKey>() == 16);

/// Value of [`AFFINITY_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AffinityValue {
    /// `bpf_ktime_get_ns()` of the last connection (CLOCK_MONOTONIC).
    pub last_used_ns: u64,
    pub backend_id: u32,
    /// Revision and slot where the backend was found, to check in O(1)
    /// that it still belongs to the frontend.
    pub rev: u8,
    pub _pad: u8,
    pub slot: u16,
}
const _: () = assert!(size_of::<AffinityValue>() == 16);

/// Key of [`SOCK_REVNAT_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockRevNatKey {
    /// `bpf_get_socket_cookie()` of the client socket.
    pub cookie: u64,
    /// Backend address and port (network byte order).
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}
const _: () = assert!(size_of::<SockRevNatKey>() == 16);

/// Value of [`SOCK_REVNAT_MAP`]: the frontend the socket dialled.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockRevNatValue {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
    pub id: u32,
}
const _: () = assert!(size_of::<SockRevNatValue>() == 12);

/// [`CtKey::dir`]: the client → frontend direction, as it arrives.
pub const CT_ORIGINAL: u8 = 0;
/// [`CtKey::dir`]: the backend → client direction, as it arrives.
pub const CT_REPLY: u8 = 1;

/// Key of [`CT_MAP`]: a packet's tuple as it arrives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// [`CT_ORIGINAL`] or [`CT_REPLY`].
    pub dir: u8,
    pub _pad: u16,
}
const _: () = assert!(size_of::<CtKey>() == 16);

/// Value of [`CT_MAP`]: the tuple the packet leaves with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtValue {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    /// The backend chosen for the flow.
    pub backend_id: u32,
    /// [`ServiceValue::id`] of the frontend.
    pub id: u32,
}
const _: () = assert!(size_of::<CtValue>() == 20);

/// Source ports used to SNAT NodePort flows to remote backends: above the
/// default `ip_local_port_range` (32768-60999) so they do not collide with
/// the node's own connections, and outside the NodePort range.
pub const SNAT_PORT_MIN: u16 = 61_000;
pub const SNAT_PORT_COUNT: u16 = 4_536;
/// How many SNAT ports a new flow tries before it is dropped.
pub const SNAT_TRIES: u32 = 16;

/// Value of [`CONFIG_MAP`] (index 0): node-wide settings of the datapath.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbConfig {
    /// Source address for NodePort/externalIP flows forwarded to backends on
    /// other nodes (the node IP, network byte order). 0: the frontend address.
    pub snat_addr: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(size_of::<LbConfig>() == 16);

/// Indices into [`STATS_MAP`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A socket's destination was translated to a backend.
    SockXlate = 0,
    /// A socket's reply address or peer was translated back to the Service.
    SockRevNat = 1,
    /// A new NodePort/externalIP flow was translated at TC.
    TcNewFlow = 2,
    /// A packet of a tracked flow was translated at TC (either direction).
    TcTracked = 3,
    /// Drop: connect/sendmsg to a Service without ready backends (refused).
    SockNoBackend = 4,
    /// Drop: NodePort/externalIP packet to a Service without ready backends
    /// (answered with ICMP port unreachable).
    TcNoBackend = 5,
    /// Drop: externalTrafficPolicy Local and no backend on this node.
    NoLocalBackend = 6,
    /// Drop: a backend slot or Maglev entry was missing (update race).
    SlotMissing = 7,
    /// Drop: a slot pointed to a backend id that does not exist.
    BackendMissing = 8,
    /// Drop: no free SNAT port for a new flow.
    SnatExhausted = 9,
    /// Drop: the connection-tracking entry could not be written.
    CtInsert = 10,
    /// Drop: no route to the backend or client (FIB lookup failed).
    Fib = 11,
    /// Drop: TTL would expire.
    Ttl = 12,
    /// Drop: rewriting the packet failed.
    Rewrite = 13,
    /// Passed untouched: an IPv4 fragment or a header with options to a frontend.
    Unsupported = 14,
}

pub const STATS_LEN: u32 = 15;

/// Name of every [`Stat`] (by index) and whether it counts drops.
pub const STATS: [(&str, bool); STATS_LEN as usize] = [
    ("sock_xlate", false),
    ("sock_revnat", false),
    ("tc_new_flow", false),
    ("tc_tracked", false),
    ("sock_no_backend", true),
    ("tc_no_backend", true),
    ("no_local_backend", true),
    ("slot_missing", true),
    ("backend_missing", true),
    ("snat_exhausted", true),
    ("ct_insert", true),
    ("fib", true),
    ("ttl", true),
    ("rewrite", true),
    ("unsupported", false),
];

/// Hash of a flow's 5-tuple (fields as stored: network byte order), used by
/// the TC programs to index Maglev tables. Shared with userspace so tests
/// and tools can predict a flow's backend. Integer-only, no loops (BPF).
#[inline(always)]
pub fn flow_hash(saddr: u32, daddr: u32, sport: u16, dport: u16, proto: u8) -> u32 {
    let mut h = 0x9e37_79b9u32 ^ (proto as u32);
    h = mix(h, saddr);
    h = mix(h, daddr);
    h = mix(h, ((sport as u32) << 16) | dport as u32);
    fmix(h)
}

/// Hash of a socket cookie, to pick the same backend for every datagram a
/// socket sends (unconnected UDP).
#[inline(always)]
pub fn cookie_hash(cookie: u64) -> u32 {
    fmix(mix(mix(0x85eb_ca6b, cookie as u32), (cookie >> 32) as u32))
}

#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    // murmur3's block step.
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// An address stored in network byte order, for display.
pub struct Ip(pub u32);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_ne_bytes();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// A port stored in network byte order, as a number.
pub const fn port(p: u16) -> u16 {
    u16::from_be(p)
}

/// "TCP", "UDP" or the number.
pub struct Proto(pub u8);

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IPPROTO_TCP => f.write_str("TCP"),
            IPPROTO_UDP => f.write_str("UDP"),
            n => write!(f, "{n}"),
        }
    }
}

struct SvcFlags(u8);

impl fmt::Display for SvcFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (SVC_F_SOCK, "sock"),
            (SVC_F_TC, "tc"),
            (SVC_F_AFFINITY, "affinity"),
            (SVC_F_LOCAL_ONLY, "local-only"),
            (SVC_F_NODEPORT, "nodeport"),
            (SVC_F_EXTERNAL_IP, "external-ip"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// One [`SERVICES_MAP`] entry, displayed as a dump line:
/// `SVC 10.96.0.10:80/TCP slot=0 id=3 rev=1 count=2 flags=sock` or
/// `SVC 10.96.0.10:80/TCP slot=1 rev=1 backend=7`.
pub struct ServiceEntry<'a>(pub &'a ServiceKey, pub &'a ServiceValue);

impl fmt::Display for ServiceEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = (self.0, self.1);
        write!(
            f,
            "SVC {}:{}/{} slot={}",
            Ip(k.addr),
            port(k.port),
            Proto(k.proto),
            k.slot
        )?;
        if k.is_header() {
            write!(
                f,
                " id={} rev={} count={} flags={}",
                v.id,
                v.rev,
                v.count,
                SvcFlags(v.flags)
            )?;
            if v.flags & SVC_F_AFFINITY != 0 {
                write!(f, " affinity={}s", v.affinity_timeout)?;
            }
            if v.maglev_m != 0 {
                write!(f, " maglev={}", v.maglev_m)?;
            }
            Ok(())
        } else {
            write!(f, " rev={} backend={}", k.rev, v.backend_id)
        }
    }
}

/// One [`BACKENDS_MAP`] entry: `BE 7 10.244.1.5:8080/TCP local`.
pub struct BackendEntry<'a>(pub u32, pub &'a Backend);

impl fmt::Display for BackendEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.1;
        write!(
            f,
            "BE {} {}:{}/{} {}",
            self.0,
            Ip(b.addr),
            port(b.port),
            Proto(b.proto),
            if b.flags & BACKEND_F_LOCAL != 0 {
                "local"
            } else {
                "remote"
            }
        )
    }
}

/// One [`CT_MAP`] entry:
/// `CT TCP 10.0.0.9:40000 -> 10.0.0.1:30080 orig => 10.0.0.1:61000 -> 10.244.2.5:8080 backend=7 id=3`.
pub struct CtEntry<'a>(pub &'a CtKey, pub &'a CtValue);

impl fmt::Display for CtEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = (self.0, self.1);
        write!(
            f,
            "CT {} {}:{} -> {}:{} {} => {}:{} -> {}:{} backend={} id={}",
            Proto(k.proto),
            Ip(k.saddr),
            port(k.sport),
            Ip(k.daddr),
            port(k.dport),
            if k.dir == CT_REPLY { "reply" } else { "orig" },
            Ip(v.saddr),
            port(v.sport),
            Ip(v.daddr),
            port(v.dport),
            v.backend_id,
            v.id
        )
    }
}

/// One [`AFFINITY_MAP`] entry, with its age computed by the caller:
/// `AFFINITY id=3 client=10.0.0.9 backend=7 age=12s`.
pub struct AffinityEntry<'a>(pub &'a AffinityKey, pub &'a AffinityValue, pub u64);

impl fmt::Display for AffinityEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, v) = (self.0, self.1);
        write!(f, "AFFINITY id={} ", k.id)?;
        if k.kind == AFFINITY_NETNS {
            write!(f, "netns={}", k.client)?;
        } else {
            write!(f, "client={}", Ip(k.client as u32))?;
        }
        write!(f, " backend={} age={}s", v.backend_id, self.2)
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: every type is #[repr(C)], made of integers, with explicit
    // padding fields, so any bit pattern is valid and there is no implicit
    // padding.
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for ServiceValue {}
    unsafe impl aya::Pod for Backend {}
    unsafe impl aya::Pod for MaglevKey {}
    unsafe impl aya::Pod for MaglevChunk {}
    unsafe impl aya::Pod for AffinityKey {}
    unsafe impl aya::Pod for AffinityValue {}
    unsafe impl aya::Pod for SockRevNatKey {}
    unsafe impl aya::Pod for SockRevNatValue {}
    unsafe impl aya::Pod for CtKey {}
    unsafe impl aya::Pod for CtValue {}
    unsafe impl aya::Pod for LbConfig {}
}

#[cfg(test)]
mod tests;
