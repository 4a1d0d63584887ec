//! The HTTP/JSON API, shaped like Kubernetes':
//!
//! ```text
//! /api/v1/nodes[/NAME[/status]]
//! /api/v1/namespaces/NS/{pods,services,endpoints}[/NAME[/status]]
//! /api/v1/{pods,services,endpoints}                  (all namespaces)
//! /apis/apps/v1/namespaces/NS/deployments[/NAME[/status]]
//! /apis/apps/v1/deployments                          (all namespaces)
//! ```
//!
//! GET lists (or watches with `?watch=true&resourceVersion=N`), POST
//! creates, PUT replaces (optimistic on resourceVersion), DELETE deletes.
//! Every request needs the bearer token except `/healthz`.

pub mod error;
mod handlers;
mod watch;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};

use self::{error::ApiError, handlers::*};
use crate::store::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub token: String,
    /// How often an idle watch gets a BOOKMARK.
    pub bookmark_interval: Duration,
}

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/{plural}", get(list_core_all).post(create_cluster))
        .route(
            "/api/v1/{plural}/{name}",
            get(get_cluster).put(update_cluster).delete(delete_cluster),
        )
        .route(
            "/api/v1/{plural}/{name}/status",
            get(get_cluster).put(update_cluster_status),
        )
        .route(
            "/api/v1/namespaces/{ns}/{plural}",
            get(list_core).post(create_core),
        )
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            get(get_core).put(update_core).delete(delete_core),
        )
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}/status",
            get(get_core).put(update_core_status),
        )
        .route("/apis/apps/v1/{plural}", get(list_apps_all))
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}",
            get(list_apps).post(create_apps),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}/{name}",
            get(get_apps).put(update_apps).delete(delete_apps),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}/{name}/status",
            get(get_apps).put(update_apps_status),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .with_state(state)
}

/// Refuses requests without the bearer token.
async fn authenticate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), app.token.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
