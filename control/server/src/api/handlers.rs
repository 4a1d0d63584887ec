//! CRUD handlers. Each route form resolves its kind from the path, then
//! shares the generic code below.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use keel_api::{AnyObject, FieldSelector, Kind, Selector};
use serde_json::Value;

use super::{AppState, error::ApiError, watch};
use crate::store::{Obj, Precondition, WriteOp};

type App = State<Arc<AppState>>;
type Params = Query<HashMap<String, String>>;
type Result<T> = std::result::Result<T, ApiError>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Core,
    Apps,
}

/// The kind a plural names in a group.
fn kind_of(group: Group, plural: &str) -> Result<Kind> {
    let kind = Kind::ALL.into_iter().find(|k| k.plural() == plural);
    match (group, kind) {
        (Group::Apps, Some(Kind::Deployment)) => Ok(Kind::Deployment),
        (Group::Core, Some(k)) if k != Kind::Deployment => Ok(k),
        _ => Err(ApiError::not_found(format!(
            "the server has no resource {plural:?} in {}",
            if group == Group::Apps {
                "apps/v1"
            } else {
                "v1"
            }
        ))),
    }
}

/// Namespaced kinds need a namespace in the path for single objects and
/// writes; cluster-scoped ones must not have one.
fn scoped(kind: Kind, ns: Option<&str>) -> Result<()> {
    match (kind.namespaced(), ns) {
        (true, None) => Err(ApiError::not_found(format!(
            "{} are namespaced: use {}",
            kind.plural(),
            kind.collection_path("NAMESPACE")
        ))),
        (false, Some(_)) => Err(ApiError::not_found(format!(
            "{} are cluster-scoped: use {}",
            kind.plural(),
            kind.collection_path("")
        ))),
        _ => Ok(()),
    }
}

fn user_writable(kind: Kind) -> Result<()> {
    if kind == Kind::Endpoints {
        Err(ApiError::forbidden(
            "endpoints are derived from services and pods by keel-control and cannot be written",
        ))
    } else {
        Ok(())
    }
}

fn object_key(kind: Kind, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) if kind.namespaced() => format!("{ns}/{name}"),
        _ => name.to_string(),
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
fn decode_body(kind: Kind, ns: Option<&str>, name: Option<&str>, body: &[u8]) -> Result<AnyObject> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not JSON: {e}")))?;
    let Some(map) = v.as_object_mut() else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    match map.get("kind") {
        None => drop(map.insert("kind".into(), kind.as_str().into())),
        Some(Value::String(k)) if k.is_empty() => {
            drop(map.insert("kind".into(), kind.as_str().into()))
        }
        Some(Value::String(k)) if k == kind.as_str() => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "kind: {other} does not match the path ({kind})"
            )));
        }
    }
    map.entry("apiVersion")
        .or_insert_with(|| kind.api_version().into());
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::bad_request("metadata: must be an object"));
    };
    if let Some(ns) = ns {
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
    if let Some(name) = name {
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

/// Parsed list/watch options.
pub(super) struct ListOptions {
    pub labels: Selector,
    pub fields: FieldSelector,
    pub watch: bool,
    pub resource_version: String,
    pub bookmarks: bool,
    pub timeout: Option<std::time::Duration>,
}

fn list_options(kind: Kind, q: &HashMap<String, String>) -> Result<ListOptions> {
    let labels = Selector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("fieldSelector: {e}")))?;
    let supported: &[&str] = match kind {
        Kind::Pod => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "status.phase",
            "status.podIP",
        ],
        _ => &["metadata.name", "metadata.namespace"],
    };
    if let Some(f) = fields.fields().find(|f| !supported.contains(f)) {
        return Err(ApiError::bad_request(format!(
            "fieldSelector: field {f:?} is not supported for {kind} (supported: {})",
            supported.join(", ")
        )));
    }
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Some(std::time::Duration::from_secs(t.parse().map_err(|_| {
            ApiError::bad_request(format!("timeoutSeconds: {t:?} is not a number"))
        })?)),
        None => None,
    };
    Ok(ListOptions {
        labels,
        fields,
        watch: flag("watch"),
        resource_version: q.get("resourceVersion").cloned().unwrap_or_default(),
        bookmarks: flag("allowWatchBookmarks"),
        timeout,
    })
}

impl ListOptions {
    pub fn matches(&self, obj: &Obj, ns: Option<&str>) -> bool {
        ns.is_none_or(|ns| obj.meta().namespace == ns)
            && self.labels.matches(&obj.meta().labels)
            && self.fields.matches(|f| obj.field(f))
    }
}

async fn list(
    app: Arc<AppState>,
    kind: Kind,
    ns: Option<String>,
    q: HashMap<String, String>,
) -> Result<Response> {
    let opts = list_options(kind, &q)?;
    if opts.watch {
        return watch::serve(app, kind, ns, opts);
    }
    let snap = app.store.snapshot();
    let mut out = Vec::with_capacity(256 + 1024 * snap.len(kind).min(100_000));
    let list_kind = format!("{}List", kind.as_str());
    out.extend_from_slice(
        format!(
            r#"{{"apiVersion":"{}","kind":"{list_kind}","metadata":{{"resourceVersion":"{}"}},"items":["#,
            kind.api_version(),
            snap.revision
        )
        .as_bytes(),
    );
    let mut first = true;
    for obj in snap.list(kind, ns.as_deref().unwrap_or("")) {
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

async fn get_one(
    app: Arc<AppState>,
    kind: Kind,
    ns: Option<String>,
    name: String,
) -> Result<Response> {
    scoped(kind, ns.as_deref())?;
    let key = object_key(kind, ns.as_deref(), &name);
    match app.store.snapshot().get(kind, &key) {
        Some(obj) => Ok(json_response(StatusCode::OK, &obj)),
        None => Err(ApiError::from(crate::store::StoreError::NotFound {
            kind,
            key,
        })),
    }
}

async fn create(
    app: Arc<AppState>,
    kind: Kind,
    ns: Option<String>,
    body: Bytes,
) -> Result<Response> {
    scoped(kind, ns.as_deref())?;
    user_writable(kind)?;
    let obj = decode_body(kind, ns.as_deref(), None, &body)?;
    let stored = app.store.write(WriteOp::Create(obj)).await?;
    Ok(json_response(StatusCode::CREATED, &stored))
}

async fn update(
    app: Arc<AppState>,
    kind: Kind,
    ns: Option<String>,
    name: String,
    body: Bytes,
    status: bool,
) -> Result<Response> {
    scoped(kind, ns.as_deref())?;
    if !status {
        user_writable(kind)?;
    }
    let obj = decode_body(kind, ns.as_deref(), Some(&name), &body)?;
    let stored = app.store.write(WriteOp::Update { obj, status }).await?;
    Ok(json_response(StatusCode::OK, &stored))
}

async fn delete(
    app: Arc<AppState>,
    kind: Kind,
    ns: Option<String>,
    name: String,
    q: HashMap<String, String>,
) -> Result<Response> {
    scoped(kind, ns.as_deref())?;
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
    let gone = app
        .store
        .write(WriteOp::Delete {
            kind,
            namespace: ns.unwrap_or_default(),
            name,
            precondition,
        })
        .await?;
    Ok(json_response(StatusCode::OK, &gone))
}

// Route adapters: one per path shape.

pub async fn list_core_all(
    State(app): App,
    Path(plural): Path<String>,
    Query(q): Params,
) -> Result<Response> {
    list(app, kind_of(Group::Core, &plural)?, None, q).await
}
pub async fn list_core(
    State(app): App,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Params,
) -> Result<Response> {
    let kind = kind_of(Group::Core, &plural)?;
    scoped(kind, Some(&ns))?;
    list(app, kind, Some(ns), q).await
}
pub async fn list_apps_all(
    State(app): App,
    Path(plural): Path<String>,
    Query(q): Params,
) -> Result<Response> {
    list(app, kind_of(Group::Apps, &plural)?, None, q).await
}
pub async fn list_apps(
    State(app): App,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Params,
) -> Result<Response> {
    list(app, kind_of(Group::Apps, &plural)?, Some(ns), q).await
}

pub async fn get_cluster(
    State(app): App,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Response> {
    get_one(app, kind_of(Group::Core, &plural)?, None, name).await
}
pub async fn get_core(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Result<Response> {
    get_one(app, kind_of(Group::Core, &plural)?, Some(ns), name).await
}
pub async fn get_apps(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Result<Response> {
    get_one(app, kind_of(Group::Apps, &plural)?, Some(ns), name).await
}

pub async fn create_cluster(
    State(app): App,
    Path(plural): Path<String>,
    body: Bytes,
) -> Result<Response> {
    create(app, kind_of(Group::Core, &plural)?, None, body).await
}
pub async fn create_core(
    State(app): App,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    create(app, kind_of(Group::Core, &plural)?, Some(ns), body).await
}
pub async fn create_apps(
    State(app): App,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    create(app, kind_of(Group::Apps, &plural)?, Some(ns), body).await
}

pub async fn update_cluster(
    State(app): App,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(app, kind_of(Group::Core, &plural)?, None, name, body, false).await
}
pub async fn update_cluster_status(
    State(app): App,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(app, kind_of(Group::Core, &plural)?, None, name, body, true).await
}
pub async fn update_core(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(
        app,
        kind_of(Group::Core, &plural)?,
        Some(ns),
        name,
        body,
        false,
    )
    .await
}
pub async fn update_core_status(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(
        app,
        kind_of(Group::Core, &plural)?,
        Some(ns),
        name,
        body,
        true,
    )
    .await
}
pub async fn update_apps(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(
        app,
        kind_of(Group::Apps, &plural)?,
        Some(ns),
        name,
        body,
        false,
    )
    .await
}
pub async fn update_apps_status(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response> {
    update(
        app,
        kind_of(Group::Apps, &plural)?,
        Some(ns),
        name,
        body,
        true,
    )
    .await
}

pub async fn delete_cluster(
    State(app): App,
    Path((plural, name)): Path<(String, String)>,
    Query(q): Params,
) -> Result<Response> {
    delete(app, kind_of(Group::Core, &plural)?, None, name, q).await
}
pub async fn delete_core(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Params,
) -> Result<Response> {
    delete(app, kind_of(Group::Core, &plural)?, Some(ns), name, q).await
}
pub async fn delete_apps(
    State(app): App,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Params,
) -> Result<Response> {
    delete(app, kind_of(Group::Apps, &plural)?, Some(ns), name, q).await
}
