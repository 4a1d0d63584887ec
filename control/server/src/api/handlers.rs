//! The verbs, written once for every kind: list (or watch), get, create,
//! update (whole object or status), delete. Each takes the table row its
//! route was made from (see `routes`) and where the path points.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use keel_api::{AnyObject, KindInfo};
use serde::Deserialize;
use serde_json::Value;

use super::{error::ApiError, options::ListOptions, state::AppState, watch};
use crate::store::{Obj, Precondition, StoreError, WriteOp};

type Result<T> = std::result::Result<T, ApiError>;

/// Where a request's path points: the namespace (paths of namespaced
/// kinds) and the object's name (object paths). The route decides which
/// are there, so a handler never sees a namespace on a cluster-scoped kind.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Target {
    pub ns: Option<String>,
    pub name: Option<String>,
}

impl Target {
    /// The object's name; object routes always capture one.
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The store key: `namespace/name`, or `name` for cluster-scoped kinds.
    fn key(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name().to_string(),
        }
    }
}

/// Kinds keel-control derives from others are read-only to users.
fn user_writable(kind: &KindInfo) -> Result<()> {
    if kind.user_writable {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} are derived by keel-control and cannot be written",
            kind.plural
        )))
    }
}

fn json_response(code: StatusCode, obj: &Obj) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        obj.to_json(),
    )
        .into_response()
}

/// Reads a request body as an object of `kind`, filling apiVersion, kind,
/// namespace and name from the path and refusing contradictions.
fn decode_body(kind: &KindInfo, at: &Target, body: &[u8]) -> Result<AnyObject> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not JSON: {e}")))?;
    let Some(map) = v.as_object_mut() else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    match map.get("kind") {
        None => drop(map.insert("kind".into(), kind.name.into())),
        Some(Value::String(k)) if k.is_empty() => drop(map.insert("kind".into(), kind.name.into())),
        Some(Value::String(k)) if k == kind.name => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "kind: {other} does not match the path ({})",
                kind.name
            )));
        }
    }
    map.entry("apiVersion")
        .or_insert_with(|| kind.api_version.into());
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::bad_request("metadata: must be an object"));
    };
    if let Some(ns) = at.ns.as_deref() {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => drop(meta.insert("namespace".into(), ns.into())),
            Some(n) if n == ns => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "metadata.namespace: {n:?} does not match the namespace in the path ({ns:?})"
                )));
            }
        }
    }
    if let Some(name) = at.name.as_deref() {
        match meta.get("name").and_then(Value::as_str) {
            None | Some("") => drop(meta.insert("name".into(), name.into())),
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "metadata.name: {n:?} does not match the name in the path ({name:?})"
                )));
            }
        }
    }
    AnyObject::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// GET on a collection: the list, or with `?watch=true` a watch.
pub(super) async fn list(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    q: HashMap<String, String>,
) -> Result<Response> {
    let opts = ListOptions::parse(kind, &q)?;
    let ns = at.ns;
    if opts.watch {
        return watch::serve(app, kind, ns, opts);
    }
    let snap = app.store.snapshot();
    let mut out = Vec::with_capacity(256 + 1024 * snap.len(kind.kind).min(100_000));
    out.extend_from_slice(
        format!(
            r#"{{"apiVersion":"{}","kind":"{}List","metadata":{{"resourceVersion":"{}"}},"items":["#,
            kind.api_version, kind.name, snap.revision
        )
        .as_bytes(),
    );
    let mut first = true;
    for obj in snap.list(kind.kind, ns.as_deref().unwrap_or("")) {
        if !opts.matches(&obj, ns.as_deref()) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&obj.to_json());
    }
    out.extend_from_slice(b"]}");
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(out),
    )
        .into_response())
}

pub(super) async fn get(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
) -> Result<Response> {
    let key = at.key();
    match app.store.snapshot().get(kind.kind, &key) {
        Some(obj) => Ok(json_response(StatusCode::OK, &obj)),
        None => Err(ApiError::from(StoreError::NotFound {
            kind: kind.kind,
            key,
        })),
    }
}

pub(super) async fn create(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    body: Bytes,
) -> Result<Response> {
    user_writable(kind)?;
    let obj = decode_body(kind, &at, &body)?;
    let stored = app.store.write(WriteOp::Create(obj)).await?;
    Ok(json_response(StatusCode::CREATED, &stored))
}

/// PUT on an object (`status` false) or on its status subresource (true:
/// how agents and controllers report, allowed wherever the kind has one).
pub(super) async fn update(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    body: Bytes,
    status: bool,
) -> Result<Response> {
    if !status {
        user_writable(kind)?;
    }
    let obj = decode_body(kind, &at, &body)?;
    let stored = app.store.write(WriteOp::Update { obj, status }).await?;
    Ok(json_response(StatusCode::OK, &stored))
}

pub(super) async fn delete(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    q: HashMap<String, String>,
) -> Result<Response> {
    user_writable(kind)?;
    let precondition = Precondition {
        uid: q.get("uid").cloned(),
        resource_version: q
            .get("resourceVersion")
            .map(|r| {
                r.parse().map_err(|_| {
                    ApiError::bad_request(format!("resourceVersion: {r:?} is not a number"))
                })
            })
            .transpose()?,
    };
    let name = at.name().to_string();
    let gone = app
        .store
        .write(WriteOp::Delete {
            kind: kind.kind,
            namespace: at.ns.unwrap_or_default(),
            name,
            precondition,
        })
        .await?;
    Ok(json_response(StatusCode::OK, &gone))
}
