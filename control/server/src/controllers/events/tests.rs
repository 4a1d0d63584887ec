//! The TTL's choice of Events, and the store sink end to end.

use std::time::{Duration, SystemTime};

use keel_api::{Pod, Time, recorder::correlate::reference};

use super::*;
use crate::store::{MemoryBackend, StoreConfig};

fn store() -> Store {
    Store::open(Box::new(MemoryBackend::new()), StoreConfig::default()).unwrap()
}

fn web() -> Pod {
    let mut p = Pod::default();
    p.metadata.name = "web".into();
    p.metadata.namespace = "default".into();
    p
}

#[tokio::test]
async fn the_ttl_picks_events_last_seen_before_it() {
    let s = store();
    let now = SystemTime::now();
    for (name, ago) in [("old", 7200), ("fresh", 60)] {
        let mut e = keel_api::recorder::correlate::new_event(
            reference(&web()),
            "Normal",
            "Pulled",
            name,
            "kubelet",
            "n1",
            now - Duration::from_secs(ago),
        );
        e.metadata.name = name.into();
        e.last_timestamp = Some(Time(now - Duration::from_secs(ago)));
        s.create(e).await.unwrap();
    }
    let gone = expired(&s.snapshot(), now, Duration::from_secs(3600));
    let names: Vec<&str> = gone.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["old"]);
    assert!(expired(&s.snapshot(), now, Duration::from_secs(3 * 3600)).is_empty());
}

#[tokio::test]
async fn the_controllers_recorder_aggregates_in_the_store() {
    let s = store();
    let r = recorder(&s, SCHEDULER);
    for _ in 0..3 {
        r.warning(
            reference(&web()),
            "FailedScheduling",
            "0/0 nodes are available",
        );
    }
    let mut events = Vec::new();
    for _ in 0..200 {
        events = s.snapshot().events.values().cloned().collect::<Vec<_>>();
        if events.first().is_some_and(|e| e.count == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].count, 3);
    assert_eq!(events[0].source.component, SCHEDULER);
    assert_eq!(events[0].involved_object.name, "web");
}
