//! Persistence behind the store: a [`Backend`] loads everything at start and
//! commits batches atomically. redb is the default; an etcd backend can
//! implement the same trait. [`MemoryBackend`] is for unit tests.

use std::collections::BTreeMap;

use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
#[error("store backend: {message}")]
pub struct BackendError {
    pub message: String,
    pub fault: Fault,
}

/// What a backend error means for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This write failed; the next may succeed.
    Other,
    /// The disk is full: the backend recovered and now takes only deletes
    /// (see [`Backend::disk_full`]) until there is space again.
    NoSpace,
    /// The backend cannot go on (it failed to recover from an I/O error).
    Fatal,
}

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fault: Fault::Other,
        }
    }
}

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
    /// Whether the disk is too full for anything but deletes; asked before
    /// each group commit (a backend may find space again here).
    fn disk_full(&mut self) -> bool {
        false
    }
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
    disk_full: bool,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every following commit fail (or succeed again).
    pub fn fail_commits(&self, fail: bool) {
        self.data.lock().expect("memory backend lock").fail_commits = fail;
    }

    /// Makes the next commit fail as a full disk does (and the backend
    /// report a full disk until told otherwise).
    pub fn set_disk_full(&self, full: bool) {
        self.data.lock().expect("memory backend lock").disk_full = full;
    }

    /// Watch events persisted.
    pub fn event_count(&self) -> usize {
        self.data.lock().expect("memory backend lock").events.len()
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

    fn disk_full(&mut self) -> bool {
        self.data.lock().expect("memory backend lock").disk_full
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), BackendError> {
        let mut d = self.data.lock().expect("memory backend lock");
        if d.fail_commits {
            return Err(BackendError::new("injected failure"));
        }
        if d.disk_full && batch.writes.iter().any(|(_, v)| v.is_some()) {
            return Err(BackendError {
                message: "injected: no space left on device".into(),
                fault: Fault::NoSpace,
            });
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
