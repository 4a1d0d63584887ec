//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): a lookup
//! table of M entries (M prime, M > 100·N) filled round-robin from each
//! backend's own permutation of 0..M. Every node computes the same table
//! from the same backend set, so a flow hashes to the same backend wherever
//! it lands, and a backend change moves little more than that backend's
//! share of flows.
//!
//! The table depends only on the set of backends (their address, port and
//! protocol), not on their order: backends are placed in a canonical order
//! and the result is expressed in the caller's slot numbers.

use keel_ebpf_common::lb::{MAGLEV_CHUNK, MaglevChunk};

use super::model::Addr;

/// The table for `slots` (slot `i + 1` serves `slots[i]`) of size `m`:
/// entry → slot number (1-based). Empty when there are no backends.
pub fn table(slots: &[Addr], m: u32) -> Vec<u16> {
    let n = slots.len();
    if n == 0 || m < 2 {
        return Vec::new();
    }
    let m64 = u64::from(m);
    // Canonical order: by address, so the slot order does not matter.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| slots[i]);
    let perms: Vec<(u64, u64)> = order
        .iter()
        .map(|&i| {
            let key = key_bytes(&slots[i]);
            let offset = hash(&key, 0x6d61_676c_6576_3031) % m64;
            let skip = hash(&key, 0x6d61_676c_6576_3032) % (m64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; n];
    let mut entry = vec![0u16; m as usize];
    let mut filled = 0usize;
    'fill: loop {
        for (k, &(offset, skip)) in perms.iter().enumerate() {
            let mut c = ((offset + next[k] * skip) % m64) as usize;
            while entry[c] != 0 {
                next[k] += 1;
                c = ((offset + next[k] * skip) % m64) as usize;
            }
            entry[c] = (order[k] + 1) as u16;
            next[k] += 1;
            filled += 1;
            if filled == m as usize {
                break 'fill;
            }
        }
    }
    entry
}

/// The table cut into the chunks the map stores (the last one padded with 0).
pub fn chunks(table: &[u16]) -> Vec<MaglevChunk> {
    table
        .chunks(MAGLEV_CHUNK)
        .map(|part| {
            let mut c = MaglevChunk::default();
            c.slots[..part.len()].copy_from_slice(part);
            c
        })
        .collect()
}

/// A digest of one chunk, to compare what the map holds with what it should.
pub fn chunk_digest(chunk: &MaglevChunk) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for s in chunk.slots {
        h = (h ^ u64::from(s)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

fn key_bytes(a: &Addr) -> [u8; 7] {
    let [o0, o1, o2, o3] = a.ip.octets();
    let [p0, p1] = a.port.to_be_bytes();
    [o0, o1, o2, o3, p0, p1, a.proto.number()]
}

/// FNV-1a with a seed, finished with murmur3's 64-bit mixer: stable across
/// Rust versions and machines (unlike `DefaultHasher`), which matters
/// because every node must build the same table.
fn hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests;
