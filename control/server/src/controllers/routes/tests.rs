use keel_api::vpc::Failure;

use super::*;

fn route(dst: &str, hop: &str, node: &str) -> Route {
    Route {
        destination: dst.parse().unwrap(),
        next_hop: hop.parse().unwrap(),
        node: node.into(),
    }
}

fn desired3() -> Vec<Route> {
    vec![
        route("10.244.0.0/24", "172.30.0.11", "node-1"),
        route("10.244.1.0/24", "172.30.1.12", "node-2"),
        route("10.244.2.0/24", "172.30.0.13", "node-3"),
    ]
}

fn short(v: &BTreeMap<String, Verdict>) -> Vec<(String, &'static str, String)> {
    v.iter()
        .map(|(n, v)| (n.clone(), v.status, v.reason.clone()))
        .collect()
}

fn s(node: &str, status: &'static str, reason: &str) -> (String, &'static str, String) {
    (node.into(), status, reason.into())
}

#[test]
fn a_report_gives_each_node_created_failed_or_missing() {
    let report = Response {
        routes: vec![
            route("10.244.0.0/24", "172.30.0.11", ""),
            // Moved behind keel's back: not node-3's route.
            route("10.244.2.0/24", "172.30.0.99", ""),
        ],
        failed: vec![Failure {
            destination: "10.244.1.0/24".parse().unwrap(),
            reason: "RouteLimitExceeded".into(),
            message: "rtb-1 holds 50 of 50 routes".into(),
        }],
    };
    let v = verdicts(&desired3(), &Outcome::Synced(report), None, "exec:/x");
    assert_eq!(
        short(&v),
        vec![
            s("node-1", "False", ROUTE_CREATED),
            s("node-2", "True", "RouteLimitExceeded"),
            s("node-3", "True", ROUTE_MISSING),
        ]
    );
    assert_eq!(
        v["node-2"].message,
        "route 10.244.1.0/24 via 172.30.1.12: rtb-1 holds 50 of 50 routes (exec:/x)"
    );
}

#[test]
fn a_whole_failure_marks_only_the_nodes_whose_route_is_not_known_in_place() {
    let failed = Outcome::Failed("VPC provider exec:/x: exit status: 3: quota".into());
    let all = verdicts(&desired3(), &failed, None, "exec:/x");
    assert_eq!(
        short(&all),
        vec![
            s("node-1", "True", PROVIDER_FAILED),
            s("node-2", "True", PROVIDER_FAILED),
            s("node-3", "True", PROVIDER_FAILED),
        ]
    );
    assert!(all["node-1"].message.ends_with("exit status: 3: quota"));
    let earlier = Response {
        routes: vec![route("10.244.0.0/24", "172.30.0.11", "")],
        failed: vec![],
    };
    let some = verdicts(&desired3(), &failed, Some(&earlier), "exec:/x");
    assert_eq!(
        short(&some),
        vec![
            s("node-2", "True", PROVIDER_FAILED),
            s("node-3", "True", PROVIDER_FAILED),
        ]
    );
}

#[test]
fn desired_routes_are_sorted_and_skip_nodes_without_cidr_or_address() {
    let mut state = State::default();
    for (name, cidr, ip) in [
        ("b", "10.244.1.0/24", Some("172.30.0.12")),
        ("a", "10.244.0.0/24", Some("172.30.0.11")),
        ("no-ip", "10.244.2.0/24", None),
        ("no-cidr", "", Some("172.30.0.14")),
    ] {
        state.put(Obj::Node(Arc::new(node(name, cidr, ip))));
    }
    assert_eq!(
        desired(&state),
        vec![
            route("10.244.0.0/24", "172.30.0.11", "a"),
            route("10.244.1.0/24", "172.30.0.12", "b"),
        ]
    );
}

#[test]
fn only_differing_conditions_are_written() {
    let mut state = State::default();
    let mut done = node("node-1", "10.244.0.0/24", Some("172.30.0.11"));
    let created = Verdict {
        status: "False",
        reason: ROUTE_CREATED.into(),
        message: "in place".into(),
    };
    done.set_condition(CONDITION, "False", ROUTE_CREATED, "in place", None);
    state.put(Obj::Node(Arc::new(done)));
    state.put(Obj::Node(Arc::new(node(
        "node-2",
        "10.244.1.0/24",
        Some("172.30.0.12"),
    ))));
    let mut v = BTreeMap::new();
    v.insert("node-1".to_string(), created.clone());
    v.insert("node-2".to_string(), created);
    // No such Node (deleted meanwhile): nothing to write.
    v.insert(
        "gone".to_string(),
        Verdict {
            status: "True",
            reason: PROVIDER_FAILED.into(),
            message: "x".repeat(5000),
        },
    );
    let writes = changes(&state, &v);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].metadata.name, "node-2");
    let c = writes[0].condition(CONDITION).expect("condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", ROUTE_CREATED)
    );
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    assert_eq!(truncate("short"), "short");
    // 'é' is two bytes: 1024 falls on a boundary, 1023 would not.
    assert_eq!(truncate(&"é".repeat(1000)).len(), 1024);
    assert_eq!(truncate(&format!("a{}", "é".repeat(1000))).len(), 1023);
}

fn node(name: &str, cidr: &str, ip: Option<&str>) -> Node {
    let mut n: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr},
    }))
    .unwrap();
    if let Some(ip) = ip {
        n.status.addresses = vec![keel_api::node::NodeAddress {
            type_: "InternalIP".into(),
            address: ip.into(),
        }];
    }
    n
}
