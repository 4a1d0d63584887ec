//! Joining nodes (kubeadm's bootstrap tokens and TLS bootstrapping, in one
//! step): the admin creates a short-lived bootstrap token; a node fetches
//! the cluster CA from the unauthenticated `cluster-info` endpoint, checks
//! it against the hash it was given, and sends a CSR for its own key with
//! the token; keel-control signs a client certificate for
//! `system:node:<name>`. The node renews it with the certificate itself.
//! Deleting a Node revokes the credentials issued to it before.
//!
//! - [`tokens`]: token records and the checks a presented token goes
//!   through (pure).
//! - [`store`]: where tokens and revocations are kept (beside the redb
//!   file, or in etcd for every replica).
//! - this file: the [`Join`] state and the HTTP endpoints
//!   (`keel_api::pki::*_PATH`).

pub mod store;
pub mod tokens;

#[cfg(test)]
mod tests;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::IntoResponse,
    routing::{delete, get, post},
};
use keel_api::pki::{
    BOOTSTRAP_TOKENS_PATH, BootstrapToken, CLUSTER_INFO_PATH, ClusterInfo, NODE_CERTIFICATES_PATH,
    NODE_SERVING_CERTIFICATES_PATH, NodeCertificate, NodeCertificateRequest,
    NodeServingCertificateRequest, TokenInfo, TokenList, TokenRequest,
};

use self::{store::BootstrapStore, tokens::TokenRecord};
use crate::{
    api::{AppState, error::ApiError},
    authz::User,
    pki::{ClusterCa, peer::PeerCert},
};

/// How long a node certificate is valid unless configured.
pub const DEFAULT_NODE_CERT_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// How often expired tokens are deleted.
pub const GC_INTERVAL: Duration = Duration::from_secs(60);

/// What the join endpoints and node authentication need.
pub struct Join {
    pub ca: Arc<ClusterCa>,
    pub store: BootstrapStore,
    pub node_cert_lifetime: Duration,
    /// keel-control's client certificate for nodes' agent ports (logs,
    /// exec); `None` when it could not be issued.
    pub dialer: Option<crate::nodeproxy::NodeDialer>,
}

impl Join {
    /// The user a verified client certificate stands for, or why it is
    /// refused (its Node was deleted after it was issued).
    pub fn user_of(&self, peer: &PeerCert) -> Result<User, String> {
        let Some(node) = keel_api::pki::node_of_user(&peer.user) else {
            return Ok(User::Other(peer.user.clone()));
        };
        if !peer.groups.iter().any(|g| g == keel_api::pki::NODES_GROUP) {
            return Ok(User::Other(peer.user.clone()));
        }
        if let Some(at) = self.store.revoked_at(node)
            && peer.issued < at
        {
            return Err(format!(
                "the credential of node {node} was revoked when Node {node} was deleted ({}); join the node again with a new bootstrap token",
                humantime::format_rfc3339_seconds(at)
            ));
        }
        Ok(User::Node(node.to_string()))
    }
}

/// Runs the deletion of Nodes `names` (`delete`), revoking their
/// credentials from the moment it starts: a node cannot register again
/// with its old certificate while its Node is being deleted. When the
/// deletion fails, the revocations are put back as they were.
pub async fn revoke_around(
    join: &Join,
    nodes: &crate::store::Store,
    names: &[String],
    delete: impl std::future::Future<Output = axum::response::Response>,
) -> axum::response::Response {
    let at = SystemTime::now();
    let mut before = Vec::new();
    for n in names {
        before.push((n, join.store.revoked_at(n)));
        if let Err(e) = join.store.revoke_node(n, at).await {
            return internal(format!("revoking node {n}'s credentials: {e}")).into_response();
        }
    }
    let resp = delete.await;
    if resp.status().is_success() {
        let left = nodes.snapshot();
        for (n, prev) in before {
            if left.nodes.contains_key(n) {
                // A collection delete whose selector left this one alone.
                if let Err(e) = join.store.set_revoked(n, prev).await {
                    tracing::warn!(node = %n, error = %e, "restoring a revocation");
                }
            } else {
                tracing::info!(node = %n, "Node deleted: its credentials issued before now are revoked");
            }
        }
    } else {
        for (n, prev) in before {
            if let Err(e) = join.store.set_revoked(n, prev).await {
                tracing::warn!(node = %n, error = %e, "restoring the revocation after a failed delete");
            }
        }
    }
    resp
}

/// Deletes expired tokens every [`GC_INTERVAL`]; on etcd also re-reads
/// the other replicas' revocations every [`store::REFRESH`].
pub async fn maintain(join: Arc<Join>) {
    let mut gc = tokio::time::interval(GC_INTERVAL);
    let mut refresh = tokio::time::interval(store::REFRESH);
    loop {
        tokio::select! {
            _ = gc.tick() => {
                if let Err(e) = join.store.collect_expired(SystemTime::now()).await {
                    tracing::warn!(error = %e, "collecting expired bootstrap tokens");
                }
            }
            _ = refresh.tick(), if join.store.shared() => {
                if let Err(e) = join.store.refresh_revocations().await {
                    tracing::warn!(error = %e, "re-reading node revocations");
                }
            }
        }
    }
}

/// The endpoints; each authenticates for itself (the cluster info needs
/// nothing, a CSR a bootstrap token or the node's own certificate).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(CLUSTER_INFO_PATH, get(cluster_info))
        .route(BOOTSTRAP_TOKENS_PATH, get(list_tokens).post(create_token))
        .route(
            &format!("{BOOTSTRAP_TOKENS_PATH}/{{id}}"),
            delete(delete_token),
        )
        .route(NODE_CERTIFICATES_PATH, post(sign_node))
        .route(NODE_SERVING_CERTIFICATES_PATH, post(sign_node_serving))
}

fn join_of(app: &AppState) -> Result<&Join, ApiError> {
    app.join.as_deref().ok_or_else(|| {
        ApiError::not_found("node join is not available: keel-control runs without its cluster CA")
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn require_admin(app: &AppState, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if crate::api::constant_time_eq(t.as_bytes(), app.token.as_bytes()) => Ok(()),
        Some(_) | None => Err(ApiError::new(
            401,
            "Unauthorized",
            format!(
                "{what}: only the admin credential (Authorization: Bearer <admin token>) may manage bootstrap tokens"
            ),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "InternalError", e.to_string())
}

async fn cluster_info(State(app): State<Arc<AppState>>) -> Result<Json<ClusterInfo>, ApiError> {
    let join = join_of(&app)?;
    Ok(Json(ClusterInfo {
        ca_pem: join.ca.cert_pem.clone(),
    }))
}

async fn list_tokens(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<TokenList>, ApiError> {
    require_admin(&app, &headers, "list bootstrap tokens")?;
    let join = join_of(&app)?;
    let now = SystemTime::now();
    let mut items: Vec<TokenInfo> = join
        .store
        .tokens()
        .await
        .map_err(internal)?
        .iter()
        .filter(|t| !t.expired(now))
        .map(TokenRecord::info)
        .collect();
    items.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.id.cmp(&b.id)));
    Ok(Json(TokenList { items }))
}

async fn create_token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, Json<TokenInfo>), ApiError> {
    require_admin(&app, &headers, "create a bootstrap token")?;
    let join = join_of(&app)?;
    let req: TokenRequest = if body.is_empty() {
        TokenRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("bootstrap token request: {e}")))?
    };
    let ttl = tokens::validate_request(req.ttl_seconds, &req.description)
        .map_err(|e| ApiError::new(422, "Invalid", format!("bootstrap token: {e}")))?;
    let token = BootstrapToken::from_random(&rand::random());
    let now = SystemTime::now();
    let record = TokenRecord::new(&token, &req.description, ttl, now);
    if join
        .store
        .token(&token.id)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Err(ApiError::new(
            409,
            "AlreadyExists",
            format!(
                "bootstrap token {}: the random ID is taken; try again",
                token.id
            ),
        ));
    }
    join.store
        .put_token(record.clone())
        .await
        .map_err(internal)?;
    tracing::info!(token = %token.id, ttl_s = ttl.as_secs(), "bootstrap token created");
    let mut info = record.info();
    info.token = Some(token.to_token_string());
    info.ca_hash = Some(join.ca.hash());
    Ok((axum::http::StatusCode::CREATED, Json(info)))
}

async fn delete_token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<keel_api::Status>, ApiError> {
    require_admin(&app, &headers, "delete a bootstrap token")?;
    let join = join_of(&app)?;
    if !BootstrapToken::valid_id(&id) {
        return Err(ApiError::bad_request(format!(
            "bootstrap token {id:?}: an ID is 6 characters of a-z and 0-9"
        )));
    }
    if !join.store.delete_token(&id).await.map_err(internal)? {
        return Err(ApiError::not_found(format!(
            "bootstrap token {id:?} not found"
        )));
    }
    tracing::info!(token = %id, "bootstrap token deleted");
    Ok(Json(keel_api::Status::success(format!(
        "bootstrap token {id} deleted"
    ))))
}

async fn sign_node(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerCert>>,
    body: Bytes,
) -> Result<Json<NodeCertificate>, ApiError> {
    let join = join_of(&app)?;
    let req: NodeCertificateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("node certificate request: {e}")))?;
    keel_api::validate::dns1123_subdomain(&req.node_name).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!(
                "node certificate request: nodeName {:?}: {e}",
                req.node_name
            ),
        )
    })?;
    let now = SystemTime::now();
    let unauthorized = |m: String| ApiError::new(401, "Unauthorized", m);
    if let Some(given) = bearer(&headers) {
        let token = BootstrapToken::parse(given).map_err(|e| unauthorized(e.to_string()))?;
        let record = join
            .store
            .token(&token.id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                unauthorized(
                    tokens::Refusal::Unknown {
                        id: token.id.clone(),
                    }
                    .to_string(),
                )
            })?;
        record
            .check(&token, now)
            .map_err(|e| unauthorized(e.to_string()))?;
        tracing::info!(node = %req.node_name, token = %token.id, "node joins with a bootstrap token");
    } else if let Some(axum::Extension(peer)) = peer {
        match join.user_of(&peer).map_err(unauthorized)? {
            User::Node(n) if n == req.node_name => {
                tracing::info!(node = %n, "node renews its certificate");
            }
            other => {
                return Err(ApiError::forbidden(format!(
                    "User {:?} cannot renew the certificate of node {:?}: a node renews only its own",
                    other.name(),
                    req.node_name
                )));
            }
        }
    } else {
        return Err(unauthorized(
            "a node certificate needs a bootstrap token (Authorization: Bearer ID.SECRET) or the node's current certificate".into(),
        ));
    }
    let cert_pem = join
        .ca
        .sign_node(&req.csr_pem, &req.node_name, join.node_cert_lifetime, now)
        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
    Ok(Json(NodeCertificate {
        cert_pem,
        ca_pem: join.ca.cert_pem.clone(),
    }))
}

/// Whether a node's serving certificate may name `addresses`: its own name,
/// the IP addresses in its `status.addresses` (any type), and the DNS names
/// there (`Hostname`, `InternalDNS`, `ExternalDNS`). The error names the
/// first address that is not the node's.
pub fn serving_addresses_allowed(
    node: &keel_api::Node,
    addresses: &[String],
) -> Result<(), String> {
    let name = &node.metadata.name;
    for (i, a) in addresses.iter().enumerate() {
        let ok = match a.parse::<std::net::IpAddr>() {
            Ok(ip) => node
                .status
                .addresses
                .iter()
                .any(|na| na.address.parse::<std::net::IpAddr>() == Ok(ip)),
            Err(_) => {
                a == name
                    || node.status.addresses.iter().any(|na| {
                        matches!(
                            na.type_.as_str(),
                            "Hostname" | "InternalDNS" | "ExternalDNS"
                        ) && na.address.eq_ignore_ascii_case(a)
                    })
            }
        };
        if !ok {
            return Err(format!(
                "node serving certificate request: addresses[{i}] {a:?} is not one of node {name:?}'s addresses (its name and status.addresses)"
            ));
        }
    }
    Ok(())
}

/// The serving certificate of a node's agent port, for the node itself
/// (its current client certificate): its name and the addresses it asks
/// for, each an IP address or a DNS name.
async fn sign_node_serving(
    State(app): State<Arc<AppState>>,
    peer: Option<axum::Extension<PeerCert>>,
    body: Bytes,
) -> Result<Json<NodeCertificate>, ApiError> {
    let join = join_of(&app)?;
    let req: NodeServingCertificateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("node serving certificate request: {e}")))?;
    let invalid = |m: String| ApiError::new(422, "Invalid", m);
    keel_api::validate::dns1123_subdomain(&req.node_name).map_err(|e| {
        invalid(format!(
            "node serving certificate request: nodeName {:?}: {e}",
            req.node_name
        ))
    })?;
    for (i, a) in req.addresses.iter().enumerate() {
        if a.parse::<std::net::IpAddr>().is_err() {
            keel_api::validate::dns1123_subdomain(a).map_err(|e| {
                invalid(format!(
                    "node serving certificate request: addresses[{i}] {a:?}: neither an IP address nor a DNS name: {e}"
                ))
            })?;
        }
    }
    let unauthorized = |m: String| ApiError::new(401, "Unauthorized", m);
    let Some(axum::Extension(peer)) = peer else {
        return Err(unauthorized(
            "a node serving certificate needs the node's own client certificate".into(),
        ));
    };
    match join.user_of(&peer).map_err(unauthorized)? {
        User::Node(n) if n == req.node_name => {}
        other => {
            return Err(ApiError::forbidden(format!(
                "User {:?} cannot get a serving certificate for node {:?}: a node gets only its own",
                other.name(),
                req.node_name
            )));
        }
    }
    // Only the names and addresses the Node has: a node cannot get a
    // certificate for another machine's address (the check kubelet-serving
    // CSR approvers make).
    let registered = app.store.snapshot().nodes.get(&req.node_name).cloned();
    let Some(registered) = registered else {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "node {:?} is not registered yet: its serving certificate may name only the Node's own addresses",
                req.node_name
            ),
        ));
    };
    serving_addresses_allowed(&registered, &req.addresses).map_err(ApiError::forbidden)?;
    let cert_pem = join
        .ca
        .sign_node_serving(
            &req.csr_pem,
            &req.node_name,
            &req.addresses,
            join.node_cert_lifetime,
            SystemTime::now(),
        )
        .map_err(|e| invalid(e.to_string()))?;
    tracing::info!(node = %req.node_name, addresses = ?req.addresses, "node serving certificate signed");
    Ok(Json(NodeCertificate {
        cert_pem,
        ca_pem: join.ca.cert_pem.clone(),
    }))
}
