//! The work queue behind every reconciler, as a pure state machine over
//! explicit instants (client-go's rate-limited work queue, without the
//! goroutines):
//!
//! - a changed key is *dirty*; a burst of changes is collected for
//!   `debounce` after the first one and handed over as one [`Batch`], each
//!   key once however often it changed;
//! - a key the reconciler could not converge is retried after a jittered
//!   exponential back-off of its own, while other keys go on; a success
//!   forgets its failures; a new change makes it due again at once;
//! - a *full pass* ("compare everything": at start, every `resync`, or when
//!   a reconciler asks for it) is one more item with its own back-off.
//!
//! The driver (`super::driver`) owns the clock and the thread; this file
//! only decides what is due when, so it is tested without sleeping.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use super::backoff::Backoff;

/// How a queue paces its reconciler.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Changes arriving within this long of the first one are reconciled together.
    pub debounce: Duration,
    /// A full pass this often even without changes (None: never).
    pub resync: Option<Duration>,
    /// Retry pacing of failed keys and failed full passes.
    pub backoff: Backoff,
}

/// What the reconciler is handed: the keys to look at, and whether to
/// compare everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<K> {
    pub keys: BTreeSet<K>,
    /// Compare everything, not only `keys` (start, resync, retry of a
    /// failed full pass, or asked for).
    pub all: bool,
}

/// What a reconciler says about a batch: the keys it could not converge
/// (with why), and whether the full pass failed. Keys not named succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<K: Ord> {
    pub failed: BTreeMap<K, String>,
    pub all_failed: Option<String>,
}

impl<K: Ord> Default for Report<K> {
    fn default() -> Self {
        Self {
            failed: BTreeMap::new(),
            all_failed: None,
        }
    }
}

impl<K: Ord + Clone> Report<K> {
    pub fn ok() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, key: K, why: impl std::fmt::Display) {
        self.failed.insert(key, why.to_string());
    }

    /// The whole batch failed: every key in it, and the full pass if it was one.
    pub fn fail_batch(batch: &Batch<K>, why: impl std::fmt::Display) -> Self {
        let why = why.to_string();
        Self {
            failed: batch
                .keys
                .iter()
                .map(|k| (k.clone(), why.clone()))
                .collect(),
            all_failed: batch.all.then_some(why),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.failed.is_empty() && self.all_failed.is_none()
    }
}

/// A key (or the full pass) that failed and waits to be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub failures: u32,
    pub error: String,
    /// None while it is being retried (or while a change made it dirty).
    pub retry_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Queue<K> {
    opts: Options,
    dirty: BTreeSet<K>,
    dirty_since: Option<Instant>,
    failing: BTreeMap<K, Failing>,
    /// When a full pass is wanted (None: not wanted).
    all_at: Option<Instant>,
    all_failing: Option<Failing>,
    next_resync: Option<Instant>,
}

impl<K: Ord + Clone> Queue<K> {
    /// A queue whose first batch is a full pass, due at once.
    pub fn new(opts: Options, now: Instant) -> Self {
        Self {
            opts,
            dirty: BTreeSet::new(),
            dirty_since: None,
            failing: BTreeMap::new(),
            all_at: Some(now),
            all_failing: None,
            next_resync: opts.resync.map(|r| now + r),
        }
    }

    pub fn add(&mut self, key: K, now: Instant) {
        self.dirty.insert(key);
        self.dirty_since.get_or_insert(now);
    }

    /// Asks for a full pass as soon as the debounce allows.
    pub fn add_all(&mut self, now: Instant) {
        let at = now + self.opts.debounce;
        self.all_at = Some(self.all_at.map_or(at, |t| t.min(at)));
    }

    /// When something is next due, if anything is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        let debounced = self.dirty_since.map(|t| t + self.opts.debounce);
        let retries = self.failing.values().filter_map(|f| f.retry_at).min();
        [debounced, retries, self.all_at, self.next_resync]
            .into_iter()
            .flatten()
            .min()
    }

    /// The batch due at `now`, if any. Everything dirty goes with it, even
    /// if it is a retry or a resync that made it due.
    pub fn take(&mut self, now: Instant) -> Option<Batch<K>> {
        if self.deadline().is_none_or(|d| d > now) {
            return None;
        }
        if self.next_resync.is_some_and(|t| t <= now) {
            self.next_resync = self.opts.resync.map(|r| now + r);
            self.all_at = Some(now);
        }
        let all = self.all_at.is_some_and(|t| t <= now);
        if all {
            self.all_at = None;
        }
        let mut keys = std::mem::take(&mut self.dirty);
        self.dirty_since = None;
        for (k, f) in self.failing.iter_mut() {
            if f.retry_at.is_some_and(|t| t <= now) || keys.contains(k) {
                f.retry_at = None;
                keys.insert(k.clone());
            }
        }
        Some(Batch { keys, all })
    }

    /// Records what the reconciler made of `batch`.
    pub fn done(&mut self, batch: &Batch<K>, report: &Report<K>, now: Instant) {
        for k in &batch.keys {
            match report.failed.get(k) {
                Some(why) => {
                    let f = self.failing.entry(k.clone()).or_insert(Failing {
                        failures: 0,
                        error: String::new(),
                        retry_at: None,
                    });
                    f.failures = f.failures.saturating_add(1);
                    f.error = why.clone();
                    // A change that arrived meanwhile retries it anyway.
                    if !self.dirty.contains(k) {
                        f.retry_at = Some(now + self.opts.backoff.delay(f.failures));
                    }
                }
                None => {
                    self.failing.remove(k);
                }
            }
        }
        if batch.all {
            match &report.all_failed {
                Some(why) => {
                    let f = self.all_failing.get_or_insert(Failing {
                        failures: 0,
                        error: String::new(),
                        retry_at: None,
                    });
                    f.failures = f.failures.saturating_add(1);
                    f.error = why.clone();
                    let at = now + self.opts.backoff.delay(f.failures);
                    f.retry_at = Some(at);
                    self.all_at = Some(self.all_at.map_or(at, |t| t.min(at)));
                }
                None => self.all_failing = None,
            }
        }
    }

    /// Keys changed and not yet handed over.
    pub fn depth(&self) -> usize {
        self.dirty.len()
    }

    pub fn failing(&self) -> &BTreeMap<K, Failing> {
        &self.failing
    }

    pub fn all_failing(&self) -> Option<&Failing> {
        self.all_failing.as_ref()
    }
}

#[cfg(test)]
mod tests;
