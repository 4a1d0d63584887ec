//! Event validation (the fields Kubernetes' `ValidateEventCreate` names),
//! field-selector fields and the kubectl columns.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::*;

fn ev(v: Value) -> Event {
    serde_json::from_value(v).unwrap()
}

fn fields(errs: Vec<FieldError>) -> Vec<String> {
    errs.into_iter().map(|e| e.field).collect()
}

fn pod_event() -> Value {
    json!({
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                           "fieldPath": "spec.containers{c}"},
        "reason": "Pulled", "message": "Successfully pulled image", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"}, "count": 1
    })
}

#[test]
fn a_kubernetes_event_round_trips() {
    let v = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.17f", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web",
                           "uid": "u1", "apiVersion": "v1", "resourceVersion": "12",
                           "fieldPath": "spec.containers{web}"},
        "reason": "BackOff", "message": "Back-off restarting failed container",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2026-12-03T07:00:00Z", "lastTimestamp": "2026-12-03T07:05:00Z",
        "count": 7, "type": "Warning",
        "eventTime": null,
        "reportingComponent": "kubelet", "reportingInstance": "n1"
    });
    let e = ev(v);
    assert!(e.validate().is_empty(), "{:?}", e.validate());
    let back = serde_json::to_value(&e).unwrap();
    assert_eq!(back["involvedObject"]["fieldPath"], "spec.containers{web}");
    assert_eq!(back["count"], 7);
    assert_eq!(back["type"], "Warning");
}

#[test]
fn validation_names_the_field() {
    let cases: &[(&str, Value, &[&str])] = &[
        ("valid", pod_event(), &[]),
        (
            "no involved object",
            json!({"metadata": {"name": "e", "namespace": "default"}, "reason": "X"}),
            &["involvedObject.kind", "involvedObject.name"],
        ),
        (
            "namespace mismatch",
            json!({"metadata": {"name": "e", "namespace": "other"},
                   "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"}}),
            &["involvedObject.namespace"],
        ),
        (
            "cluster-scoped object outside default",
            json!({"metadata": {"name": "e", "namespace": "other"},
                   "involvedObject": {"kind": "Node", "name": "n1"}}),
            &["involvedObject.namespace"],
        ),
        (
            "cluster-scoped object in default",
            json!({"metadata": {"name": "e", "namespace": "default"},
                   "involvedObject": {"kind": "Node", "name": "n1"}}),
            &[],
        ),
        (
            "bad type",
            json!({"metadata": {"name": "e", "namespace": "default"}, "type": "Error",
                   "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"}}),
            &["type"],
        ),
        (
            "long message and reason, negative count",
            json!({"metadata": {"name": "e", "namespace": "default"},
                   "reason": "R".repeat(129), "message": "m".repeat(1025), "count": -1,
                   "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"}}),
            &["reason", "message", "count"],
        ),
    ];
    for (what, v, want) in cases {
        assert_eq!(fields(ev(v.clone()).validate()), *want, "{what}");
    }
}

#[test]
fn field_selector_fields_read_the_involved_object() {
    let e = ev(pod_event());
    for f in Event::EXTRA_FIELDS {
        assert!(e.field(f).is_some(), "{f} has no value");
    }
    assert_eq!(e.field("involvedObject.name").as_deref(), Some("web"));
    assert_eq!(e.field("involvedObject.uid").as_deref(), Some("u1"));
    assert_eq!(e.field("involvedObject.kind").as_deref(), Some("Pod"));
    assert_eq!(e.field("source").as_deref(), Some("kubelet"));
    assert_eq!(e.field("type").as_deref(), Some("Normal"));
    assert_eq!(e.field("spec.nodeName"), None);
}

#[test]
fn columns_are_kubectls() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mut e = ev(pod_event());
    e.first_timestamp = Some(Time(now - Duration::from_secs(300)));
    e.last_timestamp = Some(Time(now - Duration::from_secs(5)));
    assert_eq!(e.last_seen_column(now), "5s");
    e.count = 4;
    assert_eq!(e.last_seen_column(now), "5s (x4 over 5m)");
    assert_eq!(e.object_column(), "pod/web");
    assert_eq!(e.source_column(), "kubelet, node-1");
    e.last_timestamp = None;
    e.first_timestamp = None;
    e.count = 1;
    assert_eq!(e.last_seen_column(now), "<unknown>");
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let m = "é".repeat(MAX_MESSAGE_BYTES);
    let t = truncate_message(&m);
    assert!(t.len() <= MAX_MESSAGE_BYTES);
    assert!(t.ends_with("..."));
    assert_eq!(truncate_message("short"), "short");
}
