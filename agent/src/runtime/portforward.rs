//! `GET /pods/{namespace}/{name}/portforward?port=P` on the agent's port,
//! upgraded to a WebSocket in [`keel_api::portforward`]'s protocol: what
//! keel-control turns each `kubectl port-forward` connection into, as the
//! kubelet serves the apiserver.
//!
//! The agent connects to `localhost:P` inside the pod's network namespace
//! (127.0.0.1, then ::1), so a server listening only on the pod's loopback
//! is reachable, as with the kubelet; a hostNetwork pod's port is the
//! node's. The connection is made before the upgrade, so a refused port
//! is the HTTP answer (502) and keel-control passes its text to kubectl.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use axum::{
    extract::{
        Path, RawQuery, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use keel_api::portforward::{PROTOCOL, port};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    api::{Api, err},
    backend::PodRuntime,
};

/// How long connecting to the pod's port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn handler<R: PodRuntime + Clone>(
    State(api): State<Api<R>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let port = match port(q.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("portforward: {e}")),
    };
    let Ok(ws) = ws else {
        return err(
            StatusCode::BAD_REQUEST,
            format!("portforward: a WebSocket upgrade ({PROTOCOL}) is expected"),
        );
    };
    let key = format!("{ns}/{name}");
    let Some(pr) = api.pods.lock().await.get(&key).cloned() else {
        return err(
            StatusCode::NOT_FOUND,
            format!("pod {key} is not running on this node"),
        );
    };
    let conn = match dial(pr.netns.clone(), port).await {
        Ok(c) => c,
        Err(e) => {
            return err(
                StatusCode::BAD_GATEWAY,
                format!("connecting to localhost:{port} in the pod's network namespace: {e}"),
            );
        }
    };
    ws.protocols([PROTOCOL])
        .on_upgrade(move |socket| relay(socket, conn))
        .into_response()
}

/// `localhost:port` from inside `netns` (the agent's own when None).
async fn dial(netns: Option<PathBuf>, port: u16) -> io::Result<TcpStream> {
    let connect = move || -> io::Result<std::net::TcpStream> {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        std::net::TcpStream::connect_timeout(&v4, DIAL_TIMEOUT).or_else(|e| {
            // A server on ::1 only; the IPv4 error is the one to tell.
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v6, DIAL_TIMEOUT).map_err(|_| e)
        })
    };
    let s = tokio::task::spawn_blocking(move || match netns {
        // The socket is made on a thread inside the pod's namespace and
        // stays bound to it.
        Some(path) => keel_sys::ns::NetNs::open(&path)
            .map_err(io::Error::other)?
            .run(connect)
            .map_err(io::Error::other)?,
        None => connect(),
    })
    .await
    .map_err(io::Error::other)??;
    s.set_nonblocking(true)?;
    TcpStream::from_std(s)
}

/// Bytes both ways until keel-control closes the socket; an empty message
/// each way is a half-close.
async fn relay(socket: WebSocket, conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let (mut rd, mut wr) = conn.into_split();
    let (mut tx, mut rx) = socket.split();
    let up = async {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Binary(b) if b.is_empty() => {
                    let _ = wr.shutdown().await;
                }
                Message::Binary(b) => {
                    let written = wr.write_all(&b).await;
                    if written.is_err() {
                        // The pod's side is gone: what it sent still
                        // flows down; keel-control ends the socket.
                        std::future::pending::<()>().await;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Message::Binary(Default::default())).await;
                    break;
                }
                Ok(n) => {
                    let m = Message::Binary(buf[..n].to_vec().into());
                    if tx.send(m).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Writing to the pod may go on (a half-close); the socket's end
        // ends it.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[cfg(test)]
mod tests;
