//! A list + watch loop for one kind, as client-go's informers do: list once,
//! watch from the list's resourceVersion, resume after a dropped stream from
//! the last seen version, relist only when the server says it is too old,
//! and back off (with jitter) while the server is unreachable. What it has
//! seen is kept on disk, and stands in for the first list when keel-control
//! cannot be reached at start.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use keel_api::{
    EventType, Resource,
    client::{Client, ClientError, ListParams},
};
use tokio::sync::mpsc;

use super::{cache::DiskCache, view::Update};
use crate::reconcile::backoff::{self, Retry};

/// How long the first list may take before the agent starts from its disk
/// cache instead.
const START_LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon a change reaches the disk cache when saving is cheap.
const SAVE_EVERY: Duration = Duration::from_millis(100);
/// Saving a large cache costs time in proportion to its size: after a save
/// that took `t`, the next one waits at least `SAVE_COST_FACTOR · t`, so
/// saving never takes more than about a tenth of a core, whatever the size.
const SAVE_COST_FACTOR: u32 = 10;

pub struct Informer<R: Resource, S> {
    pub client: Client,
    /// "" for all namespaces.
    pub namespace: String,
    pub params: ListParams,
    /// The cache file name (e.g. "pods").
    pub name: &'static str,
    pub cache: Arc<DiskCache>,
    pub updates: mpsc::Sender<S>,
    /// Wraps this kind's updates into the channel's message.
    pub wrap: fn(Update<R>) -> S,
}

/// When the cache may next be written.
struct Saver {
    dirty: bool,
    next: Instant,
}

impl Saver {
    fn new() -> Self {
        Self {
            dirty: false,
            next: Instant::now(),
        }
    }
}

impl<R: Resource, S: Send + 'static> Informer<R, S> {
    /// Runs until the receiver is dropped.
    pub async fn run(self) {
        let mut items: BTreeMap<String, Arc<R>> = BTreeMap::new();
        let mut rv = String::new();
        // keel-control first: its list is the truth. The disk cache stands
        // in only when it cannot be reached at start, so the node keeps
        // serving what it last knew (and removes nothing by it: the view
        // is not fresh until a list succeeds).
        let mut listed = false;
        let mut saver = Saver::new();
        self.cache.clean(self.name);
        match tokio::time::timeout(
            START_LIST_TIMEOUT,
            self.client.list::<R>(&self.namespace, &self.params),
        )
        .await
        {
            Ok(Ok(list)) => {
                items = list
                    .items
                    .into_iter()
                    .map(|o| (o.key(), Arc::new(o)))
                    .collect();
                rv = list.metadata.resource_version;
                listed = true;
                saver.dirty = true;
                self.save(&rv, &items, &mut saver, true);
                if self.replace(&items).await.is_err() {
                    return;
                }
            }
            first => {
                let why = match first {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {START_LIST_TIMEOUT:?}"),
                };
                tracing::warn!(kind = R::KIND, error = %why, "keel-control unreachable at start; serving from the agent cache");
                match self.cache.load::<R>(self.name) {
                    Ok(Some(cached)) => {
                        items = cached
                            .items
                            .into_iter()
                            .map(|o| (o.key(), Arc::new(o)))
                            .collect();
                        rv = cached.resource_version;
                        tracing::info!(kind = R::KIND, count = items.len(), resource_version = %rv, "loaded from the agent cache");
                        let all = items.values().cloned().collect();
                        if self
                            .updates
                            .send((self.wrap)(Update::Cached(all)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable agent cache"),
                }
            }
        }
        let mut retry = Retry::new(backoff::CONTROL);
        loop {
            // "0" is not a point in history: the server answers it with the
            // whole state as ADDED events, which would reach the view one
            // object at a time. A list replaces the view in one step.
            // Until one list has succeeded, list rather than resume the
            // cache's watch: the view is only fresh after a list.
            if rv.is_empty() || rv == "0" || !listed {
                match self.client.list::<R>(&self.namespace, &self.params).await {
                    Ok(list) => {
                        items = list
                            .items
                            .into_iter()
                            .map(|o| (o.key(), Arc::new(o)))
                            .collect();
                        rv = list.metadata.resource_version;
                        listed = true;
                        saver.dirty = true;
                        self.save(&rv, &items, &mut saver, true);
                        if self.replace(&items).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let delay = retry.next_delay();
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
                    let delay = retry.next_delay();
                    tracing::warn!(kind = R::KIND, error = %e, retry_in = ?delay, "watch failed");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            retry.reset();
            loop {
                // Persist what changed soon (a restart right after a change
                // must not start from an older view), but not on every
                // event of a burst.
                self.save(&rv, &items, &mut saver, false);
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
                saver.dirty = true;
                if self.updates.send((self.wrap)(update)).await.is_err() {
                    return;
                }
            }
            self.save(&rv, &items, &mut saver, true);
        }
    }

    async fn replace(&self, items: &BTreeMap<String, Arc<R>>) -> Result<(), ()> {
        let all = items.values().cloned().collect();
        self.updates
            .send((self.wrap)(Update::Replace(all)))
            .await
            .map_err(drop)
    }

    /// Writes the cache if it changed and its time has come (`now`: at once).
    fn save(&self, rv: &str, items: &BTreeMap<String, Arc<R>>, saver: &mut Saver, now: bool) {
        if !saver.dirty || (!now && Instant::now() < saver.next) {
            return;
        }
        let t0 = Instant::now();
        if let Err(e) = self.cache.save(self.name, rv, items.values()) {
            tracing::warn!(error = %e, "could not save the agent cache");
        }
        let took = t0.elapsed();
        saver.dirty = false;
        saver.next = Instant::now() + SAVE_EVERY.max(took * SAVE_COST_FACTOR);
    }
}
