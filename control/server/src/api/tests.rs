//! The router made from the table of kinds, against the in-memory store:
//! every row's paths answer, scope and subresources follow the row, derived
//! kinds refuse writes, field selectors follow `Resource::EXTRA_FIELDS`, and
//! everything but `/healthz` needs the token.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

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

pub(super) fn app() -> Router {
    let store = Store::open(Box::new(MemoryBackend::new()), StoreConfig::default()).unwrap();
    router(Arc::new(AppState {
        store,
        token: TOKEN.into(),
        bookmark_interval: Duration::from_secs(60),
        body_timeout: Duration::from_millis(500),
        requests: Default::default(),
        join: None,
    }))
}

/// Sends one request with the token (unless `token` is false) and returns
/// the status and the JSON body (`Null` when there is none).
pub(super) async fn send(
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
        "/api/v1/limitranges",
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

/// Sends one request with the token, a body of `content_type` and extra
/// headers; returns the status, the headers and the JSON body.
pub(super) async fn send_raw(
    app: &mut Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl AsRef<[u8]>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.as_ref().to_vec()))
        .unwrap();
    let resp = app.call(req).await.unwrap();
    let code = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn pod_json(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test]
async fn errors_the_router_answers_are_status_objects_too() {
    let mut app = app();
    let (code, body) = send(
        &mut app,
        Method::PUT,
        "/api/v1/namespaces/default/pods",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "MethodNotAllowed");
    let (code, _, body) = send_raw(
        &mut app,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        "application/vnd.kubernetes.protobuf",
        "k8s\0",
    )
    .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["reason"], "UnsupportedMediaType");
    let (code, body) = send(
        &mut app,
        Method::GET,
        "/api/v1/namespaces/default/services/nope",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["details"]["name"], "nope");
    assert_eq!(body["details"]["kind"], "services");
    assert_eq!(body["message"], "services \"nope\" not found");
}

#[tokio::test]
async fn a_dry_run_validates_and_writes_nothing() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let (code, body) = send(
        &mut app,
        Method::POST,
        &format!("{pods}?dryRun=All"),
        Some(pod_json("a")),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"]["name"], "a");
    assert_eq!(
        send(&mut app, Method::GET, &format!("{pods}/a"), None, true)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let mut bad = pod_json("b");
    bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000}]);
    let (code, _) = send(
        &mut app,
        Method::POST,
        &format!("{pods}?dryRun=All"),
        Some(bad),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        call(&mut app, Method::POST, pods, Some(pod_json("a"))).await,
        StatusCode::CREATED
    );
    let (code, body) = send(
        &mut app,
        Method::DELETE,
        &format!("{pods}/a?dryRun=All"),
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = send(&mut app, Method::GET, &format!("{pods}/a"), None, true).await;
    assert_eq!(code, StatusCode::OK);
    let rv = body["metadata"]["resourceVersion"].clone();
    let (code, _, body) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{pods}/a?dryRun=All"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["metadata"]["labels"]["x"], "y");
    assert_eq!(body["metadata"]["resourceVersion"], rv);
    let (_, body) = send(&mut app, Method::GET, &format!("{pods}/a"), None, true).await;
    assert!(body["metadata"]["labels"].get("x").is_none());
    assert_eq!(
        call(
            &mut app,
            Method::POST,
            &format!("{pods}?dryRun=Some"),
            Some(pod_json("c"))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn field_validation_strict_refuses_warn_names_ignore_drops() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let mut pod = pod_json("a");
    pod["spec"]["containers"][0]["imagePolicy"] = json!("x");
    let body = pod.to_string();
    let (code, _, s) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Strict"),
        "application/json",
        &body,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(s["message"].as_str().unwrap().contains("imagePolicy"));
    let (code, headers, _) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Warn"),
        "application/json",
        &body,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        headers.get(header::WARNING).unwrap(),
        r#"299 - "unknown field \"spec.containers[0].imagePolicy\"""#
    );
    let body = body.replace("\"a\"", "\"b\"");
    let (code, headers, _) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Ignore"),
        "application/json",
        &body,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert!(headers.get(header::WARNING).is_none());
    let mut run = pod_json("c");
    run["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    let (code, headers, _) = send_raw(
        &mut app,
        Method::POST,
        pods,
        "application/json",
        &run.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert!(
        headers
            .get(header::WARNING)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("spec.tolerations")
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    for n in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            call(&mut app, Method::POST, pods, Some(pod_json(n))).await,
            StatusCode::CREATED
        );
    }
    let mut names = Vec::new();
    let mut token = String::new();
    for _ in 0..3 {
        let (code, body) = send(
            &mut app,
            Method::GET,
            &format!("{pods}?limit=2&continue={token}"),
            None,
            true,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        for i in body["items"].as_array().unwrap() {
            names.push(i["metadata"]["name"].as_str().unwrap().to_string());
        }
        token = body["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(
        call(
            &mut app,
            Method::GET,
            &format!("{pods}?continue=bogus"),
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn discovery_lists_every_kind_with_its_verbs_and_short_names() {
    let mut app = app();
    let (code, v) = send(&mut app, Method::GET, "/version", None, true).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["major"], "1");
    let (_, v) = send(&mut app, Method::GET, "/api", None, true).await;
    assert_eq!(v["versions"], json!(["v1"]));
    let (_, v) = send(&mut app, Method::GET, "/apis", None, true).await;
    assert_eq!(v["groups"][0]["name"], "apps");
    for kind in &KINDS {
        let (code, list) = send(
            &mut app,
            Method::GET,
            &kind.group_version_path(),
            None,
            true,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let r = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == kind.plural)
            .unwrap();
        assert_eq!(r["kind"], kind.name);
        assert_eq!(r["shortNames"], json!(kind.short_names));
        assert_eq!(
            r["verbs"].as_array().unwrap().iter().any(|v| v == "patch"),
            kind.user_writable
        );
    }
    let (code, _) = send(&mut app, Method::GET, "/apis/nope", None, true).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, root) = send(&mut app, Method::GET, "/openapi/v3", None, true).await;
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    // Listed under the hash of its content, as kube-apiserver does.
    let hash = url.rsplit_once("?hash=").unwrap().1;
    assert!(
        hash.len() == 128
            && hash
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
        "{url}"
    );
    let (code, doc) = send(&mut app, Method::GET, &url, None, true).await;
    assert_eq!(code, StatusCode::OK);
    // The schemas kubectl explain reads, the kind found by its GVK.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert_eq!(
        schemas["Deployment"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    assert!(schemas.contains_key("PodSpec"), "{:?}", schemas.keys());
    let (_, core) = send(&mut app, Method::GET, "/openapi/v3/api/v1", None, true).await;
    assert!(core["components"]["schemas"]["Pod"]["properties"]["spec"].is_object());
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    // No request body: kubectl's client-side apply keeps taking its
    // strategic merge patch metadata from its built-in types.
    assert!(patch.get("requestBody").is_none());
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
}

#[tokio::test]
async fn tables_and_the_scale_subresource() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    assert_eq!(
        call(&mut app, Method::POST, pods, Some(pod_json("a"))).await,
        StatusCode::CREATED
    );
    let req = Request::builder()
        .uri(pods)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Body::empty())
        .unwrap();
    let resp = app.call(req).await.unwrap();
    let t: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["cells"][1], "0/1");

    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        call(&mut app, Method::POST, deploys, Some(d)).await,
        StatusCode::CREATED
    );
    let (code, _, scale) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{deploys}/web/scale"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":4}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{scale}");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
    let (_, d) = send(&mut app, Method::GET, &format!("{deploys}/web"), None, true).await;
    assert_eq!(d["spec"]["replicas"], 4);
}

#[tokio::test]
async fn delete_options_are_honoured_or_refused_naming_the_option() {
    let mut app = app();
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        call(&mut app, Method::POST, deploys, Some(d)).await,
        StatusCode::CREATED
    );
    for policy in ["Orphan", "Foreground"] {
        let (code, _, s) = send_raw(
            &mut app,
            Method::DELETE,
            &format!("{deploys}/web"),
            "application/json",
            &json!({"propagationPolicy": policy}).to_string(),
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("propagationPolicy: {policy}")),
            "{s}"
        );
    }
    assert_eq!(
        call(&mut app, Method::GET, &format!("{deploys}/web"), None).await,
        StatusCode::OK
    );
    // A precondition on the wrong uid refuses; Background deletes.
    let (code, _, _) = send_raw(
        &mut app,
        Method::DELETE,
        &format!("{deploys}/web"),
        "application/json",
        r#"{"preconditions":{"uid":"not-it"}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, _, _) = send_raw(
        &mut app,
        Method::DELETE,
        &format!("{deploys}/web"),
        "application/json",
        r#"{"propagationPolicy":"Background"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // A pod's gracePeriodSeconds is answered with a warning.
    let pods = "/api/v1/namespaces/default/pods";
    assert_eq!(
        call(&mut app, Method::POST, pods, Some(pod_json("a"))).await,
        StatusCode::CREATED
    );
    let (code, headers, _) = send_raw(
        &mut app,
        Method::DELETE,
        &format!("{pods}/a"),
        "application/json",
        r#"{"gracePeriodSeconds":0}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        headers
            .get(header::WARNING)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("gracePeriodSeconds")
    );
}

#[tokio::test]
async fn a_collection_delete_removes_what_its_selector_matches() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    for n in ["a", "b"] {
        assert_eq!(
            call(&mut app, Method::POST, pods, Some(pod_json(n))).await,
            StatusCode::CREATED
        );
    }
    let mut other = pod_json("c");
    other["metadata"]["labels"] = json!({"app": "db"});
    assert_eq!(
        call(&mut app, Method::POST, pods, Some(other)).await,
        StatusCode::CREATED
    );
    let (code, body) = send(
        &mut app,
        Method::DELETE,
        &format!("{pods}?labelSelector=app%3Dweb"),
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (_, left) = send(&mut app, Method::GET, pods, None, true).await;
    let names: Vec<_> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("c")]);
}

#[tokio::test]
async fn the_first_service_address_is_kept_for_default_kubernetes() {
    let mut app = app();
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ip: Option<&str>| {
        let mut s = json!({"metadata": {"name": name}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s
    };
    let (code, body) = send(
        &mut app,
        Method::POST,
        svcs,
        Some(svc("web", Some("10.96.0.1"))),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("reserved for the default/kubernetes Service"),
        "{body}"
    );
    let (code, body) = send(&mut app, Method::POST, svcs, Some(svc("web", None)), true).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(body["spec"]["clusterIP"], "10.96.0.2");
    let (code, body) = send(
        &mut app,
        Method::POST,
        svcs,
        Some(svc("kubernetes", Some("10.96.0.1"))),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn logs_and_exec_need_the_cluster_ca_and_exec_names_what_it_lacks() {
    let mut app = app();
    // This app runs without a cluster CA: it cannot dial nodes.
    let (code, body) = send(
        &mut app,
        Method::GET,
        "/api/v1/namespaces/default/pods/a/log",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        body["message"].as_str().unwrap().contains("cluster CA"),
        "{body}"
    );
    let (code, body) = send(
        &mut app,
        Method::POST,
        "/api/v1/namespaces/default/pods/a/exec",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("command"),
        "{body}"
    );
    let (code, body) = send(
        &mut app,
        Method::POST,
        "/api/v1/namespaces/default/pods/a/exec?command=ls&stdout=true",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("WebSocket"),
        "{body}"
    );
}

#[tokio::test]
async fn requests_are_counted_by_method_and_code() {
    let mut app = app();
    send(&mut app, Method::GET, "/api/v1/nodes", None, true).await;
    send(&mut app, Method::GET, "/api/v1/nodes", None, false).await;
    let req = Request::builder()
        .uri("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.call(req).await.unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(r#"keel_control_requests_total{method="GET",code="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"keel_control_requests_total{method="GET",code="401"} 1"#),
        "{text}"
    );
}

/// A Table of `path`'s collection.
async fn table_of(app: &mut Router, path: &str) -> Value {
    let req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Body::empty())
        .unwrap();
    let resp = app.call(req).await.unwrap();
    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn config_maps_and_secrets_are_stored_as_kubernetes_stores_them() {
    let mut app = app();
    let cms = "/api/v1/namespaces/default/configmaps";
    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, body) = send(
        &mut app,
        Method::POST,
        cms,
        Some(json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "immutable": true})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // Immutable: a data change is refused naming the field.
    let (code, body) = send(
        &mut app,
        Method::PUT,
        &format!("{cms}/cfg"),
        Some(json!({"metadata": {"name": "cfg"}, "data": {"a": "9"}, "immutable": true})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(body).contains("data"));
    // A key in data and binaryData is refused.
    let (code, body) = send(
        &mut app,
        Method::POST,
        cms,
        Some(json!({"metadata": {"name": "dup"}, "data": {"k": "1"}, "binaryData": {"k": "AA=="}})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(body).contains("binaryData[k]"));

    // stringData is merged into data and never returned.
    let (code, body) = send(
        &mut app,
        Method::POST,
        secrets,
        Some(json!({"metadata": {"name": "db"}, "stringData": {"password": "hunter2"}})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["password"], "aHVudGVyMg==");
    assert_eq!(body["type"], "Opaque");
    assert!(body.get("stringData").is_none());
    let (_, got) = send(&mut app, Method::GET, &format!("{secrets}/db"), None, true).await;
    assert_eq!(got["data"]["password"], "aHVudGVyMg==");
    assert!(got.get("stringData").is_none());
    // A dockerconfigjson Secret needs its key.
    let (code, body) = send(
        &mut app,
        Method::POST,
        secrets,
        Some(json!({"metadata": {"name": "reg"}, "type": "kubernetes.io/dockerconfigjson"})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(body).contains(".dockerconfigjson"));

    // kubectl get's Tables: DATA counts keys; a Secret's row shows no value.
    let t = table_of(&mut app, cms).await;
    assert_eq!(t["rows"][0]["cells"][0], "cfg");
    assert_eq!(t["rows"][0]["cells"][1], 2);
    let t = table_of(&mut app, secrets).await;
    assert_eq!(t["rows"][0]["cells"][0], "db");
    assert_eq!(t["rows"][0]["cells"][1], "Opaque");
    assert_eq!(t["rows"][0]["cells"][2], 1);
    assert!(!t.to_string().contains("aHVudGVyMg"), "{t}");
}

#[tokio::test]
async fn pod_fields_keel_now_implements_are_kept_without_a_warning() {
    let mut app = app();
    let pod = json!({"metadata": {"name": "p"}, "spec": {
        "enableServiceLinks": false, "serviceAccountName": "builder",
        "imagePullSecrets": [{"name": "regcred"}],
        "containers": [{"name": "c", "image": "busybox",
            "envFrom": [{"configMapRef": {"name": "cfg"}}],
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}});
    let (code, headers, body) = send_raw(
        &mut app,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        "application/json",
        &pod.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert!(headers.get(header::WARNING).is_none(), "{headers:?}");
    assert_eq!(body["spec"]["enableServiceLinks"], false);
    assert_eq!(body["spec"]["serviceAccountName"], "builder");
    assert_eq!(body["spec"]["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(
        body["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["key"],
        "password"
    );
}

/// The `Warning` headers of a response, as texts.
fn warnings(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all(header::WARNING)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn kubernetes_fields_keel_does_not_act_on_are_kept_through_every_verb() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "p"}, "spec": {
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "containers": [{"name": "c", "image": "busybox",
            "terminationMessagePath": "/dev/termination-log", "stdin": false}]}});
    let (code, headers, body) = send_raw(
        &mut app,
        Method::POST,
        pods,
        "application/json",
        &pod.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let w = warnings(&headers);
    assert_eq!(w.len(), 4, "{w:?}");
    for path in [
        "spec.containers[0].stdin",
        "spec.containers[0].terminationMessagePath",
        "spec.schedulerName",
        "spec.tolerations",
    ] {
        assert!(
            w.iter()
                .any(|w| w.contains(&format!("{path}: keel does not act on this field"))),
            "{path}: {w:?}"
        );
    }
    assert_eq!(body["spec"]["tolerations"][0]["key"], "k");

    // GET and LIST return them as sent.
    let (_, got) = send(&mut app, Method::GET, &format!("{pods}/p"), None, true).await;
    assert_eq!(got["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(got["spec"]["containers"][0]["stdin"], false);
    let (_, list) = send(&mut app, Method::GET, pods, None, true).await;
    assert_eq!(
        list["items"][0]["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );

    // A status write keeps them.
    let mut status = got.clone();
    status["status"] = json!({"phase": "Running"});
    let (code, after) = send(
        &mut app,
        Method::PUT,
        &format!("{pods}/p/status"),
        Some(status),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{after}");
    assert_eq!(after["spec"]["tolerations"][0]["key"], "k");

    // Patches apply to the whole document, kept fields included (on a
    // Deployment: a pod's spec is immutable).
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"metadata": {"name": "web"}, "spec": {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "tolerations": [{"operator": "Exists"}],
            "schedulerName": "default-scheduler",
            "containers": [{"name": "c", "image": "busybox",
                "terminationMessagePath": "/dev/termination-log"}]}}}});
    let (code, body) = send(&mut app, Method::POST, deploys, Some(d), true).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, _, patched) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{deploys}/web"),
        "application/strategic-merge-patch+json",
        r#"{"spec": {"template": {"spec": {"containers": [{"name": "c", "terminationMessagePolicy": "FallbackToLogsOnError"}]}}}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    let c = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(patched["spec"]["revisionHistoryLimit"], 5);
    assert_eq!(
        patched["metadata"]["generation"], 2,
        "a change of kept fields is a change of the spec"
    );
    let (code, _, patched) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{deploys}/web"),
        "application/json-patch+json",
        r#"[{"op": "remove", "path": "/spec/template/spec/tolerations"}]"#,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    let spec = &patched["spec"]["template"]["spec"];
    assert!(spec.get("tolerations").is_none(), "{patched}");
    assert_eq!(spec["schedulerName"], "default-scheduler");

    // Server-side apply creates with them and keeps them.
    let (code, _, applied) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{pods}/q?fieldManager=kubectl"),
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  priorityClassName: high\n  containers: [{name: c, image: busybox, tty: true}]\n",
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{applied}");
    let (_, got) = send(&mut app, Method::GET, &format!("{pods}/q"), None, true).await;
    assert_eq!(got["spec"]["priorityClassName"], "high");
    assert_eq!(got["spec"]["containers"][0]["tty"], true);

    // A field of the pod spec under a container is refused with its path,
    // or with Warn dropped and named.
    let mut wrong = pod_json("r");
    wrong["spec"]["containers"][0]["tolerations"] = json!([]);
    let (code, body) = send(&mut app, Method::POST, pods, Some(wrong.clone()), true).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let m = message(body);
    assert!(
        m.contains("spec.containers[0]") && m.contains("unknown field `tolerations`"),
        "{m}"
    );
    let (code, headers, body) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Warn"),
        "application/json",
        &wrong.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(
        warnings(&headers),
        [r#"299 - "unknown field \"spec.containers[0].tolerations\"""#]
    );
    assert!(body["spec"]["containers"][0].get("tolerations").is_none());
}

#[tokio::test]
async fn events_are_stored_listed_by_involved_object_and_shown_as_kubectl_shows_them() {
    let mut app = app();
    let events = "/api/v1/namespaces/default/events";
    let ev = |name: &str, pod: &str, reason: &str| {
        json!({"metadata": {"name": name},
               "involvedObject": {"kind": "Pod", "namespace": "default", "name": pod, "uid": format!("uid-{pod}")},
               "reason": reason, "message": format!("{reason} {pod}"), "type": "Normal",
               "source": {"component": "kubelet", "host": "node-1"}})
    };
    for (name, pod, reason) in [
        ("a.1", "web", "Scheduled"),
        ("a.2", "web", "Pulled"),
        ("b.1", "db", "Pulled"),
    ] {
        let (code, body) = send(
            &mut app,
            Method::POST,
            events,
            Some(ev(name, pod, reason)),
            true,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        // Filled on create as Kubernetes' recorder fills them.
        assert_eq!(body["count"], 1, "{body}");
        assert!(body["firstTimestamp"].is_string(), "{body}");
        assert_eq!(body["firstTimestamp"], body["lastTimestamp"]);
    }
    // An event about a pod in another namespace is refused naming the field.
    let mut bad = ev("c.1", "web", "Pulled");
    bad["involvedObject"]["namespace"] = json!("other");
    let (code, body) = send(&mut app, Method::POST, events, Some(bad), true).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(body).contains("involvedObject.namespace"));

    // kubectl describe's query: the object's events only.
    let sel = "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=uid-web";
    let (code, body) = send(
        &mut app,
        Method::GET,
        &format!("{events}?fieldSelector={sel}"),
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let reasons: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Scheduled", "Pulled"]);
    let (_, body) = send(
        &mut app,
        Method::GET,
        "/api/v1/events?fieldSelector=reason%3DPulled",
        None,
        true,
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2, "{body}");

    // kubectl get events' Table.
    let t = table_of(&mut app, events).await;
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    let row = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][9] == "a.1")
        .unwrap();
    assert_eq!(row["cells"][1], "Normal");
    assert_eq!(row["cells"][2], "Scheduled");
    assert_eq!(row["cells"][3], "pod/web");
    assert_eq!(row["cells"][5], "kubelet, node-1");
    assert_eq!(row["cells"][6], "Scheduled web");
    assert_eq!(row["cells"][8], "1");
}

#[tokio::test]
async fn health_is_public_and_metrics_pass_promtool() {
    let mut app = app();
    for path in ["/healthz", "/livez", "/readyz"] {
        let (code, _) = send(&mut app, Method::GET, path, None, false).await;
        assert_eq!(code, StatusCode::OK, "{path}");
    }
    // A write, so the store has committed something.
    let (code, _) = send(
        &mut app,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(json!({"metadata": {"name": "m"}})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let resp = app
        .call(
            Request::builder()
                .uri("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for want in [
        "keel_control_objects{kind=\"ConfigMap\"} 1",
        "keel_control_objects{kind=\"Event\"} 0",
        "keel_control_store_commits_total ",
        "keel_control_store_commit_seconds_total ",
        "keel_control_store_subscribers ",
        // The create's latency, under its verb and resource.
        "keel_control_request_duration_seconds_count{verb=\"create\",resource=\"configmaps\"} 1",
        "keel_control_request_duration_seconds_bucket{verb=\"create\",resource=\"configmaps\",le=\"+Inf\"} 1",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    assert!(
        !text.contains("keel_control_store_commits_total 0\n"),
        "{text}"
    );
    keel_api::testing::promtool_check("keel-control's metrics", &text);
}

#[test]
fn request_latency_is_labelled_by_verb_and_resource_without_long_running_requests() {
    use super::latency_labels;
    let l = |m: &str, p: &str, q: &str| latency_labels(m, p, q);
    let some = |v: &str, r: &str| Some((v.to_string(), r.to_string()));
    assert_eq!(
        l("GET", "/api/v1/namespaces/default/pods", ""),
        some("list", "pods")
    );
    assert_eq!(
        l("GET", "/api/v1/namespaces/default/pods/web", ""),
        some("get", "pods")
    );
    assert_eq!(
        l("PUT", "/api/v1/namespaces/default/pods/web/status", ""),
        some("update", "pods/status")
    );
    assert_eq!(
        l("POST", "/apis/apps/v1/namespaces/default/deployments", ""),
        some("create", "deployments")
    );
    assert_eq!(
        l(
            "GET",
            "/api/v1/namespaces/default/pods/web/log",
            "tailLines=5"
        ),
        some("get", "pods/log")
    );
    // Long-running: left out.
    assert_eq!(l("GET", "/api/v1/pods", "watch=true"), None);
    assert_eq!(
        l(
            "GET",
            "/api/v1/namespaces/default/pods/web/log",
            "follow=true"
        ),
        None
    );
    assert_eq!(
        l(
            "GET",
            "/api/v1/namespaces/default/pods/web/exec",
            "command=ls"
        ),
        None
    );
    // Not a resource.
    assert_eq!(l("GET", "/metrics", ""), None);
    assert_eq!(l("GET", "/version", ""), None);
}

/// Opens a watch and returns its body, to read frame by frame.
async fn open_watch(app: &mut Router, path: &str) -> Body {
    let req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.call(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.into_body()
}

/// The next watch line (None when the stream ended), within 10 s.
async fn next_event(body: &mut Body) -> Option<Value> {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a watch event or the end within 10 s")?
        .unwrap();
    let data = frame.into_data().unwrap();
    Some(serde_json::from_slice(&data).unwrap())
}

#[tokio::test]
async fn resource_versions_and_watch_timeouts_are_checked() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    // Garbage is refused naming the parameter, on a list and on a watch.
    for q in ["resourceVersion=abc", "watch=true&resourceVersion=-1"] {
        let (code, body) = send(&mut app, Method::GET, &format!("{pods}?{q}"), None, true).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{q}");
        assert!(message(body).starts_with("resourceVersion: "), "{q}");
    }
    call(&mut app, Method::POST, pods, Some(pod_json("a"))).await;
    let (_, list) = send(&mut app, Method::GET, pods, None, true).await;
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // A list at a version the store never reaches: after Kubernetes' 3 s
    // wait, 504 "Too large resource version", retry after 1 s.
    let started = std::time::Instant::now();
    let (code, body) = send(
        &mut app,
        Method::GET,
        &format!("{pods}?resourceVersion={}", rv + 1000),
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(body["reason"], "Timeout");
    assert_eq!(body["details"]["retryAfterSeconds"], 1);
    assert_eq!(
        body["message"],
        format!(
            "Timeout: Too large resource version: {}, current: {rv}",
            rv + 1000
        )
    );

    // A watch from u64::MAX: one ERROR event of the same kind, then the end
    // (not a replay of the history, not an endless silent stream).
    let mut w = open_watch(
        &mut app,
        &format!("{pods}?watch=true&resourceVersion={}", u64::MAX),
    )
    .await;
    let e = next_event(&mut w).await.unwrap();
    assert_eq!(e["type"], "ERROR", "{e}");
    assert_eq!(e["object"]["code"], 504, "{e}");
    assert!(next_event(&mut w).await.is_none());

    // A watch from the next version waits for it, then streams what
    // follows it.
    let mut w = open_watch(
        &mut app,
        &format!("{pods}?watch=true&resourceVersion={}", rv + 1),
    )
    .await;
    call(&mut app, Method::POST, pods, Some(pod_json("b"))).await;
    call(&mut app, Method::POST, pods, Some(pod_json("c"))).await;
    let e = next_event(&mut w).await.unwrap();
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["metadata"]["name"], "c", "{e}");

    // timeoutSeconds beyond what a clock can add: no timeout (it panicked
    // the watch's task, ending the stream with nothing).
    let mut w = open_watch(
        &mut app,
        &format!("{pods}?watch=true&timeoutSeconds={}", u64::MAX),
    )
    .await;
    let e = next_event(&mut w).await.unwrap();
    assert_eq!(e["type"], "ADDED", "{e}");
}

#[tokio::test]
async fn duplicate_keys_are_refused_strict_named_warn_and_last_wins() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let body = |name: &str| {
        format!(
            r#"{{"metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"one","image":"two"}}]}}}}"#
        )
    };
    let (code, _, s) = send_raw(&mut app, Method::POST, pods, "application/json", &body("a")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        s["message"],
        r#"strict decoding error: duplicate field "spec.containers[0].image""#
    );
    let (code, headers, stored) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Warn"),
        "application/json",
        &body("b"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(stored["spec"]["containers"][0]["image"], "two");
    assert_eq!(
        warnings(&headers),
        [r#"299 - "duplicate field \"spec.containers[0].image\"""#]
    );
    let (code, headers, _) = send_raw(
        &mut app,
        Method::POST,
        &format!("{pods}?fieldValidation=Ignore"),
        "application/json",
        &body("c"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert!(warnings(&headers).is_empty());
}

#[tokio::test]
async fn duplicate_keys_in_patches_and_apply_bodies_are_checked_too() {
    let mut app = app();
    let pods = "/api/v1/namespaces/default/pods";
    let pod = r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"one"}]}}"#;
    let (code, _, _) = send_raw(&mut app, Method::POST, pods, "application/json", pod).await;
    assert_eq!(code, StatusCode::CREATED);
    let at = format!("{pods}/p");
    let patch = r#"{"metadata":{"labels":{"a":"1","a":"2"}}}"#;
    for media in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let (code, _, s) = send_raw(&mut app, Method::PATCH, &at, media, patch).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{media}: {s}");
        assert_eq!(
            s["message"], r#"strict decoding error: duplicate field "metadata.labels.a""#,
            "{media}"
        );
    }
    // Nothing was written by the refused patches.
    let (_, _, stored) = send_raw(&mut app, Method::GET, &at, "application/json", "").await;
    assert!(stored["metadata"].get("labels").is_none(), "{stored}");
    let (code, headers, stored) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{at}?fieldValidation=Warn"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(stored["metadata"]["labels"]["a"], "2");
    assert_eq!(
        warnings(&headers),
        [r#"299 - "duplicate field \"metadata.labels.a\"""#]
    );
    let (code, headers, _) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{at}?fieldValidation=Ignore"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(warnings(&headers).is_empty());
    // Server-side apply's YAML, on create and on update.
    let applied = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: q\nspec:\n  containers:\n  - name: c\n    image: one\n    image: two\n";
    let q = format!("{pods}/q?fieldManager=me");
    let (code, _, s) = send_raw(
        &mut app,
        Method::PATCH,
        &q,
        "application/apply-patch+yaml",
        applied,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{s}");
    assert_eq!(
        s["message"],
        r#"strict decoding error: duplicate field "spec.containers[0].image""#
    );
    let (code, headers, stored) = send_raw(
        &mut app,
        Method::PATCH,
        &format!("{q}&fieldValidation=Warn"),
        "application/apply-patch+yaml",
        applied,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["spec"]["containers"][0]["image"], "two");
    assert_eq!(
        warnings(&headers),
        [r#"299 - "duplicate field \"spec.containers[0].image\"""#]
    );
    let (code, _, _) = send_raw(
        &mut app,
        Method::PATCH,
        &q,
        "application/apply-patch+yaml",
        applied,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// `kubectl get -o yaml` from a real cluster carries `selfLink` and
/// `managedFields`: the object is created (Strict validation), the managed
/// fields with a warning that keel keeps none, and neither is stored.
#[tokio::test]
async fn exported_metadata_self_link_and_managed_fields_are_accepted() {
    let mut app = app();
    let cms = "/api/v1/namespaces/default/configmaps";
    let exported = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default",
            "selfLink": "/api/v1/namespaces/default/configmaps/cfg",
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "v1", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}]},
        "data": {"a": "1"}});
    let (code, headers, body) = send_raw(
        &mut app,
        Method::POST,
        &format!("{cms}?fieldValidation=Strict"),
        "application/json",
        &exported.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(
        warnings(&headers),
        [
            r#"299 - "metadata.managedFields: keel-control keeps no managed fields; the ones sent are ignored""#
        ]
    );
    assert!(body["metadata"].get("selfLink").is_none(), "{body}");
    assert!(body["metadata"].get("managedFields").is_none(), "{body}");
    // Empty managed fields (what a client clearing them sends) say nothing.
    let mut update = body.clone();
    update["metadata"]["managedFields"] = json!([]);
    update["metadata"]["selfLink"] = json!("/api/v1/namespaces/default/configmaps/cfg");
    let (code, headers, body) = send_raw(
        &mut app,
        Method::PUT,
        &format!("{cms}/cfg"),
        "application/json",
        &update.to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(warnings(&headers).is_empty());
}

#[tokio::test]
async fn bodies_past_3_mib_and_annotations_past_256_kib_are_refused() {
    let mut app = app();
    let cms = "/api/v1/namespaces/default/configmaps";
    let big = "x".repeat(3 << 20);
    let (code, _, s) = send_raw(
        &mut app,
        Method::POST,
        cms,
        "application/json",
        &json!({"metadata": {"name": "big"}, "data": {"k": big}}).to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s["reason"], "RequestEntityTooLarge");
    assert_eq!(s["message"], "Request entity too large: limit is 3145728");

    let notes = json!({"a": "y".repeat(200 << 10), "b": "y".repeat(60 << 10)});
    let (code, body) = send(
        &mut app,
        Method::POST,
        cms,
        Some(json!({"metadata": {"name": "noted", "annotations": notes}})),
        true,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(body).contains("metadata.annotations: Too long: must have at most 262144 bytes")
    );
    // Just under the limit is fine.
    let notes = json!({"a": "y".repeat(200 << 10), "b": "y".repeat((56 << 10) - 2)});
    assert_eq!(
        call(
            &mut app,
            Method::POST,
            cms,
            Some(json!({"metadata": {"name": "noted", "annotations": notes}}))
        )
        .await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_watcher_that_falls_behind_the_history_is_told_to_relist() {
    let store = Store::open(
        Box::new(MemoryBackend::new()),
        StoreConfig {
            history_bytes: 100 << 10,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let mut app = router(Arc::new(AppState {
        store,
        token: TOKEN.into(),
        bookmark_interval: Duration::from_secs(60),
        body_timeout: Duration::from_millis(500),
        requests: Default::default(),
        join: None,
    }));
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |v: usize| json!({"metadata": {"name": "big"}, "data": {"blob": format!("{v}{}", "z".repeat(20 << 10))}});
    call(&mut app, Method::POST, cms, Some(cm(0))).await;
    let (_, list) = send(&mut app, Method::GET, cms, None, true).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // A watcher that reads nothing while 300 updates of 20 KiB go by (more
    // than its buffer of 256 lines holds).
    let mut w = open_watch(&mut app, &format!("{cms}?watch=true&resourceVersion={rv}")).await;
    for v in 1..=300 {
        assert_eq!(
            call(&mut app, Method::PUT, &format!("{cms}/big"), Some(cm(v))).await,
            StatusCode::OK
        );
    }
    let mut last = Value::Null;
    let mut n = 0;
    while let Some(e) = next_event(&mut w).await {
        n += 1;
        last = e;
        assert!(n <= 301, "the watch never ended");
    }
    assert_eq!(last["type"], "ERROR", "{last}");
    assert_eq!(last["object"]["code"], 410, "{last}");
    assert!(n < 300, "{n} events before the cut");
}

#[tokio::test]
async fn a_watcher_that_does_not_read_holds_a_bounded_buffer() {
    use std::sync::atomic::Ordering::Relaxed;

    use super::watch::{BUFFER_BYTES, BUFFERED};
    let mut app = app();
    let cms = "/api/v1/namespaces/default/configmaps";
    for i in 0..20 {
        let cm = json!({"metadata": {"name": format!("big-{i}")}, "data": {"blob": "z".repeat(1 << 20)}});
        assert_eq!(
            call(&mut app, Method::POST, cms, Some(cm)).await,
            StatusCode::CREATED
        );
    }
    // Three watchers of 20 MiB of state that read nothing.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(open_watch(&mut app, &format!("{cms}?watch=true")).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = BUFFERED.load(Relaxed);
    // Other tests' watchers run alongside (each bounded the same way).
    assert!(
        (3 * (BUFFER_BYTES - (2 << 20))..=8 * BUFFER_BYTES).contains(&held),
        "{held} bytes buffered"
    );
    // Nothing is lost: a watcher that reads gets every object.
    let mut names = BTreeSet::new();
    while names.len() < 20 {
        let e = next_event(&mut idle[0]).await.unwrap();
        assert_eq!(e["type"], "ADDED");
        names.insert(
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    drop(idle);
}

#[tokio::test]
async fn a_body_that_trickles_is_cut() {
    use futures_util::StreamExt;
    let mut app = app();
    // Half a body, then nothing more.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(
        axum::body::Bytes::from_static(b"{\"metadata\":"),
    )])
    .chain(futures_util::stream::pending());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/namespaces/default/configmaps")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), app.call(req))
        .await
        .expect("answered within 10 s")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
}

#[test]
fn writes_the_store_could_not_commit_are_503_or_504() {
    use crate::{api::error::ApiError, store::StoreError};
    let ApiError(s) = StoreError::Unavailable("etcd is unreachable".into()).into();
    assert_eq!((s.code, s.reason.as_str()), (503, "ServiceUnavailable"));
    assert!(s.message.contains("etcd is unreachable"));
    let ApiError(s) = StoreError::Timeout("etcd did not confirm the write".into()).into();
    assert_eq!((s.code, s.reason.as_str()), (504, "Timeout"));
    assert!(s.message.contains("etcd did not confirm"));
}

#[test]
fn reads_of_the_current_state_are_told_apart_from_reads_at_a_version() {
    use super::is_consistent_read;
    let get = Method::GET;
    let cases = [
        (&get, "/api/v1/namespaces/default/pods", "", true),
        (&get, "/api/v1/nodes/n1", "", true),
        (&get, "/apis/apps/v1/deployments", "watch=true", true),
        (&get, "/api/v1/pods", "resourceVersion=", true),
        (&get, "/api/v1/pods", "resourceVersion=0", false),
        (&get, "/api/v1/pods", "watch=1&resourceVersion=120", false),
        // Discovery is no state.
        (&get, "/api", "", false),
        (&get, "/api/v1", "", false),
        (&get, "/apis/apps/v1", "", false),
        (&get, "/version", "", false),
        (
            &Method::POST,
            "/api/v1/namespaces/default/services",
            "",
            false,
        ),
    ];
    for (method, path, query, want) in cases {
        assert_eq!(
            is_consistent_read(method, path, query),
            want,
            "{method} {path}?{query}"
        );
    }
}

#[tokio::test]
async fn without_etcd_a_replica_refuses_current_reads_and_writes_but_serves_versioned_reads() {
    let store = Store::open(Box::new(MemoryBackend::new()), StoreConfig::default()).unwrap();
    let mut app = router(Arc::new(AppState {
        store: store.clone(),
        token: TOKEN.into(),
        bookmark_interval: Duration::from_secs(60),
        body_timeout: Duration::from_millis(500),
        requests: Default::default(),
        join: None,
    }));
    store.set_backend_unreachable(Some("no answer within 2s".into()));
    let (code, body) = send(
        &mut app,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(message(body).contains("etcd is unreachable"));
    let (code, _) = send(
        &mut app,
        Method::GET,
        "/api/v1/namespaces/default/pods?resourceVersion=0",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = send(&mut app, Method::GET, "/readyz", None, false).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    // Unauthenticated clients learn nothing more than before.
    let (code, _) = send(&mut app, Method::GET, "/api/v1/pods", None, false).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    store.set_backend_unreachable(None);
    let (code, _) = send(
        &mut app,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        None,
        true,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = send(&mut app, Method::GET, "/readyz", None, false).await;
    assert_eq!(code, StatusCode::OK);
}
