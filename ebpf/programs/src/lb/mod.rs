//! Service load balancing in the kernel: the maps (types in
//! `keel_ebpf_common::lb`), backend selection shared by the socket and TC
//! programs, and the per-CPU counters.
//!
//! - `sock`: cgroup `connect4`/`sendmsg4`/`recvmsg4`/`getpeername4` —
//!   ClusterIP translated once per connection (per datagram for
//!   unconnected UDP), the Service shown as the peer.
//! - `tc`: TC ingress/egress on the uplink — NodePort/externalIP DNAT to a
//!   Maglev-chosen backend, SNAT for remote backends, conntrack, reverse NAT.

mod nat;
mod sock;
mod tc;

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
};
use keel_ebpf_common::lb::{
    AFFINITY_MAX, AffinityKey, AffinityValue, BACKENDS_MAX, Backend, CT_MAX, CtKey, CtValue,
    LbConfig, MAGLEV_CHUNK, MAGLEV_MAX, MaglevChunk, MaglevKey, SERVICES_MAX, SOCK_REVNAT_MAX,
    STATS_LEN, SVC_F_AFFINITY, ServiceKey, ServiceValue, SockRevNatKey, SockRevNatValue, Stat,
};

// Names must match the constants in keel_ebpf_common::lb (the agent finds
// the maps by those). Hash maps whose entries the agent replaces are not
// preallocated: a replaced or deleted entry is then freed only after an RCU
// grace period, so a program never reads an entry that is being reused.
#[map(name = "KEEL_LB_SVC")]
static SERVICES: HashMap<ServiceKey, ServiceValue> =
    HashMap::with_max_entries(SERVICES_MAX, BPF_F_NO_PREALLOC);

#[map(name = "KEEL_LB_BE")]
static BACKENDS: HashMap<u32, Backend> = HashMap::with_max_entries(BACKENDS_MAX, BPF_F_NO_PREALLOC);

#[map(name = "KEEL_LB_MAGLEV")]
static MAGLEV: HashMap<MaglevKey, MaglevChunk> =
    HashMap::with_max_entries(MAGLEV_MAX, BPF_F_NO_PREALLOC);

#[map(name = "KEEL_LB_AFFIN")]
static AFFINITY: LruHashMap<AffinityKey, AffinityValue> =
    LruHashMap::with_max_entries(AFFINITY_MAX, 0);

#[map(name = "KEEL_LB_SKRNAT")]
static SOCK_REVNAT: LruHashMap<SockRevNatKey, SockRevNatValue> =
    LruHashMap::with_max_entries(SOCK_REVNAT_MAX, 0);

#[map(name = "KEEL_LB_CT")]
static CT: LruHashMap<CtKey, CtValue> = LruHashMap::with_max_entries(CT_MAX, 0);

#[map(name = "KEEL_LB_STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN, 0);

#[map(name = "KEEL_LB_CFG")]
static CONFIG: Array<LbConfig> = Array::with_max_entries(1, 0);

/// How many slots an affinity check scans when the backend set changed
/// since the affinity entry was written; beyond that the client re-picks.
const AFFINITY_SCAN: u16 = 32;

#[inline(always)]
fn bump(stat: Stat) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot; programs do not migrate CPUs mid-run.
        unsafe { *counter += 1 };
    }
}

/// A frontend: the address, port and protocol a client dialled.
#[derive(Clone, Copy)]
struct Frontend {
    addr: u32,
    port: u16,
    proto: u8,
}

impl Frontend {
    /// The frontend's header, if it is a Service.
    #[inline(always)]
    fn header(&self) -> Option<ServiceValue> {
        let key = ServiceKey::header(self.addr, self.port, self.proto);
        // SAFETY: non-preallocated map; the value is copied out at once.
        unsafe { SERVICES.get(key) }.copied()
    }

    #[inline(always)]
    fn slot(&self, rev: u8, slot: u16) -> Option<u32> {
        let key = ServiceKey::slot(self.addr, self.port, self.proto, rev, slot);
        // SAFETY: as above.
        unsafe { SERVICES.get(key) }.map(|v| v.backend_id)
    }
}

/// How to pick a slot when affinity does not decide.
#[derive(Clone, Copy)]
enum Pick {
    /// `hash % count` (sockets: random or per-socket hash).
    Modulo(u32),
    /// Through the frontend's Maglev table, `hash % M` (TC flows).
    Maglev(u32),
}

struct Chosen {
    backend_id: u32,
    backend: Backend,
}

/// Picks a backend of `fe` (whose header is `hdr`, count > 0). On
/// `Err(SlotMissing | BackendMissing)` the caller re-reads the header once:
/// the backend set was replaced (and an old backend deleted) between the
/// lookups.
#[inline(always)]
fn choose(
    fe: &Frontend,
    hdr: &ServiceValue,
    affinity: Option<AffinityKey>,
    pick: Pick,
) -> Result<Chosen, Stat> {
    let count = hdr.count;
    if count == 0 {
        return Err(Stat::SlotMissing);
    }
    let affinity = if hdr.flags & SVC_F_AFFINITY != 0 {
        affinity
    } else {
        None
    };
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(key) = affinity
        && let Some((backend_id, slot)) = sticky(fe, hdr, &key, now)
        // SAFETY: non-preallocated map; copied out at once.
        && let Some(backend) = unsafe { BACKENDS.get(backend_id) }.copied()
    {
        remember(&key, now, backend_id, hdr.rev, slot);
        return Ok(Chosen {
            backend_id,
            backend,
        });
    }
    let slot = match pick {
        Pick::Modulo(h) => (h % count as u32) as u16 + 1,
        Pick::Maglev(h) => maglev_slot(hdr, h)?,
    };
    let backend_id = fe.slot(hdr.rev, slot).ok_or(Stat::SlotMissing)?;
    // SAFETY: non-preallocated map; copied out at once.
    let backend = unsafe { BACKENDS.get(backend_id) }
        .copied()
        .ok_or(Stat::BackendMissing)?;
    if let Some(key) = affinity {
        remember(&key, now, backend_id, hdr.rev, slot);
    }
    Ok(Chosen {
        backend_id,
        backend,
    })
}

/// The slot a Maglev table entry points to.
#[inline(always)]
fn maglev_slot(hdr: &ServiceValue, hash: u32) -> Result<u16, Stat> {
    let m = hdr.maglev_m;
    if m == 0 {
        return Ok((hash % hdr.count as u32) as u16 + 1);
    }
    let index = hash % m;
    let key = MaglevKey {
        id: hdr.id,
        rev: hdr.rev,
        _pad: 0,
        chunk: (index / MAGLEV_CHUNK as u32) as u16,
    };
    let offset = (index % MAGLEV_CHUNK as u32) as usize;
    let chunk = MAGLEV.get_ptr(key).ok_or(Stat::SlotMissing)?;
    // SAFETY: `chunk` points to a live map value; offset < MAGLEV_CHUNK.
    let slot = unsafe { (*chunk).slots.get(offset).copied() }.ok_or(Stat::SlotMissing)?;
    if slot == 0 || slot > hdr.count {
        return Err(Stat::SlotMissing);
    }
    Ok(slot)
}

/// The backend this client is bound to, if the binding has not expired and
/// the backend is still one of the frontend's slots.
#[inline(always)]
fn sticky(fe: &Frontend, hdr: &ServiceValue, key: &AffinityKey, now: u64) -> Option<(u32, u16)> {
    // SAFETY: LRU map; copied out at once.
    let v = unsafe { AFFINITY.get(key) }.copied()?;
    let timeout_ns = hdr.affinity_timeout as u64 * 1_000_000_000;
    if now.wrapping_sub(v.last_used_ns) > timeout_ns {
        return None;
    }
    if v.rev == hdr.rev && v.slot >= 1 && v.slot <= hdr.count {
        return (fe.slot(hdr.rev, v.slot)? == v.backend_id).then_some((v.backend_id, v.slot));
    }
    // The backend set was replaced since: find the backend's new slot.
    let mut slot = 1u16;
    while slot <= AFFINITY_SCAN {
        if slot > hdr.count {
            return None;
        }
        if fe.slot(hdr.rev, slot) == Some(v.backend_id) {
            return Some((v.backend_id, slot));
        }
        slot += 1;
    }
    None
}

#[inline(always)]
fn remember(key: &AffinityKey, now: u64, backend_id: u32, rev: u8, slot: u16) {
    let value = AffinityValue {
        last_used_ns: now,
        backend_id,
        rev,
        _pad: 0,
        slot,
    };
    // Best effort: a lost update only shortens the binding.
    let _ = AFFINITY.insert(key, value, 0);
}
