//! A WebSocket to keel-control (or, with keel-control's identity, to an
//! agent's port) over the client's own TLS connection: an HTTP/1.1
//! `Upgrade: websocket` GET with the subprotocols offered, the answer's
//! `Sec-WebSocket-Accept` checked, then the upgraded connection framed by
//! tungstenite. Used for exec streams ([`crate::exec`]).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

use super::{CONNECT_TIMEOUT, Client, ClientError, REQUEST_TIMEOUT, status_from};

/// An open WebSocket and the subprotocol the server chose.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The largest message accepted from the other side (kubelet's limit is
/// in the same range; exec frames are small).
const MAX_MESSAGE: usize = 16 << 20;

fn random_key() -> String {
    use base64::Engine;
    let mut raw = [0u8; 16];
    // The key only has to differ between requests (RFC 6455 §4.1);
    // the clock and a counter are enough.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    raw[..8].copy_from_slice(&t.to_le_bytes());
    raw[8..].copy_from_slice(
        &(SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ u64::from(std::process::id()))
            .to_le_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(raw)
}

impl Client {
    /// Opens a WebSocket at `path` offering `protocols` (preferred first).
    /// A refusal (any answer but 101) is [`ClientError::Api`] with the
    /// server's Status.
    pub async fn websocket(
        &self,
        path: &str,
        protocols: &[&str],
    ) -> Result<(Socket, String), ClientError> {
        let server = self.server().to_string();
        let proto_err = |message: String| ClientError::Protocol {
            path: path.into(),
            message,
        };
        let key = random_key();
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("{server}{path}"))
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "));
        if !self.auth.is_empty() {
            req = req.header(header::AUTHORIZATION, &*self.auth);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| proto_err(e.to_string()))?;
        let resp = tokio::time::timeout(REQUEST_TIMEOUT + CONNECT_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| ClientError::Timeout {
                path: path.into(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })?
            .map_err(|e| ClientError::Unreachable {
                server: server.clone(),
                message: e.to_string(),
            })?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let bytes = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(ClientError::Api(Box::new(status_from(status, &bytes))));
        }
        let accept = resp
            .headers()
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .and_then(|v| v.to_str().ok());
        if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(proto_err(
                "the server's Sec-WebSocket-Accept does not match the key sent".into(),
            ));
        }
        let chosen = resp
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !protocols.contains(&chosen.as_str()) {
            return Err(proto_err(format!(
                "the server chose subprotocol {chosen:?}, not one of {protocols:?}"
            )));
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| proto_err(format!("upgrading the connection: {e}")))?;
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE);
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config))
                .await;
        Ok((socket, chosen))
    }
}
