//! The driver: one thread per reconciler that waits for its [`Queue`] to
//! have something due, hands the batch to the reconciler, and records the
//! outcome. Reconcilers run blocking code (map writes, netlink, CNI
//! plugins) freely: the thread is theirs, and they are the single writer
//! of whatever they own because only this thread calls them.
//!
//! Triggers come from anywhere (informer fan-out, netlink monitors, API
//! handlers) through a cheap, cloneable [`Handle`].

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::queue::{Batch, Options, Queue, Report};

/// A reconciler: turns the keys that changed into the state they should
/// have, and says which it could not converge.
pub trait Reconcile: Send + 'static {
    type Key: Ord + Clone + Send + fmt::Display + 'static;

    fn reconcile(&mut self, batch: &Batch<Self::Key>) -> Report<Self::Key>;
}

/// What a driver has done, for status pages and metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverStatus {
    pub name: String,
    /// Batches reconciled.
    pub syncs: u64,
    /// Keys reconciled (a key counts once per batch it was in).
    pub keys: u64,
    /// Full passes.
    pub full_passes: u64,
    /// Key failures, all batches together.
    pub failures: u64,
    /// Changed keys waiting for the next batch.
    pub queued: usize,
    pub last_sync_us: u64,
    pub max_sync_us: u64,
    pub total_sync_us: u64,
    /// Keys currently failing, with their failure count and last error.
    pub failing: BTreeMap<String, KeyStatus>,
    /// The full pass, when it is failing.
    pub failing_all: Option<KeyStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub failures: u32,
    pub error: String,
}

struct State<K> {
    queue: Queue<K>,
    stats: DriverStatus,
    stopped: bool,
}

struct Shared<K> {
    state: Mutex<State<K>>,
    wake: Condvar,
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic on the driver thread leaves the queue consistent (it is
        // only ever changed under this lock by the short methods below).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Triggers a reconciler and reads its status.
pub struct Handle<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Ord + Clone + fmt::Display> Handle<K> {
    /// Marks a key changed.
    pub fn trigger(&self, key: K) {
        let now = Instant::now();
        self.shared.lock().queue.add(key, now);
        self.shared.wake.notify_one();
    }

    /// Marks several keys changed (one lock, one wake-up).
    pub fn trigger_many(&self, keys: impl IntoIterator<Item = K>) {
        let now = Instant::now();
        let mut st = self.shared.lock();
        let mut any = false;
        for k in keys {
            st.queue.add(k, now);
            any = true;
        }
        drop(st);
        if any {
            self.shared.wake.notify_one();
        }
    }

    /// Asks for a full pass.
    pub fn trigger_all(&self) {
        let now = Instant::now();
        self.shared.lock().queue.add_all(now);
        self.shared.wake.notify_one();
    }

    pub fn status(&self) -> DriverStatus {
        let st = self.shared.lock();
        let mut s = st.stats.clone();
        s.queued = st.queue.depth();
        s.failing = st
            .queue
            .failing()
            .iter()
            .map(|(k, f)| {
                (
                    k.to_string(),
                    KeyStatus {
                        failures: f.failures,
                        error: f.error.clone(),
                    },
                )
            })
            .collect();
        s.failing_all = st.queue.all_failing().map(|f| KeyStatus {
            failures: f.failures,
            error: f.error.clone(),
        });
        s
    }

    /// Stops the driver after the batch in progress (for tests and shutdown).
    pub fn stop(&self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
    }
}

/// Starts `rec` on a thread of its own named `name`; its first batch is a
/// full pass.
pub fn spawn<R: Reconcile>(
    name: &str,
    mut rec: R,
    opts: Options,
) -> std::io::Result<(Handle<R::Key>, JoinHandle<()>)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: Queue::new(opts, Instant::now()),
            stats: DriverStatus {
                name: name.to_string(),
                ..Default::default()
            },
            stopped: false,
        }),
        wake: Condvar::new(),
    });
    let handle = Handle {
        shared: shared.clone(),
    };
    let thread_name = name.to_string();
    let join = std::thread::Builder::new()
        .name(format!("keel-{name}"))
        .spawn(move || {
            while let Some(batch) = next_batch(&shared) {
                let t0 = Instant::now();
                let report = rec.reconcile(&batch);
                let took = t0.elapsed();
                let now = Instant::now();
                let mut st = shared.lock();
                st.queue.done(&batch, &report, now);
                record(&mut st.stats, &batch, &report, took);
                drop(st);
                if !report.is_ok() {
                    for (k, why) in &report.failed {
                        tracing::warn!(reconciler = %thread_name, key = %k, error = %why, "reconcile failed; will retry");
                    }
                    if let Some(why) = &report.all_failed {
                        tracing::warn!(reconciler = %thread_name, error = %why, "full pass failed; will retry");
                    }
                }
            }
        })?;
    Ok((handle, join))
}

/// Waits until a batch is due (None once stopped).
fn next_batch<K: Ord + Clone>(shared: &Shared<K>) -> Option<Batch<K>> {
    let mut st = shared.lock();
    loop {
        if st.stopped {
            return None;
        }
        let now = Instant::now();
        if let Some(b) = st.queue.take(now) {
            return Some(b);
        }
        st = match st.queue.deadline() {
            Some(d) => {
                let wait = d
                    .saturating_duration_since(now)
                    .max(Duration::from_micros(50));
                shared
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

fn record<K: Ord>(s: &mut DriverStatus, batch: &Batch<K>, report: &Report<K>, took: Duration) {
    let us = took.as_micros() as u64;
    s.syncs += 1;
    s.keys += batch.keys.len() as u64;
    s.full_passes += u64::from(batch.all);
    s.failures += report.failed.len() as u64 + u64::from(report.all_failed.is_some());
    s.last_sync_us = us;
    s.max_sync_us = s.max_sync_us.max(us);
    s.total_sync_us += us;
}

#[cfg(test)]
mod tests;
