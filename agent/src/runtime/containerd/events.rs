//! Container exits from containerd's event stream, so a pod's worker hears
//! of an exit when it happens instead of listing its containers on a timer.
//!
//! One subscription per runtime (`/tasks/exit` in keel's containerd
//! namespace) bumps a counter per pod; [`Exits::wait`] waits for that
//! counter to pass what the caller has seen. Container ids are mapped to
//! their pod when keel starts or lists them. While the subscription is not
//! up (containerd restarting), waits answer "cannot tell", and the workers
//! look for themselves; when it comes back every pod's counter is bumped,
//! since exits may have been missed meanwhile.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use containerd_client::{
    events::TaskExit,
    services::v1::{SubscribeRequest, events_client::EventsClient},
};
use tokio::sync::watch;

/// A subscription call without an error this long after it was made stands.
const SUBSCRIBED_AFTER: Duration = Duration::from_millis(300);

/// The exit counters of a runtime's pods. Cheap to clone.
#[derive(Clone, Default)]
pub struct Exits {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The subscription task was started.
    started: bool,
    /// The subscription is up: exits are being heard.
    live: bool,
    /// containerd container id → pod uid.
    pods_of: HashMap<String, String>,
    /// pod uid → its exit counter.
    counters: HashMap<String, watch::Sender<u64>>,
}

impl Exits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that container `id` belongs to pod `uid`.
    pub fn expect(&self, id: &str, uid: &str) {
        let mut inner = self.lock();
        if !inner.pods_of.contains_key(id) {
            inner.pods_of.insert(id.to_string(), uid.to_string());
        }
    }

    /// Forgets a pod (it was removed).
    pub fn forget(&self, uid: &str) {
        let mut inner = self.lock();
        inner.pods_of.retain(|_, u| u != uid);
        inner.counters.remove(uid);
    }

    /// Records an exit of container `id` (of every pod, when its pod is
    /// not known: better a look too many than an exit missed).
    pub fn exited(&self, id: &str) {
        let inner = self.lock();
        match inner.pods_of.get(id).and_then(|u| inner.counters.get(u)) {
            Some(c) => c.send_modify(|n| *n += 1),
            None => {
                if !inner.pods_of.contains_key(id) {
                    for c in inner.counters.values() {
                        c.send_modify(|n| *n += 1);
                    }
                }
            }
        }
    }

    fn set_live(&self, live: bool) {
        let mut inner = self.lock();
        if live && !inner.live {
            for c in inner.counters.values() {
                c.send_modify(|n| *n += 1);
            }
        }
        inner.live = live;
    }

    /// Starts the subscription once (`subscribe` makes the stream).
    pub fn start_once<F, Fut>(&self, subscribe: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Stream, String>> + Send,
    {
        {
            let mut inner = self.lock();
            if inner.started {
                return;
            }
            inner.started = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                // containerd answers a subscription (sends its headers) only
                // with the first event; a call still standing after a
                // moment was taken. Exits in between are covered by the
                // bump that going live gives every pod.
                let call = subscribe();
                tokio::pin!(call);
                let answer = tokio::select! {
                    r = &mut call => r,
                    _ = tokio::time::sleep(SUBSCRIBED_AFTER) => {
                        me.set_live(true);
                        call.await
                    }
                };
                match answer {
                    Ok(mut stream) => {
                        me.set_live(true);
                        loop {
                            match stream.message().await {
                                Ok(Some(env)) => {
                                    let Some(any) = env.event else { continue };
                                    if let Ok(e) =
                                        <TaskExit as prost::Message>::decode(any.value.as_slice())
                                    {
                                        me.exited(&e.container_id);
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e.message(), "containerd events: stream broke; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "containerd events: cannot subscribe; retrying");
                    }
                }
                me.set_live(false);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Waits for pod `uid`'s counter to pass `seen` (None: its value now),
    /// at most `timeout`. None while exits cannot be heard.
    pub async fn wait(&self, uid: &str, seen: Option<u64>, timeout: Duration) -> Option<u64> {
        let mut rx = {
            let mut inner = self.lock();
            if !inner.live {
                return None;
            }
            inner
                .counters
                .entry(uid.to_string())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe()
        };
        let now = *rx.borrow_and_update();
        match seen {
            Some(s) if now <= s => {
                let _ = tokio::time::timeout(timeout, rx.changed()).await;
                Some(*rx.borrow())
            }
            _ => Some(now),
        }
    }
}

/// The event stream of a subscription.
pub type Stream = containerd_client::tonic::codec::Streaming<containerd_client::types::Envelope>;

/// Subscribes to task exits in `namespace` over `ch`.
pub async fn subscribe(
    ch: containerd_client::tonic::transport::Channel,
    namespace: &str,
) -> Result<Stream, String> {
    let req = SubscribeRequest {
        filters: vec![format!("topic==\"/tasks/exit\",namespace==\"{namespace}\"")],
    };
    EventsClient::new(ch)
        .subscribe(req)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| s.message().to_string())
}

#[cfg(test)]
mod tests;
