//! NodePort and externalIPs at TC on the node's uplink.
//!
//! Ingress, in order: a reply of a tracked flow (backend → this node's SNAT
//! port) is translated back and sent to the client; a packet of a tracked
//! flow keeps its backend; the first packet to a TC frontend picks a
//! backend by Maglev (or ClientIP affinity), creates both conntrack entries
//! and is forwarded: DNAT only to a backend on this node (its reply leaves
//! through the uplink and egress translates it), DNAT + SNAT to the node IP
//! for a backend elsewhere (so its reply comes back here); an ICMP error
//! about a packet sent to such a backend is translated back and sent to
//! the client, and one about a reply sent to a client is translated and
//! sent to the backend. Anything else passes untouched.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, TC_ACT_OK},
    macros::classifier,
    programs::TcContext,
};
use keel_ebpf_common::lb::{
    AFFINITY_CLIENT_IP, AffinityKey, BACKEND_F_LOCAL, CT_ORIGINAL, CT_REPLY, CtKey, CtValue,
    IPPROTO_UDP, SNAT_PORT_COUNT, SNAT_PORT_MIN, SNAT_TRIES, SVC_F_LOCAL_ONLY, SVC_F_TC, Stat,
    flow_hash,
};

use super::{
    BACKENDS, CONFIG, CT, Frontend, Pick, bump, choose,
    nat::{
        IcmpError, Packet, Tuple, drop, forward, parse, parse_icmp_error, refuse, rewrite,
        translate_icmp_error,
    },
};

const PASS: i32 = TC_ACT_OK;

#[classifier]
pub fn keel_lb_tc_in(ctx: TcContext) -> i32 {
    match parse(&ctx) {
        Some(p) => ingress(&ctx, &p),
        None => match parse_icmp_error(&ctx) {
            Some(e) => icmp_error(&ctx, &e),
            None => PASS,
        },
    }
}

/// An ICMP error about a packet this node sent to a backend with DNAT +
/// SNAT (a router on the way says "fragmentation needed", the backend's
/// host says "port unreachable"): the quoted packet is looked up as the
/// flow's reply would be, and the error goes to the client about the
/// packet the client sent — so path MTU discovery works through a
/// NodePort. From the backend itself, it appears to come from the
/// frontend, as the flow's replies do. Anything else passes.
#[inline(always)]
fn icmp_error(ctx: &TcContext, e: &IcmpError) -> i32 {
    let key = CtKey {
        saddr: e.inner.daddr,
        daddr: e.inner.saddr,
        sport: e.dport,
        dport: e.sport,
        proto: e.inner.proto,
        dir: CT_REPLY,
        _pad: 0,
    };
    // Only a packet this node sent (from one of its addresses): an error
    // about a local backend's packet is the stack's.
    if e.outer.daddr != e.inner.saddr {
        return PASS;
    }
    // SAFETY: LRU map; copied out at once.
    let Some(v) = (unsafe { CT.get(key) }).copied() else {
        return client_leg_icmp_error(ctx, e);
    };
    // The reply entry maps backend → SNAT onto frontend → client; the
    // quoted packet (SNAT → backend) becomes client → frontend.
    to_other_side(ctx, e, &v)
}

/// Sends an ICMP error about a tracked packet to the flow's other side:
/// `v` is what that side's packets are translated into, so the quoted
/// packet becomes the one that side sent (`v` reversed) and the error goes
/// to `v`'s destination. From the quoted packet's destination itself, it
/// appears to come from `v`'s source, as that side's packets do.
#[inline(always)]
fn to_other_side(ctx: &TcContext, e: &IcmpError, v: &CtValue) -> i32 {
    let quoted = Tuple {
        saddr: v.daddr,
        daddr: v.saddr,
        sport: v.dport,
        dport: v.sport,
    };
    let outer = Tuple {
        saddr: if e.outer.saddr == e.inner.daddr {
            v.saddr
        } else {
            e.outer.saddr
        },
        daddr: v.daddr,
        sport: 0,
        dport: 0,
    };
    bump(Stat::TcTracked);
    translate_icmp_error(ctx, e, &quoted, &outer)
}

/// An ICMP error about a reply this node sent to a client (a router on
/// the client's side says "fragmentation needed" for the frontend's
/// answer): the quoted packet is looked up as the client's packets are,
/// and the error goes to the backend about the reply it sent — so the
/// backend lowers its path MTU too. From the client itself, it appears to
/// come from where the backend's replies went (the SNAT address, or the
/// client for a local backend). Anything else passes.
#[inline(always)]
fn client_leg_icmp_error(ctx: &TcContext, e: &IcmpError) -> i32 {
    let key = CtKey {
        saddr: e.inner.daddr,
        daddr: e.inner.saddr,
        sport: e.dport,
        dport: e.sport,
        proto: e.inner.proto,
        dir: CT_ORIGINAL,
        _pad: 0,
    };
    // SAFETY: LRU map; copied out at once.
    let Some(v) = (unsafe { CT.get(key) }).copied() else {
        return PASS;
    };
    // The original entry maps client → frontend onto (SNAT or client) →
    // backend; the quoted reply (frontend → client) becomes backend →
    // (SNAT or client).
    to_other_side(ctx, e, &v)
}

#[classifier]
pub fn keel_lb_tc_out(ctx: TcContext) -> i32 {
    match parse(&ctx) {
        Some(p) => egress(&ctx, &p),
        None => PASS,
    }
}

#[inline(always)]
fn ct_key(p: &Packet, dir: u8) -> CtKey {
    CtKey {
        saddr: p.ip.saddr,
        daddr: p.ip.daddr,
        sport: p.sport,
        dport: p.dport,
        proto: p.ip.proto,
        dir,
        _pad: 0,
    }
}

#[inline(always)]
fn to_tuple(v: &CtValue) -> Tuple {
    Tuple {
        saddr: v.saddr,
        daddr: v.daddr,
        sport: v.sport,
        dport: v.dport,
    }
}

#[inline(always)]
fn ingress(ctx: &TcContext, p: &Packet) -> i32 {
    if p.fragment {
        // Later fragments carry no ports; NAT of fragmented flows is not
        // supported. Count only those aimed at a frontend.
        if p.sport != 0 || p.dport != 0 {
            let fe = Frontend {
                addr: p.ip.daddr,
                port: p.dport,
                proto: p.ip.proto,
            };
            if fe.header().is_some_and(|h| h.flags & SVC_F_TC != 0) {
                bump(Stat::Unsupported);
            }
        }
        return PASS;
    }
    // SAFETY: LRU map; copied out at once.
    if let Some(v) = unsafe { CT.get(ct_key(p, CT_REPLY)) }.copied() {
        bump(Stat::TcTracked);
        return forward(ctx, p, &to_tuple(&v));
    }
    // SAFETY: as above.
    if let Some(v) = unsafe { CT.get(ct_key(p, CT_ORIGINAL)) }.copied()
        && still_good(p, &v)
    {
        bump(Stat::TcTracked);
        return forward(ctx, p, &to_tuple(&v));
    }
    let fe = Frontend {
        addr: p.ip.daddr,
        port: p.dport,
        proto: p.ip.proto,
    };
    let Some(mut hdr) = fe.header() else {
        return PASS;
    };
    if hdr.flags & SVC_F_TC == 0 {
        return PASS;
    }
    if hdr.count == 0 {
        return no_backend(ctx, p, hdr.flags);
    }
    let hash = flow_hash(p.ip.saddr, p.ip.daddr, p.sport, p.dport, p.ip.proto);
    let affinity = AffinityKey {
        client: p.ip.saddr as u64,
        id: hdr.id,
        kind: AFFINITY_CLIENT_IP,
    };
    let mut chosen = choose(&fe, &hdr, Some(affinity), Pick::Maglev(hash));
    if let Err(Stat::SlotMissing | Stat::BackendMissing) = chosen {
        match fe.header() {
            Some(h) if h.count > 0 => {
                hdr = h;
                chosen = choose(&fe, &hdr, Some(affinity), Pick::Maglev(hash));
            }
            Some(h) => return no_backend(ctx, p, h.flags),
            None => return PASS,
        }
    }
    let chosen = match chosen {
        Ok(c) => c,
        Err(stat) => return drop(stat),
    };
    let b = chosen.backend;
    let client = p.tuple();
    // What the client's packets become, and what the backend's replies
    // (as they arrive) become.
    let reply_to_client = CtValue {
        saddr: client.daddr,
        daddr: client.saddr,
        sport: client.dport,
        dport: client.sport,
        backend_id: chosen.backend_id,
        id: hdr.id,
    };
    let mut to_backend = CtValue {
        saddr: client.saddr,
        daddr: b.addr,
        sport: client.sport,
        dport: b.port,
        backend_id: chosen.backend_id,
        id: hdr.id,
    };
    let mut reply_key = CtKey {
        saddr: b.addr,
        daddr: client.saddr,
        sport: b.port,
        dport: client.sport,
        proto: p.ip.proto,
        dir: CT_REPLY,
        _pad: 0,
    };
    if b.flags & BACKEND_F_LOCAL != 0 {
        // The reply leaves through the uplink, where egress translates it.
        if CT.insert(reply_key, reply_to_client, 0).is_err() {
            return drop(Stat::CtInsert);
        }
    } else {
        let snat = match CONFIG.get(0) {
            Some(c) if c.snat_addr != 0 => c.snat_addr,
            _ => client.daddr,
        };
        to_backend.saddr = snat;
        reply_key.daddr = snat;
        let mut found = false;
        let mut i = 0u32;
        while i < SNAT_TRIES {
            let port = SNAT_PORT_MIN + (hash.wrapping_add(i) % SNAT_PORT_COUNT as u32) as u16;
            reply_key.dport = port.to_be();
            if CT
                .insert(reply_key, reply_to_client, BPF_NOEXIST as u64)
                .is_ok()
            {
                found = true;
                break;
            }
            i += 1;
        }
        if !found {
            return drop(Stat::SnatExhausted);
        }
        to_backend.sport = reply_key.dport;
    }
    if CT.insert(ct_key(p, CT_ORIGINAL), to_backend, 0).is_err() {
        let _ = CT.remove(reply_key);
        return drop(Stat::CtInsert);
    }
    bump(Stat::TcNewFlow);
    forward(ctx, p, &to_tuple(&to_backend))
}

/// Whether a tracked flow keeps its backend: always for packets of an
/// established TCP connection (even if the backend went unready, as with
/// kube-proxy); for a new SYN or a UDP datagram only while the backend
/// still exists.
#[inline(always)]
fn still_good(p: &Packet, v: &CtValue) -> bool {
    if !(p.is_syn() || p.ip.proto == IPPROTO_UDP) {
        return true;
    }
    // SAFETY: non-preallocated map; only presence and fields are read.
    match unsafe { BACKENDS.get(v.backend_id) } {
        Some(b) => b.addr == v.daddr && b.port == v.dport,
        None => false,
    }
}

#[inline(always)]
fn no_backend(ctx: &TcContext, p: &Packet, flags: u8) -> i32 {
    if flags & SVC_F_LOCAL_ONLY != 0 {
        // Kubernetes drops here so that load balancers fail over.
        return drop(Stat::NoLocalBackend);
    }
    refuse(ctx, p)
}

#[inline(always)]
fn egress(ctx: &TcContext, p: &Packet) -> i32 {
    if p.fragment {
        return PASS;
    }
    // SAFETY: LRU map; copied out at once.
    let Some(v) = unsafe { CT.get(ct_key(p, CT_REPLY)) }.copied() else {
        return PASS;
    };
    // The host already routed this reply of a local backend; only the
    // addresses change.
    if rewrite(ctx, p, &to_tuple(&v)).is_err() {
        return drop(Stat::Rewrite);
    }
    bump(Stat::TcTracked);
    PASS
}
