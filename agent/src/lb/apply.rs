//! The applier: the only code that writes the LB maps. It performs a plan's
//! ops in order and keeps the [`Observed`] mirror in step after each one, so
//! a plan cut short by an error leaves a mirror that says exactly what was
//! written, and the next plan continues from there.

use keel_ebpf_common::lb::{BACKEND_F_LOCAL, Backend, MaglevKey, ServiceKey, ServiceValue};

use super::{
    maglev::chunk_digest,
    maps::{LbMaps, MapsError},
    observed::Observed,
    plan::{Op, Plan},
};

#[derive(Debug, thiserror::Error)]
#[error("applying op {index} of {total} ({op}): {source}")]
pub struct ApplyError {
    pub index: usize,
    pub total: usize,
    pub op: String,
    #[source]
    pub source: MapsError,
}

/// Applies every op of `plan`; returns how many were written.
pub fn apply(
    plan: &Plan,
    maps: &mut impl LbMaps,
    observed: &mut Observed,
) -> Result<usize, ApplyError> {
    for (index, op) in plan.ops.iter().enumerate() {
        apply_op(op, maps, observed).map_err(|source| ApplyError {
            index,
            total: plan.ops.len(),
            op: op.to_string(),
            source,
        })?;
    }
    Ok(plan.ops.len())
}

/// Applies one op and records it in the mirror.
pub fn apply_op(op: &Op, maps: &mut impl LbMaps, observed: &mut Observed) -> Result<(), MapsError> {
    match op {
        Op::PutBackend { id, backend } => {
            let value = Backend {
                addr: backend.addr.ip_be(),
                port: backend.addr.port_be(),
                proto: backend.addr.proto.number(),
                flags: if backend.local { BACKEND_F_LOCAL } else { 0 },
            };
            maps.put_backend(*id, &value)?;
            observed.put_backend(*id, *backend);
        }
        Op::DelBackend { id } => {
            maps.del_backend(*id)?;
            observed.del_backend(*id);
        }
        Op::PutSlot {
            fe,
            rev,
            slot,
            backend,
        } => {
            let key = ServiceKey::slot(fe.ip_be(), fe.port_be(), fe.proto.number(), *rev, *slot);
            maps.put_service(&key, &ServiceValue::slot(*backend))?;
            observed.edit(*fe, |i| {
                i.slots.insert((*rev, *slot), *backend);
            });
        }
        Op::DelSlot { fe, rev, slot } => {
            let key = ServiceKey::slot(fe.ip_be(), fe.port_be(), fe.proto.number(), *rev, *slot);
            maps.del_service(&key)?;
            observed.edit(*fe, |i| {
                i.slots.remove(&(*rev, *slot));
            });
        }
        Op::PutHeader { fe, header } => {
            let key = ServiceKey::header(fe.ip_be(), fe.port_be(), fe.proto.number());
            maps.put_service(&key, header)?;
            observed.edit(*fe, |i| i.header = Some(*header));
        }
        Op::DelHeader { fe } => {
            let key = ServiceKey::header(fe.ip_be(), fe.port_be(), fe.proto.number());
            maps.del_service(&key)?;
            observed.edit(*fe, |i| i.header = None);
        }
        Op::PutMaglev {
            id,
            rev,
            chunk,
            data,
        } => {
            let key = MaglevKey {
                id: *id,
                rev: *rev,
                _pad: 0,
                chunk: *chunk,
            };
            maps.put_maglev(&key, data)?;
            observed
                .maglev
                .entry((*id, *rev))
                .or_default()
                .insert(*chunk, chunk_digest(data));
        }
        Op::DelMaglev { id, rev, chunk } => {
            let key = MaglevKey {
                id: *id,
                rev: *rev,
                _pad: 0,
                chunk: *chunk,
            };
            maps.del_maglev(&key)?;
            if let Some(chunks) = observed.maglev.get_mut(&(*id, *rev)) {
                chunks.remove(chunk);
                if chunks.is_empty() {
                    observed.maglev.remove(&(*id, *rev));
                }
            }
        }
        Op::DelForeign { key } => {
            maps.del_service(&ServiceKey::from(*key))?;
            observed.foreign.remove(key);
        }
    }
    Ok(())
}

/// Reads the maps into a fresh mirror (adoption at start, resync).
pub fn observe(maps: &impl LbMaps) -> Result<Observed, MapsError> {
    Ok(Observed::from_entries(
        maps.services()?,
        maps.backends()?,
        maps.maglev()?,
    ))
}

#[cfg(test)]
mod tests;
