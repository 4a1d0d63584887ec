//! Proxying a pod's streaming subresources to the agent of its node, as
//! Kubernetes' apiserver does to the kubelet: `GET …/pods/NAME/log` goes
//! to the node's HTTPS port (its InternalIP and the advertised
//! `status.daemonEndpoints.kubeletEndpoint.port`) over mTLS: keel-control
//! presents its own client certificate (`CN=keel-control`) and trusts only
//! the cluster CA. Who may ask is decided before (`crate::authz`: the
//! admin; nodes may not).
//!
//! - [`params`]: Kubernetes' log parameters, validated, turned into the
//!   agent's query (pure).

pub mod params;

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use keel_api::client::{Client, ClientConfig, Identity};

use crate::api::{AppState, error::ApiError};

/// keel-control's credential for nodes' agent ports.
pub struct NodeDialer {
    pub identity: Identity,
    pub ca_pem: String,
}

impl NodeDialer {
    fn client(&self, endpoint: &str) -> Result<Client, ApiError> {
        Client::new(&ClientConfig {
            server: format!("https://{endpoint}"),
            token: String::new(),
            ca_pem: Some(self.ca_pem.clone().into_bytes()),
            identity: Some(self.identity.clone()),
        })
        .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))
    }
}

fn encode(s: &str) -> String {
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
fn endpoint(app: &AppState, ns: &str, name: &str) -> Result<String, ApiError> {
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

/// `GET /api/v1/namespaces/NS/pods/NAME/log`.
pub async fn pod_log(
    State(app): State<Arc<AppState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let dialer = app
        .join
        .as_ref()
        .and_then(|j| j.dialer.as_ref())
        .ok_or_else(|| {
            ApiError::not_found(
                "pods/log: keel-control runs without its cluster CA, so it cannot reach nodes",
            )
        })?;
    let query =
        params::log_query(&q).map_err(|e| ApiError::bad_request(format!("pods/log: {e}")))?;
    let endpoint = endpoint(&app, &ns, &name)?;
    let path = format!("/pods/{}/{}/logs?{query}", encode(&ns), encode(&name));
    let resp = dialer
        .client(&endpoint)?
        .get_stream(&path)
        .await
        .map_err(|e| match e {
            keel_api::client::ClientError::Api(s) => ApiError::new(
                s.code,
                if s.code == 404 {
                    "NotFound"
                } else {
                    "BadRequest"
                },
                format!("pod {ns}/{name}: {}", s.message.trim()),
            ),
            other => ApiError::new(
                502,
                "InternalError",
                format!("pod {ns}/{name}: reaching its node's agent at {endpoint}: {other}"),
            ),
        })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        Body::new(resp.into_body()),
    )
        .into_response())
}
