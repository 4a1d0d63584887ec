//! Interactive exec (`kubectl exec -i`/`-t`): keel-control opens the same
//! channel protocol to the agent's exec WebSocket on the pod's node (over
//! mTLS, as keel-control) before it accepts kubectl's upgrade, so a pod
//! that is missing or not running is an HTTP error kubectl prints, then
//! relays messages both ways unchanged: stdin, resizes and the v5 close of
//! stdin to the agent; output and the final Status to kubectl. When either
//! side ends, the other is closed (a normal closure towards kubectl, which
//! client-go requires after the Status).

use std::sync::Arc;

use axum::{
    extract::ws::{self, CloseFrame, WebSocket, WebSocketUpgrade, close_code},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use keel_api::{
    client::{ClientError, Socket, WsMessage},
    exec::{ExecParams, PROTOCOLS},
};

use super::{dialer, encode, endpoint};
use crate::api::{AppState, error::ApiError};

pub(super) async fn exec(
    app: &Arc<AppState>,
    ns: &str,
    name: &str,
    p: &ExecParams,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let endpoint = endpoint(app, ns, name)?;
    let client = dialer(app, "pods/exec")?.client(&endpoint)?;
    let path = format!(
        "/pods/{}/{}/exec?{}",
        encode(ns),
        encode(name),
        p.to_query()
    );
    let (agent, _) = client
        .websocket(&path, &PROTOCOLS)
        .await
        .map_err(|e| match e {
            ClientError::Api(s) => ApiError::new(
                s.code,
                match s.code {
                    404 => "NotFound",
                    409 => "Conflict",
                    _ => "BadRequest",
                },
                format!("pod {ns}/{name}: {}", s.message.trim()),
            ),
            other => ApiError::new(
                502,
                "InternalError",
                format!("pod {ns}/{name}: reaching its node's agent at {endpoint}: {other}"),
            ),
        })?;
    Ok(ws
        .protocols(PROTOCOLS)
        .on_upgrade(move |kubectl| pipe(kubectl, agent))
        .into_response())
}

/// Copies messages both ways until one side ends (also port-forward's
/// keel protocol, whose messages pass unchanged).
pub(super) async fn pipe(kubectl: WebSocket, agent: Socket) {
    let (mut to_kubectl, mut from_kubectl) = kubectl.split();
    let (mut to_agent, mut from_agent) = agent.split();
    let up = async {
        while let Some(Ok(m)) = from_kubectl.next().await {
            let m = match m {
                ws::Message::Binary(b) => WsMessage::Binary(b),
                ws::Message::Text(t) => WsMessage::Text(t.as_str().into()),
                ws::Message::Close(_) => break,
                _ => continue,
            };
            if to_agent.send(m).await.is_err() {
                break;
            }
        }
        let _ = to_agent.close().await;
    };
    let down = async {
        while let Some(Ok(m)) = from_agent.next().await {
            let m = match m {
                WsMessage::Binary(b) => ws::Message::Binary(b),
                WsMessage::Text(t) => ws::Message::Text(t.as_str().into()),
                WsMessage::Close(_) => break,
                _ => continue,
            };
            if to_kubectl.send(m).await.is_err() {
                return;
            }
        }
        let _ = to_kubectl
            .send(ws::Message::Close(Some(CloseFrame {
                code: close_code::NORMAL,
                reason: "".into(),
            })))
            .await;
    };
    // The agent's end (after the Status) ends the session; kubectl going
    // away ends it too.
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}
