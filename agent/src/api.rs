//! The agent's local API on a unix socket (mode 0600: root only): health,
//! a dump of what the agent currently believes, and how its reconcilers
//! are doing, for keelctl and debugging.

use std::{os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use anyhow::Context;
use axum::{Json, Router, extract::State, routing::get};

use crate::{
    reconcile::{DriverStatus, Handle},
    sync::Views,
};

type StatusFn = Arc<dyn Fn() -> DriverStatus + Send + Sync>;

/// The agent's reconcilers, for `/reconcilers`.
#[derive(Clone, Default)]
pub struct Reconcilers {
    drivers: Vec<(String, StatusFn)>,
    /// Why pod workers woke up, all together.
    pub pod_wakes: Option<Arc<dyn Fn() -> serde_json::Value + Send + Sync>>,
}

impl Reconcilers {
    /// Every driver's status, now.
    pub fn statuses(&self) -> Vec<DriverStatus> {
        self.drivers
            .iter()
            .map(|(n, f)| {
                let mut s = f();
                s.name = n.clone();
                s
            })
            .collect()
    }

    pub fn add<K: Ord + Clone + std::fmt::Display + Send + 'static>(
        &mut self,
        name: &str,
        h: Handle<K>,
    ) {
        self.drivers
            .push((name.to_string(), Arc::new(move || h.status())));
    }
}

#[derive(Clone)]
struct Api {
    views: Views,
    node: String,
    reconcilers: Reconcilers,
}

/// The agent's own routes (`/healthz`, `/state`, `/reconcilers`). Each
/// reconciler adds its routes by merging its router into this one before
/// [`serve`].
pub fn router(node: String, views: Views, reconcilers: Reconcilers) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/state", get(state))
        .route("/reconcilers", get(reconcilers_route))
        .with_state(Api {
            views,
            node,
            reconcilers,
        })
}

/// Serves `app` on the socket until the task is dropped.
pub async fn serve(socket: &Path, app: Router) -> anyhow::Result<()> {
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing stale socket {}", socket.display()));
        }
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    axum::serve(listener, app).await?;

    Ok(())
}

async fn state(State(api): State<Api>) -> Json<serde_json::Value> {
    let v = api.views.current();
    Json(serde_json::json!({
        "node": api.node,
        "registered": v.node.is_some(),
        "podCIDR": v.pod_cidr().map(|c| c.to_string()),
        "synced": v.synced,
        "pods": v.pods.keys().collect::<Vec<_>>(),
        "services": v.services.keys().collect::<Vec<_>>(),
        "endpoints": v.endpoints.keys().collect::<Vec<_>>(),
        "nodes": v.nodes.keys().collect::<Vec<_>>(),
    }))
}

/// Each reconciler's driver status, and why pod workers woke up.
async fn reconcilers_route(State(api): State<Api>) -> Json<serde_json::Value> {
    let drivers: serde_json::Map<String, serde_json::Value> = api
        .reconcilers
        .drivers
        .iter()
        .map(|(n, f)| (n.clone(), serde_json::to_value(f()).unwrap_or_default()))
        .collect();
    Json(serde_json::json!({
        "drivers": drivers,
        "podWakes": api.reconcilers.pod_wakes.as_ref().map(|f| f()),
    }))
}
