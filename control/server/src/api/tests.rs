//! The router made from the table of kinds, against the in-memory store:
//! every row's paths answer, scope and subresources follow the row, derived
//! kinds refuse writes, field selectors follow `Resource::EXTRA_FIELDS`, and
//! everything but `/healthz` needs the token.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use keel_api::{KINDS, Status};
use serde_json::{Value, json};
use tower_service::Service;

use super::{router, state::AppState};
use crate::store::{MemoryBackend, Store, StoreConfig};

const TOKEN: &str = "test-token";

fn app() -> Router {
    let store = Store::open(Box::new(MemoryBackend::new()), StoreConfig::default()).unwrap();
    router(Arc::new(AppState {
        store,
        token: TOKEN.into(),
        bookmark_interval: Duration::from_secs(60),
    }))
}

/// Sends one request with the token (unless `token` is false) and returns
/// the status and the JSON body (`Null` when there is none).
async fn send(
    app: &mut Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: bool,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = app.call(req.body(body).unwrap()).await.unwrap();
    let code = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn call(app: &mut Router, method: Method, path: &str, body: Option<Value>) -> StatusCode {
    send(app, method, path, body, true).await.0
}

/// The message of a failure's `Status` body.
fn message(body: Value) -> String {
    serde_json::from_value::<Status>(body).unwrap().message
}

#[tokio::test]
async fn every_kind_in_the_table_is_listed_at_its_paths() {
    let mut app = app();
    for kind in &KINDS {
        let mut paths = vec![kind.collection_path("")];
        if kind.namespaced {
            paths.push(kind.collection_path("default"));
        }
        for path in paths {
            let (code, body) = send(&mut app, Method::GET, &path, None, true).await;
            assert_eq!(code, StatusCode::OK, "{path}");
            assert_eq!(body["kind"], format!("{}List", kind.name), "{path}");
            assert_eq!(body["apiVersion"], kind.api_version, "{path}");
        }
    }
}

#[tokio::test]
async fn an_object_is_created_read_reported_on_and_deleted() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let pod =
        json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_eq!(
        call(&mut app, Method::POST, pods, Some(pod)).await,
        StatusCode::CREATED
    );
    let (code, mut stored) = send(&mut app, Method::GET, &format!("{pods}/a"), None, true).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(stored["kind"], "Pod");

    stored["status"] = json!({"phase": "Running"});
    let (code, updated) = send(
        &mut app,
        Method::PUT,
        &format!("{pods}/a/status"),
        Some(stored),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(updated["status"]["phase"], "Running");
    let (_, read) = send(
        &mut app,
        Method::GET,
        &format!("{pods}/a/status"),
        None,
        true,
    )
    .await;
    assert_eq!(read["status"]["phase"], "Running");

    let (code, listed) = send(
        &mut app,
        Method::GET,
        "/api/v1/pods?fieldSelector=status.phase%3DRunning",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    assert_eq!(
        call(&mut app, Method::DELETE, &format!("{pods}/a"), None).await,
        StatusCode::OK
    );
    assert_eq!(
        call(&mut app, Method::GET, &format!("{pods}/a"), None).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn kinds_keel_control_derives_are_read_only_to_users() {
    let mut app = app();
    let eps = "/api/v1/namespaces/default/endpoints";
    let ep = json!({"metadata": {"name": "web"}, "subsets": []});
    for (method, path) in [
        (Method::POST, eps.to_string()),
        (Method::PUT, format!("{eps}/web")),
        (Method::DELETE, format!("{eps}/web")),
    ] {
        assert_eq!(
            call(&mut app, method.clone(), &path, Some(ep.clone())).await,
            StatusCode::FORBIDDEN,
            "{method} {path}"
        );
    }
    assert_eq!(call(&mut app, Method::GET, eps, None).await, StatusCode::OK);
    // Endpoints have no status subresource in the table.
    assert_eq!(
        call(
            &mut app,
            Method::PUT,
            &format!("{eps}/web/status"),
            Some(ep)
        )
        .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_path_of_the_wrong_scope_names_the_right_one() {
    let mut app = app();
    for (method, path, want) in [
        (
            Method::GET,
            "/api/v1/pods/a",
            "pods are namespaced: use /api/v1/namespaces/NAMESPACE/pods",
        ),
        (
            Method::POST,
            "/apis/apps/v1/deployments",
            "deployments are namespaced: use /apis/apps/v1/namespaces/NAMESPACE/deployments",
        ),
        (
            Method::PUT,
            "/api/v1/services/a/status",
            "services are namespaced",
        ),
        (
            Method::GET,
            "/api/v1/namespaces/default/nodes",
            "nodes are cluster-scoped: use /api/v1/nodes",
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/default/nodes/n",
            "nodes are cluster-scoped",
        ),
    ] {
        let (code, body) = send(&mut app, method.clone(), path, None, true).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(message(body).contains(want), "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_resources_are_not_found() {
    let mut app = app();
    for path in [
        "/api/v1/secrets",
        "/apis/apps/v1/pods",
        "/api/v1/namespaces/default/deployments",
        "/api/v2/pods",
    ] {
        let (code, body) = send(&mut app, Method::GET, path, None, true).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
        assert!(message(body).contains(path), "{path}");
    }
}

#[tokio::test]
async fn field_selectors_are_the_kinds_own() {
    let mut app = app();
    let (code, body) = send(
        &mut app,
        Method::GET,
        "/api/v1/pods?fieldSelector=spec.image%3Dx",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(message(body).ends_with(
        "(supported: metadata.name, metadata.namespace, spec.nodeName, status.phase, status.podIP)"
    ));
    assert_eq!(
        call(
            &mut app,
            Method::GET,
            "/api/v1/services?fieldSelector=spec.nodeName%3Dn",
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &mut app,
            Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Dn",
            None
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn everything_but_healthz_needs_the_token() {
    let mut app = app();
    assert_eq!(
        send(&mut app, Method::GET, "/healthz", None, false).await.0,
        StatusCode::OK
    );
    for path in ["/api/v1/pods", "/api/v1/pods/a", "/api/v1/secrets", "/nope"] {
        assert_eq!(
            send(&mut app, Method::GET, path, None, false).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
}
