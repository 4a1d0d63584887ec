//! The change history watchers read from: one event per revision, the most
//! recent `capacity` of them, and at most `max_bytes` of their watch lines,
//! kept in memory (and on disk by the backend): a few updates of one large
//! object cost what they weigh, not `capacity` copies of it.

use std::{
    collections::VecDeque,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use keel_api::EventType;
use serde::{Deserialize, Serialize};

use super::state::Obj;

/// One change: the object as it is after the change (before it, for DELETED).
#[derive(Debug)]
pub struct Event {
    pub revision: u64,
    pub type_: EventType,
    pub obj: Obj,
    line: OnceLock<Bytes>,
}

/// How an event is stored and streamed: `{"type":…,"object":…}`.
#[derive(Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(rename = "type")]
    pub type_: EventType,
    pub object: serde_json::Value,
}

impl Event {
    pub fn new(revision: u64, type_: EventType, obj: Obj) -> Self {
        Self {
            revision,
            type_,
            obj,
            line: OnceLock::new(),
        }
    }

    /// The watch line, serialized once and shared by every watcher.
    pub fn line(&self) -> &Bytes {
        self.line.get_or_init(|| {
            let mut v = serde_json::to_vec(&EventRecord {
                type_: self.type_,
                object: self.obj.to_value(),
            })
            .expect("events serialize");
            v.push(b'\n');
            Bytes::from(v)
        })
    }

    /// The record persisted by the backend (the line without its newline).
    pub fn record(&self) -> Bytes {
        let line = self.line();
        line.slice(..line.len() - 1)
    }
}

/// The watch's resourceVersion is older than the oldest kept event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

#[derive(Debug)]
pub struct History {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    max_bytes: usize,
    /// The watch lines' bytes of `events`.
    bytes: usize,
    /// Every event with revision <= compacted is gone.
    compacted: u64,
}

impl History {
    pub fn new(capacity: usize, compacted: u64) -> Self {
        Self::with_budget(capacity, usize::MAX, compacted)
    }

    /// At most `capacity` events and `max_bytes` of them (the newest event
    /// is kept whatever it weighs).
    pub fn with_budget(capacity: usize, max_bytes: usize, compacted: u64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            compacted,
        }
    }

    /// The watch lines' bytes kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The compaction point `push(new)` would leave, without pushing.
    pub fn compaction_after(&self, new: &[Arc<Event>]) -> u64 {
        let mut len = self.events.len() + new.len();
        let mut bytes = self.bytes + new.iter().map(|e| e.line().len()).sum::<usize>();
        let mut compacted = self.compacted;
        for old in self.events.iter().chain(new) {
            if len <= 1 || (len <= self.capacity && bytes <= self.max_bytes) {
                break;
            }
            len -= 1;
            bytes -= old.line().len();
            compacted = old.revision;
        }
        compacted
    }

    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends events (ascending revisions: consecutive from the embedded
    /// writer, with gaps on etcd, whose revisions also count writes outside
    /// the registry), dropping the oldest beyond capacity. Returns the new
    /// compaction point.
    pub fn push(&mut self, events: impl IntoIterator<Item = Arc<Event>>) -> u64 {
        for e in events {
            debug_assert!(self.events.back().is_none_or(|b| b.revision < e.revision));
            self.bytes += e.line().len();
            self.events.push_back(e);
        }
        while self.events.len() > 1
            && (self.events.len() > self.capacity || self.bytes > self.max_bytes)
        {
            let old = self.events.pop_front().expect("non-empty");
            self.bytes -= old.line().len();
            self.compacted = old.revision;
        }
        self.compacted
    }

    /// Events with revision > `after`, or Expired if some were compacted.
    pub fn after(&self, after: u64) -> Result<Vec<Arc<Event>>, Expired> {
        if after < self.compacted {
            return Err(Expired {
                requested: after,
                oldest: self.compacted + 1,
            });
        }
        let start = self.events.partition_point(|e| e.revision <= after);
        Ok(self.events.range(start..).cloned().collect())
    }
}

#[cfg(test)]
mod tests;
