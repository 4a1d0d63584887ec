//! Watch: a stream of newline-delimited JSON events from a resourceVersion,
//! read from the store's history, filtered per watcher, with bookmarks so a
//! filtered watcher's resourceVersion still advances.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use keel_api::KindInfo;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{
    error::ApiError,
    options::ListOptions,
    options::{FRESHNESS_WAIT, wait_for_revision},
    state::AppState,
    table::{self, IncludeObject},
};
use crate::store::Obj;

/// Frames buffered per watcher before it waits for the client to read...
const BUFFER: usize = 256;
/// ...and bytes: a watcher that does not read holds at most this much (and
/// the one line being written), whatever the objects weigh. Lines are the
/// history's own, shared by every watcher; only the initial list is
/// serialized per watcher, and this bounds it.
pub const BUFFER_BYTES: usize = 4 << 20;

/// Bytes buffered by all watchers now (`/metrics`).
pub static BUFFERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One buffered line's share of its watcher's budget; freed when the line
/// is handed to the connection.
struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(super) fn serve(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    ns: Option<String>,
    opts: ListOptions,
    table: Option<IncludeObject>,
) -> Result<Response, ApiError> {
    let from = opts.resource_version;
    if let Some(rv) = from {
        let compacted = app.store.compacted();
        if rv < compacted {
            return Err(ApiError::expired(rv, compacted + 1));
        }
    }
    let (chan, rx) = tokio::sync::mpsc::channel::<(Bytes, Held)>(BUFFER);
    let tx = Tx {
        chan,
        budget: Arc::new(tokio::sync::Semaphore::new(BUFFER_BYTES)),
    };
    tokio::spawn(async move {
        let _ = stream(app, kind, ns, opts, from, table, tx).await;
    });
    let body = Body::from_stream(
        ReceiverStream::new(rx).map(|(line, _held)| Ok::<_, std::io::Error>(line)),
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn bookmark(kind: &KindInfo, revision: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{revision}\"}}}}}}\n",
        kind.name, kind.api_version
    ))
}

fn error_line(e: &ApiError) -> Bytes {
    let mut v = serde_json::to_vec(&serde_json::json!({"type": "ERROR", "object": e.0}))
        .expect("serializable");
    v.push(b'\n');
    Bytes::from(v)
}

/// An event whose object is a Table of one row (`kubectl get -w`).
fn table_line(kind: &KindInfo, type_: &str, obj: &Obj, include: IncludeObject) -> Bytes {
    let t = table::render(
        kind,
        &[obj.to_value()],
        &obj.meta().resource_version,
        include,
        std::time::SystemTime::now(),
    );
    let mut v =
        serde_json::to_vec(&serde_json::json!({"type": type_, "object": t})).expect("serializable");
    v.push(b'\n');
    Bytes::from(v)
}

fn added_line(obj: &Obj) -> Bytes {
    let mut v = br#"{"type":"ADDED","object":"#.to_vec();
    v.extend_from_slice(&obj.to_json());
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

struct Tx {
    chan: tokio::sync::mpsc::Sender<(Bytes, Held)>,
    budget: Arc<tokio::sync::Semaphore>,
}

impl Tx {
    fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }
}

/// Waits for room in the watcher's budget, then buffers `line`; ends (Err)
/// when the client goes away.
async fn send(tx: &Tx, line: Bytes) -> Result<(), ()> {
    // A line larger than the whole budget waits for an empty buffer.
    let bytes = line.len().min(BUFFER_BYTES);
    let permit = tokio::select! {
        p = tx.budget.clone().acquire_many_owned(bytes as u32) => p.map_err(drop)?,
        _ = tx.chan.closed() => return Err(()),
    };
    BUFFERED.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    let held = Held {
        _permit: permit,
        bytes,
    };
    tx.chan.send((line, held)).await.map_err(drop)
}

async fn stream(
    app: Arc<AppState>,
    kind: &'static KindInfo,
    ns: Option<String>,
    opts: ListOptions,
    from: Option<u64>,
    table: Option<IncludeObject>,
    tx: Tx,
) -> Result<(), ()> {
    let mut revisions = app.store.subscribe();
    // `timeoutSeconds` past what an Instant can hold means no timeout.
    let deadline = opts
        .timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let mut cursor = match from {
        Some(rv) => {
            // A version the store has not reached: wait a little for it
            // (another replica may be ahead), then say so, as Kubernetes
            // does, rather than stream nothing forever.
            if let Err(e) = wait_for_revision(&app.store, rv, FRESHNESS_WAIT).await {
                let _ = send(&tx, error_line(&e)).await;
                return Ok(());
            }
            rv
        }
        None => {
            // Start with the current state, then follow changes after it.
            let snap = app.store.snapshot();
            for obj in snap.list(kind.kind, ns.as_deref().unwrap_or("")) {
                if opts.matches(&obj, ns.as_deref()) {
                    let line = match table {
                        Some(include) => table_line(kind, "ADDED", &obj, include),
                        None => added_line(&obj),
                    };
                    send(&tx, line).await?;
                }
            }
            snap.revision
        }
    };
    // Bookmarks tell a filtered watcher how far it has seen, and keep an idle
    // connection alive; they go out on a fixed tick, busy or not.
    let mut tick = tokio::time::interval(app.bookmark_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut sent_since_tick = false;
    loop {
        match app.store.events_after(cursor) {
            Err(expired) => {
                let _ = send(
                    &tx,
                    error_line(&ApiError::expired(expired.requested, expired.oldest)),
                )
                .await;
                return Ok(());
            }
            Ok(events) => {
                for e in events {
                    // A watcher this far behind would keep alive events the
                    // history has let go: cut it, as Kubernetes does, so it
                    // relists.
                    let compacted = app.store.compacted();
                    if e.revision <= compacted {
                        let _ =
                            send(&tx, error_line(&ApiError::expired(cursor, compacted + 1))).await;
                        return Ok(());
                    }
                    cursor = e.revision;
                    if e.obj.kind() == kind.kind && opts.matches(&e.obj, ns.as_deref()) {
                        let line = match table {
                            Some(include) => {
                                let type_ = serde_json::to_value(e.type_).unwrap_or_default();
                                table_line(
                                    kind,
                                    type_.as_str().unwrap_or("MODIFIED"),
                                    &e.obj,
                                    include,
                                )
                            }
                            None => e.line().clone(),
                        };
                        send(&tx, line).await?;
                        sent_since_tick = true;
                    }
                }
            }
        }
        tokio::select! {
            changed = revisions.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                if opts.bookmarks && !sent_since_tick {
                    send(&tx, bookmark(kind, cursor)).await?;
                } else if tx.is_closed() {
                    return Err(());
                }
                sent_since_tick = false;
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                return Ok(());
            }
        }
    }
}
