//! ReplicaSets, read-only and derived: one per entry of a Deployment's
//! revision history (see `controllers::deployments::history`), named
//! `DEPLOYMENT-HASH` like the pods made from that template, owned by the
//! Deployment, with the revision annotation and the counts of its pods.
//! keel runs pods straight from Deployments; these exist so that what
//! reads ReplicaSets (`kubectl rollout history`, `kubectl rollout undo`,
//! `kubectl get rs`) works.

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::get,
};
use keel_api::{Deployment, Pod, Selector};
use serde_json::{Value, json};

use super::{error::ApiError, state::AppState, table};
use crate::controllers::deployments::{TEMPLATE_HASH_LABEL, history, template_hash};

type Params = Query<HashMap<String, String>>;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/replicasets",
            get(|State(app): State<Arc<AppState>>, Path(ns): Path<String>, Query(q): Params, h: HeaderMap| async move {
                list(&app, Some(&ns), &q, &h)
            }),
        )
        .route(
            "/apis/apps/v1/replicasets",
            get(|State(app): State<Arc<AppState>>, Query(q): Params, h: HeaderMap| async move {
                list(&app, None, &q, &h)
            }),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
            get(|State(app): State<Arc<AppState>>, Path((ns, name)): Path<(String, String)>| async move {
                let snap = app.store.snapshot();
                derive_all(&snap, Some(&ns))
                    .into_iter()
                    .find(|rs| rs["metadata"]["name"] == name)
                    .map(Json)
                    .ok_or_else(|| ApiError::not_found(format!("replicasets.apps {name:?} not found")))
            }),
        )
}

fn list(
    app: &AppState,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let selector = Selector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?;
    let snap = app.store.snapshot();
    let items: Vec<Value> = derive_all(&snap, ns)
        .into_iter()
        .filter(|rs| {
            let labels = rs["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            selector.matches(&labels)
        })
        .collect();
    let rv = snap.revision.to_string();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if table::wants_table(accept) {
        return Ok(Json(render_table(&items, &rv)).into_response());
    }
    Ok(Json(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSetList",
        "metadata": {"resourceVersion": rv},
        "items": items,
    }))
    .into_response())
}

fn derive_all(snap: &crate::store::State, ns: Option<&str>) -> Vec<Value> {
    snap.deployments
        .values()
        .filter(|d| ns.is_none_or(|ns| d.metadata.namespace == ns))
        .flat_map(|d| derive(d, &snap.pods_owned_by(&d.metadata.uid)))
        .collect()
}

/// The ReplicaSets of one Deployment, oldest revision first.
pub fn derive(d: &Deployment, pods: &[Arc<Pod>]) -> Vec<Value> {
    let current = template_hash(d);
    history::entries(d)
        .into_iter()
        .filter_map(|(revision, template)| {
            let mut at = d.clone();
            at.spec.template = serde_json::from_value(template).ok()?;
            let hash = template_hash(&at);
            let mine: Vec<&Arc<Pod>> = pods
                .iter()
                .filter(|p| p.metadata.labels.get(TEMPLATE_HASH_LABEL) == Some(&hash))
                .filter(|p| p.is_active() && !p.metadata.is_terminating())
                .collect();
            let ready = mine.iter().filter(|p| p.is_ready()).count();
            let mut labels = at.spec.template.metadata.labels.clone();
            labels.insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut template = serde_json::to_value(&at.spec.template).ok()?;
            template["metadata"]["labels"] = json!(labels);
            let mut selector = d.spec.selector.match_labels.clone();
            selector.insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let replicas = if hash == current { d.replicas() } else { 0 };
            Some(json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": format!("{}-{hash}", d.metadata.name),
                    "namespace": d.metadata.namespace,
                    "uid": format!("{}-{hash}", d.metadata.uid),
                    "resourceVersion": d.metadata.resource_version,
                    "creationTimestamp": d.metadata.creation_timestamp,
                    "labels": labels,
                    "annotations": {
                        history::REVISION_ANNOTATION: revision.to_string(),
                        "deployment.kubernetes.io/desired-replicas": d.replicas().to_string(),
                    },
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "Deployment",
                        "name": d.metadata.name, "uid": d.metadata.uid,
                        "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": selector},
                    "template": template,
                },
                "status": {
                    "replicas": mine.len(),
                    "fullyLabeledReplicas": mine.len(),
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": d.metadata.generation,
                },
            }))
        })
        .collect()
}

/// `NAME DESIRED CURRENT READY AGE`, as Kubernetes prints ReplicaSets.
fn render_table(items: &[Value], rv: &str) -> Value {
    let col = |name: &str, t: &str| json!({"name": name, "type": t, "format": "", "description": "", "priority": 0});
    let now = SystemTime::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|rs| {
            let age = rs["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .map(|t| table::human_duration(now.duration_since(t).unwrap_or_default()))
                .unwrap_or_else(|| "<unknown>".into());
            json!({
                "cells": [rs["metadata"]["name"], rs["spec"]["replicas"], rs["status"]["replicas"], rs["status"]["readyReplicas"], age],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": rs["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [col("Name", "string"), col("Desired", "integer"), col("Current", "integer"), col("Ready", "integer"), col("Age", "string")],
        "rows": rows,
    })
}
