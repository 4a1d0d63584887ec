//! Recording Events, as client-go's `EventRecorder` + `EventBroadcaster`:
//! a component calls [`Recorder::normal`]/[`Recorder::warning`] and goes on
//! (never blocked: a bounded queue, and an event that does not fit is
//! dropped and counted); one task per recorder folds repeats into one Event
//! ([`correlate`]), throttles floods, and writes through a [`Sink`] — the
//! HTTP client in the agent, the store in keel-control.

pub mod correlate;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use tokio::sync::mpsc;

use self::correlate::{Correlator, Decision};
use crate::{Event, client::Client, event, kinds::endpoints::ObjectReference};

/// How many events may wait to be written before new ones are dropped.
pub const QUEUE: usize = 1000;

/// Where events are written.
pub trait Sink: Send + Sync + 'static {
    fn create(&self, e: Event) -> impl Future<Output = Result<Event, SinkError>> + Send;
    /// An update without a resourceVersion precondition (Kubernetes allows
    /// unconditional updates of Events).
    fn update(&self, e: Event) -> impl Future<Output = Result<Event, SinkError>> + Send;
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The Event to update is gone (its TTL passed): create it anew.
    #[error("event not found")]
    NotFound,
    #[error("{0}")]
    Other(String),
}

/// Counters of what the recorder did (exported as metrics by the owner).
#[derive(Debug, Default)]
pub struct Stats {
    pub created: AtomicU64,
    pub updated: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Dropped by the spam filter.
    pub throttled: AtomicU64,
    /// The write failed.
    pub failed: AtomicU64,
}

/// A cheap, cloneable handle that records events for one component on one
/// host.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    component: Arc<str>,
    host: Arc<str>,
    stats: Arc<Stats>,
}

impl Recorder {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(sink: impl Sink, component: &str, host: &str) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(write_loop(sink, rx, stats.clone()));
        Self {
            tx,
            component: component.into(),
            host: host.into(),
            stats,
        }
    }

    /// A recorder whose events go nowhere (and are counted as dropped): for
    /// components started without an API to write to.
    pub fn disabled(component: &str) -> Self {
        let (tx, _) = mpsc::channel(1);
        Self {
            tx,
            component: component.into(),
            host: "".into(),
            stats: Arc::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Records a `Normal` event about `object`.
    pub fn normal(&self, object: ObjectReference, reason: &str, message: impl Into<String>) {
        self.record(object, event::NORMAL, reason, message.into());
    }

    /// Records a `Warning` event about `object`.
    pub fn warning(&self, object: ObjectReference, reason: &str, message: impl Into<String>) {
        self.record(object, event::WARNING, reason, message.into());
    }

    fn record(&self, object: ObjectReference, type_: &str, reason: &str, message: String) {
        let e = correlate::new_event(
            object,
            type_,
            reason,
            &message,
            &self.component,
            &self.host,
            SystemTime::now(),
        );
        if self.tx.try_send(e).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_loop(sink: impl Sink, mut rx: mpsc::Receiver<Event>, stats: Arc<Stats>) {
    let mut correlator = Correlator::new();
    while let Some(e) = rx.recv().await {
        let fresh = e.clone();
        let result = match correlator.observe(e, SystemTime::now()) {
            Decision::Throttled => {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Decision::Create(e) => sink.create(e).await.inspect(|_| {
                stats.created.fetch_add(1, Ordering::Relaxed);
            }),
            Decision::Update(e) => match sink.update(e).await {
                Ok(stored) => {
                    stats.updated.fetch_add(1, Ordering::Relaxed);
                    Ok(stored)
                }
                Err(SinkError::NotFound) => {
                    correlator.forget(&fresh);
                    sink.create(fresh).await.inspect(|_| {
                        stats.created.fetch_add(1, Ordering::Relaxed);
                    })
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(stored) => correlator.written(&stored),
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "recording an event failed");
            }
        }
    }
}

/// The agent's and keelctl's sink: the API over HTTP.
impl Sink for Client {
    async fn create(&self, e: Event) -> Result<Event, SinkError> {
        Client::create(self, &e)
            .await
            .map_err(|e| SinkError::Other(e.to_string()))
    }
    async fn update(&self, e: Event) -> Result<Event, SinkError> {
        Client::update(self, &e).await.map_err(|e| {
            if e.is_not_found() {
                SinkError::NotFound
            } else {
                SinkError::Other(e.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests;
