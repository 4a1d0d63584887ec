//! Events inside keel-control: the [`Sink`] the controllers' recorder
//! writes through (the store itself, no HTTP), and the TTL: Events whose
//! last occurrence is older than `--event-ttl` (Kubernetes' default, 1h)
//! are deleted.

use std::time::{Duration, SystemTime};

use keel_api::{
    AnyObject, Event, Kind,
    recorder::{Recorder, Sink, SinkError},
};

use crate::store::{Obj, Precondition, State, Store, StoreError};

/// The components keel-control's controllers record as, named as
/// Kubernetes names them (what `kubectl describe` shows under From).
pub const SCHEDULER: &str = "default-scheduler";
pub const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
pub const NODE_CONTROLLER: &str = "node-controller";

struct StoreSink(Store);

fn stored(o: Obj) -> Result<Event, SinkError> {
    match o.to_any() {
        AnyObject::Event(e) => Ok(e),
        other => Err(SinkError::Other(format!(
            "the store returned a {} for an Event",
            other.kind()
        ))),
    }
}

impl Sink for StoreSink {
    async fn create(&self, e: Event) -> Result<Event, SinkError> {
        stored(
            self.0
                .create(e)
                .await
                .map_err(|e| SinkError::Other(e.to_string()))?,
        )
    }
    async fn update(&self, e: Event) -> Result<Event, SinkError> {
        match self.0.update(e).await {
            Ok(o) => stored(o),
            Err(StoreError::NotFound { .. }) => Err(SinkError::NotFound),
            Err(e) => Err(SinkError::Other(e.to_string())),
        }
    }
}

/// A recorder writing to `store` as `component` (on this keel-control's host).
pub fn recorder(store: &Store, component: &str) -> Recorder {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    // source.host must be a DNS subdomain; a host name that is not one is left out.
    let host = if keel_api::validate::dns1123_subdomain(&host).is_ok() {
        host
    } else {
        String::new()
    };
    Recorder::spawn(StoreSink(store.clone()), component, &host)
}

/// Events last seen before `now - ttl`. Pure.
pub fn expired(state: &State, now: SystemTime, ttl: Duration) -> Vec<(String, String, String)> {
    let Some(cutoff) = now.checked_sub(ttl) else {
        return Vec::new();
    };
    state
        .events
        .values()
        .filter(|e| e.last_seen().is_some_and(|t| t.0 < cutoff))
        .map(|e| {
            (
                e.metadata.namespace.clone(),
                e.metadata.name.clone(),
                e.metadata.uid.clone(),
            )
        })
        .collect()
}

/// Deletes expired Events, checking every tenth of the TTL (at most every
/// minute, at least every second).
pub async fn run_ttl(store: Store, ttl: Duration) {
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let state = store.snapshot();
        for (ns, name, uid) in expired(&state, SystemTime::now(), ttl) {
            let pre = Precondition {
                uid: Some(uid),
                resource_version: None,
            };
            match store.delete(Kind::Event, &ns, &name, pre).await {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::debug!(event = %format!("{ns}/{name}"), error = %e, "event TTL delete refused; retrying next period");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
