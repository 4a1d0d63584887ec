use super::*;

fn route(dst: &str, hop: &str) -> Route {
    Route {
        destination: dst.parse().unwrap(),
        next_hop: hop.parse().unwrap(),
        node: String::new(),
    }
}

fn table(pairs: &[(&str, &str)]) -> BTreeMap<Ipv4Net, Ipv4Addr> {
    pairs
        .iter()
        .map(|(d, h)| (d.parse().unwrap(), h.parse().unwrap()))
        .collect()
}

fn replace(dst: &str, hop: &str) -> RouteOp {
    RouteOp::Replace(dst.parse().unwrap(), hop.parse().unwrap())
}

#[test]
fn plan_adds_moves_and_withdraws() {
    let desired = [
        route("10.244.0.0/24", "172.30.0.11"),
        route("10.244.1.0/24", "172.30.1.12"),
    ];
    let actual = table(&[
        ("10.244.1.0/24", "172.30.1.99"),
        ("10.244.9.0/24", "172.30.0.19"),
    ]);
    let p = plan(&desired, &actual, None);
    assert_eq!(
        p.ops,
        vec![
            RouteOp::Delete("10.244.9.0/24".parse().unwrap()),
            replace("10.244.0.0/24", "172.30.0.11"),
            replace("10.244.1.0/24", "172.30.1.12"),
        ]
    );
    assert!(p.refused.is_empty());
    let done = table(&[
        ("10.244.0.0/24", "172.30.0.11"),
        ("10.244.1.0/24", "172.30.1.12"),
    ]);
    assert_eq!(
        plan(&desired, &done, None),
        Plan {
            ops: vec![],
            refused: vec![]
        }
    );
}

#[test]
fn the_quota_refuses_new_routes_beyond_it_after_withdrawals_free_room() {
    let desired = [
        route("10.244.0.0/24", "172.30.0.11"),
        route("10.244.1.0/24", "172.30.0.12"),
        route("10.244.2.0/24", "172.30.0.13"),
    ];
    // Full at 2: one of keel's routes is withdrawn, one moves in place.
    let actual = table(&[
        ("10.244.1.0/24", "172.30.0.99"),
        ("10.244.9.0/24", "172.30.0.19"),
    ]);
    let p = plan(&desired, &actual, Some(2));
    assert_eq!(
        p.ops,
        vec![
            RouteOp::Delete("10.244.9.0/24".parse().unwrap()),
            replace("10.244.0.0/24", "172.30.0.11"),
            replace("10.244.1.0/24", "172.30.0.12"),
        ]
    );
    assert_eq!(p.refused.len(), 1);
    assert_eq!(
        p.refused[0].destination,
        "10.244.2.0/24".parse::<Ipv4Net>().unwrap()
    );
    assert_eq!(p.refused[0].reason, ROUTE_LIMIT_EXCEEDED);
    assert_eq!(
        p.refused[0].message,
        "the lab's route table holds 2 of 2 routes"
    );
    // Nothing fits in a table of 0.
    assert_eq!(plan(&desired, &BTreeMap::new(), Some(0)).refused.len(), 3);
}
