//! Rows as kubectl prints them against Kubernetes.

use std::time::{Duration, SystemTime};

use keel_api::Kind;
use serde_json::json;

use super::*;

fn at(secs: u64) -> SystemTime {
    humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap() + Duration::from_secs(secs)
}

const CREATED: &str = "2026-01-01T00:00:00Z";

#[test]
fn ages_read_as_kubernetes_prints_them() {
    for (secs, want) in [
        (45, "45s"),
        (200, "3m20s"),
        (900, "15m"),
        (5 * 3600 + 600, "5h10m"),
        (20 * 3600, "20h"),
        (3 * 86_400 + 4 * 3600, "3d4h"),
        (12 * 86_400, "12d"),
    ] {
        assert_eq!(human_duration(Duration::from_secs(secs)), want);
    }
}

#[test]
fn a_pod_row_has_ready_status_restarts_and_the_wide_columns() {
    let pod = json!({"metadata": {"name": "web-1", "creationTimestamp": CREATED},
    "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
        {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    ]}});
    assert_eq!(
        cells(Kind::Pod, &pod, at(90)),
        [
            "web-1",
            "1/2",
            "CrashLoopBackOff",
            "3",
            "90s",
            "10.244.1.5",
            "n1",
            "<none>",
            "<none>"
        ]
        .map(|s| json!(s))
    );
    let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
    assert_eq!(cells(Kind::Pod, &pending, at(0))[2], "Pending");
    assert_eq!(cells(Kind::Pod, &pending, at(0))[4], "<unknown>");
}

#[test]
fn service_deployment_endpoints_and_node_rows() {
    let svc = json!({"metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
    assert_eq!(
        cells(Kind::Service, &svc, at(600)),
        [
            "web",
            "NodePort",
            "10.96.0.10",
            "<none>",
            "80:30080/TCP,53/UDP",
            "10m",
            "app=web"
        ]
        .map(|s| json!(s))
    );
    let deploy = json!({"metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "web", "image": "w:1"}, {"name": "s", "image": "s:1"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        cells(Kind::Deployment, &deploy, at(10)),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("10s"),
            json!("web,s"),
            json!("w:1,s:1"),
            json!("app=web")
        ]
    );
    let ep = json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [
        {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 80}]}]});
    assert_eq!(
        cells(Kind::Endpoints, &ep, at(0))[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    );
    let node = json!({"metadata": {"name": "n1", "creationTimestamp": CREATED, "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "172.30.1.2"}],
                   "nodeInfo": {"kubeletVersion": "keel-0.1.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "keel://0.1"}}});
    assert_eq!(
        cells(Kind::Node, &node, at(3 * 86_400)),
        [
            "n1",
            "Ready,SchedulingDisabled",
            "control-plane",
            "3d",
            "keel-0.1.0",
            "172.30.1.2",
            "<none>",
            "Debian",
            "6.1",
            "keel://0.1"
        ]
        .map(|s| json!(s))
    );
}

#[test]
fn a_table_has_the_kinds_columns_wide_ones_at_priority_one_and_metadata_rows() {
    let pod =
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": []}});
    let t = render(
        Kind::Pod.info(),
        &[pod],
        "7",
        IncludeObject::Metadata,
        at(0),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    let names: Vec<_> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        &names[..6],
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1)
        ]
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    assert!(wants_table(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    ));
    assert!(!wants_table("application/json"));
    assert!(IncludeObject::parse(Some("All")).is_err());
}
