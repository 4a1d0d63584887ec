use super::*;

fn node(name: &str, ready: bool, labels: &[(&str, &str)], cpu: &str, pods: &str) -> Arc<Node> {
    let mut n: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": pods}}
    }))
    .unwrap();
    n.set_condition("Ready", if ready { "True" } else { "False" }, "", "", None);
    Arc::new(n)
}

fn pod(name: &str, node: &str, cpu: &str, selector: &[(&str, &str)]) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "d"},
        "spec": {
            "nodeName": node,
            "nodeSelector": selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]
        }
    }))
    .unwrap()
}

#[test]
fn picks_ready_node_with_fewest_pods() {
    let nodes = vec![
        node("a", true, &[], "4", "10"),
        node("b", true, &[], "4", "10"),
        node("c", false, &[], "4", "10"),
    ];
    let mut cache = Cache::default();
    cache.set("d/x", Some(&pod("x", "a", "100m", &[])));
    assert_eq!(
        pick(&pod("p", "", "100m", &[]), &nodes, &cache),
        Ok("b".into())
    );
    cache.set("d/y", Some(&pod("y", "b", "100m", &[])));
    assert_eq!(
        pick(&pod("p", "", "100m", &[]), &nodes, &cache),
        Ok("a".into()),
        "ties go by name"
    );
    cache.set("d/x", None);
    assert_eq!(
        pick(&pod("p", "", "100m", &[]), &nodes, &cache),
        Ok("a".into())
    );
}

#[test]
fn respects_resources_selector_and_pod_limit() {
    let nodes = vec![
        node("a", true, &[("disk", "ssd")], "1", "10"),
        node("b", true, &[], "4", "1"),
    ];
    let mut cache = Cache::default();
    cache.set("d/x", Some(&pod("x", "b", "0", &[])));
    // b is full (1 pod max); a has 1 cpu.
    assert_eq!(
        pick(&pod("p", "", "500m", &[]), &nodes, &cache),
        Ok("a".into())
    );
    let err = pick(&pod("p", "", "2", &[]), &nodes, &cache).unwrap_err();
    assert_eq!(
        err,
        "0/2 nodes are available: 1 insufficient cpu, 1 too many pods"
    );
    let err = pick(&pod("p", "", "0", &[("disk", "hdd")]), &nodes, &cache).unwrap_err();
    assert!(
        err.contains("2 node(s) didn't match the pod's node selector"),
        "{err}"
    );
    assert!(
        pick(&pod("p", "", "0", &[]), &[], &cache)
            .unwrap_err()
            .starts_with("0/0 nodes")
    );
}

#[test]
fn finished_pods_free_their_share() {
    let mut cache = Cache::default();
    let mut p = pod("x", "a", "1", &[]);
    cache.set("d/x", Some(&p));
    assert_eq!(cache.usage("a").cpu_milli, 1000);
    p.status.phase = Some(keel_api::pod::PodPhase::Succeeded);
    cache.set("d/x", Some(&p));
    assert_eq!(cache.usage("a"), Usage::default());
}

fn with_ports(name: &str, node: &str, host_network: bool, ports: serde_json::Value) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "d"},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "containers": [{"name": "c", "image": "i", "ports": ports}]
        }
    }))
    .unwrap()
}

#[test]
fn host_ports_are_not_shared_on_a_node() {
    let nodes = vec![
        node("a", true, &[], "4", "10"),
        node("b", true, &[], "4", "10"),
    ];
    let mut cache = Cache::default();
    let web = serde_json::json!([{"containerPort": 80, "hostPort": 8080}]);
    cache.set("d/x", Some(&with_ports("x", "a", false, web.clone())));
    cache.set("d/y", Some(&pod("y", "b", "0", &[])));
    cache.set("d/z", Some(&pod("z", "b", "0", &[])));
    // b has more pods, but a holds 8080/TCP.
    assert_eq!(
        pick(&with_ports("p", "", false, web.clone()), &nodes, &cache),
        Ok("b".into())
    );
    // Another protocol or port does not conflict.
    let udp = serde_json::json!([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]);
    assert_eq!(
        pick(&with_ports("p", "", false, udp), &nodes, &cache),
        Ok("a".into())
    );
    // A container port without hostPort holds nothing…
    let plain = serde_json::json!([{"containerPort": 8080}]);
    assert_eq!(
        pick(&with_ports("p", "", false, plain.clone()), &nodes, &cache),
        Ok("a".into())
    );
    // …except on a hostNetwork pod, which binds it on the node.
    assert_eq!(
        pick(&with_ports("p", "", true, plain), &nodes, &cache),
        Ok("b".into())
    );
    // Both nodes taken: unschedulable, saying why.
    cache.set(
        "d/w",
        Some(&with_ports(
            "w",
            "b",
            true,
            serde_json::json!([{"containerPort": 8080}]),
        )),
    );
    assert_eq!(
        pick(&with_ports("p", "", false, web.clone()), &nodes, &cache),
        Err(
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports"
                .into()
        )
    );
    // A specific address conflicts with the wildcard already held.
    let on_ip = serde_json::json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]);
    assert!(pick(&with_ports("p", "", false, on_ip), &nodes, &cache).is_err());
    // Deleting a holder frees its ports; a finished pod holds none.
    cache.set("d/x", None);
    assert_eq!(
        pick(&with_ports("p", "", false, web.clone()), &nodes, &cache),
        Ok("a".into())
    );
    let mut done = with_ports("w", "b", true, serde_json::json!([{"containerPort": 8080}]));
    done.status.phase = Some(keel_api::pod::PodPhase::Succeeded);
    cache.set("d/w", Some(&done));
    cache.set("d/x", Some(&with_ports("x", "a", false, web.clone())));
    assert_eq!(
        pick(&with_ports("p", "", false, web), &nodes, &cache),
        Ok("b".into())
    );
}
