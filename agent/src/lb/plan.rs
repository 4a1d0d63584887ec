//! The pure planner: desired frontends and what the maps hold in, the
//! smallest list of map writes out. No I/O.
//!
//! For each frontend in scope:
//! - absent from the maps: its backend slots (revision 1), its Maglev table
//!   and then its header, which makes it visible;
//! - present with the same backend set, flags and table: nothing, or only a
//!   header rewrite for flags/timeout (one atomic write); the slot order is
//!   kept, so sockets and Maglev keep choosing exactly as before (adoption
//!   after a restart);
//! - present with another backend set (or anything broken): the new set
//!   and table under the other revision, then the header flip, then the old
//!   revision's entries deleted — a lookup sees the old set or the new one,
//!   never a mix;
//! - no longer desired: header first (new connections pass untouched at
//!   once), then its slots and table.
//!
//! Backends are written before any slot points at them and deleted only
//! after no live slot does. Ops come out in that order: backend puts,
//! frontend writes, frontend deletes, backend deletes.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    sync::Arc,
};

use keel_ebpf_common::lb::{MaglevChunk, SVC_F_TC, ServiceValue, maglev_size};

use super::{
    desired::Desired,
    maglev,
    model::{Addr, BackendSpec, Frontend, FrontendSpec},
    observed::{KeyBytes, Observed},
};

/// One map write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    PutBackend {
        id: u32,
        backend: BackendSpec,
    },
    PutSlot {
        fe: Frontend,
        rev: u8,
        slot: u16,
        backend: u32,
    },
    PutMaglev {
        id: u32,
        rev: u8,
        chunk: u16,
        data: Arc<MaglevChunk>,
    },
    PutHeader {
        fe: Frontend,
        header: ServiceValue,
    },
    DelHeader {
        fe: Frontend,
    },
    DelSlot {
        fe: Frontend,
        rev: u8,
        slot: u16,
    },
    DelMaglev {
        id: u32,
        rev: u8,
        chunk: u16,
    },
    /// An entry of the services map with a protocol keel never writes.
    DelForeign {
        key: KeyBytes,
    },
    DelBackend {
        id: u32,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::PutBackend { id, backend } => write!(
                f,
                "put backend {id} {}{}",
                backend.addr,
                if backend.local { " local" } else { "" }
            ),
            Op::PutSlot {
                fe,
                rev,
                slot,
                backend,
            } => write!(f, "put slot {fe} rev={rev} slot={slot} backend={backend}"),
            Op::PutMaglev { id, rev, chunk, .. } => {
                write!(f, "put maglev id={id} rev={rev} chunk={chunk}")
            }
            Op::PutHeader { fe, header: h } => write!(
                f,
                "put header {fe} id={} rev={} count={} flags={} affinity={} maglev={}",
                h.id, h.rev, h.count, h.flags, h.affinity_timeout, h.maglev_m
            ),
            Op::DelHeader { fe } => write!(f, "del header {fe}"),
            Op::DelSlot { fe, rev, slot } => write!(f, "del slot {fe} rev={rev} slot={slot}"),
            Op::DelMaglev { id, rev, chunk } => {
                write!(f, "del maglev id={id} rev={rev} chunk={chunk}")
            }
            Op::DelForeign { key } => write!(f, "del foreign {key:?}"),
            Op::DelBackend { id } => write!(f, "del backend {id}"),
        }
    }
}

/// Which frontends to compare.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every frontend desired or present, plus leftovers (orphan tables,
    /// unreferenced backends): at start and on resync.
    All,
    /// Only these (the ones a change touched).
    Only(&'a BTreeSet<Frontend>),
}

/// How many frontends a plan creates, replaces, touches only in the header,
/// or deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub replaced: usize,
    pub header_only: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub summary: Summary,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops as text, one per line (for tests and debug logs).
    pub fn lines(&self) -> Vec<String> {
        self.ops.iter().map(Op::to_string).collect()
    }
}

pub fn plan(desired: &Desired, observed: &Observed, scope: Scope<'_>) -> Plan {
    let mut p = Planner {
        observed,
        next_backend: observed.next_backend_id.max(1),
        next_frontend: observed.next_frontend_id.max(1),
        new_backends: HashMap::new(),
        new_by_id: HashMap::new(),
        updated_backends: BTreeSet::new(),
        new_ids: BTreeSet::new(),
        backend_puts: Vec::new(),
        writes: Vec::new(),
        deletes: Vec::new(),
        delta: BTreeMap::new(),
        summary: Summary::default(),
    };
    let all;
    let frontends = match scope {
        Scope::All => {
            all = desired
                .frontends()
                .map(|(fe, _)| *fe)
                .chain(observed.frontends.keys().copied())
                .collect::<BTreeSet<_>>();
            &all
        }
        Scope::Only(set) => set,
    };
    for fe in frontends {
        p.frontend(*fe, desired.get(fe));
    }
    if let Scope::All = scope {
        p.leftovers();
    }
    p.finish(matches!(scope, Scope::All))
}

struct Planner<'a> {
    observed: &'a Observed,
    next_backend: u32,
    next_frontend: u32,
    new_backends: HashMap<Addr, u32>,
    new_by_id: HashMap<u32, Addr>,
    updated_backends: BTreeSet<u32>,
    new_ids: BTreeSet<u32>,
    backend_puts: Vec<Op>,
    writes: Vec<Op>,
    deletes: Vec<Op>,
    /// Change in live references per backend id.
    delta: BTreeMap<u32, i64>,
    summary: Summary,
}

impl Planner<'_> {
    fn frontend(&mut self, fe: Frontend, want: Option<&FrontendSpec>) {
        let inst = self.observed.frontends.get(&fe);
        let header = inst.and_then(|i| i.header);
        let before: Vec<u32> = inst
            .map(|i| i.live().into_iter().flatten().collect())
            .unwrap_or_default();
        // Our id, unless another frontend holds the same one (corruption).
        let own_id = header
            .map(|h| h.id)
            .filter(|id| *id != 0 && self.observed.ids.get(id) == Some(&fe));
        let Some(spec) = want else {
            let Some(inst) = inst else { return };
            if inst.header.is_some() {
                self.deletes.push(Op::DelHeader { fe });
            }
            for &(rev, slot) in inst.slots.keys() {
                self.deletes.push(Op::DelSlot { fe, rev, slot });
            }
            if let Some(id) = own_id {
                self.delete_tables(id, None);
            }
            for id in before {
                *self.delta.entry(id).or_default() -= 1;
            }
            self.summary.deleted += 1;
            return;
        };
        let want_ids: Vec<u32> = spec.backends.iter().map(|b| self.backend_id(b)).collect();
        let n = want_ids.len();
        let m = if spec.flags & SVC_F_TC != 0 && n > 0 {
            maglev_size(n)
        } else {
            0
        };
        let id = own_id.unwrap_or_else(|| self.frontend_id());
        let live_rev = header.map(|h| h.rev).filter(|r| *r == 1 || *r == 2);
        let live: Option<Vec<u32>> = match (live_rev, inst) {
            (Some(_), Some(i)) => i.live().into_iter().collect(),
            _ => None,
        };
        let same_set = live.as_ref().is_some_and(|l| {
            let (mut a, mut b) = (l.clone(), want_ids.clone());
            a.sort_unstable();
            b.sort_unstable();
            a == b
        });
        let order = match (&live, same_set) {
            (Some(l), true) => l.clone(),
            _ => want_ids.clone(),
        };
        let tables = if m > 0 {
            let addrs: Vec<Addr> = order.iter().map(|id| self.backend_addr(*id)).collect();
            maglev::chunks(&maglev::table(&addrs, m))
        } else {
            Vec::new()
        };
        let digests: BTreeMap<u16, u64> = tables
            .iter()
            .enumerate()
            .map(|(c, t)| (c as u16, maglev::chunk_digest(t)))
            .collect();
        let tables_ok = match live_rev {
            _ if m == 0 => true,
            Some(rev) => self
                .observed
                .maglev
                .get(&(id, rev))
                .is_some_and(|have| digests.iter().all(|(c, d)| have.get(c) == Some(d))),
            None => false,
        };
        let make = |rev: u8| ServiceValue {
            backend_id: 0,
            id,
            affinity_timeout: spec.affinity_timeout,
            maglev_m: m,
            count: n as u16,
            flags: spec.flags,
            rev,
            _pad: 0,
        };
        let rev = match live_rev {
            Some(rev) if same_set && tables_ok && own_id == Some(id) => {
                let new = make(rev);
                if header != Some(new) {
                    self.writes.push(Op::PutHeader { fe, header: new });
                    self.summary.header_only += 1;
                } else {
                    self.summary.unchanged += 1;
                }
                rev
            }
            _ => {
                let rev = if live_rev == Some(1) { 2 } else { 1 };
                for (i, &backend) in order.iter().enumerate() {
                    self.writes.push(Op::PutSlot {
                        fe,
                        rev,
                        slot: i as u16 + 1,
                        backend,
                    });
                }
                for (c, data) in tables.into_iter().enumerate() {
                    self.writes.push(Op::PutMaglev {
                        id,
                        rev,
                        chunk: c as u16,
                        data: Arc::new(data),
                    });
                }
                self.writes.push(Op::PutHeader {
                    fe,
                    header: make(rev),
                });
                if header.is_some() {
                    self.summary.replaced += 1;
                } else {
                    self.summary.created += 1;
                }
                rev
            }
        };
        // Everything not reachable from the new header goes.
        if let Some(inst) = inst {
            for &(r, slot) in inst.slots.keys() {
                if !(r == rev && slot >= 1 && usize::from(slot) <= n) {
                    self.deletes.push(Op::DelSlot { fe, rev: r, slot });
                }
            }
        }
        self.delete_tables(id, Some((rev, digests.len())));
        if let Some(old) = header.map(|h| h.id)
            && Some(old) != own_id
            && old != 0
            && !self.observed.ids.contains_key(&old)
        {
            self.delete_tables(old, None);
        }
        for id in before {
            *self.delta.entry(id).or_default() -= 1;
        }
        for id in order {
            *self.delta.entry(id).or_default() += 1;
        }
    }

    /// Deletes Maglev chunks of frontend `id`, except `keep` = (revision,
    /// number of chunks) of the live table.
    fn delete_tables(&mut self, id: u32, keep: Option<(u8, usize)>) {
        let range = (id, 0u8)..=(id, u8::MAX);
        for (&(tid, rev), chunks) in self.observed.maglev.range(range) {
            for &chunk in chunks.keys() {
                let kept = keep.is_some_and(|(r, n)| r == rev && usize::from(chunk) < n);
                if !kept {
                    self.deletes.push(Op::DelMaglev {
                        id: tid,
                        rev,
                        chunk,
                    });
                }
            }
        }
    }

    /// Orphan tables (no header owns their id) and foreign entries.
    fn leftovers(&mut self) {
        let orphans: Vec<u32> = self
            .observed
            .maglev
            .keys()
            .map(|(id, _)| *id)
            .filter(|id| !self.observed.ids.contains_key(id) && !self.new_ids.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in orphans {
            self.delete_tables(id, None);
        }
        for key in &self.observed.foreign {
            self.deletes.push(Op::DelForeign { key: *key });
        }
    }

    fn backend_id(&mut self, b: &BackendSpec) -> u32 {
        if let Some(&id) = self.new_backends.get(&b.addr) {
            return id;
        }
        if let Some(&id) = self.observed.backend_ids.get(&b.addr) {
            let have = self.observed.backends.get(&id);
            if have != Some(b) && self.updated_backends.insert(id) {
                self.backend_puts.push(Op::PutBackend { id, backend: *b });
            }
            return id;
        }
        let id = loop {
            let id = self.next_backend;
            self.next_backend = self.next_backend.checked_add(1).unwrap_or(1);
            if !self.observed.backends.contains_key(&id) {
                break id;
            }
        };
        self.new_backends.insert(b.addr, id);
        self.new_by_id.insert(id, b.addr);
        self.backend_puts.push(Op::PutBackend { id, backend: *b });
        id
    }

    fn backend_addr(&self, id: u32) -> Addr {
        self.observed
            .backends
            .get(&id)
            .map(|b| b.addr)
            .or_else(|| self.new_by_id.get(&id).copied())
            .expect("every planned slot points to a known or new backend")
    }

    fn frontend_id(&mut self) -> u32 {
        let id = loop {
            let id = self.next_frontend;
            self.next_frontend = self.next_frontend.checked_add(1).unwrap_or(1);
            let taken = self.observed.ids.contains_key(&id)
                || self
                    .observed
                    .maglev
                    .range((id, 0)..=(id, u8::MAX))
                    .next()
                    .is_some();
            if !taken {
                break id;
            }
        };
        self.new_ids.insert(id);
        id
    }

    fn finish(mut self, all: bool) -> Plan {
        let mut gone = BTreeSet::new();
        for (&id, &d) in &self.delta {
            if i64::from(self.observed.refs(id)) + d <= 0
                && self.observed.backends.contains_key(&id)
            {
                gone.insert(id);
            }
        }
        if all {
            for &id in self.observed.backends.keys() {
                let d = self.delta.get(&id).copied().unwrap_or(0);
                if i64::from(self.observed.refs(id)) + d <= 0 {
                    gone.insert(id);
                }
            }
        }
        let mut ops = self.backend_puts;
        ops.append(&mut self.writes);
        ops.append(&mut self.deletes);
        ops.extend(gone.into_iter().map(|id| Op::DelBackend { id }));
        Plan {
            ops,
            summary: self.summary,
        }
    }
}

#[cfg(test)]
mod tests;
