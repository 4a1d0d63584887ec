//! The runtime's routes on the agent's local socket, for `keelctl logs` and
//! `keelctl exec`:
//!
//! - `GET /pods/{namespace}/{name}/logs?container=C&follow=true&previous=true`
//!   (and Kubernetes' `tailLines`, `sinceSeconds`, `timestamps`,
//!   `limitBytes`): the container's log lines (CRI records joined back into
//!   lines); with `follow`, new lines as they are written, until the client
//!   goes away.
//! - `POST /pods/{namespace}/{name}/exec` with `{"container": C,
//!   "command": [...], "timeoutSeconds": N}`: runs the command in the
//!   container and answers `{"exitCode", "stdout", "stderr"}`.
//! - `GET /pods/{namespace}/{name}/exec?command=…&stdin=…&tty=…` upgraded
//!   to a WebSocket: interactive exec ([`super::exec_ws`]).
//! - `GET /pods/{namespace}/{name}/portforward?port=P` upgraded to a
//!   WebSocket: a TCP connection to the pod's `localhost:P`
//!   ([`super::portforward`]).

use std::{path::PathBuf, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    backend::{Observed, PodRef, PodRuntime},
    logs,
    shim::server::LOG_KEEP,
};

/// The pods whose containers this node runs, by key (`namespace/name`),
/// for logs and exec; each pod's worker keeps its own entry.
pub type Registry = std::sync::Arc<tokio::sync::Mutex<std::collections::BTreeMap<String, PodRef>>>;

#[derive(Clone)]
pub(super) struct Api<R: PodRuntime + Clone> {
    pub(super) runtime: R,
    pub(super) pods: Registry,
}

pub fn router<R: PodRuntime + Clone>(runtime: R, pods: Registry) -> Router {
    Router::new()
        .route("/pods/{namespace}/{name}/logs", get(logs_handler::<R>))
        .route(
            "/pods/{namespace}/{name}/exec",
            post(exec_handler::<R>).get(super::exec_ws::handler::<R>),
        )
        .route(
            "/pods/{namespace}/{name}/portforward",
            get(super::portforward::handler::<R>),
        )
        .with_state(Api { runtime, pods })
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    previous: bool,
    /// Kubernetes' `tailLines`, `sinceSeconds`, `timestamps`, `limitBytes`.
    #[serde(default, rename = "tailLines")]
    tail_lines: Option<usize>,
    #[serde(default, rename = "sinceSeconds")]
    since_seconds: Option<u64>,
    #[serde(default)]
    timestamps: bool,
    #[serde(default, rename = "limitBytes")]
    limit_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    #[serde(default)]
    pub container: Option<String>,
    pub command: Vec<String>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub(super) fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, format!("{}\n", msg.into())).into_response()
}

/// The pod's containers and the chosen one's latest (or previous) attempt.
pub(super) async fn pick<R: PodRuntime + Clone>(
    api: &Api<R>,
    ns: &str,
    name: &str,
    container: Option<&str>,
    previous: bool,
) -> Result<(PodRef, Observed), Response> {
    let key = format!("{ns}/{name}");
    let pr = api.pods.lock().await.get(&key).cloned().ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            format!("pod {key} is not running on this node"),
        )
    })?;
    let all = api
        .runtime
        .list(&pr)
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let names: std::collections::BTreeSet<&str> = all
        .iter()
        .filter(|o| !o.kind_init)
        .map(|o| o.name.as_str())
        .collect();
    let c = match container {
        Some(c) => c.to_string(),
        None if names.len() == 1 => names.iter().next().unwrap().to_string(),
        None => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!(
                    "pod {key} has several containers; choose one of [{}] with -c",
                    names.into_iter().collect::<Vec<_>>().join(" ")
                ),
            ));
        }
    };
    let mut mine: Vec<Observed> = all.into_iter().filter(|o| o.name == c).collect();
    mine.sort_by_key(|o| o.attempt);
    let o = if previous {
        let last = mine.pop();
        mine.pop().or_else(|| {
            // Older attempts are removed; their log files stay.
            last.filter(|l| l.attempt > 0).map(|mut l| {
                l.attempt -= 1;
                l.log = l.log.with_file_name(format!("{}.log", l.attempt));
                l
            })
        })
    } else {
        mine.pop()
    };
    o.map(|o| (pr, o)).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            format!(
                "container {c:?} in pod {key} has no {}run",
                if previous { "previous " } else { "" }
            ),
        )
    })
}

async fn logs_handler<R: PodRuntime + Clone>(
    State(api): State<Api<R>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let (_, o) = match pick(&api, &ns, &name, q.container.as_deref(), q.previous).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let path = o.log.clone();
    let entries = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || logs::read_entries(&p, LOG_KEEP))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let since = q
        .since_seconds
        .map(|s| logs::timestamp(std::time::SystemTime::now() - Duration::from_secs(s)));
    let text = logs::select(
        &entries,
        &logs::Selection {
            tail: q.tail_lines,
            since,
            timestamps: q.timestamps,
            limit: q.limit_bytes,
        },
    );
    if !q.follow {
        return text.into_response();
    }
    Body::from_stream(follow(path, text, q.timestamps)).into_response()
}

/// The text so far, then whatever is appended to the file, polled.
fn follow(
    path: PathBuf,
    first: String,
    timestamps: bool,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    let start = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    futures_util::stream::unfold(
        (Some(first), start, path),
        move |(first, mut offset, path)| async move {
            if let Some(f) = first {
                return Some((Ok(f), (None, offset, path)));
            }
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len < offset {
                    // Rotated: start over on the new file.
                    offset = 0;
                }
                if len > offset {
                    let bytes = tokio::fs::read(&path).await.unwrap_or_default();
                    let new = String::from_utf8_lossy(
                        &bytes[offset as usize..bytes.len().min(len as usize)],
                    )
                    .into_owned();
                    offset = len;
                    let text: String = new
                        .lines()
                        .filter_map(logs::parse)
                        .map(|r| {
                            let t = if timestamps {
                                format!("{} ", r.time)
                            } else {
                                String::new()
                            };
                            if r.partial {
                                format!("{t}{}", r.text)
                            } else {
                                format!("{t}{}\n", r.text)
                            }
                        })
                        .collect();
                    if !text.is_empty() {
                        return Some((Ok(text), (None, offset, path)));
                    }
                }
            }
        },
    )
}

async fn exec_handler<R: PodRuntime + Clone>(
    State(api): State<Api<R>>,
    Path((ns, name)): Path<(String, String)>,
    Json(req): Json<ExecRequest>,
) -> Response {
    if req.command.is_empty() {
        return err(StatusCode::BAD_REQUEST, "command: must not be empty");
    }
    let (pr, o) = match pick(&api, &ns, &name, req.container.as_deref(), false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if o.exit.is_some() {
        return err(
            StatusCode::CONFLICT,
            format!("container {:?} is not running", o.name),
        );
    }
    let timeout = Duration::from_secs(req.timeout_seconds.unwrap_or(60).clamp(1, 3600));
    match api.runtime.exec(&pr, &o.id, &req.command, timeout).await {
        Ok(out) => Json(ExecResponse {
            exit_code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
        .into_response(),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The router on loopback with `runtime` and pod default/p (uid `u`, no
/// network namespace of its own, as a hostNetwork pod), and a client for
/// it: what the exec and port-forward tests talk to.
#[cfg(test)]
pub async fn serve_pod_p<R: PodRuntime + Clone>(runtime: R) -> keel_api::client::Client {
    let pods: Registry = Default::default();
    pods.lock().await.insert(
        "default/p".into(),
        super::backend::PodRef {
            uid: "u".into(),
            namespace: "default".into(),
            name: "p".into(),
            netns: None,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(runtime, pods)).await });
    keel_api::client::Client::new(&keel_api::client::ClientConfig {
        server: format!("http://{addr}"),
        token: String::new(),
        ca_pem: None,
        identity: None,
    })
    .unwrap()
}
