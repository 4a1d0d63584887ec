use std::sync::Arc;

use keel_api::{Endpoints, Pod};

use super::*;

fn endpoints(v: serde_json::Value) -> Arc<Endpoints> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn pod(v: serde_json::Value) -> Arc<Pod> {
    Arc::new(serde_json::from_value(v).unwrap())
}

#[test]
fn served_ports_come_from_endpoints_and_host_ports() {
    let mut v = crate::sync::View::default();
    v.endpoints.insert(
        "default/web".into(),
        endpoints(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{
                "addresses": [{"ip": "10.244.0.5"}],
                "notReadyAddresses": [{"ip": "10.244.1.6"}],
                "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]
            }]
        })),
    );
    v.pods.insert(
        "default/hp".into(),
        pod(serde_json::json!({
            "metadata": {"name": "hp", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                {"containerPort": 9000, "hostPort": 19000, "protocol": "UDP"},
                {"containerPort": 9001}
            ]}]},
            "status": {"podIP": "10.244.0.9"}
        })),
    );
    // Without an IP yet: nothing.
    v.pods.insert(
        "default/new".into(),
        pod(serde_json::json!({
            "metadata": {"name": "new", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                {"containerPort": 80, "hostPort": 8000}
            ]}]}
        })),
    );
    let mut got: Vec<String> = served(&v).iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            // Every address, ready or not (egress::desired keeps this node's).
            "10.244.0.5 . tcp . 8080",
            "10.244.0.5 . udp . 53",
            "10.244.0.9 . udp . 9000",
            "10.244.1.6 . tcp . 8080",
            "10.244.1.6 . udp . 53",
        ]
    );
}
