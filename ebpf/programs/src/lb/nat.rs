//! Packet surgery for the TC programs: header parsing through
//! `bpf_skb_load_bytes`, address/port rewrites with incremental checksum
//! updates (`bpf_l3_csum_replace`/`bpf_l4_csum_replace`), forwarding through
//! a FIB lookup, the ICMP port-unreachable answer for Services without
//! backends, and the reverse translation of ICMP errors about a NATed flow.

use core::mem::{size_of, zeroed};

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_SHOT, bpf_fib_lookup, bpf_redir_neigh,
    },
    helpers::{
        bpf_csum_diff, bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh,
        bpf_skb_change_tail,
    },
    programs::TcContext,
};
use keel_ebpf_common::lb::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Stat};

use super::bump;

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const AF_INET: u8 = 2;
const IP_OFF: usize = ETH_HLEN;
const IP_TTL_OFF: usize = IP_OFF + 8;
const IP_CSUM_OFF: usize = IP_OFF + 10;
const IP_SRC_OFF: usize = IP_OFF + 12;
const IP_DST_OFF: usize = IP_OFF + 16;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_FLAG_ACK: u8 = 0x10;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv4Hdr {
    pub vihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub proto: u8,
    pub csum: u16,
    pub saddr: u32,
    pub daddr: u32,
}

/// A TCP or UDP packet over IPv4, as far as NAT needs it. Addresses and
/// ports in network byte order.
#[derive(Clone, Copy)]
pub struct Packet {
    pub ip: Ipv4Hdr,
    pub l4_off: usize,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// A fragment: the first (ports valid, but the rest cannot follow) or a
    /// later one (no ports).
    pub fragment: bool,
}

impl Packet {
    pub fn tuple(&self) -> Tuple {
        Tuple {
            saddr: self.ip.saddr,
            daddr: self.ip.daddr,
            sport: self.sport,
            dport: self.dport,
        }
    }

    /// A TCP SYN without ACK: the first packet of a new connection.
    pub fn is_syn(&self) -> bool {
        self.ip.proto == IPPROTO_TCP
            && self.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK) == TCP_FLAG_SYN
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
}

/// The packet's IPv4 and TCP/UDP headers, or None for anything else (which
/// the programs pass untouched).
#[inline(always)]
pub fn parse(ctx: &TcContext) -> Option<Packet> {
    let eth_type = ctx.load::<u16>(12).ok()?;
    if u16::from_be(eth_type) != ETH_P_IP {
        return None;
    }
    let ip = ctx.load::<Ipv4Hdr>(IP_OFF).ok()?;
    let ihl = (ip.vihl & 0x0f) as usize;
    if ip.vihl >> 4 != 4 || ihl < 5 {
        return None;
    }
    if ip.proto != IPPROTO_TCP && ip.proto != IPPROTO_UDP {
        return None;
    }
    let l4_off = IP_OFF + ihl * 4;
    let frag = u16::from_be(ip.frag_off);
    // More-fragments set or a fragment offset.
    let fragment = frag & 0x3fff != 0;
    if frag & 0x1fff != 0 {
        // A later fragment: no transport header.
        return Some(Packet {
            ip,
            l4_off,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            fragment,
        });
    }
    let ports = ctx.load::<[u16; 2]>(l4_off).ok()?;
    let tcp_flags = if ip.proto == IPPROTO_TCP {
        ctx.load::<u8>(l4_off + 13).ok()?
    } else {
        0
    };
    Some(Packet {
        ip,
        l4_off,
        sport: ports[0],
        dport: ports[1],
        tcp_flags,
        fragment,
    })
}

/// Rewrites addresses and ports from `p`'s tuple to `to`, keeping the IP and
/// TCP/UDP checksums right (a UDP checksum of 0, "none", stays 0).
#[inline(always)]
pub fn rewrite(ctx: &TcContext, p: &Packet, to: &Tuple) -> Result<(), i64> {
    let from = p.tuple();
    let (csum_off, mangled) = if p.ip.proto == IPPROTO_TCP {
        (p.l4_off + 16, 0)
    } else {
        (p.l4_off + 6, BPF_F_MARK_MANGLED_0 as u64)
    };
    let addr_flags = BPF_F_PSEUDO_HDR as u64 | mangled | 4;
    let port_flags = mangled | 2;
    if from.saddr != to.saddr {
        ctx.l4_csum_replace(csum_off, from.saddr as u64, to.saddr as u64, addr_flags)?;
        ctx.l3_csum_replace(IP_CSUM_OFF, from.saddr as u64, to.saddr as u64, 4)?;
        ctx.store(IP_SRC_OFF, &to.saddr, 0)?;
    }
    if from.daddr != to.daddr {
        ctx.l4_csum_replace(csum_off, from.daddr as u64, to.daddr as u64, addr_flags)?;
        ctx.l3_csum_replace(IP_CSUM_OFF, from.daddr as u64, to.daddr as u64, 4)?;
        ctx.store(IP_DST_OFF, &to.daddr, 0)?;
    }
    if from.sport != to.sport {
        ctx.l4_csum_replace(csum_off, from.sport as u64, to.sport as u64, port_flags)?;
        ctx.store(p.l4_off, &to.sport, 0)?;
    }
    if from.dport != to.dport {
        ctx.l4_csum_replace(csum_off, from.dport as u64, to.dport as u64, port_flags)?;
        ctx.store(p.l4_off + 2, &to.dport, 0)?;
    }
    Ok(())
}

/// Decrements the TTL as a router does (the caller checked it is > 1).
#[inline(always)]
fn decrement_ttl(ctx: &TcContext, ip: &Ipv4Hdr) -> Result<(), i64> {
    // The 16-bit word holding TTL and protocol, as it sits in the header.
    let old = u16::from_ne_bytes([ip.ttl, ip.proto]);
    let new = u16::from_ne_bytes([ip.ttl - 1, ip.proto]);
    ctx.l3_csum_replace(IP_CSUM_OFF, old as u64, new as u64, 2)?;
    ctx.store(IP_TTL_OFF, &(ip.ttl - 1), 0)
}

/// Drops the packet, counting why.
#[inline(always)]
pub fn drop(stat: Stat) -> i32 {
    bump(stat);
    TC_ACT_SHOT
}

/// Rewrites `p` to `to` and forwards it like a router (TTL, FIB lookup,
/// neighbour), straight to the egress device: the rewritten packet may have
/// a local source address, which the input route would drop as martian.
#[inline(always)]
pub fn forward(ctx: &TcContext, p: &Packet, to: &Tuple) -> i32 {
    if p.ip.ttl <= 1 {
        return drop(Stat::Ttl);
    }
    if rewrite(ctx, p, to).is_err() {
        return drop(Stat::Rewrite);
    }
    route(ctx, &p.ip, to)
}

/// Decrements the TTL of a packet already rewritten to `to` (its header
/// before the rewrite is `ip`) and sends it out of the device the FIB
/// picks for it.
#[inline(always)]
fn route(ctx: &TcContext, ip: &Ipv4Hdr, to: &Tuple) -> i32 {
    let p = ip;
    if decrement_ttl(ctx, p).is_err() {
        return drop(Stat::Rewrite);
    }
    // SAFETY: zeroed is a valid bpf_fib_lookup / bpf_redir_neigh.
    let mut fib: bpf_fib_lookup = unsafe { zeroed() };
    fib.family = AF_INET;
    fib.l4_protocol = p.proto;
    fib.sport = to.sport;
    fib.dport = to.dport;
    fib.__bindgen_anon_1.tot_len = u16::from_be(p.tot_len);
    // SAFETY: ctx.skb.skb is this program's __sk_buff.
    fib.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    fib.__bindgen_anon_3.ipv4_src = to.saddr;
    fib.__bindgen_anon_4.ipv4_dst = to.daddr;
    // SAFETY: fib is a valid, sized bpf_fib_lookup on the stack.
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &mut fib,
            size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    if rc == BPF_FIB_LKUP_RET_SUCCESS as i64 {
        let macs = Macs {
            dst: fib.dmac,
            src: fib.smac,
        };
        if ctx.store(0, &macs, 0).is_err() {
            return drop(Stat::Rewrite);
        }
        // SAFETY: plain helper.
        return unsafe { bpf_redirect(fib.ifindex, 0) } as i32;
    }
    if rc == BPF_FIB_LKUP_RET_NO_NEIGH as i64 {
        // SAFETY: as above.
        let mut nh: bpf_redir_neigh = unsafe { zeroed() };
        nh.nh_family = AF_INET as u32;
        // SAFETY: the FIB lookup left the next hop in ipv4_dst.
        nh.__bindgen_anon_1.ipv4_nh = unsafe { fib.__bindgen_anon_4.ipv4_dst };
        // SAFETY: nh is a valid, sized bpf_redir_neigh on the stack.
        return unsafe {
            bpf_redirect_neigh(fib.ifindex, &mut nh, size_of::<bpf_redir_neigh>() as i32, 0)
        } as i32;
    }
    drop(Stat::Fib)
}

#[repr(C)]
struct Macs {
    dst: [u8; 6],
    src: [u8; 6],
}

/// An ICMP "port unreachable" answer: IP header, ICMP header, the original
/// IP header and the first 8 bytes of its payload (RFC 792).
#[repr(C)]
struct Unreachable {
    ip: Ipv4Hdr,
    icmp_type: u8,
    icmp_code: u8,
    icmp_csum: u16,
    unused: u32,
    original: [u8; 28],
}
const UNREACHABLE_LEN: usize = size_of::<Unreachable>();
const _: () = assert!(UNREACHABLE_LEN == 56);

/// Turns `p` into an ICMP port unreachable for its sender and sends it back
/// out of the device it came in on: TCP clients get ECONNREFUSED at once,
/// as with kube-proxy's REJECT rule.
#[inline(always)]
pub fn refuse(ctx: &TcContext, p: &Packet) -> i32 {
    if p.l4_off != IP_OFF + 20 {
        // Quoting a header with options is not worth the verifier's time.
        return drop(Stat::TcNoBackend);
    }
    let Ok(original) = ctx.load::<[u8; 28]>(IP_OFF) else {
        return drop(Stat::TcNoBackend);
    };
    let Ok(macs) = ctx.load::<Macs>(0) else {
        return drop(Stat::TcNoBackend);
    };
    let mut answer = Unreachable {
        ip: Ipv4Hdr {
            vihl: 0x45,
            // IPTOS_PREC_INTERNETCONTROL, as the kernel's own ICMP errors.
            tos: 0xc0,
            tot_len: (UNREACHABLE_LEN as u16).to_be(),
            id: 0,
            frag_off: 0,
            ttl: 64,
            proto: IPPROTO_ICMP,
            csum: 0,
            saddr: p.ip.daddr,
            daddr: p.ip.saddr,
        },
        icmp_type: 3,
        icmp_code: 3,
        icmp_csum: 0,
        unused: 0,
        original,
    };
    let base = (&raw mut answer).cast::<u32>();
    // SAFETY: both ranges lie inside `answer` and are multiples of 4 bytes.
    let ip_sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, base, 20, 0) };
    // SAFETY: as above (bytes 20..56).
    let icmp_sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, base.add(5), 36, 0) };
    if ip_sum < 0 || icmp_sum < 0 {
        return drop(Stat::TcNoBackend);
    }
    answer.ip.csum = fold(ip_sum as u64);
    answer.icmp_csum = fold(icmp_sum as u64);
    // SAFETY: ctx.skb.skb is this program's __sk_buff.
    let resized =
        unsafe { bpf_skb_change_tail(ctx.skb.skb, (ETH_HLEN + UNREACHABLE_LEN) as u32, 0) };
    let back = Macs {
        dst: macs.src,
        src: macs.dst,
    };
    if resized != 0 || ctx.store(0, &back, 0).is_err() || ctx.store(IP_OFF, &answer, 0).is_err() {
        return drop(Stat::TcNoBackend);
    }
    bump(Stat::TcNoBackend);
    // SAFETY: plain helper; ifindex is the device the packet came in on.
    unsafe { bpf_redirect((*ctx.skb.skb).ifindex, 0) as i32 }
}

/// Folds a 32-bit one's-complement sum into the 16-bit checksum to store.
#[inline(always)]
fn fold(sum: u64) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

const ICMP_OFF: usize = IP_OFF + 20;
const ICMP_CSUM_OFF: usize = ICMP_OFF + 2;
const INNER_OFF: usize = ICMP_OFF + 8;
const INNER_CSUM_OFF: usize = INNER_OFF + 10;
const INNER_SRC_OFF: usize = INNER_OFF + 12;
const INNER_DST_OFF: usize = INNER_OFF + 16;
const INNER_L4_OFF: usize = INNER_OFF + 20;

/// An ICMP error (destination unreachable — "fragmentation needed" among
/// them —, time exceeded, parameter problem) quoting a TCP or UDP packet,
/// both IPv4 headers without options.
#[derive(Clone, Copy)]
pub struct IcmpError {
    pub outer: Ipv4Hdr,
    pub inner: Ipv4Hdr,
    /// The quoted packet's ports, network byte order.
    pub sport: u16,
    pub dport: u16,
}

#[inline(always)]
pub fn parse_icmp_error(ctx: &TcContext) -> Option<IcmpError> {
    let eth_type = ctx.load::<u16>(12).ok()?;
    if u16::from_be(eth_type) != ETH_P_IP {
        return None;
    }
    let outer = ctx.load::<Ipv4Hdr>(IP_OFF).ok()?;
    if outer.vihl != 0x45
        || outer.proto != IPPROTO_ICMP
        || u16::from_be(outer.frag_off) & 0x3fff != 0
    {
        return None;
    }
    let icmp_type = ctx.load::<u8>(ICMP_OFF).ok()?;
    if !matches!(icmp_type, 3 | 11 | 12) {
        return None;
    }
    let inner = ctx.load::<Ipv4Hdr>(INNER_OFF).ok()?;
    if inner.vihl != 0x45 || (inner.proto != IPPROTO_TCP && inner.proto != IPPROTO_UDP) {
        return None;
    }
    let ports = ctx.load::<[u16; 2]>(INNER_L4_OFF).ok()?;
    Some(IcmpError {
        outer,
        inner,
        sport: ports[0],
        dport: ports[1],
    })
}

/// Translates an ICMP error about a NATed packet back into the terms of
/// the flow's other side and routes it there, as the kernel's NAT does
/// (`nf_nat_icmp_reply_translation`): the quoted packet becomes `quoted`
/// (addresses and ports), the outer header goes from `outer.saddr` to
/// `outer.daddr`.
///
/// Checksums: the quoted IP header's is updated with its addresses, which
/// leaves the ICMP checksum as it was (the header still sums to zero);
/// the quoted ports move the ICMP checksum; the outer addresses only the
/// outer header's (ICMP has no pseudo-header). The quoted TCP/UDP
/// checksum is left as it was: routers usually quote only 8 bytes of the
/// transport header, and receivers do not check it.
#[inline(always)]
pub fn translate_icmp_error(ctx: &TcContext, e: &IcmpError, quoted: &Tuple, outer: &Tuple) -> i32 {
    if e.outer.ttl <= 1 {
        return drop(Stat::Ttl);
    }
    let r = (|| -> Result<(), i64> {
        if e.inner.saddr != quoted.saddr {
            ctx.l3_csum_replace(INNER_CSUM_OFF, e.inner.saddr as u64, quoted.saddr as u64, 4)?;
            ctx.store(INNER_SRC_OFF, &quoted.saddr, 0)?;
        }
        if e.inner.daddr != quoted.daddr {
            ctx.l3_csum_replace(INNER_CSUM_OFF, e.inner.daddr as u64, quoted.daddr as u64, 4)?;
            ctx.store(INNER_DST_OFF, &quoted.daddr, 0)?;
        }
        if e.sport != quoted.sport {
            ctx.l4_csum_replace(ICMP_CSUM_OFF, e.sport as u64, quoted.sport as u64, 2)?;
            ctx.store(INNER_L4_OFF, &quoted.sport, 0)?;
        }
        if e.dport != quoted.dport {
            ctx.l4_csum_replace(ICMP_CSUM_OFF, e.dport as u64, quoted.dport as u64, 2)?;
            ctx.store(INNER_L4_OFF + 2, &quoted.dport, 0)?;
        }
        if e.outer.saddr != outer.saddr {
            ctx.l3_csum_replace(IP_CSUM_OFF, e.outer.saddr as u64, outer.saddr as u64, 4)?;
            ctx.store(IP_SRC_OFF, &outer.saddr, 0)?;
        }
        if e.outer.daddr != outer.daddr {
            ctx.l3_csum_replace(IP_CSUM_OFF, e.outer.daddr as u64, outer.daddr as u64, 4)?;
            ctx.store(IP_DST_OFF, &outer.daddr, 0)?;
        }
        Ok(())
    })();
    if r.is_err() {
        return drop(Stat::Rewrite);
    }
    route(ctx, &e.outer, outer)
}
