//! The recorder end to end over an in-memory sink: repeats become one
//! Event's count, a full queue drops without blocking, a deleted Event is
//! created anew.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::*;
use crate::{Pod, recorder::correlate::reference};

#[derive(Clone, Default)]
struct Memory(Arc<Mutex<BTreeMap<String, Event>>>);

impl Sink for Memory {
    async fn create(&self, e: Event) -> Result<Event, SinkError> {
        self.0
            .lock()
            .unwrap()
            .insert(e.metadata.name.clone(), e.clone());
        Ok(e)
    }
    async fn update(&self, e: Event) -> Result<Event, SinkError> {
        let mut m = self.0.lock().unwrap();
        if !m.contains_key(&e.metadata.name) {
            return Err(SinkError::NotFound);
        }
        m.insert(e.metadata.name.clone(), e.clone());
        Ok(e)
    }
}

fn web() -> ObjectReference {
    let mut p = Pod::default();
    p.metadata.name = "web".into();
    p.metadata.namespace = "default".into();
    reference(&p)
}

async fn settle(stats: &Stats, want: u64) {
    for _ in 0..200 {
        let done = stats.created.load(Ordering::Relaxed)
            + stats.updated.load(Ordering::Relaxed)
            + stats.throttled.load(Ordering::Relaxed)
            + stats.failed.load(Ordering::Relaxed);
        if done >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the recorder did not write {want} events");
}

#[tokio::test]
async fn repeats_are_one_event_with_a_count() {
    let sink = Memory::default();
    let r = Recorder::spawn(sink.clone(), "kubelet", "n1");
    for _ in 0..3 {
        r.warning(
            web(),
            "Unhealthy",
            "Readiness probe failed: connection refused",
        );
    }
    r.normal(web(), "Started", "Started container web");
    settle(r.stats(), 4).await;
    let events = sink.0.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    let unhealthy = events.values().find(|e| e.reason == "Unhealthy").unwrap();
    assert_eq!(unhealthy.count, 3);
    assert_eq!(unhealthy.type_, "Warning");
    assert_eq!(unhealthy.source.component, "kubelet");
    assert_eq!(unhealthy.source.host, "n1");
    // Deleted (TTL): the next repeat creates it anew.
    sink.0.lock().unwrap().clear();
    r.warning(
        web(),
        "Unhealthy",
        "Readiness probe failed: connection refused",
    );
    settle(r.stats(), 5).await;
    let events = sink.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events.values().next().unwrap().count, 1);
}

#[test]
fn recording_never_blocks_and_counts_drops() {
    // No runtime drains this recorder's queue: the queue fills and the rest
    // is dropped, counted, without blocking.
    let (tx, _rx) = mpsc::channel(QUEUE);
    let r = Recorder {
        tx,
        component: "kubelet".into(),
        host: "n1".into(),
        stats: Arc::new(Stats::default()),
    };
    for i in 0..(QUEUE + 5) {
        r.normal(web(), "Pulled", format!("m{i}"));
    }
    assert_eq!(r.stats().dropped.load(Ordering::Relaxed), 5);
    let d = Recorder::disabled("x");
    d.normal(web(), "Pulled", "m");
    assert_eq!(d.stats().dropped.load(Ordering::Relaxed), 1);
}
