//! Discovery, as kubectl and client-go read it: `/version`, `/api`,
//! `/api/v1`, `/apis`, `/apis/GROUP` and `/apis/GROUP/VERSION` (the legacy,
//! unaggregated documents: kubectl 1.32 asks for the aggregated ones first
//! and reads these when the answer's Content-Type is plain JSON), made from
//! the table of kinds; and OpenAPI v3 (`/openapi/v3` and one document per
//! group-version) with two parts:
//! - each kind's object path with its PATCH operation and the
//!   `fieldValidation` parameter, which is what kubectl looks up to leave
//!   field validation to the server. The operation declares no request
//!   body, so kubectl's client-side `apply` does not take its strategic
//!   merge patch metadata from these documents but from its own built-in
//!   types, as it did before they had schemas;
//! - `components.schemas`: every kind's schema with its
//!   `x-kubernetes-group-version-kind`, and the schemas they refer to,
//!   derived from keel_api's types ([`keel_api::openapi`]), which is what
//!   `kubectl explain` reads.
//!
//! The documents are built once, on first use; the root lists each under
//! `?hash=` of its content (kubectl caches a document by that URL), and a
//! request naming the current hash is told the answer never changes.

use std::{
    collections::BTreeMap,
    sync::{Arc, LazyLock},
};

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use keel_api::{KINDS, Subresource, openapi};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use super::{error::ApiError, state::AppState};

/// The Kubernetes minor version keel-control answers as: the API it is
/// shaped after (kubectl warns when it is more than one minor away).
pub const KUBERNETES_MINOR: &str = "32";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/version", get(|| async { Json(version()) }))
        .route("/api", get(|| async { Json(api_versions()) }))
        .route("/apis", get(|| async { Json(api_groups()) }))
        .route("/apis/{group}", get(group))
        .route("/openapi/v3", get(|| async { Json(openapi_root()) }))
        .route("/openapi/v3/api/{version}", get(openapi_core))
        .route("/openapi/v3/apis/{group}/{version}", get(openapi_group))
        .merge(resource_lists())
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-keel-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// The served group-versions other than the core group's, by group.
fn groups() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for k in KINDS.iter().filter(|k| !k.group().is_empty()) {
        let versions = out.entry(k.group()).or_default();
        if !versions.contains(&k.version()) {
            versions.push(k.version());
        }
    }
    out
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": vs,
        "preferredVersion": vs[0],
    })
}

fn api_groups() -> Value {
    let groups: Vec<Value> = groups()
        .iter()
        .map(|(name, versions)| {
            let mut g = api_group(name, versions);
            let m = g.as_object_mut().expect("an object");
            m.remove("kind");
            m.remove("apiVersion");
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

async fn group(Path(group): Path<String>) -> Result<Json<Value>, ApiError> {
    groups()
        .get(group.as_str())
        .map(|versions| Json(api_group(&group, versions)))
        .ok_or_else(|| ApiError::not_found(format!("the server serves no API group {group:?}")))
}

/// The APIResourceList of one group-version.
pub fn resource_list(group_version: &str) -> Value {
    let mut resources = Vec::new();
    for k in KINDS.iter().filter(|k| k.api_version == group_version) {
        resources.push(json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.name,
            "verbs": k.verbs(),
            "shortNames": k.short_names,
            "categories": k.categories,
        }));
        for sub in k.subresources {
            let verbs = match sub {
                Subresource::Status => vec!["get", "patch", "update"],
                Subresource::Scale => vec!["get", "patch", "update"],
            };
            let mut r = json!({
                "name": format!("{}/{}", k.plural, sub.path()),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.name,
                "verbs": verbs,
            });
            if *sub == Subresource::Scale {
                r["kind"] = json!("Scale");
                r["group"] = json!("autoscaling");
                r["version"] = json!("v1");
            }
            resources.push(r);
        }
    }
    if group_version == "apps/v1" {
        // Derived from Deployments' revision history (see `replicasets`).
        resources.push(json!({
            "name": "replicasets",
            "singularName": "replicaset",
            "namespaced": true,
            "kind": "ReplicaSet",
            "verbs": ["get", "list"],
            "shortNames": ["rs"],
        }));
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// One route per served group-version's resource list.
fn resource_lists() -> Router<Arc<AppState>> {
    let mut seen: Vec<&str> = Vec::new();
    let mut router = Router::new();
    for k in &KINDS {
        if seen.contains(&k.api_version) {
            continue;
        }
        seen.push(k.api_version);
        let gv = k.api_version;
        router = router.route(
            &k.group_version_path(),
            get(move || async move { Json(resource_list(gv)) }),
        );
    }
    router
}

/// One served OpenAPI document: its JSON and the hash of its content.
struct OpenApiDocument {
    body: Bytes,
    hash: String,
}

/// The OpenAPI v3 documents by group-version, built once.
fn openapi_documents() -> &'static BTreeMap<&'static str, OpenApiDocument> {
    static DOCS: LazyLock<BTreeMap<&'static str, OpenApiDocument>> = LazyLock::new(|| {
        let mut docs = BTreeMap::new();
        for k in &KINDS {
            if docs.contains_key(k.api_version) {
                continue;
            }
            let doc = openapi_gv(k.api_version).expect("a served group-version has a document");
            let body = Bytes::from(serde_json::to_vec(&doc).expect("JSON serializes"));
            // As kube-apiserver: SHA-512 of the document, upper-case hex.
            let hash = hex::encode_upper(Sha512::digest(&body));
            docs.insert(k.api_version, OpenApiDocument { body, hash });
        }
        docs
    });
    &DOCS
}

fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (gv, doc) in openapi_documents() {
        let info = KINDS
            .iter()
            .find(|k| k.api_version == *gv)
            .expect("a document per served group-version");
        let path = info.group_version_path();
        paths.insert(
            path.trim_start_matches('/').to_string(),
            json!({"serverRelativeURL": format!("/openapi/v3{path}?hash={}", doc.hash)}),
        );
    }
    json!({"paths": paths})
}

#[derive(serde::Deserialize)]
struct HashQuery {
    hash: Option<String>,
}

async fn openapi_core(
    Path(version): Path<String>,
    Query(q): Query<HashQuery>,
) -> Result<Response, ApiError> {
    openapi_document(&version, q.hash)
}

async fn openapi_group(
    Path((group, version)): Path<(String, String)>,
    Query(q): Query<HashQuery>,
) -> Result<Response, ApiError> {
    openapi_document(&format!("{group}/{version}"), q.hash)
}

/// The OpenAPI v3 document of one group-version: each kind's object path
/// with a PATCH operation that takes `fieldValidation` and `dryRun`, and
/// the kinds' schemas.
pub fn openapi_gv(group_version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for k in KINDS.iter().filter(|k| k.api_version == group_version) {
        let path = if k.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}/{{name}}",
                k.group_version_path(),
                k.plural
            )
        } else {
            format!("{}/{}/{{name}}", k.group_version_path(), k.plural)
        };
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", k.name),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": k.group(), "version": k.version(), "kind": k.name},
                "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "keel", "version": format!("v1.{KUBERNETES_MINOR}")},
        "paths": paths,
        "components": {"schemas": openapi::component_schemas(group_version)},
    }))
}

fn openapi_document(group_version: &str, hash: Option<String>) -> Result<Response, ApiError> {
    let doc = openapi_documents().get(group_version).ok_or_else(|| {
        ApiError::not_found(format!(
            "the server has no OpenAPI document for {group_version:?}"
        ))
    })?;
    // The URL names the content: under the current hash it never changes
    // (kube-apiserver answers the same way).
    let cache = if hash.as_deref() == Some(doc.hash.as_str()) {
        "public, immutable, max-age=31536000"
    } else {
        "no-cache, private"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, cache),
        ],
        doc.body.clone(),
    )
        .into_response())
}
