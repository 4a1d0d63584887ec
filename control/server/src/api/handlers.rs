//! The verbs, written once for every kind: list (or watch), get, create,
//! update, patch, delete and deletecollection, on the object or one of its
//! subresources. Each takes the table row its route was made from (see
//! `routes`) and where the path points.
//!
//! Write options as Kubernetes takes them: `dryRun=All` runs the whole
//! write (validation, defaults, allocations) and stores nothing;
//! `fieldValidation=Strict` (keel's default) refuses unknown fields naming
//! them, `Warn` drops them with a `Warning` header naming each, `Ignore`
//! drops them silently. Fields of Kubernetes' schema keel does not act on
//! are not unknown: they are kept with the object and named in warnings
//! (`keel_api::resource::preserved`).

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use keel_api::{AnyObject, DecodeError, Kind, KindInfo};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    apply,
    error::ApiError,
    options::ListOptions,
    patch, protobuf,
    state::AppState,
    table::{self, IncludeObject},
    watch,
};
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

    fn not_found(&self, kind: &KindInfo) -> ApiError {
        ApiError::from(StoreError::NotFound {
            kind: kind.kind,
            key: self.key(),
        })
    }
}

/// What a write request brings: its query, headers and body.
pub(super) struct Write {
    pub q: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The part of an object a path addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Object,
    /// `…/status`: a write changes only the status.
    Status,
    /// `…/scale`: an `autoscaling/v1` Scale of `spec.replicas`.
    Scale,
}

/// How unknown fields in a body are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Validation {
    Strict,
    Warn,
    Ignore,
}

struct WriteOptions {
    dry_run: bool,
    validation: Validation,
}

impl WriteOptions {
    fn parse(q: &HashMap<String, String>) -> Result<Self> {
        let dry_run = match q.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: {other:?} is not supported (only \"All\")"
                )));
            }
        };
        let validation = match q.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Strict") => Validation::Strict,
            Some("Warn") => Validation::Warn,
            Some("Ignore") => Validation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: {other:?} is not one of Strict, Warn, Ignore"
                )));
            }
        };
        Ok(Self {
            dry_run,
            validation,
        })
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

/// A JSON response with one `Warning` header per warning, as Kubernetes
/// sends them (`299 - "text"`); kubectl prints each as `Warning: text`.
fn respond(code: StatusCode, body: Vec<u8>, warnings: &[String]) -> Response {
    let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).expect("a string"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// The media type of a request's body, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn unsupported_media(media: &str, supported: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body's Content-Type {media:?} is not supported; keel-control takes {supported}"
        ),
    )
}

/// Parses a create or update body: JSON, or the protobuf Kubernetes'
/// typed clients send, read into JSON by `protobuf` (415 for a kind or a
/// field number it does not have). A key
/// repeated within one JSON object is refused under `Strict` and named in
/// the returned warnings under `Warn`, the last one winning under `Warn`
/// and `Ignore` (Kubernetes' strict decoding).
fn json_body(w: &Write, validation: Validation) -> Result<(Value, Vec<String>)> {
    let media = media_type(&w.headers);
    if media == "application/vnd.kubernetes.protobuf" {
        let v = protobuf::decode(&w.body).map_err(|e| {
            ApiError::new(415, "UnsupportedMediaType", format!("protobuf body: {e}"))
        })?;
        return Ok((v, Vec::new()));
    }
    if !matches!(media.as_str(), "application/json" | "" | "*/*") {
        return Err(unsupported_media(&media, "application/json"));
    }
    let v = serde_json::from_slice(&w.body)
        .map_err(|e| ApiError::bad_request(format!("request body is not JSON: {e}")))?;
    let warnings = if validation == Validation::Ignore {
        Vec::new()
    } else {
        let found = super::duplicates::duplicate_fields(&w.body)
            .map_err(|e| ApiError::bad_request(format!("request body is not JSON: {e}")))?;
        duplicates_verdict(found, validation)?
    };
    Ok((v, warnings))
}

/// Keys repeated in a body: refused under `Strict`, warnings under `Warn`
/// (Kubernetes' strict decoding).
fn duplicates_verdict(found: Vec<String>, validation: Validation) -> Result<Vec<String>> {
    if validation == Validation::Ignore {
        return Ok(Vec::new());
    }
    let dups: Vec<String> = found
        .into_iter()
        .map(|path| format!("duplicate field {path:?}"))
        .collect();
    if validation == Validation::Strict && !dups.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            dups.join(", ")
        )));
    }
    Ok(dups)
}

/// Keys repeated in a patch body: in a merge or strategic merge patch (a
/// JSON object) and in server-side apply's YAML, as Kubernetes checks
/// them. A JSON patch is a list of operations and is not checked.
fn patch_duplicates(media: &str, body: &[u8], validation: Validation) -> Result<Vec<String>> {
    if validation == Validation::Ignore {
        return Ok(Vec::new());
    }
    let found = match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            super::duplicates::duplicate_fields(body)
                .map_err(|e| ApiError::bad_request(format!("the patch is not JSON: {e}")))?
        }
        APPLY => super::duplicates::duplicate_fields_yaml(body).map_err(|e| {
            ApiError::bad_request(format!("the apply configuration is not YAML: {e}"))
        })?,
        _ => Vec::new(),
    };
    duplicates_verdict(found, validation)
}

/// Fills apiVersion, kind, namespace and name of `v` from the path,
/// refusing contradictions; returns warnings about what it dropped.
fn complete(kind: &KindInfo, at: &Target, v: &mut Value) -> Result<Vec<String>> {
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
    // Fields Kubernetes' clients send that keel keeps no record of (the
    // decoder drops them); managed fields a client set are worth a word.
    let mut warnings = Vec::new();
    if meta
        .remove("managedFields")
        .is_some_and(|m| m.as_array().is_some_and(|a| !a.is_empty()))
    {
        warnings.push(
            "metadata.managedFields: keel-control keeps no managed fields; the ones sent are ignored"
                .to_string(),
        );
    }
    if meta.get("creationTimestamp") == Some(&Value::Null) {
        meta.remove("creationTimestamp");
    }
    Ok(warnings)
}

/// Reads `v` as an object of `kind` (see [`complete`]). Fields of
/// Kubernetes' schema keel does not act on are kept (see
/// `keel_api::resource::preserved`) and named in the returned warnings;
/// fields Kubernetes' schema does not have at their place are refused
/// with their path, or with `Warn`/`Ignore` dropped (and named in the
/// warnings for `Warn`), as Kubernetes' field validation does.
fn decode_value(
    kind: &KindInfo,
    at: &Target,
    mut v: Value,
    validation: Validation,
) -> Result<(AnyObject, Vec<String>)> {
    let mut warnings = complete(kind, at, &mut v)?;
    // Each round drops one unknown field; a body has few, this bounds it.
    for _ in 0..256 {
        match AnyObject::from_value(v.clone()) {
            Ok(obj) => {
                warnings.extend(preserved_warnings(&obj));
                return Ok((obj, warnings));
            }
            Err(DecodeError::Field(e)) if validation != Validation::Strict => {
                let Some(field) = unknown_field(&e.message) else {
                    return Err(ApiError::bad_request(DecodeError::Field(e).to_string()));
                };
                let parent = e.path.strip_suffix(&format!(".{field}")).unwrap_or(&e.path);
                let parent = if parent == "(root)" || parent == field {
                    ""
                } else {
                    parent
                };
                if remove_field(&mut v, parent, field).is_none() {
                    return Err(ApiError::bad_request(DecodeError::Field(e).to_string()));
                }
                if validation == Validation::Warn {
                    let full = if parent.is_empty() {
                        field.to_string()
                    } else {
                        format!("{parent}.{field}")
                    };
                    warnings.push(format!("unknown field \"{full}\""));
                }
            }
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
        }
    }
    Err(ApiError::bad_request("too many unknown fields"))
}

/// One warning per field of Kubernetes' schema `obj` carries that keel
/// keeps without acting on, by path. An empty value (`status:
/// {loadBalancer: {}}` from `kubectl expose`) asks for nothing: no warning.
fn preserved_warnings(obj: &AnyObject) -> Vec<String> {
    keel_api::with_object!(obj, o => keel_api::resource::preserved_paths(o))
        .into_iter()
        .filter(|(_, empty)| !empty)
        .map(|(path, _)| format!("{path}: keel does not act on this field; it is kept as sent"))
        .collect()
}

/// The field serde names in `unknown field `x`, expected …`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(f, _)| f)
}

/// Removes `field` from the object at `path` (`spec.containers[0]`);
/// its value, or None when there is no such field.
fn remove_field(v: &mut Value, path: &str, field: &str) -> Option<Value> {
    let mut at = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indices) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        at = at.get_mut(name)?;
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let i = idx.trim_end_matches(']').parse::<usize>().ok()?;
            at = at.get_mut(i)?;
        }
    }
    at.as_object_mut().and_then(|m| m.remove(field))
}

/// Runs or dry-runs a write.
async fn write(app: &AppState, op: WriteOp, dry_run: bool) -> std::result::Result<Obj, StoreError> {
    if dry_run {
        // A dry run changes no version: an update answers with the stored
        // one, as Kubernetes does.
        let stored_rv = match &op {
            WriteOp::Update { obj, .. } => {
                let m = obj.meta();
                let key = if m.namespace.is_empty() {
                    m.name.clone()
                } else {
                    format!("{}/{}", m.namespace, m.name)
                };
                app.store
                    .snapshot()
                    .get(obj.kind(), &key)
                    .map(|o| o.meta().resource_version.clone())
            }
            _ => None,
        };
        let obj = app.store.dry_run(op).await?;
        Ok(match stored_rv {
            Some(rv) => {
                let mut any = obj.to_any();
                any.meta_mut().resource_version = rv;
                Obj::from_any(any)
            }
            None => obj,
        })
    } else {
        app.store.write(op).await
    }
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// GET on a collection: the list (or a Table of it), or with
/// `?watch=true` a watch. `limit` pages the list; the `continue` token of
/// a page resumes after its last object, read from the current state.
pub(super) async fn list(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    q: HashMap<String, String>,
    headers: HeaderMap,
) -> Result<Response> {
    let opts = ListOptions::parse(kind, &q)?;
    let as_table = table::wants_table(accept(&headers));
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str))
        .map_err(ApiError::bad_request)?;
    let ns = at.ns;
    if opts.watch {
        return watch::serve(app, kind, ns, opts, as_table.then_some(include));
    }
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit: {l:?} is not a non-negative number"))
        })?),
    };
    let after = match q.get("continue").map(String::as_str) {
        None | Some("") => None,
        Some(token) => Some(decode_continue(token)?),
    };
    // A list is never older than the resourceVersion asked for (Kubernetes'
    // NotOlderThan): wait for a version not reached yet, or say so.
    if let Some(rv) = opts.resource_version {
        super::options::wait_for_revision(&app.store, rv, super::options::FRESHNESS_WAIT).await?;
    }
    let snap = app.store.snapshot();
    let mut matched = snap
        .list(kind.kind, ns.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|o| opts.matches(o, ns.as_deref()))
        .filter(|o| after.as_deref().is_none_or(|a| o.key().as_str() > a));
    let page: Vec<Obj> = match limit {
        Some(n) => matched.by_ref().take(n).collect(),
        None => matched.by_ref().collect(),
    };
    let remaining = matched.count();
    let mut metadata = json!({"resourceVersion": snap.revision.to_string()});
    if remaining > 0
        && let Some(last) = page.last()
    {
        metadata["continue"] = json!(encode_continue(&last.key()));
        metadata["remainingItemCount"] = json!(remaining);
    }
    if as_table {
        let objects: Vec<Value> = page.iter().map(Obj::to_value).collect();
        let mut t = table::render(
            kind,
            &objects,
            &snap.revision.to_string(),
            include,
            SystemTime::now(),
        );
        t["metadata"] = metadata;
        return Ok(respond(StatusCode::OK, t.to_string().into_bytes(), &[]));
    }
    let mut out = Vec::with_capacity(256 + 1024 * page.len());
    out.extend_from_slice(
        format!(
            r#"{{"apiVersion":"{}","kind":"{}List","metadata":{},"items":["#,
            kind.api_version, kind.name, metadata
        )
        .as_bytes(),
    );
    for (i, obj) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&obj.to_json());
    }
    out.extend_from_slice(b"]}");
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(out),
    )
        .into_response())
}

/// A continue token: the last key of the page, hex-encoded behind a
/// version tag (opaque to clients, as Kubernetes' are).
fn encode_continue(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("k1.{hex}")
}

fn decode_continue(token: &str) -> Result<String> {
    let bad = || {
        ApiError::bad_request(format!(
            "continue: {token:?} is not a token this server issued"
        ))
    };
    let hex = token.strip_prefix("k1.").ok_or_else(bad)?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

fn current(app: &AppState, kind: &KindInfo, at: &Target) -> Result<Obj> {
    app.store
        .snapshot()
        .get(kind.kind, &at.key())
        .ok_or_else(|| at.not_found(kind))
}

/// One object, as JSON or as a Table of one row.
fn object_response(
    kind: &KindInfo,
    obj: &Obj,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response> {
    if table::wants_table(accept(headers)) {
        let include = IncludeObject::parse(q.get("includeObject").map(String::as_str))
            .map_err(ApiError::bad_request)?;
        let t = table::render(
            kind,
            &[obj.to_value()],
            &obj.meta().resource_version,
            include,
            SystemTime::now(),
        );
        return Ok(respond(StatusCode::OK, t.to_string().into_bytes(), &[]));
    }
    Ok(respond(StatusCode::OK, obj.to_json(), &[]))
}

pub(super) async fn get(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    q: HashMap<String, String>,
    headers: HeaderMap,
) -> Result<Response> {
    let obj = current(&app, kind, &at)?;
    object_response(kind, &obj, &q, &headers)
}

/// GET on a subresource: the object for `status`, a Scale for `scale`.
pub(super) async fn get_part(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    q: HashMap<String, String>,
    headers: HeaderMap,
    part: Part,
) -> Result<Response> {
    let obj = current(&app, kind, &at)?;
    match part {
        Part::Scale => Ok(respond(
            StatusCode::OK,
            scale_of(&obj.to_value()).to_string().into_bytes(),
            &[],
        )),
        _ => object_response(kind, &obj, &q, &headers),
    }
}

/// The `autoscaling/v1` Scale of an object with `spec.replicas`.
fn scale_of(v: &Value) -> Value {
    let meta = &v["metadata"];
    let selector = v
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": v.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": v.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

pub(super) async fn create(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    w: Write,
) -> Result<Response> {
    user_writable(kind)?;
    let opts = WriteOptions::parse(&w.q)?;
    let (body, mut warnings) = json_body(&w, opts.validation)?;
    let (obj, more) = decode_value(kind, &at, body, opts.validation)?;
    warnings.extend(more);
    let stored = write(&app, WriteOp::Create(obj), opts.dry_run).await?;
    Ok(respond(StatusCode::CREATED, stored.to_json(), &warnings))
}

/// PUT on an object, its status (how agents and controllers report) or
/// its scale.
pub(super) async fn update(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    w: Write,
    part: Part,
) -> Result<Response> {
    if part != Part::Status {
        user_writable(kind)?;
    }
    let opts = WriteOptions::parse(&w.q)?;
    let (body, mut warnings) = json_body(&w, opts.validation)?;
    if part == Part::Scale {
        return write_scale(&app, kind, &at, &body, &opts).await;
    }
    let (obj, more) = decode_value(kind, &at, body, opts.validation)?;
    warnings.extend(more);
    let op = WriteOp::Update {
        obj,
        status: part == Part::Status,
    };
    let stored = write(&app, op, opts.dry_run).await?;
    Ok(respond(StatusCode::OK, stored.to_json(), &warnings))
}

/// Sets `spec.replicas` from a Scale (whose resourceVersion, when given,
/// must be the object's).
async fn write_scale(
    app: &AppState,
    kind: &KindInfo,
    at: &Target,
    scale: &Value,
    opts: &WriteOptions,
) -> Result<Response> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("spec.replicas: required, a number"))?;
    let obj = current(app, kind, at)?;
    let mut v = obj.to_value();
    v["spec"]["replicas"] = json!(replicas);
    match scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) if !rv.is_empty() => v["metadata"]["resourceVersion"] = json!(rv),
        _ => {}
    }
    let (obj, _) = decode_value(kind, at, v, Validation::Strict)?;
    let stored = write(app, WriteOp::Update { obj, status: false }, opts.dry_run).await?;
    Ok(respond(
        StatusCode::OK,
        scale_of(&stored.to_value()).to_string().into_bytes(),
        &[],
    ))
}

/// Applies a body of `media` type to `doc`.
fn apply_patch(media: &str, doc: &mut Value, body: &[u8]) -> Result<()> {
    let parse = || -> Result<Value> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not JSON: {e}")))
    };
    let result = match media {
        "application/merge-patch+json" => {
            patch::merge(doc, &parse()?);
            Ok(())
        }
        "application/json-patch+json" => patch::json_patch(doc, &parse()?),
        "application/strategic-merge-patch+json" => patch::strategic(doc, &parse()?),
        other => {
            return Err(unsupported_media(
                other,
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json and application/apply-patch+yaml",
            ));
        }
    };
    result.map_err(|e| ApiError::new(422, "Invalid", e.to_string()))
}

const APPLY: &str = "application/apply-patch+yaml";

/// PATCH: the patch is applied to the stored object and the result
/// written with the stored resourceVersion, tried again (up to 5 times)
/// when another write came between, as Kubernetes does. Server-side apply
/// (`application/apply-patch+yaml`) creates the object when it is missing.
pub(super) async fn patch(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    w: Write,
    part: Part,
) -> Result<Response> {
    if part != Part::Status {
        user_writable(kind)?;
    }
    let opts = WriteOptions::parse(&w.q)?;
    let media = media_type(&w.headers);
    let dups = patch_duplicates(&media, &w.body, opts.validation)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let existing = app.store.snapshot().get(kind.kind, &at.key());
        if media == APPLY {
            if part != Part::Object {
                return Err(unsupported_media(
                    &media,
                    "a patch type other than apply on subresources",
                ));
            }
            let manager =
                w.q.get("fieldManager")
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "fieldManager: required for server-side apply (apply-patch+yaml)",
                        )
                    })?;
            let applied = apply::parse(&w.body).map_err(ApiError::bad_request)?;
            let Some(existing) = existing else {
                let v = apply::first(&applied, manager).map_err(ApiError::bad_request)?;
                let (obj, mut warnings) = decode_value(kind, &at, v, opts.validation)?;
                warnings.splice(0..0, dups);
                let stored = write(&app, WriteOp::Create(obj), opts.dry_run).await?;
                return Ok(respond(StatusCode::CREATED, stored.to_json(), &warnings));
            };
            let mut doc = existing.to_value();
            apply::apply(&mut doc, &applied, manager)
                .map_err(|e| ApiError::new(422, "Invalid", e))?;
            match finish_patch(&app, kind, &at, doc, &existing, part, &opts, &dups).await {
                Err(e) if is_conflict(&e) && attempt < 5 => continue,
                other => return other,
            }
        }
        let existing = existing.ok_or_else(|| at.not_found(kind))?;
        let mut doc = match part {
            Part::Scale => scale_of(&existing.to_value()),
            _ => existing.to_value(),
        };
        apply_patch(&media, &mut doc, &w.body)?;
        if part == Part::Scale {
            return write_scale(&app, kind, &at, &doc, &opts).await;
        }
        match finish_patch(&app, kind, &at, doc, &existing, part, &opts, &dups).await {
            Err(e) if is_conflict(&e) && attempt < 5 => continue,
            other => return other,
        }
    }
}

fn is_conflict(e: &ApiError) -> bool {
    e.0.code == 409 && e.0.reason == "Conflict"
}

/// Writes a patched document over `existing`; `dups` are the patch body's
/// own warnings.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per patch kind, each with all of these at hand"
)]
async fn finish_patch(
    app: &AppState,
    kind: &KindInfo,
    at: &Target,
    mut doc: Value,
    existing: &Obj,
    part: Part,
    opts: &WriteOptions,
    dups: &[String],
) -> Result<Response> {
    // A patch that leaves resourceVersion alone writes over the version it
    // was applied to; one that sets it asks for that version.
    if matches!(
        doc.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str),
        None | Some("")
    ) {
        doc["metadata"]["resourceVersion"] = json!(existing.meta().resource_version);
    }
    let (obj, mut warnings) = decode_value(kind, at, doc, opts.validation)?;
    warnings.splice(0..0, dups.iter().cloned());
    let op = WriteOp::Update {
        obj,
        status: part == Part::Status,
    };
    let stored = write(app, op, opts.dry_run).await?;
    Ok(respond(StatusCode::OK, stored.to_json(), &warnings))
}

/// The body of a DELETE (all optional), as kubectl sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptions {
    #[serde(default)]
    propagation_policy: Option<String>,
    #[serde(default)]
    orphan_dependents: Option<bool>,
    #[serde(default)]
    grace_period_seconds: Option<i64>,
    #[serde(default)]
    preconditions: Option<Preconditions>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// Reads the DeleteOptions of a request (body, then query), refusing what
/// keel-control cannot do as asked.
fn delete_options(kind: &KindInfo, w: &Write) -> Result<(DeleteOptions, Vec<String>)> {
    let mut o: DeleteOptions = if w.body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(&w.body)
            .map_err(|e| ApiError::bad_request(format!("DeleteOptions: {e}")))?
    };
    if let Some(p) = w.q.get("propagationPolicy") {
        o.propagation_policy = Some(p.clone());
    }
    if let Some(g) = w.q.get("gracePeriodSeconds") {
        o.grace_period_seconds = Some(g.parse().map_err(|_| {
            ApiError::bad_request(format!("gracePeriodSeconds: {g:?} is not a number"))
        })?);
    }
    if let Some(d) = w.q.get("dryRun") {
        o.dry_run = vec![d.clone()];
    }
    if o.orphan_dependents == Some(true) {
        o.propagation_policy = Some("Orphan".into());
    }
    match o.propagation_policy.as_deref() {
        None | Some("") | Some("Background") => {}
        Some(p @ ("Orphan" | "Foreground")) if kind.kind == Kind::Deployment => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: {p} is not supported: keel-control deletes the pods of a Deployment in the background after it (use Background)"
            )));
        }
        Some("Orphan" | "Foreground") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: {other:?} is not one of Orphan, Foreground, Background"
            )));
        }
    }
    if let Some(d) = o.dry_run.iter().find(|d| *d != "All") {
        return Err(ApiError::bad_request(format!(
            "dryRun: {d:?} is not supported (only \"All\")"
        )));
    }
    let mut warnings = Vec::new();
    if let Some(g) = o.grace_period_seconds
        && kind.kind == Kind::Pod
    {
        warnings.push(format!(
            "gracePeriodSeconds: {g} is not used: keel-agent stops a pod's containers with the pod's terminationGracePeriodSeconds"
        ));
    }
    Ok((o, warnings))
}

pub(super) async fn delete(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    w: Write,
) -> Result<Response> {
    user_writable(kind)?;
    let (opts, warnings) = delete_options(kind, &w)?;
    let pre = opts.preconditions.unwrap_or_default();
    let uid = w.q.get("uid").cloned().or(pre.uid);
    let rv = w.q.get("resourceVersion").cloned().or(pre.resource_version);
    let precondition = Precondition {
        uid,
        resource_version: rv
            .map(|r| {
                r.parse().map_err(|_| {
                    ApiError::bad_request(format!("resourceVersion: {r:?} is not a number"))
                })
            })
            .transpose()?,
    };
    let name = at.name().to_string();
    let gone = write(
        &app,
        WriteOp::Delete {
            kind: kind.kind,
            namespace: at.ns.unwrap_or_default(),
            name,
            precondition,
        },
        !opts.dry_run.is_empty(),
    )
    .await?;
    Ok(respond(StatusCode::OK, gone.to_json(), &warnings))
}

/// DELETE on a collection: every object the selectors match, one by one;
/// answers the list of what was deleted.
pub(super) async fn delete_collection(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    at: Target,
    w: Write,
) -> Result<Response> {
    user_writable(kind)?;
    let list_opts = ListOptions::parse(kind, &w.q)?;
    let (opts, warnings) = delete_options(kind, &w)?;
    let ns = at.ns;
    let targets: Vec<Obj> = app
        .store
        .snapshot()
        .list(kind.kind, ns.as_deref().unwrap_or(""))
        .into_iter()
        .filter(|o| list_opts.matches(o, ns.as_deref()))
        .collect();
    let mut items = Vec::new();
    for obj in targets {
        let m = obj.meta();
        let op = WriteOp::Delete {
            kind: kind.kind,
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            precondition: Precondition::default(),
        };
        match write(&app, op, !opts.dry_run.is_empty()).await {
            Ok(gone) => items.push(gone.to_value()),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let list = json!({
        "apiVersion": kind.api_version,
        "kind": format!("{}List", kind.name),
        "metadata": {"resourceVersion": app.store.revision().to_string()},
        "items": items,
    });
    Ok(respond(
        StatusCode::OK,
        list.to_string().into_bytes(),
        &warnings,
    ))
}
