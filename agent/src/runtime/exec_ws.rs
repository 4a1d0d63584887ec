//! `GET /pods/{namespace}/{name}/exec?command=…&stdin=…&tty=…&container=…`
//! on the agent's port, upgraded to a WebSocket in Kubernetes' channel
//! protocol ([`keel_api::exec`]): what keel-control relays `kubectl exec
//! -it` to, as the kubelet serves the apiserver.
//!
//! The command starts when the socket opens; then, until it ends: channel
//! 0 feeds its stdin, 4 resizes its terminal, `[255, 0]` (v5) closes its
//! stdin; its stdout and stderr go out on 1 and 2. When it has exited and
//! its output is drained (a little while at most: a background process may
//! hold the output open), the exit goes out as the Status on channel 3 and
//! the socket closes normally. A client that goes away closes stdin and
//! the terminal (a shell on it is hung up).

use std::{collections::VecDeque, time::Duration};

use axum::{
    extract::{
        Path, RawQuery, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
};
use keel_api::exec::{self as proto, ExecParams};

use super::{
    api::{Api, err, pick},
    backend::PodRuntime,
    exec_session::{ExecAttach, ExecSession},
};

/// How long output may still come after the process exited.
const DRAIN: Duration = Duration::from_secs(2);

/// How long a terminal's first size is waited for before the command
/// starts anyway.
const FIRST_SIZE: Duration = Duration::from_secs(1);

pub(super) async fn handler<R: PodRuntime + Clone>(
    State(api): State<Api<R>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let p = match proto::parse(q.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("exec: {e}")),
    };
    let Ok(ws) = ws else {
        return err(
            StatusCode::BAD_REQUEST,
            "exec: GET is a WebSocket upgrade (v5.channel.k8s.io); POST runs a command to completion",
        );
    };
    let (pr, o) = match pick(&api, &ns, &name, p.container.as_deref(), false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if o.exit.is_some() {
        return err(
            StatusCode::CONFLICT,
            format!("container {:?} is not running", o.name),
        );
    }
    let mut attach = ExecAttach {
        stdin: p.stdin,
        tty: p.tty,
        size: None,
    };
    ws.protocols(proto::PROTOCOLS)
        .on_upgrade(move |mut socket| async move {
            // With a terminal, kubectl sends its size first: wait a moment
            // for it, so the command starts on a terminal of that size.
            let mut early = Vec::new();
            if attach.tty {
                let deadline = tokio::time::Instant::now() + FIRST_SIZE;
                while attach.size.is_none() {
                    match tokio::time::timeout_at(deadline, socket.recv()).await {
                        Ok(Some(Ok(Message::Binary(b)))) => match incoming(&b) {
                            In::Resize(size) => attach.size = Some(size),
                            other => early.push(other),
                        },
                        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
                        Ok(Some(Ok(_))) => {}
                        Err(_) => break,
                    }
                }
            }
            let status = match api
                .runtime
                .exec_stream(&pr, &o.id, &p.command, attach)
                .await
            {
                Ok(session) => match serve(&mut socket, session, &p, early).await {
                    Some(s) => s,
                    // The client went away.
                    None => return,
                },
                Err(e) => proto::failure(&e.to_string()),
            };
            let status = serde_json::to_vec(&status).expect("status serializes");
            let _ = socket
                .send(Message::Binary(proto::frame(proto::ERROR, &status).into()))
                .await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: close_code::NORMAL,
                    reason: "".into(),
                })))
                .await;
        })
        .into_response()
}

/// Runs the session to its end; the Status to send, or None when the
/// client went away first. Stdin waiting for the process to read it is
/// queued (up to [`MAX_PENDING`] bytes, then the client is not read), so
/// output keeps flowing while the process is busy writing.
async fn serve(
    socket: &mut WebSocket,
    s: ExecSession,
    p: &ExecParams,
    early: Vec<In>,
) -> Option<serde_json::Value> {
    let ExecSession {
        mut stdin,
        mut stdout,
        mut stderr,
        resize,
        mut exit,
    } = s;
    let mut stdout_open = true;
    let mut stderr_open = stderr.is_some();
    let mut exited: Option<Result<i32, String>> = None;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut pending_bytes = 0usize;
    let mut close_stdin = false;
    for m in early {
        match m {
            In::Stdin(d) if stdin.is_some() && !d.is_empty() => {
                pending_bytes += d.len();
                pending.push_back(d);
            }
            In::CloseStdin => close_stdin = true,
            _ => {}
        }
    }
    loop {
        if close_stdin && pending.is_empty() {
            stdin = None;
        }
        if exited.is_some() && !stdout_open && !stderr_open {
            break;
        }
        let drain = async {
            match drain_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        // A clone, dropped with this turn's futures: `stdin = None` below
        // closes the process's stdin.
        let feed_to = stdin.clone();
        let feed = async move {
            match feed_to {
                Some(tx) => tx.reserve_owned().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = socket.recv(), if pending_bytes < MAX_PENDING => match m {
                Some(Ok(Message::Binary(b))) => match incoming(&b) {
                    In::Stdin(d) if stdin.is_some() && !close_stdin && !d.is_empty() => {
                        pending_bytes += d.len();
                        pending.push_back(d);
                    }
                    In::Resize(size) => {
                        if let Some(r) = &resize {
                            let _ = r.send(size);
                        }
                    }
                    In::CloseStdin => close_stdin = true,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            },
            permit = feed, if !pending.is_empty() => match permit {
                Some(permit) => {
                    let d = pending.pop_front().expect("not empty");
                    pending_bytes -= d.len();
                    permit.send(d);
                }
                // The process closed its stdin: nothing more reaches it.
                None => {
                    pending.clear();
                    pending_bytes = 0;
                    stdin = None;
                }
            },
            b = stdout.recv(), if stdout_open => match b {
                Some(b) => {
                    if p.stdout || p.tty {
                        let m = Message::Binary(proto::frame(proto::STDOUT, &b).into());
                        if socket.send(m).await.is_err() {
                            return None;
                        }
                    }
                }
                None => stdout_open = false,
            },
            b = async { stderr.as_mut().expect("stderr open").recv().await }, if stderr_open => match b {
                Some(b) => {
                    if p.stderr {
                        let m = Message::Binary(proto::frame(proto::STDERR, &b).into());
                        if socket.send(m).await.is_err() {
                            return None;
                        }
                    }
                }
                None => stderr_open = false,
            },
            r = &mut exit, if exited.is_none() => {
                exited = Some(r.unwrap_or_else(|_| Err("the exec's waiter ended".into())));
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
            },
            _ = drain => break,
        }
    }
    Some(match exited.expect("exited before the loop ends") {
        Ok(code) => proto::status(code),
        Err(e) => proto::failure(&e),
    })
}

/// Stdin waiting for the process, at most.
const MAX_PENDING: usize = 1 << 20;

/// What a client's message asks.
#[derive(Debug, PartialEq, Eq)]
enum In {
    Stdin(Vec<u8>),
    Resize(proto::TermSize),
    CloseStdin,
    Other,
}

/// Reads a message from the client. Pure.
fn incoming(b: &[u8]) -> In {
    let Some((&channel, data)) = b.split_first() else {
        return In::Other;
    };
    match channel {
        proto::STDIN => In::Stdin(data.to_vec()),
        proto::RESIZE => match proto::parse_resize(data) {
            Ok(size) => In::Resize(size),
            Err(e) => {
                tracing::debug!(error = %e, "exec: a resize message");
                In::Other
            }
        },
        proto::CLOSE if data.first() == Some(&proto::STDIN) => In::CloseStdin,
        _ => In::Other,
    }
}

#[cfg(test)]
mod tests;
