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

#[tokio::test]
async fn the_controllers_record_what_they_do() {
    let s = store();
    let tasks = crate::controllers::spawn_all(&s, &Default::default(), None);
    let d: keel_api::Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        }
    }))
    .unwrap();
    s.create(d).await.unwrap();
    // No node: the pod is created, and cannot be scheduled.
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = s
            .snapshot()
            .events
            .values()
            .map(|e| {
                (
                    e.involved_object.kind.clone(),
                    e.reason.clone(),
                    e.source.component.clone(),
                    e.message.clone(),
                )
            })
            .collect::<Vec<_>>();
        if seen.iter().any(|e| e.1 == "SuccessfulCreate")
            && seen.iter().any(|e| e.1 == "FailedScheduling")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.abort();
    }
    let created = seen
        .iter()
        .find(|e| e.1 == "SuccessfulCreate")
        .expect("SuccessfulCreate");
    assert_eq!(created.0, "Deployment");
    assert_eq!(created.2, DEPLOYMENT_CONTROLLER);
    assert!(created.3.starts_with("Created pod: web-"), "{seen:?}");
    let failed = seen
        .iter()
        .find(|e| e.1 == "FailedScheduling")
        .expect("FailedScheduling");
    assert_eq!(failed.0, "Pod");
    assert_eq!(failed.2, SCHEDULER);
    assert!(failed.3.starts_with("0/0 nodes are available"), "{seen:?}");
}

#[tokio::test]
async fn the_node_controller_records_not_ready_and_eviction() {
    let s = store();
    let node: keel_api::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": "2020-01-01T00:00:00Z", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    }))
    .unwrap();
    s.create(node).await.unwrap();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    s.create(pod).await.unwrap();
    let cfg = crate::controllers::ControllerConfig {
        node_monitor_period: Duration::from_millis(20),
        ..Default::default()
    };
    let task = tokio::spawn(crate::controllers::nodes::run(
        s.clone(),
        cfg,
        recorder(&s, NODE_CONTROLLER),
    ));
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = s
            .snapshot()
            .events
            .values()
            .map(|e| {
                (
                    e.involved_object.kind.clone(),
                    e.reason.clone(),
                    e.message.clone(),
                )
            })
            .collect::<Vec<_>>();
        if seen.iter().any(|e| e.0 == "Node" && e.1 == "NodeNotReady")
            && seen.iter().any(|e| e.1 == "NodeControllerEviction")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(
        seen.iter()
            .any(|e| e.0 == "Node" && e.2 == "Node n1 status is now: NodeNotReady"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| e.0 == "Pod"
            && e.1 == "NodeControllerEviction"
            && e.2 == "Marking for deletion Pod default/p from Node n1"),
        "{seen:?}"
    );
    assert!(s.snapshot().pods.is_empty(), "the pod was evicted");
}
