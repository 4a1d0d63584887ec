//! A list + watch loop for one kind, as client-go's informers do: list once,
//! watch from the list's resourceVersion, resume after a dropped stream from
//! the last seen version, relist only when the server says it is too old,
//! and back off (with jitter) while the server is unreachable. When
//! keel-control cannot be reached at start, the disk cache (which the view
//! keeps, see [`super::persist`]) stands in for the first list.
//!
//! An informer keeps no copy of the objects: it hands each change on, and
//! the view is the one place they live.

use std::{sync::Arc, time::Duration};

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

pub struct Informer<R: Resource, S> {
    pub client: Client,
    /// "" for all namespaces.
    pub namespace: String,
    pub params: ListParams,
    /// The cache file name (e.g. "pods").
    pub name: &'static str,
    pub cache: Arc<DiskCache>,
    pub updates: mpsc::Sender<S>,
    /// Wraps this kind's updates (with the resourceVersion they bring the
    /// informer to) into the channel's message.
    pub wrap: fn(Update<R>, String) -> S,
    /// Drops what the agent never reads from each object before the view
    /// keeps it (client-go's informer transform): see [`super::trim`].
    pub trim: fn(&mut R),
}

impl<R: Resource, S: Send + 'static> Informer<R, S> {
    /// Runs until the receiver is dropped.
    pub async fn run(self) {
        let mut rv = String::new();
        // keel-control first: its list is the truth. The disk cache stands
        // in only when it cannot be reached at start, so the node keeps
        // serving what it last knew (and removes nothing by it: the view
        // is not fresh until a list succeeds).
        let mut listed = false;
        self.cache.clean(self.name);
        match tokio::time::timeout(
            START_LIST_TIMEOUT,
            self.client.list::<R>(&self.namespace, &self.params),
        )
        .await
        {
            Ok(Ok(list)) => {
                rv = list.metadata.resource_version;
                listed = true;
                let all = list.items.into_iter().map(|o| self.keep(o)).collect();
                if self.send(Update::Replace(all), &rv).await.is_err() {
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
                        rv = cached.resource_version;
                        tracing::info!(kind = R::KIND, count = cached.items.len(), resource_version = %rv, "loaded from the agent cache");
                        let all = cached.items.into_iter().map(|o| self.keep(o)).collect();
                        if self.send(Update::Cached(all), &rv).await.is_err() {
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
            // object at a time. A list replaces the view in one step. Until
            // one list has succeeded, list rather than resume the cache's
            // watch: the view is only fresh after a list.
            if rv.is_empty() || rv == "0" || !listed {
                match self.client.list::<R>(&self.namespace, &self.params).await {
                    Ok(list) => {
                        rv = list.metadata.resource_version;
                        listed = true;
                        let all = list.items.into_iter().map(|o| self.keep(o)).collect();
                        if self.send(Update::Replace(all), &rv).await.is_err() {
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
                let event = match stream.next().await {
                    None => break,
                    Some(Err(ClientError::Api(s))) if s.code == 410 => {
                        tracing::info!(kind = R::KIND, "watch expired; relisting");
                        rv.clear();
                        break;
                    }
                    Some(Err(e)) if e.is_too_large_resource_version() => {
                        tracing::info!(kind = R::KIND, error = %e, "the server has not reached this resourceVersion; relisting");
                        rv.clear();
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(kind = R::KIND, error = %e, "watch stream broke; resuming");
                        break;
                    }
                    Some(Ok(e)) => e,
                };
                let obj = event.object;
                rv = obj.meta().resource_version.clone();
                let update = match event.type_ {
                    EventType::Added | EventType::Modified => Update::Upsert(self.keep(obj)),
                    EventType::Deleted => Update::Delete(obj.key()),
                    EventType::Bookmark | EventType::Error => continue,
                };
                if self.send(update, &rv).await.is_err() {
                    return;
                }
            }
        }
    }

    fn keep(&self, mut obj: R) -> Arc<R> {
        (self.trim)(&mut obj);
        Arc::new(obj)
    }

    async fn send(&self, update: Update<R>, rv: &str) -> Result<(), ()> {
        self.updates
            .send((self.wrap)(update, rv.to_string()))
            .await
            .map_err(drop)
    }
}
