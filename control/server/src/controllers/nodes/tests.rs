use std::time::Duration;

use super::*;
use crate::store::Obj;

fn cfg() -> ControllerConfig {
    ControllerConfig {
        node_grace: Duration::from_secs(40),
        pod_eviction_timeout: Duration::from_secs(300),
        ..Default::default()
    }
}

fn state(
    node_heartbeat_ago: u64,
    node_status: &str,
    transition_ago: u64,
    now: SystemTime,
) -> State {
    let mut n: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}})).unwrap();
    heartbeat_at(&mut n, now - Duration::from_secs(node_heartbeat_ago));
    n.status.conditions[0].status = node_status.into();
    n.status.conditions[0].last_transition_time =
        Some(Time(now - Duration::from_secs(transition_ago)));
    let mut p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "d", "uid": "u1"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}
    }))
    .unwrap();
    p.set_condition("Ready", "True", "", "");
    let mut s = State::default();
    s.put(Obj::Node(Arc::new(n)));
    s.put(Obj::Pod(Arc::new(p)));
    s
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::MarkUnknown(_) => "unknown",
            Action::MarkPodNotReady(_) => "pod-not-ready",
            Action::Evict(_) => "evict",
        })
        .collect()
}

#[test]
fn healthy_node_needs_nothing() {
    let now = SystemTime::now();
    assert!(plan(&state(5, "True", 100, now), now, &cfg()).is_empty());
}

#[test]
fn missed_heartbeats_mark_node_and_pods() {
    let now = SystemTime::now();
    assert_eq!(
        kinds(&plan(&state(41, "True", 100, now), now, &cfg())),
        ["unknown", "pod-not-ready"]
    );
}

#[test]
fn already_unknown_node_is_not_marked_again_but_pods_are_evicted_after_timeout() {
    let now = SystemTime::now();
    assert_eq!(
        kinds(&plan(&state(100, "Unknown", 60, now), now, &cfg())),
        ["pod-not-ready"]
    );
    assert_eq!(
        kinds(&plan(&state(400, "Unknown", 301, now), now, &cfg())),
        ["evict"]
    );
}

#[test]
fn reported_not_ready_evicts_after_timeout_only() {
    let now = SystemTime::now();
    assert!(kinds(&plan(&state(1, "False", 10, now), now, &cfg())).is_empty());
    assert_eq!(
        kinds(&plan(&state(1, "False", 301, now), now, &cfg())),
        ["evict"]
    );
}
