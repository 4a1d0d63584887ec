//! HTTP client for keel-control: typed CRUD and watch for every kind, and
//! the dynamic form (by [`Kind`]) that `keelctl` uses.

mod config;
mod connect;
mod discovery;
mod error;
mod identity;
mod watch;
mod websocket;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::{client::legacy::Client as HyperClient, rt::TokioExecutor};

pub use config::{ClientConfig, ClientConfigFile, ConfigError, DEFAULT_DATA_DIR};
pub use connect::{CONNECT_TIMEOUT, Connect};
pub use discovery::cluster_info_unverified;
pub use error::ClientError;
pub use hyper::Method as HttpMethod;
pub use identity::Identity;
pub use tokio_tungstenite::tungstenite::{
    Message as WsMessage, protocol::CloseFrame as WsCloseFrame,
};
pub use watch::WatchStream;
pub use websocket::Socket;

use crate::{
    resource::{List, Resource, Status},
    served::{AnyObject, Kind},
};

type Connector = hyper_rustls::HttpsConnector<connect::Connector>;

/// How long a non-watch request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// With several replicas: how long a read waits for one replica's answer
/// before it asks the next.
const READ_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of a request at one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The connection could not be made: the replica never saw it.
    NotConnected,
    /// Sent, and the connection failed before an answer.
    Failed,
    /// Sent, and no answer within [`READ_ATTEMPT_TIMEOUT`].
    TimedOut,
    /// Answered with this HTTP status.
    Answered(u16),
}

/// Whether a request goes on to the next replica after `attempt` (when
/// there is one). Anything the replica surely did not carry out moves on:
/// a connection never made, and 503, which keel-control answers when its
/// store (etcd) cannot be reached and nothing was written. A read moves on
/// after any failure or timeout, since reading twice changes nothing. A
/// write that was sent and got no answer, or 504 (etcd did not confirm
/// it: it may or may not have been committed), is returned to the caller,
/// whose to retry after reading the object again, as with Kubernetes'
/// clients: sending it again blindly could apply it twice.
fn try_next(method: &Method, attempt: Attempt) -> bool {
    let read = *method == Method::GET;
    match attempt {
        Attempt::NotConnected | Attempt::Answered(503) => true,
        Attempt::Failed | Attempt::TimedOut | Attempt::Answered(504) => read,
        Attempt::Answered(_) => false,
    }
}

/// Options for list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    pub fn labels(selector: impl Into<String>) -> Self {
        Self {
            label_selector: Some(selector.into()),
            ..Self::default()
        }
    }
    pub fn fields(selector: impl Into<String>) -> Self {
        Self {
            field_selector: Some(selector.into()),
            ..Self::default()
        }
    }
    fn query(&self, extra: &[(&str, String)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &self.label_selector {
            pairs.push(("labelSelector", s.clone()));
        }
        if let Some(s) = &self.field_selector {
            pairs.push(("fieldSelector", s.clone()));
        }
        pairs.extend(extra.iter().cloned());
        if pairs.is_empty() {
            return String::new();
        }
        let enc: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("?{}", enc.join("&"))
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client for keel-control: one server, or several replicas
/// (`server` = comma-separated URLs) it fails over between. Cheap to clone;
/// clones share which replica is in use.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<Connector, Full<Bytes>>,
    servers: Arc<[Arc<str>]>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    auth: Arc<str>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

fn object_path(kind: Kind, namespace: &str, name: &str) -> String {
    format!("{}/{}", kind.collection_path(namespace), encode(name))
}

/// The request body for an object, with apiVersion and kind filled in.
fn body<R: Resource>(obj: &R) -> Vec<u8> {
    let mut obj = obj.clone();
    obj.set_type_meta();
    serde_json::to_vec(&obj).expect("API objects serialize")
}

impl Client {
    pub fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        Self::build(config, None)
    }

    /// A client whose TCP connections `connect` opens (TLS and HTTP stay
    /// the client's), for a server this process cannot reach by itself.
    pub fn with_connector(config: &ClientConfig, connect: Connect) -> Result<Self, ClientError> {
        Self::build(config, Some(connect))
    }

    fn build(config: &ClientConfig, connect: Option<Connect>) -> Result<Self, ClientError> {
        let tls = config.tls_config()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connect::Connector::new(connect));
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            http,
            servers: config
                .servers()
                .map(|s| Arc::from(s.trim_end_matches('/')))
                .collect(),
            current: Default::default(),
            auth: if config.token.is_empty() {
                "".into()
            } else {
                format!("Bearer {}", config.token).into()
            },
        })
    }

    /// The server in use (the first of several until one fails).
    pub fn server(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.servers[i % self.servers.len()]
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let body = Bytes::from(body.unwrap_or_default());
        // With several replicas: on to the next as [`try_next`] says.
        let several = self.servers.len() > 1;
        let first = self.current.load(std::sync::atomic::Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            let server = &self.servers[(first + attempt) % self.servers.len()];
            let mut req = Request::builder()
                .method(method.clone())
                .uri(format!("{server}{path}"));
            if !self.auth.is_empty() {
                req = req.header(header::AUTHORIZATION, &*self.auth);
            }
            let req = req
                .header(header::ACCEPT, "application/json")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| ClientError::Protocol {
                    path: path.into(),
                    message: e.to_string(),
                })?;
            let sent = self.http.request(req);
            let answer = if several && method == Method::GET {
                match tokio::time::timeout(READ_ATTEMPT_TIMEOUT, sent).await {
                    Ok(a) => a,
                    Err(_) => {
                        attempt += 1;
                        if try_next(&method, Attempt::TimedOut) && attempt < self.servers.len() {
                            continue;
                        }
                        return Err(ClientError::Unreachable {
                            server: server.to_string(),
                            message: format!(
                                "no answer within {} s",
                                READ_ATTEMPT_TIMEOUT.as_secs()
                            ),
                        });
                    }
                }
            } else {
                sent.await
            };
            match answer {
                Ok(resp)
                    if attempt + 1 < self.servers.len()
                        && try_next(&method, Attempt::Answered(resp.status().as_u16())) =>
                {
                    attempt += 1;
                }
                Ok(resp) => {
                    if attempt > 0 {
                        self.current.store(
                            (first + attempt) % self.servers.len(),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    attempt += 1;
                    let what = if e.is_connect() {
                        Attempt::NotConnected
                    } else {
                        Attempt::Failed
                    };
                    if try_next(&method, what) && attempt < self.servers.len() {
                        continue;
                    }
                    let mut message = e.to_string();
                    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
                    while let Some(s) = src {
                        message = format!("{message}: {s}");
                        src = s.source();
                    }
                    return Err(ClientError::Unreachable {
                        server: server.to_string(),
                        message,
                    });
                }
            }
        }
    }

    /// Sends a request and reads the whole answer; non-2xx becomes ClientError::Api.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        self.request_warned(method, path, body)
            .await
            .map(|(b, _)| b)
    }

    /// [`Client::request_raw`], with the texts of the answer's `Warning`
    /// headers (`299 - "text"`), which kubectl prints as `Warning: text`.
    pub async fn request_warned(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(Bytes, Vec<String>), ClientError> {
        let fut = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let warnings = resp
                .headers()
                .get_all(header::WARNING)
                .iter()
                .filter_map(|v| warning_text(v.to_str().ok()?))
                .collect();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Unreachable {
                    server: self.server().to_string(),
                    message: e.to_string(),
                })?
                .to_bytes();
            if status.is_success() {
                Ok((bytes, warnings))
            } else {
                Err(ClientError::Api(Box::new(status_from(status, &bytes))))
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| ClientError::Timeout {
                path: path.into(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })?
    }

    /// A GET whose body is streamed (logs, `follow`): the response once its
    /// head arrived (non-2xx becomes ClientError::Api); the body is read by
    /// the caller for as long as it wants, with no overall timeout.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.send(Method::GET, path, None))
            .await
            .map_err(|_| ClientError::Timeout {
                path: path.into(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })??;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(ClientError::Api(Box::new(status_from(status, &bytes))))
    }

    async fn request<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let bytes = self.request_raw(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            path: path.into(),
            message: e.to_string(),
        })
    }

    pub async fn get<R: Resource>(&self, namespace: &str, name: &str) -> Result<R, ClientError> {
        self.request(
            Method::GET,
            &object_path(Kind::of::<R>(), namespace, name),
            None,
        )
        .await
    }

    /// Lists objects; an empty namespace lists all namespaces.
    pub async fn list<R: Resource>(
        &self,
        namespace: &str,
        params: &ListParams,
    ) -> Result<List<R>, ClientError> {
        let path = format!(
            "{}{}",
            Kind::of::<R>().collection_path(namespace),
            params.query(&[])
        );
        self.request(Method::GET, &path, None).await
    }

    pub async fn create<R: Resource>(&self, obj: &R) -> Result<R, ClientError> {
        let path = Kind::of::<R>().collection_path(&obj.meta().namespace);
        self.request(Method::POST, &path, Some(body(obj))).await
    }

    /// Replaces the object; fails with 409 if `metadata.resourceVersion` is
    /// set and no longer current.
    pub async fn update<R: Resource>(&self, obj: &R) -> Result<R, ClientError> {
        let m = obj.meta();
        let path = object_path(Kind::of::<R>(), &m.namespace, &m.name);
        self.request(Method::PUT, &path, Some(body(obj))).await
    }

    /// Replaces only the status (the agents' subresource).
    pub async fn update_status<R: Resource>(&self, obj: &R) -> Result<R, ClientError> {
        let m = obj.meta();
        let path = format!(
            "{}/status",
            object_path(Kind::of::<R>(), &m.namespace, &m.name)
        );
        self.request(Method::PUT, &path, Some(body(obj))).await
    }

    pub async fn delete<R: Resource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), ClientError> {
        self.request_raw(
            Method::DELETE,
            &object_path(Kind::of::<R>(), namespace, name),
            None,
        )
        .await
        .map(drop)
    }

    /// Watches from `resource_version` (events after it); "" or "0" starts
    /// with ADDED for every current object. Bookmarks are requested so the
    /// caller's resourceVersion advances even when nothing matches.
    pub async fn watch<R: Resource>(
        &self,
        namespace: &str,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream<R>, ClientError> {
        let query = params.query(&[
            ("watch", "true".into()),
            ("allowWatchBookmarks", "true".into()),
            ("resourceVersion", resource_version.into()),
        ]);
        let path = format!("{}{query}", Kind::of::<R>().collection_path(namespace));
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.send(Method::GET, &path, None))
            .await
            .map_err(|_| ClientError::Timeout {
                path: path.clone(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })??;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(ClientError::Api(Box::new(status_from(status, &bytes))));
        }
        Ok(WatchStream::new(resp.into_body(), path))
    }

    // The dynamic forms, by kind, for the CLI.

    pub async fn get_any(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<AnyObject, ClientError> {
        let path = object_path(kind, namespace, name);
        let bytes = self.request_raw(Method::GET, &path, None).await?;
        AnyObject::from_json(&bytes).map_err(|e| ClientError::Protocol {
            path,
            message: e.to_string(),
        })
    }

    pub async fn list_any(
        &self,
        kind: Kind,
        namespace: &str,
        params: &ListParams,
    ) -> Result<Vec<AnyObject>, ClientError> {
        let path = format!("{}{}", kind.collection_path(namespace), params.query(&[]));
        let list: List<serde_json::Value> = self.request(Method::GET, &path, None).await?;
        list.items
            .into_iter()
            .map(|mut v| {
                // Items of a list may omit apiVersion/kind.
                v["kind"] = kind.as_str().into();
                v["apiVersion"] = kind.api_version().into();
                AnyObject::from_value(v).map_err(|e| ClientError::Protocol {
                    path: path.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    pub async fn create_any(&self, obj: &AnyObject) -> Result<AnyObject, ClientError> {
        self.create_any_warned(obj).await.map(|(o, _)| o)
    }

    /// Creates `obj`; the stored object and the server's warnings.
    pub async fn create_any_warned(
        &self,
        obj: &AnyObject,
    ) -> Result<(AnyObject, Vec<String>), ClientError> {
        let path = obj.kind().collection_path(&obj.meta().namespace);
        let (bytes, warnings) = self
            .request_warned(Method::POST, &path, Some(obj.to_json()))
            .await?;
        let stored = AnyObject::from_json(&bytes).map_err(|e| ClientError::Protocol {
            path,
            message: e.to_string(),
        })?;
        Ok((stored, warnings))
    }

    pub async fn update_any(&self, obj: &AnyObject) -> Result<AnyObject, ClientError> {
        self.update_any_warned(obj).await.map(|(o, _)| o)
    }

    /// Replaces `obj`; the stored object and the server's warnings.
    pub async fn update_any_warned(
        &self,
        obj: &AnyObject,
    ) -> Result<(AnyObject, Vec<String>), ClientError> {
        let m = obj.meta();
        let path = object_path(obj.kind(), &m.namespace, &m.name);
        let (bytes, warnings) = self
            .request_warned(Method::PUT, &path, Some(obj.to_json()))
            .await?;
        let stored = AnyObject::from_json(&bytes).map_err(|e| ClientError::Protocol {
            path,
            message: e.to_string(),
        })?;
        Ok((stored, warnings))
    }

    pub async fn delete_any(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(), ClientError> {
        self.request_raw(Method::DELETE, &object_path(kind, namespace, name), None)
            .await
            .map(drop)
    }
}

/// The text of a `Warning` header (`299 - "text"`, RFC 7234's form, as
/// Kubernetes sends them); None for another form.
fn warning_text(header: &str) -> Option<String> {
    let rest = header.strip_prefix("299 ")?;
    let (_agent, quoted) = rest.split_once(' ')?;
    serde_json::from_str::<String>(quoted.trim())
        .ok()
        .or_else(|| Some(quoted.trim().trim_matches('"').to_string()))
}

/// Reads a Status body, or makes one from the HTTP status.
fn status_from(code: StatusCode, body: &[u8]) -> Status {
    serde_json::from_slice::<Status>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        Status::failure(
            code.as_u16(),
            code.canonical_reason().unwrap_or("Error"),
            format!("{code}: {}", text.trim()),
        )
    })
}

#[cfg(test)]
mod tests;
