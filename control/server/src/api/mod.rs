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

mod apply;
mod discovery;
pub mod error;
mod handlers;
mod options;
mod patch;
mod protobuf;
mod replicasets;
mod routes;
mod state;
mod table;
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
        .merge(discovery::routes())
        .merge(replicasets::routes())
        .merge(routes::not_proxied(Router::new()))
        .route(
            "/metrics",
            get(|State(app): State<Arc<AppState>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    app.requests.render(),
                )
            }),
        )
        .fallback(routes::no_such_resource)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            log_and_explain,
        ))
        .with_state(state)
}

/// Logs every request (method, path, user, code, latency) at info, counts
/// it by method and code (`/metrics`), and
/// gives the bodiless errors the router itself answers (405 for a method
/// a path does not take, 415 …) a `Status` body as Kubernetes does.
async fn log_and_explain(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let user = if req.headers().contains_key(header::AUTHORIZATION) {
        "token"
    } else {
        "anonymous"
    };
    let mut resp = next.run(req).await;
    let code = resp.status();
    if (code.is_client_error() || code.is_server_error())
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        let reason = match code.as_u16() {
            405 => "MethodNotAllowed",
            415 => "UnsupportedMediaType",
            404 => "NotFound",
            _ => "BadRequest",
        };
        let message = match code.as_u16() {
            405 => format!("{method} is not supported on {path}"),
            _ => format!(
                "{method} {path}: {}",
                code.canonical_reason().unwrap_or("error")
            ),
        };
        resp = ApiError::new(code.as_u16(), reason, message).into_response();
    }
    app.requests.count(method.as_str(), code.as_u16());
    tracing::info!(
        target: "keel_control::request",
        %method,
        path,
        user,
        code = code.as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
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
