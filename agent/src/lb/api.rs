//! The load balancer's routes on the agent's local socket:
//!
//! - `GET /lb/status`: the reconciler's status (JSON);
//! - `GET /lb/dump[?limit=N]`: the maps as read from the kernel, one line
//!   per entry (at most N affinity and conntrack entries, 1000 by default);
//! - `GET /lb/drops`: the counters, translations and drops by reason.
//!
//! Dumps open the pinned maps themselves, so they never wait for (or
//! delay) the reconciler.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, RwLock},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use super::{dump, maps::AyaMaps, reconcile::Shared};

#[derive(Clone)]
struct Api {
    shared: Arc<RwLock<Shared>>,
    maps_dir: PathBuf,
}

pub fn router(shared: Arc<RwLock<Shared>>, maps_dir: PathBuf) -> Router {
    Router::new()
        .route("/lb/status", get(status))
        .route("/lb/dump", get(dump))
        .route("/lb/drops", get(drops))
        .with_state(Api { shared, maps_dir })
}

async fn status(State(api): State<Api>) -> Response {
    let s = api
        .shared
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .status
        .clone();
    Json(s).into_response()
}

#[derive(serde::Deserialize)]
struct DumpParams {
    limit: Option<usize>,
}

/// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns()`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

async fn dump(State(api): State<Api>, Query(p): Query<DumpParams>) -> Response {
    let names: BTreeMap<_, _> = api
        .shared
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .services
        .clone();
    let limit = p.limit.unwrap_or(1000);
    let dir = api.maps_dir.clone();
    let text = tokio::task::spawn_blocking(move || {
        let maps = AyaMaps::open_pinned(&dir)?;
        let snap = maps.snapshot(limit)?;
        Ok::<_, super::maps::MapsError>(dump::render(&snap, &names, monotonic_ns()))
    })
    .await;
    text_response(text)
}

async fn drops(State(api): State<Api>) -> Response {
    let dir = api.maps_dir.clone();
    let text = tokio::task::spawn_blocking(move || {
        let maps = AyaMaps::open_pinned(&dir)?;
        Ok::<_, super::maps::MapsError>(dump::counters(&maps.stats()?))
    })
    .await;
    text_response(text)
}

fn text_response(
    r: Result<Result<String, super::maps::MapsError>, tokio::task::JoinError>,
) -> Response {
    match r {
        Ok(Ok(text)) => text.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
