//! Persistence behind the store: a [`Backend`] loads everything at start and
//! commits batches atomically. redb is the default; an etcd backend can
//! implement the same trait. [`MemoryBackend`] is for unit tests.

use std::collections::BTreeMap;

use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
#[error("store backend: {0}")]
pub struct BackendError(pub String);

/// Everything persisted, as read at start.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub revision: u64,
    pub compacted: u64,
    /// (storage key, object JSON).
    pub objects: Vec<(String, Bytes)>,
    /// (revision, event record JSON), ascending.
    pub events: Vec<(u64, Bytes)>,
}

/// One atomic write: all of it is durable, or none of it.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub revision: u64,
    /// In order: (storage key, Some(object JSON)) puts, None deletes.
    pub writes: Vec<(String, Option<Bytes>)>,
    pub events: Vec<(u64, Bytes)>,
    /// Drop persisted events with revision <= this.
    pub compacted: u64,
}

pub trait Backend: Send + 'static {
    fn load(&mut self) -> Result<Snapshot, BackendError>;
    fn commit(&mut self, batch: &Batch) -> Result<(), BackendError>;
}

/// Keeps everything in memory, shared between clones so a test can "restart"
/// a store on the same data; can be told to fail commits.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    data: std::sync::Arc<std::sync::Mutex<MemoryData>>,
}

#[derive(Debug, Default)]
struct MemoryData {
    revision: u64,
    compacted: u64,
    objects: BTreeMap<String, Bytes>,
    events: BTreeMap<u64, Bytes>,
    fail_commits: bool,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every following commit fail (or succeed again).
    pub fn fail_commits(&self, fail: bool) {
        self.data.lock().expect("memory backend lock").fail_commits = fail;
    }

    pub fn object_count(&self) -> usize {
        self.data.lock().expect("memory backend lock").objects.len()
    }
}

impl Backend for MemoryBackend {
    fn load(&mut self) -> Result<Snapshot, BackendError> {
        let d = self.data.lock().expect("memory backend lock");
        Ok(Snapshot {
            revision: d.revision,
            compacted: d.compacted,
            objects: d
                .objects
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            events: d.events.iter().map(|(k, v)| (*k, v.clone())).collect(),
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), BackendError> {
        let mut d = self.data.lock().expect("memory backend lock");
        if d.fail_commits {
            return Err(BackendError("injected failure".into()));
        }
        for (k, v) in &batch.writes {
            match v {
                Some(v) => d.objects.insert(k.clone(), v.clone()),
                None => d.objects.remove(k),
            };
        }
        for (r, e) in &batch.events {
            d.events.insert(*r, e.clone());
        }
        d.events.retain(|r, _| *r > batch.compacted);
        d.revision = batch.revision;
        d.compacted = batch.compacted;
        Ok(())
    }
}
