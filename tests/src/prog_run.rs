//! `BPF_PROG_TEST_RUN` for packet programs: run a loaded program once on a
//! packet, get its verdict and the packet as the program left it. The run
//! happens in the calling thread's network namespace (the kernel resolves
//! `ifindex` and does FIB lookups there), so tests call it inside a
//! `TestNetns`.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// What one run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The program's return value (TC_ACT_*).
    pub verdict: u32,
    /// The packet after the program.
    pub packet: Vec<u8>,
}

/// `struct __sk_buff` as far as test runs accept it (the kernel rejects
/// non-zero fields it does not allow), 192 bytes in recent kernels.
const SKB_CTX_LEN: usize = 192;
const SKB_IFINDEX_OFF: usize = 40;

/// Runs a TC program on `packet` as if it arrived on `ifindex`.
pub fn run_tc(prog: BorrowedFd<'_>, packet: &[u8], ifindex: u32) -> io::Result<RunResult> {
    let mut out = vec![0u8; packet.len() + 256];
    let mut ctx_in = [0u8; SKB_CTX_LEN];
    ctx_in[SKB_IFINDEX_OFF..SKB_IFINDEX_OFF + 4].copy_from_slice(&ifindex.to_ne_bytes());
    let mut ctx_out = [0u8; SKB_CTX_LEN];
    // union bpf_attr, test: prog_fd, retval, data_size_in, data_size_out,
    // data_in, data_out, repeat, duration, ctx_size_in, ctx_size_out,
    // ctx_in, ctx_out, flags, cpu, batch_size.
    let mut attr = [0u8; 128];
    let put32 = |a: &mut [u8; 128], o: usize, v: u32| a[o..o + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 = |a: &mut [u8; 128], o: usize, v: u64| a[o..o + 8].copy_from_slice(&v.to_ne_bytes());
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, packet.len() as u32);
    put32(&mut attr, 12, out.len() as u32);
    put64(&mut attr, 16, packet.as_ptr() as u64);
    put64(&mut attr, 24, out.as_mut_ptr() as u64);
    put32(&mut attr, 32, 1);
    put32(&mut attr, 40, SKB_CTX_LEN as u32);
    put32(&mut attr, 44, SKB_CTX_LEN as u32);
    put64(&mut attr, 48, ctx_in.as_ptr() as u64);
    put64(&mut attr, 56, ctx_out.as_mut_ptr() as u64);
    // SAFETY: attr is a zero-padded bpf_attr; the buffers outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let verdict = u32::from_ne_bytes(attr[4..8].try_into().expect("4 bytes"));
    let size = u32::from_ne_bytes(attr[12..16].try_into().expect("4 bytes")) as usize;
    out.truncate(size.min(out.len()));
    Ok(RunResult {
        verdict,
        packet: out,
    })
}
