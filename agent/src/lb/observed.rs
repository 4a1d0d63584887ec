//! What the maps hold, in the agent's terms: read from the pinned maps at
//! start (adoption) and on resync, then kept in step by the applier after
//! every write, so planning never needs to read the kernel.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use keel_ebpf_common::lb::{
    BACKEND_F_LOCAL, Backend, MaglevChunk, MaglevKey, ServiceKey, ServiceValue,
};

use super::{
    maglev::chunk_digest,
    model::{Addr, BackendSpec, Frontend},
};

/// One frontend's entries in the services map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Slot 0; None while only slots exist (a create cut short).
    pub header: Option<ServiceValue>,
    /// Backend id per (revision, slot), every revision found.
    pub slots: BTreeMap<(u8, u16), u32>,
}

impl Installed {
    /// Backend ids lookups can reach: slots `1..=count` of the live
    /// revision (None for a slot that is missing).
    pub fn live(&self) -> Vec<Option<u32>> {
        match self.header {
            Some(h) => (1..=h.count)
                .map(|s| self.slots.get(&(h.rev, s)).copied())
                .collect(),
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub frontends: BTreeMap<Frontend, Installed>,
    /// Entries of the services map that no frontend type can hold (an
    /// unknown protocol): deleted on a full sync.
    pub foreign: BTreeSet<KeyBytes>,
    pub backends: BTreeMap<u32, BackendSpec>,
    /// Lowest backend id per address.
    pub backend_ids: HashMap<Addr, u32>,
    /// Live slot references per backend id.
    pub refs: HashMap<u32, u32>,
    /// Maglev chunk digests per (frontend id, revision).
    pub maglev: BTreeMap<(u32, u8), BTreeMap<u16, u64>>,
    /// Frontend id → frontend, from headers.
    pub ids: BTreeMap<u32, Frontend>,
    pub next_backend_id: u32,
    pub next_frontend_id: u32,
}

/// A services-map key kept as-is (for entries the agent cannot interpret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyBytes {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub rev: u8,
    pub slot: u16,
}

impl From<&ServiceKey> for KeyBytes {
    fn from(k: &ServiceKey) -> Self {
        Self {
            addr: k.addr,
            port: k.port,
            proto: k.proto,
            rev: k.rev,
            slot: k.slot,
        }
    }
}

impl From<KeyBytes> for ServiceKey {
    fn from(k: KeyBytes) -> Self {
        ServiceKey::slot(k.addr, k.port, k.proto, k.rev, k.slot)
    }
}

impl Observed {
    /// Builds the view from full dumps of the services, backends and Maglev maps.
    pub fn from_entries(
        services: impl IntoIterator<Item = (ServiceKey, ServiceValue)>,
        backends: impl IntoIterator<Item = (u32, Backend)>,
        maglev: impl IntoIterator<Item = (MaglevKey, MaglevChunk)>,
    ) -> Self {
        let mut o = Observed {
            next_backend_id: 1,
            next_frontend_id: 1,
            ..Default::default()
        };
        for (id, b) in backends {
            if let Some(addr) = Addr::from_be(b.addr, b.port, b.proto) {
                o.put_backend(
                    id,
                    BackendSpec {
                        addr,
                        local: b.flags & BACKEND_F_LOCAL != 0,
                    },
                );
            }
        }
        for (k, v) in services {
            let Some(fe) = Addr::from_be(k.addr, k.port, k.proto) else {
                o.foreign.insert(KeyBytes::from(&k));
                continue;
            };
            let inst = o.frontends.entry(fe).or_default();
            if k.is_header() {
                inst.header = Some(v);
                o.ids.insert(v.id, fe);
                o.next_frontend_id = o.next_frontend_id.max(v.id.saturating_add(1));
            } else {
                inst.slots.insert((k.rev, k.slot), v.backend_id);
            }
        }
        for (k, c) in maglev {
            o.maglev
                .entry((k.id, k.rev))
                .or_default()
                .insert(k.chunk, chunk_digest(&c));
        }
        let live: Vec<u32> = o
            .frontends
            .values()
            .flat_map(|i| i.live().into_iter().flatten())
            .collect();
        for id in live {
            *o.refs.entry(id).or_default() += 1;
        }
        o
    }

    pub fn put_backend(&mut self, id: u32, spec: BackendSpec) {
        if let Some(old) = self.backends.insert(id, spec)
            && old.addr != spec.addr
            && self.backend_ids.get(&old.addr) == Some(&id)
        {
            self.backend_ids.remove(&old.addr);
        }
        let e = self.backend_ids.entry(spec.addr).or_insert(id);
        *e = (*e).min(id);
        self.next_backend_id = self.next_backend_id.max(id.saturating_add(1));
    }

    pub fn del_backend(&mut self, id: u32) {
        if let Some(old) = self.backends.remove(&id)
            && self.backend_ids.get(&old.addr) == Some(&id)
        {
            self.backend_ids.remove(&old.addr);
            // Another id for the same address (left by a crash) takes over.
            if let Some((&other, _)) = self.backends.iter().find(|(_, b)| b.addr == old.addr) {
                self.backend_ids.insert(old.addr, other);
            }
        }
        self.refs.remove(&id);
    }

    /// Runs `f` on a frontend's entries, keeping references and ids right.
    pub fn edit(&mut self, fe: Frontend, f: impl FnOnce(&mut Installed)) {
        let inst = self.frontends.entry(fe).or_default();
        let before = inst.live();
        let old_id = inst.header.map(|h| h.id);
        f(inst);
        let after = inst.live();
        let new_id = inst.header.map(|h| h.id);
        if inst.header.is_none() && inst.slots.is_empty() {
            self.frontends.remove(&fe);
        }
        for id in before.into_iter().flatten() {
            if let Some(n) = self.refs.get_mut(&id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.refs.remove(&id);
                }
            }
        }
        for id in after.into_iter().flatten() {
            *self.refs.entry(id).or_default() += 1;
        }
        if old_id != new_id {
            if let Some(id) = old_id
                && self.ids.get(&id) == Some(&fe)
            {
                self.ids.remove(&id);
            }
            if let Some(id) = new_id {
                self.ids.insert(id, fe);
                self.next_frontend_id = self.next_frontend_id.max(id.saturating_add(1));
            }
        }
    }

    pub fn refs(&self, backend_id: u32) -> u32 {
        self.refs.get(&backend_id).copied().unwrap_or(0)
    }

    /// Total entries, for status.
    pub fn slot_count(&self) -> usize {
        self.frontends.values().map(|i| i.slots.len()).sum()
    }
}

#[cfg(test)]
mod tests;
