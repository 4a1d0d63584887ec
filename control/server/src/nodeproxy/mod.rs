//! Proxying a pod's streaming subresources to the agent of its node, as
//! Kubernetes' apiserver does to the kubelet: `GET …/pods/NAME/log` goes
//! to the node's HTTPS port (its InternalIP and the advertised
//! `status.daemonEndpoints.kubeletEndpoint.port`) over mTLS: keel-control
//! presents its own client certificate (`CN=keel-control`) and trusts only
//! the cluster CA. Who may ask is decided before (`crate::authz`: the
//! admin; nodes may not).
//!
//! `…/pods/NAME/exec` is a WebSocket in Kubernetes' channel protocol
//! ([`exec`]); with stdin or a terminal it is relayed to the agent's own
//! exec WebSocket ([`relay`]).
//!
//! `…/pods/NAME/portforward` is SPDY/3.1 tunnelled in a WebSocket (or
//! after `Upgrade: SPDY/3.1`), each forwarded connection relayed to the
//! agent's port-forward socket ([`portforward`], framing in [`spdy`]).
//!
//! - [`params`]: Kubernetes' log parameters, validated, turned into the
//!   agent's query (pure).

pub mod exec;
pub mod params;
mod portforward;
mod relay;
pub mod spdy;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    body::Body,
    extract::{
        Path, Query, RawQuery, State,
        ws::{Message, WebSocketUpgrade},
    },
    response::{IntoResponse, Response},
};
use keel_api::client::{Client, ClientConfig, Identity};

use crate::{
    api::{AppState, error::ApiError},
    pki::ClusterCa,
};

/// keel-control's credential for nodes' agent ports: a client certificate
/// from the cluster CA, issued again once two thirds of its life have
/// passed (on the first dial after that), so a long-running keel-control
/// never presents an expired one.
pub struct NodeDialer {
    ca: Arc<ClusterCa>,
    lifetime: Duration,
    current: std::sync::Mutex<Issued>,
}

struct Issued {
    identity: Identity,
    renew_at: SystemTime,
}

impl NodeDialer {
    /// Issues the first certificate, valid `lifetime` from `now`.
    pub fn new(ca: Arc<ClusterCa>, lifetime: Duration, now: SystemTime) -> anyhow::Result<Self> {
        let issued = issue(&ca, lifetime, now)?;
        Ok(Self {
            ca,
            lifetime,
            current: std::sync::Mutex::new(issued),
        })
    }

    /// The certificate to present at `now`, renewed when due.
    pub fn identity_at(&self, now: SystemTime) -> anyhow::Result<Identity> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now >= current.renew_at {
            *current = issue(&self.ca, self.lifetime, now)?;
            tracing::info!("keel-control's client certificate for nodes renewed");
        }
        Ok(current.identity.clone())
    }

    pub(super) fn client(&self, endpoint: &str) -> Result<Client, ApiError> {
        let internal = |e: String| ApiError::new(500, "InternalError", e);
        let identity = self
            .identity_at(SystemTime::now())
            .map_err(|e| internal(format!("keel-control's client certificate: {e:#}")))?;
        Client::new(&ClientConfig {
            server: format!("https://{endpoint}"),
            token: String::new(),
            ca_pem: Some(self.ca.cert_pem.clone().into_bytes()),
            identity: Some(identity),
        })
        .map_err(|e| internal(e.to_string()))
    }
}

fn issue(ca: &ClusterCa, lifetime: Duration, now: SystemTime) -> anyhow::Result<Issued> {
    let (cert, key) = ca.issue_control_client(lifetime, now)?;
    Ok(Issued {
        identity: Identity::from_pem(cert.as_bytes(), key.as_bytes())?,
        renew_at: now + lifetime * 2 / 3,
    })
}

pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The agent endpoint of the node running `ns/name`.
pub(super) fn endpoint(app: &AppState, ns: &str, name: &str) -> Result<String, ApiError> {
    let state = app.store.snapshot();
    let pod = state
        .pods
        .get(&format!("{ns}/{name}"))
        .ok_or_else(|| ApiError::not_found(format!("pods \"{name}\" not found")))?;
    let node = &pod.spec.node_name;
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {ns}/{name} is not scheduled to a node yet"
        )));
    }
    let n = state.nodes.get(node).ok_or_else(|| {
        ApiError::not_found(format!("pod {ns}/{name}: its node {node} has no Node"))
    })?;
    n.agent_endpoint().ok_or_else(|| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "pod {ns}/{name}: node {node} advertises no agent port (status.daemonEndpoints.kubeletEndpoint); is its keel-agent joined, with a runtime and --node-port-listen?"
            ),
        )
    })
}

pub(super) fn dialer<'a>(app: &'a AppState, sub: &str) -> Result<&'a NodeDialer, ApiError> {
    app.join
        .as_ref()
        .and_then(|j| j.dialer.as_ref())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{sub}: keel-control runs without its cluster CA, so it cannot reach nodes"
            ))
        })
}

/// `GET path` on the agent at `endpoint`, its body left to stream. The
/// agent's own errors keep their code; an agent that cannot be reached is
/// a 502. Messages start with `who`.
async fn agent_get(
    dialer: &NodeDialer,
    endpoint: &str,
    path: &str,
    who: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
    dialer
        .client(endpoint)?
        .get_stream(path)
        .await
        .map_err(|e| match e {
            keel_api::client::ClientError::Api(s) => ApiError::new(
                s.code,
                if s.code == 404 {
                    "NotFound"
                } else {
                    "BadRequest"
                },
                format!("{who}: {}", s.message.trim()),
            ),
            other => ApiError::new(
                502,
                "InternalError",
                format!("{who}: reaching its node's agent at {endpoint}: {other}"),
            ),
        })
}

/// `GET /api/v1/namespaces/NS/pods/NAME/log`.
pub async fn pod_log(
    State(app): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let dialer = dialer(&app, "pods/log")?;
    let query =
        params::log_query(&q).map_err(|e| ApiError::bad_request(format!("pods/log: {e}")))?;
    let endpoint = endpoint(&app, &ns, &name)?;
    let path = format!("/pods/{}/{}/logs?{query}", encode(&ns), encode(&name));
    let resp = agent_get(dialer, &endpoint, &path, &format!("pod {ns}/{name}")).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        Body::new(resp.into_body()),
    )
        .into_response())
}

/// `GET /api/v1/nodes/NAME/proxy/PATH`: Kubernetes' node proxy, to the
/// node's agent port (what `keelctl lb dump|drops|status` and `keelctl net
/// status|dump` read). Admin only: the
/// authorizer gives nodes no `nodes/proxy`.
pub async fn node_proxy(
    State(app): State<Arc<AppState>>,
    Path((node, path)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let dialer = dialer(&app, "nodes/proxy")?;
    let endpoint = {
        let state = app.store.snapshot();
        let n = state
            .nodes
            .get(&node)
            .ok_or_else(|| ApiError::not_found(format!("nodes \"{node}\" not found")))?;
        n.agent_endpoint().ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "node {node} advertises no agent port (status.daemonEndpoints.kubeletEndpoint); is its keel-agent joined, with --node-port-listen?"
                ),
            )
        })?
    };
    let target = match q.as_deref() {
        Some(q) if !q.is_empty() => format!("/{path}?{q}"),
        _ => format!("/{path}"),
    };
    let resp = agent_get(
        dialer,
        &endpoint,
        &target,
        &format!("node {node}: {target}"),
    )
    .await?;
    let content_type = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(axum::http::HeaderValue::from_static("text/plain"));
    Ok((
        [(axum::http::header::CONTENT_TYPE, content_type)],
        Body::new(resp.into_body()),
    )
        .into_response())
}

/// `GET|POST /api/v1/namespaces/NS/pods/NAME/exec` (a WebSocket upgrade).
pub async fn pod_exec(
    State(app): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let p = exec::parse(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("pods/exec: {e}")))?;
    let Ok(ws) = ws else {
        return Err(ApiError::bad_request(
            "pods/exec: keel-control streams exec over a WebSocket (v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not supported",
        ));
    };
    if p.stdin || p.tty {
        return relay::exec(&app, &ns, &name, &p, ws).await;
    }
    let endpoint = endpoint(&app, &ns, &name)?;
    let client = dialer(&app, "pods/exec")?.client(&endpoint)?;
    let path = format!("/pods/{}/{}/exec", encode(&ns), encode(&name));
    let body = serde_json::to_vec(&serde_json::json!({
        "container": p.container,
        "command": p.command,
        "timeoutSeconds": 25,
    }))
    .expect("exec request serializes");
    let ws = ws.protocols(exec::PROTOCOLS);
    Ok(ws
        .on_upgrade(move |mut socket| async move {
            let answer = client
                .request_raw(keel_api::client::HttpMethod::POST, &path, Some(body))
                .await;
            let status = match answer
                .map_err(|e| format!("pod {ns}/{name}: {e}"))
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .map_err(|e| format!("pod {ns}/{name}: the agent's exec answer: {e}"))
                }) {
                Ok(r) => {
                    for (channel, key, wanted) in [
                        (exec::STDOUT, "stdout", p.stdout),
                        (exec::STDERR, "stderr", p.stderr),
                    ] {
                        let text = r[key].as_str().unwrap_or_default();
                        if wanted && !text.is_empty() {
                            let m = Message::Binary(exec::frame(channel, text.as_bytes()).into());
                            if socket.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                    exec::status(r["exitCode"].as_i64().unwrap_or(1) as i32)
                }
                Err(e) => exec::failure(&e),
            };
            let status = serde_json::to_vec(&status).expect("status serializes");
            let _ = socket
                .send(Message::Binary(exec::frame(exec::ERROR, &status).into()))
                .await;
            // A normal closure (1000): client-go reads the error stream to
            // its end and takes any other close as an error.
            let _ = socket
                .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::NORMAL,
                    reason: "".into(),
                })))
                .await;
        })
        .into_response())
}

/// `GET|POST /api/v1/namespaces/NS/pods/NAME/portforward`: a WebSocket
/// upgrade (kubectl's default) or `Upgrade: SPDY/3.1` (its fallback).
pub async fn pod_portforward(
    State(app): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequestParts;
    let headers = req.headers().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let websocket = headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (mut parts, _) = req.into_parts();
    if websocket {
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("pods/portforward: {}", e.body_text())))?;
        portforward::handle(&app, &ns, &name, &query, &headers, Some(ws), None).await
    } else {
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        portforward::handle(&app, &ns, &name, &query, &headers, None, upgrade).await
    }
}

#[cfg(test)]
mod tests;
