//! Readable dumps of the LB maps (`keelctl lb dump`): one line per entry,
//! `SVC 10.96.0.10:80/TCP slot=0 id=1 rev=1 count=3 flags=sock (default/web)`,
//! then backends, Maglev tables, affinity and conntrack entries, and the
//! per-CPU counters summed: translations, then drops by reason.

use std::{collections::BTreeMap, fmt::Write as _};

use keel_ebpf_common::lb::{AffinityEntry, BackendEntry, CtEntry, STATS, ServiceEntry, ServiceKey};

use super::{
    maps::Snapshot,
    model::{Addr, Frontend},
};

/// Sort key: frontend, then the header, then revision and slot.
fn order(k: &ServiceKey) -> (Option<Addr>, u32, u16, u8, u8, u16) {
    (
        Addr::from_be(k.addr, k.port, k.proto),
        u32::from_be(k.addr),
        u16::from_be(k.port),
        k.proto,
        k.rev,
        k.slot,
    )
}

/// The whole dump; `now_ns` is CLOCK_MONOTONIC (for affinity ages).
pub fn render(s: &Snapshot, names: &BTreeMap<Frontend, String>, now_ns: u64) -> String {
    let mut out = String::new();
    let mut services = s.services.clone();
    services.sort_by_key(|(k, _)| order(k));
    for (k, v) in &services {
        let _ = write!(out, "{}", ServiceEntry(k, v));
        if k.is_header()
            && let Some(name) = Addr::from_be(k.addr, k.port, k.proto).and_then(|fe| names.get(&fe))
        {
            let _ = write!(out, " ({name})");
        }
        out.push('\n');
    }
    let mut backends = s.backends.clone();
    backends.sort_by_key(|(id, _)| *id);
    for (id, b) in &backends {
        let _ = writeln!(out, "{}", BackendEntry(*id, b));
    }
    let mut tables: BTreeMap<(u32, u8), usize> = BTreeMap::new();
    for k in &s.maglev {
        *tables.entry((k.id, k.rev)).or_default() += 1;
    }
    for ((id, rev), chunks) in tables {
        let _ = writeln!(out, "MAGLEV id={id} rev={rev} chunks={chunks}");
    }
    let mut affinity = s.affinity.clone();
    affinity.sort_by_key(|(k, _)| (k.id, k.kind, k.client));
    for (k, v) in &affinity {
        let age = now_ns.saturating_sub(v.last_used_ns) / 1_000_000_000;
        let _ = writeln!(out, "{}", AffinityEntry(k, v, age));
    }
    let mut ct = s.ct.clone();
    ct.sort_by_key(|(k, _)| (k.dir, u32::from_be(k.saddr), u16::from_be(k.sport)));
    for (k, v) in &ct {
        let _ = writeln!(out, "{}", CtEntry(k, v));
    }
    if s.truncated > 0 {
        let _ = writeln!(
            out,
            "# {} affinity/conntrack entries not shown",
            s.truncated
        );
    }
    let _ = writeln!(out, "SOCK-REVNAT entries={}", s.sock_revnat);
    out.push_str(&counters(&s.stats));
    out
}

/// `COUNTERS name=n …` and `DROPS reason=n …` (every reason, zeros too).
pub fn counters(stats: &[u64]) -> String {
    let line = |drops: bool| {
        STATS
            .iter()
            .zip(stats)
            .filter(|((_, is_drop), _)| *is_drop == drops)
            .map(|((name, _), n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("COUNTERS {}\nDROPS {}\n", line(false), line(true))
}

#[cfg(test)]
mod tests;
