//! The agent's health and metrics on a plain HTTP address of its own
//! (`--metrics-listen`, like the kubelet's read-only port): `/healthz` and
//! `/livez` (the process answers), `/readyz` (the view of keel-control's
//! objects is synced, the node's CNI configuration is written when pods
//! run here, the LB's BPF programs are pinned when the LB is on; each
//! check is listed as `[+]name ok` / `[-]name failed: why`, as Kubernetes
//! prints them) and Prometheus `/metrics` in the text exposition format,
//! encoded by the `prometheus-client` crate.

use std::{net::SocketAddr, path::PathBuf, sync::atomic::Ordering};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use keel_api::recorder::Recorder;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{api::Reconcilers, sync::Views};

pub mod ops;

/// One readiness check: a file that must exist once the agent has done
/// its part (the CNI configuration, the LB's pinned programs).
#[derive(Clone, Debug)]
pub struct FileCheck {
    pub name: &'static str,
    pub path: PathBuf,
    pub why: &'static str,
}

/// What the health and metrics routes read.
#[derive(Clone)]
pub struct Health {
    pub views: Views,
    pub reconcilers: Reconcilers,
    pub events: Recorder,
    pub files: Vec<FileCheck>,
    /// The eBPF datapaths whose maps `/metrics` reads.
    pub datapaths: ops::Datapaths,
}

/// The readiness checks and their outcomes. Pure given the view and files.
pub fn readiness(h: &Health) -> Vec<(String, Result<(), String>)> {
    let mut out = vec![(
        "view-synced".to_string(),
        if h.views.current().synced {
            Ok(())
        } else {
            Err("the objects from keel-control have not been listed yet".into())
        },
    )];
    for f in &h.files {
        out.push((
            f.name.to_string(),
            if f.path.exists() {
                Ok(())
            } else {
                Err(format!("{} is missing ({})", f.path.display(), f.why))
            },
        ));
    }
    out
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    let checks = readiness(&h);
    let mut body = String::new();
    let mut ok = true;
    for (name, r) in &checks {
        match r {
            Ok(()) => body.push_str(&format!("[+]{name} ok\n")),
            Err(why) => {
                ok = false;
                body.push_str(&format!("[-]{name} failed: {why}\n"));
            }
        }
    }
    if ok {
        body.push_str("readyz check passed\n");
        (StatusCode::OK, body)
    } else {
        body.push_str("readyz check failed\n");
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcilerLabel {
    reconciler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The exposition, built from what the agent knows at this moment.
pub fn render(h: &Health) -> String {
    let mut reg = Registry::with_prefix("keel_agent");
    let syncs = Family::<ReconcilerLabel, Counter>::default();
    let failures = Family::<ReconcilerLabel, Counter>::default();
    let sync_seconds = Family::<ReconcilerLabel, Counter<f64>>::default();
    let last_sync = Family::<ReconcilerLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let queued = Family::<ReconcilerLabel, Gauge>::default();
    let failing = Family::<ReconcilerLabel, Gauge>::default();
    for s in h.reconcilers.statuses() {
        let l = ReconcilerLabel {
            reconciler: s.name.clone(),
        };
        syncs.get_or_create(&l).inc_by(s.syncs);
        failures.get_or_create(&l).inc_by(s.failures);
        sync_seconds
            .get_or_create(&l)
            .inc_by(s.total_sync_us as f64 / 1e6);
        last_sync.get_or_create(&l).set(s.last_sync_us as f64 / 1e6);
        queued.get_or_create(&l).set(s.queued as i64);
        failing
            .get_or_create(&l)
            .set((s.failing.len() + usize::from(s.failing_all.is_some())) as i64);
    }
    reg.register(
        "reconciler_syncs",
        "Batches each reconciler has reconciled",
        syncs,
    );
    reg.register(
        "reconciler_failures",
        "Key failures of each reconciler",
        failures,
    );
    reg.register(
        "reconciler_sync_seconds",
        "Time each reconciler spent syncing",
        sync_seconds,
    );
    reg.register(
        "reconciler_last_sync_seconds",
        "How long each reconciler's last sync took",
        last_sync,
    );
    reg.register(
        "reconciler_queued_keys",
        "Changed keys waiting for each reconciler's next batch",
        queued,
    );
    reg.register(
        "reconciler_failing_keys",
        "Keys (or the full pass) currently failing in each reconciler",
        failing,
    );

    let view = h.views.current();
    let pods = Family::<PhaseLabel, Gauge>::default();
    let restarts: Counter = Counter::default();
    for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
        // Every phase has a series, zero or not.
        pods.get_or_create(&PhaseLabel {
            phase: phase.into(),
        })
        .set(0);
    }
    for p in view.pods.values() {
        let phase = p.status.phase.map_or("Pending", |ph| ph.as_str());
        pods.get_or_create(&PhaseLabel {
            phase: phase.into(),
        })
        .inc();
        let n: u64 = p
            .status
            .container_statuses
            .iter()
            .chain(&p.status.init_container_statuses)
            .map(|c| u64::from(c.restart_count))
            .sum();
        restarts.inc_by(n);
    }
    reg.register("pods", "Pods bound to this node, by phase", pods);
    reg.register(
        "container_restarts",
        "Container restarts of the pods on this node, as their status reports",
        restarts,
    );
    let synced = Gauge::<i64>::default();
    synced.set(i64::from(view.synced));
    reg.register(
        "view_synced",
        "1 once every object kind has been listed from keel-control or the cache",
        synced,
    );

    let st = h.events.stats();
    let events = Family::<OutcomeLabel, Counter>::default();
    for (outcome, v) in [
        ("created", &st.created),
        ("updated", &st.updated),
        ("dropped", &st.dropped),
        ("throttled", &st.throttled),
        ("failed", &st.failed),
    ] {
        events
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc_by(v.load(Ordering::Relaxed));
    }
    reg.register(
        "events",
        "Events recorded, by outcome (updated: a repeat counted on an existing Event)",
        events,
    );
    ops::register(&mut reg, &h.datapaths);
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String");
    prometheus_text(&out)
}

/// The Prometheus text format (0.0.4, what Prometheus scrapes by default
/// and `promtool check metrics` reads) from `prometheus-client`'s
/// OpenMetrics: a counter family is named with its `_total` suffix, as its
/// samples are, and the `# EOF` marker goes. Pure.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The routes: `/healthz`, `/livez`, `/readyz`, `/metrics`.
pub fn router(h: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(h): State<Health>| async move {
                // Reading pinned maps is blocking work.
                match tokio::task::spawn_blocking(move || render(&h)).await {
                    Ok(text) => (
                        StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    ),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        format!("rendering the metrics: {e}"),
                    ),
                }
            }),
        )
        .with_state(h)
}

/// Serves the routes on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, h: Health) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
    axum::serve(listener, router(h)).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
