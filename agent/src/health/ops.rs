//! How long the agent's operations on the node take, observed where they
//! happen (image pulls, CNI ADD/DEL) and exported on `/metrics`; and the
//! eBPF datapaths' own numbers (map entries, packet counters and drops by
//! reason), read from their pinned maps when `/metrics` is scraped.

use std::{path::PathBuf, sync::LazyLock, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CniLabel {
    operation: String,
    result: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The durations observed since the agent started (process-wide, like the
/// default registries of Prometheus clients: the operations happen deep in
/// the runtime and the CNI code).
struct Ops {
    image_pull: Histograms<ResultLabel>,
    cni: Histograms<CniLabel>,
}

fn pull_buckets() -> Histogram {
    // 50 ms … ~102 s.
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

fn cni_buckets() -> Histogram {
    // 1 ms … ~8 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

static OPS: LazyLock<Ops> = LazyLock::new(|| Ops {
    image_pull: Family::new_with_constructor(pull_buckets),
    cni: Family::new_with_constructor(cni_buckets),
});

fn result<T, E>(r: &Result<T, E>) -> String {
    if r.is_ok() { "success" } else { "error" }.into()
}

/// An image pull that took `took` (from the first request to the last
/// layer stored).
pub fn image_pulled<T, E>(r: &Result<T, E>, took: Duration) {
    OPS.image_pull
        .get_or_create(&ResultLabel { result: result(r) })
        .observe(took.as_secs_f64());
}

/// A CNI operation (`ADD`/`DEL` of the whole chain) that took `took`.
pub fn cni_done<T, E>(operation: &str, r: &Result<T, E>, took: Duration) {
    OPS.cni
        .get_or_create(&CniLabel {
            operation: operation.into(),
            result: result(r),
        })
        .observe(took.as_secs_f64());
}

/// Where the eBPF datapaths keep their pinned maps (None: not running).
#[derive(Clone, Debug, Default)]
pub struct Datapaths {
    /// The load balancer's maps directory.
    pub lb_maps: Option<PathBuf>,
    /// Host routing's directory (its maps under `maps/`).
    pub host_routing: Option<PathBuf>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabel {
    map: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabel {
    counter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Registers the operation histograms and, read now from the pinned maps,
/// the datapaths' entries and counters. A map that cannot be read is
/// counted in `datapath_read_errors` (the scrape still answers).
pub fn register(reg: &mut Registry, dp: &Datapaths) {
    reg.register(
        "image_pull_duration_seconds",
        "Image pulls by keel's runtime, from the first registry request to the last layer stored, by result",
        OPS.image_pull.clone(),
    );
    reg.register(
        "cni_operation_duration_seconds",
        "CNI ADD and DEL of a pod's whole plugin chain, by operation and result",
        OPS.cni.clone(),
    );
    let errors = Family::<MapLabel, Counter>::default();
    // Not pinned (yet, or host routing left to the kernel): nothing to say.
    if let Some(dir) = dp.lb_maps.as_ref().filter(|d| d.exists()) {
        lb(reg, dir, &errors);
    }
    if let Some(dir) = dp.host_routing.as_ref().filter(|d| d.join("maps").exists()) {
        host_routing(reg, dir, &errors);
    }
    reg.register(
        "datapath_read_errors",
        "Pinned BPF maps this scrape could not read, by map group",
        errors,
    );
}

fn lb(reg: &mut Registry, dir: &std::path::Path, errors: &Family<MapLabel, Counter>) {
    let maps = match crate::lb::maps::AyaMaps::open_pinned(dir) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "metrics: LB maps");
            errors.get_or_create(&MapLabel { map: "lb".into() }).inc();
            return;
        }
    };
    let entries = Family::<MapLabel, Gauge>::default();
    match maps.entry_counts() {
        Ok(counts) => {
            for (map, n) in counts {
                entries
                    .get_or_create(&MapLabel { map: map.into() })
                    .set(n as i64);
            }
        }
        Err(_) => {
            errors
                .get_or_create(&MapLabel {
                    map: "lb-entries".into(),
                })
                .inc();
        }
    }
    reg.register(
        "lb_map_entries",
        "Entries in the load balancer's BPF maps, by map",
        entries,
    );
    let packets = Family::<CounterLabel, Counter>::default();
    let drops = Family::<ReasonLabel, Counter>::default();
    match maps.stats() {
        Ok(stats) => {
            for ((name, is_drop), n) in keel_ebpf_common::lb::STATS.iter().zip(stats) {
                if *is_drop {
                    drops
                        .get_or_create(&ReasonLabel {
                            reason: (*name).into(),
                        })
                        .inc_by(n);
                } else {
                    packets
                        .get_or_create(&CounterLabel {
                            counter: (*name).into(),
                        })
                        .inc_by(n);
                }
            }
        }
        Err(_) => {
            errors
                .get_or_create(&MapLabel {
                    map: "lb-stats".into(),
                })
                .inc();
        }
    }
    reg.register(
        "lb_translations",
        "Connections and packets the load balancer's programs handled, by counter (summed over CPUs)",
        packets,
    );
    reg.register(
        "lb_drops",
        "Connections and packets the load balancer's programs refused or dropped, by reason",
        drops,
    );
}

fn host_routing(reg: &mut Registry, dir: &std::path::Path, errors: &Family<MapLabel, Counter>) {
    let snap = match crate::net::hostrouting::datapath::snapshot(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "metrics: host routing maps");
            errors
                .get_or_create(&MapLabel {
                    map: "host-routing".into(),
                })
                .inc();
            return;
        }
    };
    let packets = Family::<CounterLabel, Counter>::default();
    for (name, n) in &snap.stats {
        packets
            .get_or_create(&CounterLabel {
                counter: (*name).into(),
            })
            .inc_by(*n);
    }
    reg.register(
        "host_routing_packets",
        "Packets BPF host routing handled, by counter (to_pod, to_device, to_neigh: redirected; stack_*: left to the kernel, and why; drop_spoofed_source: dropped)",
        packets,
    );
    let entries = Family::<MapLabel, Gauge>::default();
    entries
        .get_or_create(&MapLabel {
            map: "endpoints".into(),
        })
        .set(snap.endpoints.len() as i64);
    entries
        .get_or_create(&MapLabel {
            map: "cidrs".into(),
        })
        .set(snap.cidrs.len() as i64);
    reg.register(
        "host_routing_map_entries",
        "Entries in BPF host routing's maps, by map",
        entries,
    );
}
