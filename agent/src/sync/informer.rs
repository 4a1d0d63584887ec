//! A list + watch loop for one kind, as client-go's informers do: list once,
//! watch from the list's resourceVersion, resume after a dropped stream from
//! the last seen version, relist only when the server says it is too old,
//! and back off (with jitter) while the server is unreachable.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use keel_api::{
    EventType, Resource,
    client::{Client, ClientError, ListParams},
};
use rand::Rng;
use tokio::sync::mpsc;

use super::cache::DiskCache;

/// How soon a change reaches the disk cache.
const SAVE_EVERY: Duration = Duration::from_millis(100);

/// A change an informer reports to the agent.
#[derive(Debug, Clone)]
pub enum Update<R> {
    /// The whole set (after a list or on load from disk).
    Replace(BTreeMap<String, Arc<R>>),
    Upsert(Arc<R>),
    Delete(String),
}

/// Backoff for reconnecting: 200 ms doubling to 10 s, with ±20% jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(200),
        }
    }
}

impl Backoff {
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(200);
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(10));
        let jitter = rand::rng().random_range(0.8..1.2);
        d.mul_f64(jitter)
    }
}

pub struct Informer<R: Resource> {
    pub client: Client,
    /// "" for all namespaces.
    pub namespace: String,
    pub params: ListParams,
    /// The cache file name (e.g. "pods").
    pub name: &'static str,
    pub cache: Arc<DiskCache>,
    pub updates: mpsc::Sender<Update<R>>,
}

impl<R: Resource> Informer<R> {
    /// Runs until the receiver is dropped.
    pub async fn run(self) {
        let mut items: BTreeMap<String, Arc<R>> = BTreeMap::new();
        let mut rv = String::new();
        // Start from disk: the node has its desired state at once, and the
        // watch resumes where the last run stopped.
        match self.cache.load::<R>(self.name) {
            Ok(Some(cached)) => {
                items = cached
                    .items
                    .into_iter()
                    .map(|o| (o.key(), Arc::new(o)))
                    .collect();
                rv = cached.resource_version;
                tracing::info!(kind = R::KIND, count = items.len(), resource_version = %rv, "loaded from the agent cache");
                if self.send(Update::Replace(items.clone())).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring an unreadable agent cache"),
        }
        let mut backoff = Backoff::default();
        loop {
            // "0" is not a point in history: the server answers it with the
            // whole state as ADDED events, which would reach the view one
            // object at a time. A list replaces the view in one step.
            if rv.is_empty() || rv == "0" {
                match self.client.list::<R>(&self.namespace, &self.params).await {
                    Ok(list) => {
                        items = list
                            .items
                            .into_iter()
                            .map(|o| (o.key(), Arc::new(o)))
                            .collect();
                        rv = list.metadata.resource_version;
                        self.save(&rv, &items);
                        if self.send(Update::Replace(items.clone())).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(kind = R::KIND, error = %e, retry_in = ?delay, "list failed");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
            let mut stream = match self
                .client
                .watch::<R>(&self.namespace, &self.params, &rv)
                .await
            {
                Ok(s) => s,
                Err(e) if e.is_expired() => {
                    tracing::info!(kind = R::KIND, resource_version = %rv, "watch too old; relisting");
                    rv.clear();
                    continue;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(kind = R::KIND, error = %e, retry_in = ?delay, "watch failed");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            let mut dirty = false;
            let mut saved = tokio::time::Instant::now();
            loop {
                // Persist what changed within a tenth of a second (a restart
                // right after a change must not start from an older view),
                // but not on every event of a burst.
                if dirty && saved.elapsed() >= SAVE_EVERY {
                    self.save(&rv, &items);
                    dirty = false;
                    saved = tokio::time::Instant::now();
                }
                let next = tokio::time::timeout(SAVE_EVERY, stream.next()).await;
                let event = match next {
                    Err(_) => continue,
                    Ok(None) => break,
                    Ok(Some(Err(ClientError::Api(s)))) if s.code == 410 => {
                        tracing::info!(kind = R::KIND, "watch expired; relisting");
                        rv.clear();
                        break;
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(kind = R::KIND, error = %e, "watch stream broke; resuming");
                        break;
                    }
                    Ok(Some(Ok(e))) => e,
                };
                let obj = event.object;
                rv = obj.meta().resource_version.clone();
                let update = match event.type_ {
                    EventType::Added | EventType::Modified => {
                        let obj = Arc::new(obj);
                        items.insert(obj.key(), obj.clone());
                        Update::Upsert(obj)
                    }
                    EventType::Deleted => {
                        let key = obj.key();
                        items.remove(&key);
                        Update::Delete(key)
                    }
                    EventType::Bookmark | EventType::Error => continue,
                };
                dirty = true;
                if self.send(update).await.is_err() {
                    return;
                }
            }
            if dirty {
                self.save(&rv, &items);
            }
        }
    }

    async fn send(&self, update: Update<R>) -> Result<(), ()> {
        self.updates.send(update).await.map_err(drop)
    }

    fn save(&self, rv: &str, items: &BTreeMap<String, Arc<R>>) {
        if let Err(e) = self.cache.save(self.name, rv, items) {
            tracing::warn!(error = %e, "could not save the agent cache");
        }
    }
}
