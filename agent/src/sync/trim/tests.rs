use keel_api::{Endpoints, Service};

use super::*;

#[test]
fn a_service_keeps_what_the_agent_reads() {
    let mut s: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                     "resourceVersion": "7", "labels": {"app": "web"},
                     "annotations": {"note": "x"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let before = s.clone();
    service(&mut s);
    assert!(s.spec.selector.is_empty());
    assert!(s.metadata.labels.is_empty() && s.metadata.annotations.is_empty());
    assert_eq!(s.metadata.name, before.metadata.name);
    assert_eq!(s.metadata.uid, before.metadata.uid);
    assert_eq!(
        s.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(s.spec.cluster_ip, before.spec.cluster_ip);
    assert_eq!(s.spec.ports, before.spec.ports);
    // Trimming twice (a cached object trimmed again) changes nothing.
    let once = s.clone();
    service(&mut s);
    assert_eq!(s, once);
}

#[test]
fn endpoints_keep_their_subsets() {
    let mut e: Endpoints = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080}]}]
    }))
    .unwrap();
    let subsets = e.subsets.clone();
    endpoints(&mut e);
    assert!(e.metadata.labels.is_empty());
    assert_eq!(e.subsets, subsets);
}
