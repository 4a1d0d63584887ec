//! BPF host routing: pod traffic forwarded at TC ingress, without a pass
//! through the node's IP stack (Cilium's "BPF host routing").
//!
//! - `keel_from_pod`, on every host-side pod veth: a packet a pod sends to
//!   a pod on this node goes straight into that pod's namespace; one to a
//!   pod elsewhere goes straight out of the device the kernel's routing
//!   table picks (the uplink, the VXLAN device).
//! - `keel_to_pod`, on the uplink and the VXLAN device: a packet for a pod
//!   on this node goes straight into its namespace.
//!
//! "Straight into a pod's namespace" is `bpf_redirect_peer` to the pod's
//! host-side veth: the packet is received by the pod's interface in the
//! same softirq pass, with no routing decision and no second trip through
//! the backlog queue. Local pods come from the endpoint map; every other
//! hop is decided by the routing table (`bpf_fib_lookup` in the node's
//! namespace, with its policy rules, forwarding switches and neighbours).
//! The programs drop one thing: an IPv4 packet arriving on a pod's veth
//! whose source is not that pod's address (the endpoint map's entry for
//! the source must name this veth) — a pod has CAP_NET_RAW by default, and
//! under BPF host routing its packets never meet the stack's reverse-path
//! filter. Anything else they do not forward — not IPv4, not to a pod, TTL
//! expiring, larger than the egress MTU, no forwarding route — goes on to
//! the next TCX program and the stack, which does what it always did.

use core::mem::{MaybeUninit, size_of};

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_F_NO_PREALLOC, BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_SHOT, TC_ACT_UNSPEC,
        bpf_check_mtu_flags::BPF_MTU_CHK_SEGS, bpf_fib_lookup, bpf_redir_neigh,
        bpf_redir_neigh__bindgen_ty_1,
    },
    helpers::{
        bpf_check_mtu, bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh,
        bpf_redirect_peer, bpf_skb_pull_data,
    },
    macros::{classifier, map},
    maps::{HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::TcContext,
};
use keel_ebpf_common::net::{CIDRS_MAX, CidrValue, ENDPOINTS_MAX, Endpoint, NetStat, STATS_LEN};

// Names must match keel_ebpf_common::net (the agent finds the maps by them).
#[map(name = "KEEL_NET_CIDRS")]
static CIDRS: LpmTrie<u32, CidrValue> = LpmTrie::with_max_entries(CIDRS_MAX, BPF_F_NO_PREALLOC);

// Not preallocated: a replaced entry is freed after an RCU grace period, so
// a program never reads one being reused.
#[map(name = "KEEL_NET_EP")]
static ENDPOINTS: HashMap<u32, Endpoint> =
    HashMap::with_max_entries(ENDPOINTS_MAX, BPF_F_NO_PREALLOC);

#[map(name = "KEEL_NET_STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);

/// TCX: let the next program (and then the stack) have the packet.
const NEXT: i32 = TC_ACT_UNSPEC;
const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
/// Ethernet header plus an IPv4 header without options.
const HEADERS: usize = ETH_HLEN + 20;
const AF_INET: u8 = 2;
/// `skb->pkt_type` of a frame addressed to this host.
const PACKET_HOST: u32 = 0;
const _: () = assert!(size_of::<bpf_fib_lookup>() == 64);

#[repr(C)]
struct EthHdr {
    dst: [u8; 6],
    src: [u8; 6],
    proto: u16,
}

#[repr(C)]
struct Ipv4Hdr {
    vihl: u8,
    tos: u8,
    tot_len: u16,
    id: u16,
    frag_off: u16,
    ttl: u8,
    proto: u8,
    csum: u16,
    saddr: u32,
    daddr: u32,
}

#[classifier]
pub fn keel_from_pod(ctx: TcContext) -> i32 {
    from_pod(&ctx)
}

#[classifier]
pub fn keel_to_pod(ctx: TcContext) -> i32 {
    to_pod(&ctx)
}

#[inline(always)]
fn bump(stat: NetStat) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot; programs do not migrate CPUs mid-run.
        unsafe { *counter += 1 };
    }
}

/// The Ethernet and IPv4 headers in the packet's linear data, pulled in
/// first if the device left them in fragments.
#[inline(always)]
fn headers(ctx: &TcContext) -> Option<(*mut EthHdr, *mut Ipv4Hdr)> {
    if ctx.data() + HEADERS > ctx.data_end() {
        // SAFETY: plain helper on this program's skb.
        if unsafe { bpf_skb_pull_data(ctx.skb.skb.cast(), HEADERS as u32) } != 0 {
            return None;
        }
    }
    // Re-read after the pull: it moves the data.
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + HEADERS > end {
        return None;
    }
    Some((data as *mut EthHdr, (data + ETH_HLEN) as *mut Ipv4Hdr))
}

/// The fields of the headers the programs read.
#[derive(Clone, Copy)]
struct Ip {
    ttl: u8,
    tos: u8,
    proto: u8,
    saddr: u32,
    daddr: u32,
}

/// The IPv4 header of a frame addressed to this host, if that is what the
/// packet is.
#[inline(always)]
fn parse(ctx: &TcContext) -> Option<Ip> {
    let (eth, ip) = headers(ctx)?;
    // SAFETY: `headers` checked that both headers lie within the packet.
    let (proto, vihl, h) = unsafe {
        (
            (*eth).proto,
            (*ip).vihl,
            Ip {
                ttl: (*ip).ttl,
                tos: (*ip).tos,
                proto: (*ip).proto,
                saddr: (*ip).saddr,
                daddr: (*ip).daddr,
            },
        )
    };
    if proto != ETH_P_IP.to_be() || vihl >> 4 != 4 || vihl & 0x0f < 5 {
        return None;
    }
    // A frame for another host (a bridge flooding unknown unicast) is the
    // stack's to ignore, not ours to forward.
    // SAFETY: this program's __sk_buff.
    if unsafe { (*ctx.skb.skb).pkt_type } != PACKET_HOST {
        return None;
    }
    Some(h)
}

/// Whether the packet fits `ifindex`, whose MTU is `mtu` (None: unknown):
/// a single frame by its length, a GSO packet by its segments (the
/// kernel's check, one helper call per GSO packet, not per frame).
#[inline(always)]
fn fits(ctx: &TcContext, ifindex: u32, mtu: Option<u32>) -> bool {
    // SAFETY: this program's __sk_buff.
    let gso = unsafe { (*ctx.skb.skb).gso_segs } > 1;
    if let (false, Some(mtu)) = (gso, mtu) {
        return ctx.len() <= mtu + ETH_HLEN as u32;
    }
    let flags = if gso { BPF_MTU_CHK_SEGS as u64 } else { 0 };
    let mut mtu_len: u32 = 0;
    // SAFETY: plain helper; mtu_len is a valid u32 on the stack.
    let rc = unsafe { bpf_check_mtu(ctx.as_ptr(), ifindex, &mut mtu_len, 0, flags) };
    rc == 0
}

/// Rewrites TTL and MACs (`(dst, src)`; None when the kernel will fill
/// them in) for one routed hop.
#[inline(always)]
fn rewrite(ctx: &TcContext, macs: Option<(&[u8; 6], &[u8; 6])>) -> bool {
    // Neither helper above changes packet data, but the verifier is
    // simplest to satisfy with fresh bounds.
    let Some((eth, ip)) = headers(ctx) else {
        return false;
    };
    // SAFETY: bounds checked by `headers`; writes in place (TC programs
    // that write packet data get an unshared head from the kernel).
    unsafe {
        decrement_ttl(ip);
        if let Some((dst, src)) = macs {
            set_macs(eth, dst, src);
        }
    }
    true
}

/// Hands the packet to the local pod it is addressed to; None when it is
/// not for one.
#[inline(always)]
fn to_local_pod(ctx: &TcContext, ip: &Ip) -> Option<i32> {
    // SAFETY: the value is copied out at once (the map is not
    // preallocated: entries are freed only after a grace period).
    let ep = unsafe { ENDPOINTS.get(ip.daddr) }.copied()?;
    if ip.ttl <= 1 {
        bump(NetStat::StackTtl);
        return Some(NEXT);
    }
    if !fits(ctx, ep.ifindex, Some(ep.mtu)) {
        bump(NetStat::StackMtu);
        return Some(NEXT);
    }
    if !rewrite(ctx, Some((&ep.pod_mac, &ep.host_mac))) {
        return Some(NEXT);
    }
    bump(NetStat::ToPod);
    // SAFETY: plain helper.
    Some(unsafe { bpf_redirect_peer(ep.ifindex, 0) } as i32)
}

#[inline(always)]
fn to_pod(ctx: &TcContext) -> i32 {
    let Some(ip) = parse(ctx) else {
        return NEXT;
    };
    to_local_pod(ctx, &ip).unwrap_or(NEXT)
}

#[inline(always)]
fn from_pod(ctx: &TcContext) -> i32 {
    let Some(ip) = parse(ctx) else {
        return NEXT;
    };
    // At TC ingress the device is the one the packet arrived on: the pod's
    // veth, whose pod's address the endpoint map holds.
    // SAFETY: this program's __sk_buff.
    let ingress = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: the value is read at once (entries are freed only after a
    // grace period).
    let own = unsafe { ENDPOINTS.get(ip.saddr) }.is_some_and(|ep| ep.ifindex == ingress);
    if !own {
        bump(NetStat::DropSpoofed);
        return TC_ACT_SHOT;
    }
    if let Some(verdict) = to_local_pod(ctx, &ip) {
        return verdict;
    }
    if CIDRS.get(Key::new(32, ip.daddr)).is_none() {
        return NEXT;
    }
    if ip.ttl <= 1 {
        bump(NetStat::StackTtl);
        return NEXT;
    }
    // Built in a zeroed u64 array: the helper reads every byte, and
    // zeroing the struct itself costs memset calls per packet. tot_len 0:
    // the kernel checks the skb itself against the egress MTU (GSO
    // packets by their segments, below).
    let mut raw = MaybeUninit::<[u64; 8]>::uninit();
    let words = raw.as_mut_ptr().cast::<u64>();
    for i in 0..8 {
        // SAFETY: within raw. Volatile, so LLVM cannot fold the stores
        // back into a memset call.
        unsafe { words.add(i).write_volatile(0) };
    }
    // SAFETY: raw is 64 bytes, 8-aligned, zeroed: a valid bpf_fib_lookup.
    let fib = unsafe { &mut *raw.as_mut_ptr().cast::<bpf_fib_lookup>() };
    fib.family = AF_INET;
    fib.l4_protocol = ip.proto;
    fib.ifindex = ingress;
    fib.__bindgen_anon_2.tos = ip.tos;
    fib.__bindgen_anon_3.ipv4_src = ip.saddr;
    fib.__bindgen_anon_4.ipv4_dst = ip.daddr;
    // SAFETY: fib is a valid, sized bpf_fib_lookup on the stack.
    let rc = unsafe { fib_lookup(ctx.as_ptr(), fib, size_of::<bpf_fib_lookup>() as i32, 0) } as u32;
    let out = fib.ifindex;
    let neigh = match rc {
        BPF_FIB_LKUP_RET_SUCCESS => false,
        BPF_FIB_LKUP_RET_NO_NEIGH => true,
        BPF_FIB_LKUP_RET_FRAG_NEEDED => {
            bump(NetStat::StackMtu);
            return NEXT;
        }
        _ => {
            bump(NetStat::StackFib);
            return NEXT;
        }
    };
    if out == ingress {
        // Back out where it came from: the stack may owe an ICMP redirect.
        bump(NetStat::StackFib);
        return NEXT;
    }
    // With tot_len 0 a successful lookup returns the egress MTU (and
    // checked a single frame against it already).
    // SAFETY: the union's mtu_result, written by the helper on success.
    let mtu = (!neigh).then(|| u32::from(unsafe { fib.__bindgen_anon_1.mtu_result }));
    if !fits(ctx, out, mtu) {
        bump(NetStat::StackMtu);
        return NEXT;
    }
    let macs = (!neigh).then_some((&fib.dmac, &fib.smac));
    if !rewrite(ctx, macs) {
        return NEXT;
    }
    if neigh {
        let mut nh = bpf_redir_neigh {
            nh_family: AF_INET as u32,
            // SAFETY: the FIB lookup left the next hop in ipv4_dst.
            __bindgen_anon_1: bpf_redir_neigh__bindgen_ty_1 {
                ipv6_nh: [unsafe { fib.__bindgen_anon_4.ipv4_dst }, 0, 0, 0],
            },
        };
        bump(NetStat::ToNeigh);
        // SAFETY: nh is a valid, sized bpf_redir_neigh on the stack.
        return unsafe { bpf_redirect_neigh(out, &mut nh, size_of::<bpf_redir_neigh>() as i32, 0) }
            as i32;
    }
    bump(NetStat::ToDevice);
    // SAFETY: plain helper.
    unsafe { bpf_redirect(out, 0) as i32 }
}

/// Writes both MACs with plain stores (a 6-byte array copy would be a
/// memmove call per packet).
///
/// # Safety
/// `eth` must point at a whole, writable Ethernet header.
#[inline(always)]
unsafe fn set_macs(eth: *mut EthHdr, dst: &[u8; 6], src: &[u8; 6]) {
    let p = eth.cast::<u8>();
    let w = [
        u32::from_ne_bytes([dst[0], dst[1], dst[2], dst[3]]),
        u32::from_ne_bytes([dst[4], dst[5], src[0], src[1]]),
        u32::from_ne_bytes([src[2], src[3], src[4], src[5]]),
    ];
    // SAFETY: the caller's guarantee; 12 bytes from the header's start.
    unsafe {
        p.cast::<u32>().write_unaligned(w[0]);
        p.add(4).cast::<u32>().write_unaligned(w[1]);
        p.add(8).cast::<u32>().write_unaligned(w[2]);
    }
}

/// TTL minus one with the header checksum adjusted in place, as the
/// kernel's `ip_decrease_ttl` does (RFC 1624; the caller checked TTL > 1).
///
/// # Safety
/// `ip` must point at a whole, writable IPv4 header.
#[inline(always)]
unsafe fn decrement_ttl(ip: *mut Ipv4Hdr) {
    // SAFETY: the caller's guarantee.
    unsafe {
        // TTL is the high byte of its 16-bit word in network order, so the
        // checksum (kept as stored) goes up by htons(0x0100).
        let check = (*ip).csum as u32 + 0x0100u16.to_be() as u32;
        (*ip).csum = (check + (check >= 0xffff) as u32) as u16;
        (*ip).ttl -= 1;
    }
}
