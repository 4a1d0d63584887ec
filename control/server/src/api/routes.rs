//! The routes, generated from keel-api's table of kinds ([`keel_api::KINDS`]):
//! for each row, the collection and object paths of its scope and one path
//! per subresource it has, every handler bound to the row, so no handler
//! looks a kind up. The same paths in the other scope answer 404 naming the
//! right one; any other path answers 404 as well.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, Uri},
    routing::{MethodRouter, any, get, post},
};
use keel_api::{KindInfo, Subresource};

use super::{
    error::ApiError,
    handlers::{self, Part, Target, Write},
    state::AppState,
};

type App = State<Arc<AppState>>;
type Params = Query<HashMap<String, String>>;
type Routes = Router<Arc<AppState>>;
type Methods = MethodRouter<Arc<AppState>>;

/// Adds `kind`'s routes to `router`.
pub(super) fn add(router: Routes, kind: &'static KindInfo) -> Routes {
    let base = kind.group_version_path();
    let plural = kind.plural;
    let namespaced = format!("{base}/namespaces/{{ns}}/{plural}");
    let cluster = format!("{base}/{plural}");
    let (here, elsewhere) = if kind.namespaced {
        (namespaced, cluster)
    } else {
        (cluster, namespaced)
    };

    let mut router = router
        .route(&here, list(kind).merge(create(kind)))
        .route(&format!("{here}/{{name}}"), object(kind))
        .route(&format!("{elsewhere}/{{name}}"), any(wrong_scope(kind)));
    for &sub in kind.subresources {
        let path = sub.path();
        router = router
            .route(&format!("{here}/{{name}}/{path}"), subresource(kind, sub))
            .route(
                &format!("{elsewhere}/{{name}}/{path}"),
                any(wrong_scope(kind)),
            );
    }
    // A namespaced kind's cluster path lists it across all namespaces, as
    // Kubernetes' does; creating there has no namespace to create in.
    if kind.namespaced {
        router.route(&elsewhere, list(kind).post(wrong_scope(kind)))
    } else {
        router.route(&elsewhere, any(wrong_scope(kind)))
    }
}

/// A pod's streaming subresources: `log`, `exec` and `portforward`
/// proxied to the pod's node (`crate::nodeproxy`); `attach`, which
/// keel-control does not serve yet, a 404 saying what to use.
pub(super) fn not_proxied(router: Routes) -> Routes {
    router
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/log",
            get(crate::nodeproxy::pod_log),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(crate::nodeproxy::pod_exec).post(crate::nodeproxy::pod_exec),
        )
        .route(
            "/api/v1/nodes/{name}/proxy/{*path}",
            get(crate::nodeproxy::node_proxy),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            get(crate::nodeproxy::pod_portforward).post(crate::nodeproxy::pod_portforward),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            any(|| {
                std::future::ready(ApiError::not_found(
                    "pods/attach: keel-control does not proxy attach to nodes yet; use exec",
                ))
            }),
        )
}

/// What a path the table has no route for answers.
pub(super) async fn no_such_resource(uri: Uri) -> ApiError {
    ApiError::not_found(format!("the server has no resource at {}", uri.path()))
}

/// GET on a collection: list, or watch; DELETE: deletecollection.
fn list(kind: &'static KindInfo) -> Methods {
    get(
        move |State(app): App, Path(at): Path<Target>, Query(q): Params, headers: HeaderMap| {
            handlers::list(app, kind, at, q, headers)
        },
    )
}

fn create(kind: &'static KindInfo) -> Methods {
    post(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| { handlers::create(app, kind, at, Write { q, headers, body }) },
    )
    .delete(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| {
            handlers::delete_collection(app, kind, at, Write { q, headers, body })
        },
    )
}

/// An object's path: get, replace, patch, delete.
fn object(kind: &'static KindInfo) -> Methods {
    get(
        move |State(app): App, Path(at): Path<Target>, Query(q): Params, headers: HeaderMap| {
            handlers::get(app, kind, at, q, headers)
        },
    )
    .put(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| {
            handlers::update(app, kind, at, Write { q, headers, body }, Part::Object)
        },
    )
    .patch(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| {
            handlers::patch(app, kind, at, Write { q, headers, body }, Part::Object)
        },
    )
    .delete(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| { handlers::delete(app, kind, at, Write { q, headers, body }) },
    )
}

fn subresource(kind: &'static KindInfo, sub: Subresource) -> Methods {
    let part = match sub {
        Subresource::Status => Part::Status,
        Subresource::Scale => Part::Scale,
    };
    get(
        move |State(app): App, Path(at): Path<Target>, Query(q): Params, headers: HeaderMap| {
            handlers::get_part(app, kind, at, q, headers, part)
        },
    )
    .put(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| {
            handlers::update(app, kind, at, Write { q, headers, body }, part)
        },
    )
    .patch(
        move |State(app): App,
              Path(at): Path<Target>,
              Query(q): Params,
              headers: HeaderMap,
              body: Bytes| {
            handlers::patch(app, kind, at, Write { q, headers, body }, part)
        },
    )
}

/// A path of the other scope: 404, naming the kind's own paths.
fn wrong_scope(
    kind: &'static KindInfo,
) -> impl Fn() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || {
        std::future::ready(ApiError::not_found(if kind.namespaced {
            format!(
                "{} are namespaced: use {}",
                kind.plural,
                kind.collection_path("NAMESPACE")
            )
        } else {
            format!(
                "{} are cluster-scoped: use {}",
                kind.plural,
                kind.collection_path("")
            )
        }))
    }
}
