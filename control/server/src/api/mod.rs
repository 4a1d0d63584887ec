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
//! Every request needs a credential except `/healthz`, `/livez`, `/readyz` and the cluster
//! info a joining node fetches: the admin's bearer token, or a node's
//! client certificate (then `crate::authz` decides what it may do).

mod apply;
mod discovery;
mod duplicates;
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
use crate::authz::{
    self, Decision, User,
    request::{RequestInfo, Verb},
};

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
                    format!("{}{}", app.requests.render(), store_metrics(&app.store)),
                )
            }),
        )
        .fallback(routes::no_such_resource)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            consistent_reads_need_etcd,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        // Kubernetes serves these to everyone (system:public-info-viewer).
        .route("/healthz", get(livez))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .merge(crate::bootstrap::routes())
        .merge(api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_body_within,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            log_and_explain,
        ))
        .with_state(state)
}

/// Ready when the store answers (a snapshot at its current revision).
/// Ready while the store takes writes: not while its disk is full or its
/// writer has failed (Kubernetes' `[-]check failed` lines, 500).
/// On etcd, also not while etcd does not answer this replica (as
/// kube-apiserver's `[-]etcd failed`): its reads would be stale and its
/// writes are refused, so a load balancer should send clients elsewhere.
async fn readyz(State(app): State<Arc<AppState>>) -> (axum::http::StatusCode, String) {
    use crate::store::WriterHealth;
    let snap = app.store.snapshot();
    if let Some(why) = app.store.backend_unreachable() {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "[-]etcd failed: etcd does not answer this replica ({why})\nreadyz check failed\n"
            ),
        );
    }
    match app.store.health() {
        WriterHealth::Ok => (
            axum::http::StatusCode::OK,
            format!(
                "[+]store ok (revision {})\nreadyz check passed\n",
                snap.revision
            ),
        ),
        WriterHealth::DiskFull(why) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "[-]store failed: no space left, only deletes are taken ({why})\nreadyz check failed\n"
            ),
        ),
        WriterHealth::Failed(why) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("[-]store failed: the writer stopped ({why})\nreadyz check failed\n"),
        ),
    }
}

/// Live unless the store's writer has failed for good (a restart is then
/// what helps).
async fn livez(State(app): State<Arc<AppState>>) -> (axum::http::StatusCode, String) {
    match app.store.health() {
        crate::store::WriterHealth::Failed(why) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("[-]store-writer failed: {why}\nhealthz check failed\n"),
        ),
        _ => (axum::http::StatusCode::OK, "ok".into()),
    }
}

/// The store's series in Prometheus' text format: objects by kind, group
/// commits (count, writes carried, seconds), revision and subscribers.
fn store_metrics(store: &crate::store::Store) -> String {
    use std::{fmt::Write, sync::atomic::Ordering::Relaxed};
    let mut out = String::new();
    let snap = store.snapshot();
    out.push_str(
        "# HELP keel_control_objects Stored objects, by kind.\n# TYPE keel_control_objects gauge\n",
    );
    for k in &KINDS {
        let _ = writeln!(
            out,
            "keel_control_objects{{kind=\"{}\"}} {}",
            k.name,
            snap.len(k.kind)
        );
    }
    let st = store.commit_stats();
    let _ = write!(
        out,
        "# HELP keel_control_store_commits_total Group commits written to the store's backend.\n\
         # TYPE keel_control_store_commits_total counter\n\
         keel_control_store_commits_total {}\n\
         # HELP keel_control_store_committed_writes_total Writes carried by the group commits.\n\
         # TYPE keel_control_store_committed_writes_total counter\n\
         keel_control_store_committed_writes_total {}\n\
         # HELP keel_control_store_commit_seconds_total Time spent committing to the backend.\n\
         # TYPE keel_control_store_commit_seconds_total counter\n\
         keel_control_store_commit_seconds_total {}\n\
         # HELP keel_control_store_revision The store's current revision.\n\
         # TYPE keel_control_store_revision gauge\n\
         keel_control_store_revision {}\n\
         # HELP keel_control_store_subscribers Followers of the store's revision: API watches and controllers.\n\
         # TYPE keel_control_store_subscribers gauge\n\
         keel_control_store_subscribers {}\n\
         # HELP keel_control_watch_buffered_bytes Watch lines buffered for clients that have not read them yet.\n\
         # TYPE keel_control_watch_buffered_bytes gauge\n\
         keel_control_watch_buffered_bytes {}\n",
        st.commits.load(Relaxed),
        st.writes.load(Relaxed),
        st.commit_us.load(Relaxed) as f64 / 1e6,
        snap.revision,
        store.subscribers(),
        watch::BUFFERED.load(std::sync::atomic::Ordering::Relaxed),
    );
    out
}

/// Whether a request asks for the current state: a read of resources
/// (`/api/v1/…`, `/apis/GROUP/VERSION/…`, not discovery) without a
/// `resourceVersion`, which Kubernetes answers with a quorum read of etcd.
/// With `resourceVersion` (`0`: any; a number: at least that) the
/// replica's own state may answer.
fn is_consistent_read(method: &axum::http::Method, path: &str, query: &str) -> bool {
    if method != axum::http::Method::GET {
        return false;
    }
    let segments = path.trim_matches('/').split('/').count();
    let resource = (path.starts_with("/api/") && segments >= 3)
        || (path.starts_with("/apis/") && segments >= 4);
    resource
        && !query.split('&').any(|kv| {
            kv.strip_prefix("resourceVersion=")
                .is_some_and(|v| !v.is_empty())
        })
}

/// While this replica cannot reach etcd, its state may be behind what
/// the other replicas have acknowledged: a read that asks for the current
/// state gets 503 (the client asks another replica), as kube-apiserver's
/// quorum reads fail without etcd. Reads at a resourceVersion are served.
async fn consistent_reads_need_etcd(
    State(app): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(why) = app.store.backend_unreachable()
        && is_consistent_read(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or(""),
        )
    {
        return ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "etcd is unreachable from this keel-control replica ({why}): it cannot serve the current state; try another replica"
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Logs every request (method, path, user, code, latency) at info, counts
/// it by method and code (`/metrics`), and
/// gives the bodiless errors the router itself answers (405 for a method
/// a path does not take, 415 …) a `Status` body as Kubernetes does.
/// Reads a write's body within `body_timeout` (and 3 MiB): a client that
/// trickles it holds its connection no longer (hyper's timer covers only
/// the headers). Bodiless requests (reads, upgrades) pass as they are.
async fn read_body_within(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use axum::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::UPGRADE)
    {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, MAX_REQUEST_BODY),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_REQUEST_BODY}"),
            )
            .into_response();
        }
        Err(_) => {
            return ApiError::new(
                408,
                "Timeout",
                format!(
                    "the request body did not arrive within {:?}",
                    app.body_timeout
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

async fn log_and_explain(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    // Who, as far as the request says (authentication decides later).
    let user = match req.extensions().get::<crate::pki::peer::PeerCert>() {
        _ if req.headers().contains_key(header::AUTHORIZATION) => "token".to_string(),
        Some(peer) => peer.user.clone(),
        None => "anonymous".to_string(),
    };
    let mut resp = next.run(req).await;
    let code = resp.status();
    // axum's own refusals come as text (a body past the limit: 413).
    if (code.is_client_error() || code.is_server_error())
        && (!resp.headers().contains_key(header::CONTENT_TYPE)
            || code == axum::http::StatusCode::PAYLOAD_TOO_LARGE)
    {
        let reason = match code.as_u16() {
            405 => "MethodNotAllowed",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            404 => "NotFound",
            _ => "BadRequest",
        };
        let message = match code.as_u16() {
            405 => format!("{method} is not supported on {path}"),
            413 => format!("Request entity too large: limit is {MAX_REQUEST_BODY}"),
            _ => format!(
                "{method} {path}: {}",
                code.canonical_reason().unwrap_or("error")
            ),
        };
        resp = ApiError::new(code.as_u16(), reason, message).into_response();
    }
    app.requests.count(method.as_str(), code.as_u16());
    if let Some((verb, resource)) = latency_labels(method.as_str(), &path, &query) {
        app.requests
            .observe(&verb, &resource, start.elapsed().as_secs_f64());
    }
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

/// The verb and resource a request's latency is recorded under; None for
/// non-resource paths and long-running requests (watches, exec, attach,
/// port-forward, followed logs), as Kubernetes leaves those out of
/// `apiserver_request_duration_seconds`.
pub fn latency_labels(method: &str, path: &str, query: &str) -> Option<(String, String)> {
    let param = |k: &str| {
        query
            .split('&')
            .any(|p| p == format!("{k}=true") || p == format!("{k}=1"))
    };
    let info = crate::authz::request::RequestInfo::parse(method, path, param("watch"));
    info.resource.as_ref()?;
    let long_running = info.verb == crate::authz::request::Verb::Watch
        || matches!(
            info.subresource.as_deref(),
            Some("exec" | "attach" | "portforward" | "proxy")
        )
        || (info.subresource.as_deref() == Some("log") && param("follow"));
    (!long_running).then(|| (info.verb.to_string(), info.resource_path()))
}

/// Who is asking: the admin's bearer token, or a client certificate of the
/// cluster CA (verified by the TLS acceptor, then checked against
/// revocations); nobody else gets in (401). Then `crate::authz` decides
/// (403 with a Kubernetes `Status` naming user, verb and resource).
async fn authenticate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let peer = req.extensions().get::<crate::pki::peer::PeerCert>();
    let user = match (given, peer, app.join.as_deref()) {
        (Some(t), _, _) if constant_time_eq(t.as_bytes(), app.token.as_bytes()) => User::Admin,
        (None, Some(peer), Some(join)) => match join.user_of(peer) {
            Ok(user) => user,
            Err(why) => return ApiError::new(401, "Unauthorized", why).into_response(),
        },
        _ => return ApiError::unauthorized().into_response(),
    };
    authorize(app, user, req, next).await
}

/// Applies `crate::authz` to an authenticated request; records node
/// revocations around a deletion of Nodes.
async fn authorize(app: Arc<AppState>, user: User, req: Request, next: Next) -> Response {
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let field_selector =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri())
            .ok()
            .and_then(|q| q.0.get("fieldSelector").cloned());
    let mut info = RequestInfo::parse(req.method().as_str(), req.uri().path(), watch)
        .with_name_selector(field_selector.as_deref());
    let mut req = req;
    if matches!(user, User::Node(_)) && info.verb == Verb::Create && info.name.is_none() {
        // NodeRestriction: what a node creates is named in the body.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    format!("Request entity too large: limit is {MAX_REQUEST_BODY}"),
                )
                .into_response();
            }
        };
        info.name = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["metadata"]["name"].as_str().map(str::to_string));
        req = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    let facts = StoreFacts(app.store.snapshot());
    if let Decision::Deny(why) = authz::authorize(&user, &info, &facts) {
        return ApiError::forbidden(why).into_response();
    }
    match (&app.join, info.resource.as_deref(), info.verb) {
        (Some(join), Some("nodes"), Verb::Delete | Verb::DeleteCollection)
            if info.subresource.is_none() =>
        {
            let names: Vec<String> = match &info.name {
                Some(n) => vec![n.clone()],
                None => facts.0.nodes.keys().cloned().collect(),
            };
            crate::bootstrap::revoke_around(join, &app.store, &names, next.run(req)).await
        }
        _ => {
            let mut req = req;
            req.extensions_mut().insert(user);
            next.run(req).await
        }
    }
}

/// How much of a node's create request is read to find the name.
/// The largest request body taken (Kubernetes' `MaxRequestBodyBytes`,
/// 3 MiB); past it, 413.
pub const MAX_REQUEST_BODY: usize = 3 << 20;

struct StoreFacts(Arc<crate::store::State>);

impl authz::Facts for StoreFacts {
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String> {
        self.0
            .pods
            .get(&format!("{namespace}/{name}"))
            .map(|p| p.spec.node_name.clone())
    }

    fn referenced_by_node(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let Some(keys) = self.0.pods_by_node.get(node) else {
            return false;
        };
        let prefix = format!("{namespace}/");
        keys.iter()
            .filter(|k| k.starts_with(&prefix))
            .filter_map(|k| self.0.pods.get(k))
            .any(|p| {
                p.spec
                    .references()
                    .iter()
                    .any(|(kind, n)| kind.resource() == resource && n == name)
            })
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
