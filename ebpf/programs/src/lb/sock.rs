//! ClusterIP at the socket layer: cgroup `sock_addr` hooks rewrite the
//! destination of `connect()` (TCP, connected UDP) and of unconnected UDP
//! `sendmsg()` to a backend, so the packets that follow are plain
//! pod-to-pod traffic; `recvmsg()` and `getpeername()` show the Service
//! address again. A Service without ready backends fails the call with
//! ECONNREFUSED at once; an address that is not a Service passes untouched.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_netns_cookie, bpf_get_prandom_u32, bpf_get_socket_cookie, bpf_set_retval},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use keel_ebpf_common::lb::{
    AFFINITY_NETNS, AffinityKey, IPPROTO_TCP, IPPROTO_UDP, SVC_F_SOCK, SockRevNatKey,
    SockRevNatValue, Stat, cookie_hash,
};

use super::{Frontend, Pick, SOCK_REVNAT, bump, choose};

/// Verdict of cgroup sock_addr programs: 1 lets the call proceed, 0 fails
/// it (with the error set by `bpf_set_retval`, EPERM otherwise).
const ALLOW: i32 = 1;
const REJECT: i32 = 0;
const ECONNREFUSED: i32 = 111;

#[cgroup_sock_addr(connect4)]
pub fn keel_lb_conn4(ctx: SockAddrContext) -> i32 {
    // SAFETY: helper without arguments.
    let random = unsafe { bpf_get_prandom_u32() };
    translate(&ctx, random)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn keel_lb_send4(ctx: SockAddrContext) -> i32 {
    // Every datagram of one socket goes to the same backend while the
    // backend set is unchanged, as kube-proxy's conntrack would do.
    // SAFETY: ctx is this program's context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    translate(&ctx, cookie_hash(cookie))
}

#[cgroup_sock_addr(recvmsg4)]
pub fn keel_lb_recv4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    ALLOW
}

#[cgroup_sock_addr(getpeername4)]
pub fn keel_lb_peer4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx);
    ALLOW
}

#[inline(always)]
fn translate(ctx: &SockAddrContext, hash: u32) -> i32 {
    let sa = ctx.sock_addr;
    // SAFETY: the kernel passes a valid bpf_sock_addr; these fields are
    // readable in connect4/sendmsg4. user_port holds the port in network
    // byte order in its low 16 bits.
    let (addr, port, proto) =
        unsafe { ((*sa).user_ip4, (*sa).user_port as u16, (*sa).protocol as u8) };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return ALLOW;
    }
    let fe = Frontend { addr, port, proto };
    let Some(mut hdr) = fe.header() else {
        return ALLOW;
    };
    if hdr.flags & SVC_F_SOCK == 0 {
        return ALLOW;
    }
    if hdr.count == 0 {
        return refuse(Stat::SockNoBackend);
    }
    // SAFETY: ctx is this program's context.
    let netns = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
    let affinity = AffinityKey {
        client: netns,
        id: hdr.id,
        kind: AFFINITY_NETNS,
    };
    let mut chosen = choose(&fe, &hdr, Some(affinity), Pick::Modulo(hash));
    if let Err(Stat::SlotMissing | Stat::BackendMissing) = chosen {
        // The backend set was replaced between the two lookups: once more
        // against the new header.
        match fe.header() {
            Some(h) if h.count > 0 => {
                hdr = h;
                chosen = choose(&fe, &hdr, Some(affinity), Pick::Modulo(hash));
            }
            Some(_) => return refuse(Stat::SockNoBackend),
            None => return ALLOW,
        }
    }
    let chosen = match chosen {
        Ok(c) => c,
        Err(stat) => return refuse(stat),
    };
    let b = chosen.backend;
    // SAFETY: user_ip4/user_port are writable in connect4/sendmsg4.
    unsafe {
        (*sa).user_ip4 = b.addr;
        (*sa).user_port = b.port as u32;
    }
    // SAFETY: ctx is this program's context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let key = SockRevNatKey {
        cookie,
        addr: b.addr,
        port: b.port,
        _pad: 0,
    };
    let value = SockRevNatValue {
        addr,
        port,
        _pad: 0,
        id: hdr.id,
    };
    // Best effort: without it the peer shows as the backend.
    let _ = SOCK_REVNAT.insert(key, value, 0);
    bump(Stat::SockXlate);
    ALLOW
}

/// Fails the call with ECONNREFUSED, as a REJECT rule would.
#[inline(always)]
fn refuse(stat: Stat) -> i32 {
    bump(stat);
    // SAFETY: plain helper; allowed in connect4/sendmsg4.
    unsafe { bpf_set_retval(-ECONNREFUSED) };
    REJECT
}

#[inline(always)]
fn reverse(ctx: &SockAddrContext) {
    let sa = ctx.sock_addr;
    // SAFETY: ctx is this program's context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: user_ip4/user_port are readable in recvmsg4/getpeername4.
    let (addr, port) = unsafe { ((*sa).user_ip4, (*sa).user_port as u16) };
    let key = SockRevNatKey {
        cookie,
        addr,
        port,
        _pad: 0,
    };
    // SAFETY: LRU map; copied out at once.
    if let Some(v) = unsafe { SOCK_REVNAT.get(key) }.copied() {
        // SAFETY: writable in recvmsg4/getpeername4.
        unsafe {
            (*sa).user_ip4 = v.addr;
            (*sa).user_port = v.port as u32;
        }
        bump(Stat::SockRevNat);
    }
}
