use super::*;

fn svc() -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "d"},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9000, "targetPort": 9100}
        ]}
    }))
    .unwrap()
}

fn pod(name: &str, ip: &str, ready: bool, http_port: Option<i64>) -> Arc<Pod> {
    let ports = match http_port {
        Some(p) => serde_json::json!([{"name": "http", "containerPort": p}]),
        None => serde_json::json!([]),
    };
    let mut p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "d", "labels": {"app": "web"}, "uid": format!("uid-{name}")},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": ports}]},
        "status": {"podIP": ip, "phase": "Running"}
    }))
    .unwrap();
    p.set_condition("Ready", if ready { "True" } else { "False" }, "", "");
    Arc::new(p)
}

#[test]
fn membership_is_indexed_both_ways_and_forgets_what_left() {
    let mut m = Membership::default();
    m.set("ns/a", vec!["ns/p1".into(), "ns/p2".into()]);
    m.set("ns/b", vec!["ns/p2".into()]);
    let of = |m: &Membership, p: &str| m.services_of(p).cloned().collect::<Vec<_>>();
    assert_eq!(of(&m, "ns/p1"), ["ns/a"]);
    assert_eq!(of(&m, "ns/p2"), ["ns/a", "ns/b"]);
    // a loses p1 and p2, gains p3.
    m.set("ns/a", vec!["ns/p3".into()]);
    assert!(of(&m, "ns/p1").is_empty());
    assert_eq!(of(&m, "ns/p2"), ["ns/b"]);
    assert_eq!(of(&m, "ns/p3"), ["ns/a"]);
    m.set("ns/b", vec![]);
    m.set("ns/a", vec![]);
    assert!(m.of_pod.is_empty() && m.of_service.is_empty(), "{m:?}");
}

#[test]
fn ready_and_not_ready_addresses_with_resolved_ports() {
    let pods = [
        pod("a", "10.0.0.2", true, Some(8080)),
        pod("b", "10.0.0.1", true, Some(8080)),
        pod("c", "10.0.0.3", false, Some(8080)),
    ];
    let ep = desired(&svc(), &pods);
    assert_eq!(ep.subsets.len(), 1);
    let s = &ep.subsets[0];
    assert_eq!(
        s.addresses
            .iter()
            .map(|a| a.ip.as_str())
            .collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(s.not_ready_addresses[0].ip, "10.0.0.3");
    assert_eq!(
        s.ports
            .iter()
            .map(|p| (p.name.as_str(), p.port))
            .collect::<Vec<_>>(),
        [("http", 8080), ("metrics", 9100)]
    );
    assert_eq!(
        ep.ready_backends("http", keel_api::Protocol::Tcp),
        vec![("10.0.0.1".into(), 8080), ("10.0.0.2".into(), 8080)]
    );
}

#[test]
fn pods_differing_in_named_port_form_separate_subsets() {
    let pods = [
        pod("a", "10.0.0.1", true, Some(8080)),
        pod("b", "10.0.0.2", true, Some(8081)),
        pod("c", "10.0.0.3", true, None),
    ];
    let ep = desired(&svc(), &pods);
    // a and b differ in the http port; c lacks it and only serves metrics.
    assert_eq!(ep.subsets.len(), 3);
    let c = ep
        .subsets
        .iter()
        .find(|s| s.addresses[0].ip == "10.0.0.3")
        .unwrap();
    assert_eq!(c.ports.len(), 1);
    assert_eq!(c.ports[0].name, "metrics");
}

#[test]
fn pods_without_ip_or_finished_are_left_out() {
    let mut done = (*pod("d", "10.0.0.4", true, Some(80))).clone();
    done.status.phase = Some(keel_api::pod::PodPhase::Succeeded);
    let ep = desired(&svc(), &[pod("a", "", true, Some(80)), Arc::new(done)]);
    assert!(ep.subsets.is_empty());
}

#[test]
fn hostnames_are_published_for_the_subdomains_service_and_portless_services_list_every_pod() {
    let mut s = svc();
    s.spec.ports.clear();
    s.spec.cluster_ip = "None".into();
    let mut a = (*pod("a", "10.0.0.2", true, None)).clone();
    a.spec.hostname = "a-0".into();
    a.spec.subdomain = "web".into();
    let mut b = (*pod("b", "10.0.0.3", true, None)).clone();
    b.spec.hostname = "b-0".into();
    b.spec.subdomain = "other".into();
    let e = desired(&s, &[Arc::new(a), Arc::new(b)]);
    assert_eq!(e.subsets.len(), 1);
    let got: Vec<_> = e.subsets[0]
        .addresses
        .iter()
        .map(|a| (a.ip.as_str(), a.hostname.as_str()))
        .collect();
    assert_eq!(got, [("10.0.0.2", "a-0"), ("10.0.0.3", "")]);
    assert!(e.subsets[0].ports.is_empty());
}

#[test]
fn terminating_pods_leave_and_publish_not_ready_addresses_lists_every_pod_as_ready() {
    let mut held = (*pod("t", "10.0.0.5", true, Some(80))).clone();
    held.metadata.deletion_timestamp = Some(keel_api::Time::now());
    let pods = [
        pod("a", "10.0.0.2", true, Some(80)),
        pod("b", "10.0.0.3", false, Some(80)),
        Arc::new(held),
    ];
    let ips = |e: &keel_api::Endpoints| -> (Vec<String>, Vec<String>) {
        let s = &e.subsets[0];
        (
            s.addresses.iter().map(|a| a.ip.clone()).collect(),
            s.not_ready_addresses.iter().map(|a| a.ip.clone()).collect(),
        )
    };
    assert_eq!(
        ips(&desired(&svc(), &pods)),
        (vec!["10.0.0.2".into()], vec!["10.0.0.3".into()])
    );
    let mut publish = svc();
    publish.spec.publish_not_ready_addresses = true;
    assert_eq!(
        ips(&desired(&publish, &pods)),
        (
            vec!["10.0.0.2".into(), "10.0.0.3".into(), "10.0.0.5".into()],
            vec![]
        )
    );
}
