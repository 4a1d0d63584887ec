//! `pods/NAME/portforward` as kubectl 1.32 speaks it: SPDY/3.1 ([`spdy`])
//! inside the binary messages of a WebSocket with subprotocol
//! `SPDY/3.1+portforward.k8s.io` (the apiserver's "tunneling" handler,
//! `PortForwardWebsockets`, on by default since 1.31), or on a raw
//! connection after `Upgrade: SPDY/3.1` (client-go's fallback when the
//! WebSocket is refused).
//!
//! For each local connection kubectl opens two streams with headers
//! `streamtype` (`error`, then `data`), `port` and `requestid` (when
//! absent, a data stream pairs with the error stream two ids before it,
//! as the kubelet does). Both are answered with SYN_REPLY at once; once a
//! pair is complete keel-control opens the agent's port-forward socket
//! ([`keel_api::portforward`]) and relays the data stream's bytes both
//! ways, FIN as a half-close. A connection the agent cannot make (nothing
//! listens on the port) is written on the error stream as the kubelet
//! words it (`error forwarding port P to pod NS/NAME, uid U: …`), which
//! kubectl prints; then both streams are closed. When the pod's side ends,
//! the data stream and then the error stream get FIN (kubectl waits for
//! the error stream's end before closing its local connection).
//! kubectl's RST_STREAM of a data stream ends that forward; PING is
//! echoed; GOAWAY or the end of the socket ends every forward.
//!
//! A WebSocket offering keel's own protocol instead
//! ([`keel_api::portforward`], `?port=P`: one connection per socket, what
//! `keelctl port-forward` opens) is relayed to the agent unchanged.

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Body,
    extract::ws::{Message, WebSocket, WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use keel_api::client::{Client, ClientError, WsMessage};
use tokio::sync::mpsc;

use super::spdy::{self, FLAG_FIN, Frame, HeaderDecoder, HeaderEncoder};
use super::{dialer, encode, endpoint};
use crate::api::{AppState, error::ApiError};

/// kubectl's port-forward protocol, and the WebSocket subprotocol that
/// carries it tunnelled.
pub const PROTOCOL: &str = "portforward.k8s.io";
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Streams (open or awaiting their pair) one connection may hold.
const MAX_STREAMS: usize = 1024;

/// What the agent dial needs, for every forward of one session.
struct Target {
    client: Client,
    ns: String,
    name: String,
    uid: String,
}

/// `GET|POST /api/v1/namespaces/NS/pods/NAME/portforward`.
pub(super) async fn handle(
    app: &Arc<AppState>,
    ns: &str,
    name: &str,
    query: &str,
    headers: &HeaderMap,
    ws: Option<WebSocketUpgrade>,
    spdy_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let offered = |h: header::HeaderName| {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let wants_spdy = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if ws.is_none() && !wants_spdy {
        return Err(ApiError::bad_request(format!(
            "pods/portforward: upgrade to a WebSocket with subprotocol {TUNNEL_PROTOCOL}, or to SPDY/3.1 with X-Stream-Protocol-Version: {PROTOCOL}"
        )));
    }
    let target = {
        let endpoint = endpoint(app, ns, name)?;
        let client = dialer(app, "pods/portforward")?.client(&endpoint)?;
        let uid = app
            .store
            .snapshot()
            .pods
            .get(&format!("{ns}/{name}"))
            .map(|p| p.metadata.uid.clone())
            .unwrap_or_default();
        Arc::new(Target {
            client,
            ns: ns.to_string(),
            name: name.to_string(),
            uid,
        })
    };
    if let Some(ws) = ws {
        let protocols = offered(header::SEC_WEBSOCKET_PROTOCOL);
        if protocols
            .iter()
            .any(|p| p == keel_api::portforward::PROTOCOL)
            && !protocols.iter().any(|p| p == TUNNEL_PROTOCOL)
        {
            return keel_socket(&target, query, ws).await;
        }
        if !protocols.iter().any(|p| p == TUNNEL_PROTOCOL) {
            return Err(ApiError::bad_request(format!(
                "pods/portforward: the WebSocket must offer subprotocol {TUNNEL_PROTOCOL} (SPDY/3.1 tunnelled, as kubectl does) or {} (one connection, as keelctl does)",
                keel_api::portforward::PROTOCOL
            )));
        }
        return Ok(ws
            .protocols([TUNNEL_PROTOCOL])
            .on_upgrade(move |socket| over_websocket(socket, target))
            .into_response());
    }
    // `Upgrade: SPDY/3.1`: the stream protocol is negotiated in headers.
    if !offered(header::HeaderName::from_static("x-stream-protocol-version"))
        .iter()
        .any(|p| p == PROTOCOL)
    {
        return Err(ApiError::bad_request(format!(
            "pods/portforward: X-Stream-Protocol-Version must offer {PROTOCOL}"
        )));
    }
    let Some(on_upgrade) = spdy_upgrade else {
        return Err(ApiError::bad_request(
            "pods/portforward: this connection cannot be upgraded (HTTP/2?); use HTTP/1.1",
        ));
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let (rd, wr) = tokio::io::split(io);
                let rx = raw::reader_stream(rd);
                let tx = raw::writer_sink(wr);
                session(rx, tx, target).await;
            }
            Err(e) => tracing::warn!(error = %e, "pods/portforward: SPDY upgrade failed"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static(PROTOCOL),
    );
    Ok(resp)
}

/// keel's own protocol ([`keel_api::portforward`], `?port=P`, what
/// `keelctl port-forward` opens per connection): the agent's socket is
/// opened first (its refusal is this request's error), then messages are
/// relayed unchanged both ways.
async fn keel_socket(t: &Target, query: &str, ws: WebSocketUpgrade) -> Result<Response, ApiError> {
    let port = keel_api::portforward::port(query)
        .map_err(|e| ApiError::bad_request(format!("pods/portforward: {e}")))?;
    let path = format!(
        "/pods/{}/{}/portforward?port={port}",
        encode(&t.ns),
        encode(&t.name)
    );
    let (agent, _) = t
        .client
        .websocket(&path, &[keel_api::portforward::PROTOCOL])
        .await
        .map_err(|e| match e {
            ClientError::Api(s) => ApiError::new(
                s.code,
                match s.code {
                    404 => "NotFound",
                    502 => "ServiceUnavailable",
                    _ => "BadRequest",
                },
                format!(
                    "error forwarding port {port} to pod {}/{}, uid {}: {}",
                    t.ns,
                    t.name,
                    t.uid,
                    s.message.trim()
                ),
            ),
            other => ApiError::new(
                502,
                "InternalError",
                format!(
                    "pod {}/{}: reaching its node's agent: {other}",
                    t.ns, t.name
                ),
            ),
        })?;
    Ok(ws
        .protocols([keel_api::portforward::PROTOCOL])
        .on_upgrade(move |socket| super::relay::pipe(socket, agent))
        .into_response())
}

/// Byte streams over a raw upgraded connection.
mod raw {
    use bytes::Bytes;
    use futures_util::{Sink, Stream};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub fn reader_stream(
        rd: impl AsyncRead + Unpin + Send + 'static,
    ) -> impl Stream<Item = Bytes> + Unpin + Send {
        Box::pin(futures_util::stream::unfold(rd, |mut rd| async move {
            let mut buf = vec![0u8; 32 * 1024];
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Bytes::from(buf), rd))
                }
            }
        }))
    }

    pub fn writer_sink(
        wr: impl AsyncWrite + Unpin + Send + 'static,
    ) -> impl Sink<Bytes, Error = std::io::Error> + Unpin + Send {
        Box::pin(futures_util::sink::unfold(
            wr,
            |mut wr, b: Bytes| async move {
                wr.write_all(&b).await?;
                wr.flush().await?;
                Ok::<_, std::io::Error>(wr)
            },
        ))
    }
}

async fn over_websocket(socket: WebSocket, target: Arc<Target>) {
    let (tx, rx) = socket.split();
    // client-go's tunnel sends only binary messages; a close ends it.
    let rx = rx
        .take_while(|m| std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_)))))
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(Message::Binary(b)) => Some(b),
                _ => None,
            })
        });
    let tx = tx.with(|b: Bytes| std::future::ready(Ok::<_, axum::Error>(Message::Binary(b))));
    session(Box::pin(rx), Box::pin(tx), target).await;
}

/// What the reader hands a forward: the client's bytes and its FIN; the
/// channel's end without FIN is a reset.
enum Up {
    Data(Bytes),
    Fin,
}

/// One half of a pair, waiting for the other.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Up>)>,
    port: u16,
}

/// One SPDY connection: frames read and answered until the client goes.
async fn session<R, W>(mut rx: R, tx: W, target: Arc<Target>)
where
    R: Stream<Item = Bytes> + Unpin + Send,
    W: Sink<Bytes> + Unpin + Send + 'static,
{
    let (out, mut out_rx) = mpsc::channel::<Frame>(64);
    // The only writer, and the only owner of the writing zlib state.
    let writer = tokio::spawn(async move {
        let mut tx = tx;
        let mut enc = HeaderEncoder::default();
        while let Some(f) = out_rx.recv().await {
            let bytes = match spdy::write_frame(&f, &mut enc) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "pods/portforward: writing a frame");
                    break;
                }
            };
            if tx.send(Bytes::from(bytes)).await.is_err() {
                break;
            }
        }
        let _ = tx.close().await;
    });
    let mut dec = HeaderDecoder::default();
    let mut buf = BytesMut::new();
    let mut data: HashMap<u32, mpsc::Sender<Up>> = HashMap::new();
    let mut pending: HashMap<String, Pair> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    let mut last_id = 0;
    'read: while let Some(chunk) = rx.next().await {
        buf.extend_from_slice(&chunk);
        loop {
            let frame = match spdy::read_frame(&mut buf, &mut dec) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(pod = %format!("{}/{}", target.ns, target.name), error = %e, "pods/portforward: bad frame from the client");
                    let _ = out
                        .send(Frame::GoAway {
                            last_good: last_id,
                            status: 1,
                        })
                        .await;
                    break 'read;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    last_id = stream_id;
                    let opened = match opened(stream_id, &headers) {
                        Ok(o) if data.len() + pending.len() < MAX_STREAMS => o,
                        Ok(_) => {
                            let _ = out
                                .send(Frame::RstStream {
                                    stream_id,
                                    status: spdy::REFUSED_STREAM,
                                })
                                .await;
                            continue;
                        }
                        Err(e) => {
                            tracing::debug!(stream_id, error = %e, "pods/portforward: stream refused");
                            let _ = out
                                .send(Frame::RstStream {
                                    stream_id,
                                    status: spdy::PROTOCOL_ERROR,
                                })
                                .await;
                            continue;
                        }
                    };
                    let _ = out
                        .send(Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers: Vec::new(),
                        })
                        .await;
                    let pair = pending.entry(opened.request.clone()).or_default();
                    pair.port = opened.port;
                    if opened.error {
                        pair.error = Some(stream_id);
                    } else {
                        let (tx, rx) = mpsc::channel(16);
                        data.insert(stream_id, tx);
                        pair.data = Some((stream_id, rx));
                    }
                    if pair.error.is_some() && pair.data.is_some() {
                        let pair = pending.remove(&opened.request).expect("just seen");
                        let (data_id, up) = pair.data.expect("checked");
                        // Reap the forwards that have ended.
                        while forwards.try_join_next().is_some() {}
                        forwards.spawn(forward(
                            target.clone(),
                            pair.port,
                            pair.error.expect("checked"),
                            data_id,
                            up,
                            out.clone(),
                        ));
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data: bytes,
                } => {
                    // Data on error streams (their FIN) and on streams
                    // already gone is dropped.
                    let Some(to) = data.get(&stream_id) else {
                        continue;
                    };
                    let mut gone = !bytes.is_empty() && to.send(Up::Data(bytes)).await.is_err();
                    if flags & FLAG_FIN != 0 && !gone {
                        gone = to.send(Up::Fin).await.is_err();
                    }
                    if gone {
                        data.remove(&stream_id);
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    // Dropping the sender tells the forward.
                    data.remove(&stream_id);
                    pending.retain(|_, p| {
                        p.error != Some(stream_id)
                            && p.data.as_ref().map(|(id, _)| *id) != Some(stream_id)
                    });
                }
                Frame::Ping { id } => {
                    let _ = out.send(Frame::Ping { id }).await;
                }
                Frame::GoAway { .. } => break 'read,
                // No flow control (spdystream keeps none), nothing to
                // learn from the rest.
                Frame::Settings { .. }
                | Frame::WindowUpdate { .. }
                | Frame::Headers { .. }
                | Frame::SynReply { .. }
                | Frame::Unknown { .. } => {}
            }
        }
    }
    // The client is gone: every forward ends with it.
    drop(data);
    forwards.abort_all();
    drop(out);
    let _ = writer.await;
}

/// A stream kubectl opened, from its headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub error: bool,
    pub port: u16,
    pub request: String,
}

/// Reads `streamtype`, `port` and `requestid` (the kubelet's pairing when
/// absent: a data stream belongs to the error stream two ids before).
pub fn opened(stream_id: u32, headers: &spdy::Headers) -> Result<Opened, String> {
    let get = |n: &str| Frame::header(headers, n);
    let error = match get("streamtype") {
        Some("error") => true,
        Some("data") => false,
        Some(other) => return Err(format!("streamtype: {other:?} is neither error nor data")),
        None => return Err("streamtype: missing".into()),
    };
    let port = match get("port") {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port: {p:?} is not a port 1-65535"))?,
        None => return Err("port: missing".into()),
    };
    let request = match get("requestid") {
        Some(r) => r.to_string(),
        None if error => stream_id.to_string(),
        None => stream_id.saturating_sub(2).to_string(),
    };
    Ok(Opened {
        error,
        port,
        request,
    })
}

fn fin(stream_id: u32) -> Frame {
    Frame::Data {
        stream_id,
        flags: FLAG_FIN,
        data: Bytes::new(),
    }
}

/// One forwarded connection: the agent's socket to the pod's port, bytes
/// relayed both ways; the streams closed as kubectl expects.
async fn forward(
    t: Arc<Target>,
    port: u16,
    error_id: u32,
    data_id: u32,
    mut up: mpsc::Receiver<Up>,
    out: mpsc::Sender<Frame>,
) {
    let path = format!(
        "/pods/{}/{}/portforward?port={port}",
        encode(&t.ns),
        encode(&t.name)
    );
    let agent = match t
        .client
        .websocket(&path, &[keel_api::portforward::PROTOCOL])
        .await
    {
        Ok((s, _)) => s,
        Err(e) => {
            let why = match e {
                ClientError::Api(s) => s.message.trim().to_string(),
                other => format!("reaching its node's agent: {other}"),
            };
            let message = format!(
                "error forwarding port {port} to pod {}/{}, uid {}: {why}",
                t.ns, t.name, t.uid
            );
            let _ = out
                .send(Frame::Data {
                    stream_id: error_id,
                    flags: 0,
                    data: Bytes::from(message),
                })
                .await;
            let _ = out.send(fin(error_id)).await;
            let _ = out.send(fin(data_id)).await;
            return;
        }
    };
    let (mut to_agent, mut from_agent) = agent.split();
    let error_closed = std::sync::atomic::AtomicBool::new(false);
    let upward = async {
        loop {
            match up.recv().await {
                Some(Up::Data(b)) => {
                    if to_agent.send(WsMessage::Binary(b)).await.is_err() {
                        // The agent's side ends the forward below.
                        std::future::pending::<()>().await;
                    }
                }
                Some(Up::Fin) => {
                    let _ = to_agent.send(WsMessage::Binary(Bytes::new())).await;
                }
                // Reset by kubectl (or its session ended).
                None => return,
            }
        }
    };
    let downward = async {
        while let Some(Ok(m)) = from_agent.next().await {
            match m {
                WsMessage::Binary(b) if b.is_empty() => break,
                WsMessage::Binary(b) => {
                    for chunk in b.chunks(spdy::MAX_DATA_WRITE) {
                        let f = Frame::Data {
                            stream_id: data_id,
                            flags: 0,
                            data: b.slice_ref(chunk),
                        };
                        if out.send(f).await.is_err() {
                            return;
                        }
                    }
                }
                WsMessage::Close(_) => break,
                _ => {}
            }
        }
        let _ = out.send(fin(data_id)).await;
        let _ = out.send(fin(error_id)).await;
        error_closed.store(true, std::sync::atomic::Ordering::Relaxed);
        // Bytes may still go up (a half-close) until kubectl resets.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = upward => {}
        _ = downward => {}
    }
    // kubectl waits for the error stream's end in every case.
    if !error_closed.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = out.send(fin(error_id)).await;
    }
    let _ = to_agent.close().await;
}
