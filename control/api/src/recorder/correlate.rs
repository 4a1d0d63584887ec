//! What to write for an observed event, as client-go's `EventCorrelator`
//! decides it: the same (involved object, type, reason, message, source) as
//! an event already written becomes an update of that Event with `count`
//! raised and `lastTimestamp` moved; a source that floods one object is
//! held back by a token bucket (client-go's `EventSourceObjectSpamFilter`:
//! a burst of 25, then one every 5 minutes). Pure: the time is passed in.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, SystemTime},
};

use crate::{Event, Resource, Time, kinds::endpoints::ObjectReference};

/// The spam filter's burst per (source, object).
pub const BURST: f64 = 25.0;
/// One token every this long after the burst.
pub const REFILL: Duration = Duration::from_secs(300);
/// How many aggregation keys (and spam buckets) are remembered; the oldest
/// are forgotten first (client-go keeps an LRU of 4096).
pub const MAX_KEYS: usize = 4096;

/// What the correlator decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A new Event.
    Create(Event),
    /// The stored Event with this name, counted once more.
    Update(Event),
    /// Dropped by the spam filter.
    Throttled,
}

/// The key events are aggregated by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    object: ObjectReference,
    type_: String,
    reason: String,
    message: String,
    component: String,
    host: String,
}

fn key(e: &Event) -> Key {
    let mut object = e.involved_object.clone();
    // The object's resourceVersion changes with every write; the event is
    // still about the same object.
    object.resource_version.clear();
    Key {
        object,
        type_: e.type_.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        component: e.source.component.clone(),
        host: e.source.host.clone(),
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

/// Aggregation state: the last Event written per key, and the spam buckets.
#[derive(Debug, Default)]
pub struct Correlator {
    written: HashMap<Key, Event>,
    order: VecDeque<Key>,
    buckets: HashMap<(String, String, ObjectReference), Bucket>,
    bucket_order: VecDeque<(String, String, ObjectReference)>,
}

impl Correlator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides what to write for `e` (a fresh event: count 1, timestamps
    /// at `now`, a name).
    pub fn observe(&mut self, e: Event, now: SystemTime) -> Decision {
        if !self.allow(&e, now) {
            return Decision::Throttled;
        }
        let k = key(&e);
        match self.written.get(&k) {
            Some(prev) => {
                let mut next = prev.clone();
                next.count = prev.count.max(1) + 1;
                next.last_timestamp = Some(Time(now));
                next.metadata.resource_version.clear();
                next.involved_object.resource_version = e.involved_object.resource_version;
                Decision::Update(next)
            }
            None => Decision::Create(e),
        }
    }

    /// Remembers what was stored, so the next repeat updates it.
    pub fn written(&mut self, stored: &Event) {
        let k = key(stored);
        if self.written.insert(k.clone(), stored.clone()).is_none() {
            self.order.push_back(k);
            while self.order.len() > MAX_KEYS {
                if let Some(old) = self.order.pop_front() {
                    self.written.remove(&old);
                }
            }
        }
    }

    /// Forgets the Event stored for `e`'s key (it was deleted, e.g. by the
    /// TTL): the next repeat creates a new one.
    pub fn forget(&mut self, e: &Event) {
        let k = key(e);
        if self.written.remove(&k).is_some() {
            self.order.retain(|o| *o != k);
        }
    }

    fn allow(&mut self, e: &Event, now: SystemTime) -> bool {
        let mut object = e.involved_object.clone();
        object.resource_version.clear();
        let bk = (e.source.component.clone(), e.source.host.clone(), object);
        let b = match self.buckets.get_mut(&bk) {
            Some(b) => b,
            None => {
                self.bucket_order.push_back(bk.clone());
                while self.bucket_order.len() > MAX_KEYS {
                    if let Some(old) = self.bucket_order.pop_front() {
                        self.buckets.remove(&old);
                    }
                }
                self.buckets.entry(bk).or_insert(Bucket {
                    tokens: BURST,
                    at: now,
                })
            }
        };
        let elapsed = now.duration_since(b.at).unwrap_or_default();
        b.tokens = (b.tokens + elapsed.as_secs_f64() / REFILL.as_secs_f64()).min(BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A fresh event about `object`, named as client-go names them
/// (`<object name>.<nanoseconds in hex>`), in the object's namespace
/// (`default` for cluster-scoped objects).
pub fn new_event(
    object: ObjectReference,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
    host: &str,
    now: SystemTime,
) -> Event {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut e = Event::default();
    e.metadata.name = format!("{}.{nanos:x}", object.name);
    e.metadata.namespace = if object.namespace.is_empty() {
        "default".into()
    } else {
        object.namespace.clone()
    };
    e.involved_object = object;
    e.type_ = type_.into();
    e.reason = reason.into();
    e.message = crate::event::truncate_message(message);
    e.source.component = component.into();
    e.source.host = host.into();
    e.reporting_component = component.into();
    e.reporting_instance = host.into();
    e.first_timestamp = Some(Time(now));
    e.last_timestamp = Some(Time(now));
    e.count = 1;
    e.set_type_meta();
    e
}

/// A reference to `obj` for an event's `involvedObject`.
pub fn reference<R: Resource>(obj: &R) -> ObjectReference {
    let m = obj.meta();
    ObjectReference {
        kind: R::KIND.into(),
        namespace: if R::NAMESPACED {
            m.namespace.clone()
        } else {
            String::new()
        },
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: R::API_VERSION.into(),
        resource_version: m.resource_version.clone(),
        field_path: String::new(),
    }
}

#[cfg(test)]
mod tests;
