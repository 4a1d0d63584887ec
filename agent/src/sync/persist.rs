//! Keeping the view on disk: after a change, each kind's objects (the
//! view's own shared copies, taken in O(1)) are written to the agent cache
//! within a tenth of a second, but never more often than saving costs: a
//! save that took `t` waits `10·t` before the next, so a large cache never
//! takes more than about a tenth of a core. The cache is what a restarted
//! agent serves from while keel-control cannot be reached.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use keel_api::Resource;
use tokio::sync::watch;

use super::{cache::DiskCache, view::Objects};

/// How soon a change reaches the disk cache when saving is cheap.
const SAVE_EVERY: Duration = Duration::from_millis(100);
/// A save that took `t` is followed by a pause of `SAVE_COST_FACTOR · t`.
const SAVE_COST_FACTOR: u32 = 10;

/// The latest objects of one kind and the resourceVersion they are at.
pub type Latest<R> = Option<(Objects<R>, String)>;

/// Starts the saver of one kind; send it the latest state after a change.
pub fn spawn<R: Resource>(cache: Arc<DiskCache>, name: &'static str) -> watch::Sender<Latest<R>> {
    let (tx, mut rx) = watch::channel::<Latest<R>>(None);
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some((objects, rv)) = rx.borrow_and_update().clone() else {
                continue;
            };
            let cache = cache.clone();
            let t0 = Instant::now();
            let saved =
                tokio::task::spawn_blocking(move || cache.save(name, &rv, objects.values())).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not save the agent cache"),
                Err(e) => tracing::warn!(error = %e, "agent cache save task failed"),
            }
            tokio::time::sleep(SAVE_EVERY.max(t0.elapsed() * SAVE_COST_FACTOR)).await;
        }
    });
    tx
}
