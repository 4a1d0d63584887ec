//! In-memory LB maps for unit tests (test builds only).

use std::collections::BTreeMap;

use keel_ebpf_common::lb::{
    Backend, LbConfig, MAGLEV_CHUNK, MaglevChunk, MaglevKey, ServiceKey, ServiceValue,
};

use super::*;

/// In-memory maps for unit tests: the same semantics as the kernel's hash
/// maps, failure injection, and [`FakeMaps::check_lookups`], which reports
/// what a BPF lookup could get wrong in the current state.
#[derive(Debug, Default, Clone)]
pub struct FakeMaps {
    pub services: BTreeMap<(u32, u16, u8, u8, u16), ServiceValue>,
    pub backends: BTreeMap<u32, Backend>,
    pub maglev: BTreeMap<(u32, u8, u16), MaglevChunk>,
    pub config: LbConfig,
    /// Fail the n-th write from now (0: the next one).
    pub fail_at: Option<usize>,
    pub writes: usize,
}

fn skey(k: &ServiceKey) -> (u32, u16, u8, u8, u16) {
    (k.addr, k.port, k.proto, k.rev, k.slot)
}

impl FakeMaps {
    fn write(&mut self, map: &'static str, op: &'static str, key: String) -> Result<(), MapsError> {
        if let Some(n) = self.fail_at {
            if n == 0 {
                self.fail_at = None;
                return Err(MapsError::Injected { map, op, key });
            }
            self.fail_at = Some(n - 1);
        }
        self.writes += 1;
        Ok(())
    }

    /// Problems a lookup would hit now: for every header, each slot
    /// `1..=count` of its revision must exist and name an existing backend,
    /// and a Maglev table (if announced) must be complete and point only at
    /// those slots. Empty when every lookup sees one whole backend set.
    pub fn check_lookups(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (&(addr, port, proto, rev, slot), h) in &self.services {
            if (rev, slot) != (0, 0) {
                continue;
            }
            let fe = format!("{addr:#x}:{port}/{proto}");
            for s in 1..=h.count {
                match self.services.get(&(addr, port, proto, h.rev, s)) {
                    None => problems.push(format!("{fe}: slot {s} of rev {} missing", h.rev)),
                    Some(v) if !self.backends.contains_key(&v.backend_id) => problems.push(
                        format!("{fe}: slot {s} points to missing backend {}", v.backend_id),
                    ),
                    Some(_) => {}
                }
            }
            if h.maglev_m > 0 {
                let chunks = (h.maglev_m as usize).div_ceil(MAGLEV_CHUNK);
                for c in 0..chunks {
                    match self.maglev.get(&(h.id, h.rev, c as u16)) {
                        None => problems.push(format!("{fe}: maglev chunk {c} missing")),
                        Some(chunk) => {
                            let valid = (c * MAGLEV_CHUNK..(c + 1) * MAGLEV_CHUNK)
                                .zip(chunk.slots)
                                .filter(|(i, _)| *i < h.maglev_m as usize)
                                .all(|(_, s)| s >= 1 && s <= h.count);
                            if !valid {
                                problems.push(format!("{fe}: maglev chunk {c} points past count"));
                            }
                        }
                    }
                }
            }
        }
        problems
    }

    /// What a lookup resolves `fe` to: the backends of its live slots.
    pub fn resolve(&self, addr: u32, port: u16, proto: u8) -> Option<Vec<Backend>> {
        let h = self.services.get(&(addr, port, proto, 0, 0))?;
        Some(
            (1..=h.count)
                .filter_map(|s| self.services.get(&(addr, port, proto, h.rev, s)))
                .filter_map(|v| self.backends.get(&v.backend_id).copied())
                .collect(),
        )
    }
}

impl LbMaps for FakeMaps {
    fn put_service(&mut self, key: &ServiceKey, value: &ServiceValue) -> Result<(), MapsError> {
        self.write(SERVICES_MAP, "insert", service_key_text(key))?;
        self.services.insert(skey(key), *value);
        Ok(())
    }

    fn del_service(&mut self, key: &ServiceKey) -> Result<(), MapsError> {
        self.write(SERVICES_MAP, "delete", service_key_text(key))?;
        self.services.remove(&skey(key));
        Ok(())
    }

    fn put_backend(&mut self, id: u32, backend: &Backend) -> Result<(), MapsError> {
        self.write(BACKENDS_MAP, "insert", id.to_string())?;
        self.backends.insert(id, *backend);
        Ok(())
    }

    fn del_backend(&mut self, id: u32) -> Result<(), MapsError> {
        self.write(BACKENDS_MAP, "delete", id.to_string())?;
        self.backends.remove(&id);
        Ok(())
    }

    fn put_maglev(&mut self, key: &MaglevKey, chunk: &MaglevChunk) -> Result<(), MapsError> {
        self.write(MAGLEV_MAP, "insert", maglev_key_text(key))?;
        self.maglev.insert((key.id, key.rev, key.chunk), *chunk);
        Ok(())
    }

    fn del_maglev(&mut self, key: &MaglevKey) -> Result<(), MapsError> {
        self.write(MAGLEV_MAP, "delete", maglev_key_text(key))?;
        self.maglev.remove(&(key.id, key.rev, key.chunk));
        Ok(())
    }

    fn set_config(&mut self, config: &LbConfig) -> Result<(), MapsError> {
        self.write(CONFIG_MAP, "set", "0".into())?;
        self.config = *config;
        Ok(())
    }

    fn services(&self) -> Result<Vec<(ServiceKey, ServiceValue)>, MapsError> {
        Ok(self
            .services
            .iter()
            .map(|(&(addr, port, proto, rev, slot), v)| {
                (ServiceKey::slot(addr, port, proto, rev, slot), *v)
            })
            .collect())
    }

    fn backends(&self) -> Result<Vec<(u32, Backend)>, MapsError> {
        Ok(self.backends.iter().map(|(k, v)| (*k, *v)).collect())
    }

    fn maglev(&self) -> Result<Vec<(MaglevKey, MaglevChunk)>, MapsError> {
        Ok(self
            .maglev
            .iter()
            .map(|(&(id, rev, chunk), c)| {
                (
                    MaglevKey {
                        id,
                        rev,
                        _pad: 0,
                        chunk,
                    },
                    *c,
                )
            })
            .collect())
    }
}
