//! Self-test: counts IPv4 connect() calls made in the attached cgroup subtree.
//! Always allows the call; it exists to prove the pipeline end to end.

use aya_ebpf::{
    macros::{cgroup_sock_addr, map},
    maps::PerCpuArray,
    programs::SockAddrContext,
};
use keel_ebpf_common::probe::{PROBE_CONNECT4, PROBE_CONNECT4_LOOPBACK, PROBE_COUNTERS_LEN};

/// Verdict for cgroup sock_addr hooks: 1 lets the syscall proceed.
const ALLOW: i32 = 1;

#[map(name = "KEEL_PROBE")]
static KEEL_PROBE: PerCpuArray<u64> = PerCpuArray::with_max_entries(PROBE_COUNTERS_LEN, 0);

#[cgroup_sock_addr(connect4)]
pub fn keel_probe_connect4(ctx: SockAddrContext) -> i32 {
    try_probe_connect4(&ctx);
    ALLOW
}

fn try_probe_connect4(ctx: &SockAddrContext) {
    bump(PROBE_CONNECT4);
    // user_ip4 is in network byte order; 127.0.0.0/8 starts with byte 127.
    let ip = unsafe { (*ctx.sock_addr).user_ip4 };
    if u32::from_be(ip) >> 24 == 127 {
        bump(PROBE_CONNECT4_LOOPBACK);
    }
}

fn bump(index: u32) {
    if let Some(counter) = KEEL_PROBE.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += 1 };
    }
}
