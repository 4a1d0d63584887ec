//! The agent's local API on a unix socket (mode 0600: root only): health and
//! a dump of what the agent currently believes, for keelctl and debugging.

use std::{os::unix::fs::PermissionsExt, path::Path};

use anyhow::Context;
use axum::{Json, Router, extract::State, routing::get};
use tokio::sync::watch;

use crate::sync::View;

#[derive(Clone)]
struct Api {
    view: watch::Receiver<View>,
    node: String,
}

/// The agent's own routes (`/healthz`, `/state`). Each reconciler adds its
/// routes by merging its router into this one before [`serve`].
pub fn router(node: String, view: watch::Receiver<View>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/state", get(state))
        .with_state(Api { view, node })
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
    let v = api.view.borrow().clone();
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
