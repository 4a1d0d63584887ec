//! The HTTP/JSON API, shaped like Kubernetes'. Its paths come from
//! keel-api's table of kinds (see `routes`); for today's kinds:
//!
//! ```text
//! /api/v1/nodes[/NAME[/status]]
//! /api/v1/namespaces/NS/{pods,services}[/NAME[/status]]
//! /api/v1/namespaces/NS/endpoints[/NAME]
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
mod options;
mod routes;
mod state;
mod watch;

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use keel_api::KINDS;

use self::error::ApiError;
pub use self::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    // The fallback is behind the token too: without it, which paths exist
    // would be no secret to an unauthenticated client.
    let api = KINDS
        .iter()
        .fold(Router::new(), routes::add)
        .fallback(routes::no_such_resource)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
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

#[cfg(test)]
mod tests;
