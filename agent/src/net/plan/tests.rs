use super::*;

fn me() -> Me {
    Me {
        name: "node-1".into(),
        ip: "172.30.0.11".parse().unwrap(),
        pod_cidr: "10.244.0.0/24".parse().unwrap(),
        subnet: "172.30.0.0/24".parse().unwrap(),
        uplink: 2,
        uplink_mtu: 1500,
    }
}

fn peer(name: &str, ip: &str, cidr: &str) -> Peer {
    Peer {
        name: name.into(),
        ip: ip.parse().unwrap(),
        pod_cidr: cidr.parse().unwrap(),
    }
}

fn peers() -> Vec<Peer> {
    vec![
        peer("node-1", "172.30.0.11", "10.244.0.0/24"),
        peer("node-2", "172.30.0.12", "10.244.1.0/24"),
        peer("node-3", "172.30.1.13", "10.244.2.0/24"),
    ]
}

const VX: VxlanConfig = VxlanConfig { vni: 1, port: 8472 };

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn vxlan_programs_route_neighbour_and_fdb_per_peer() {
    let (d, problems) = desired(Mode::Vxlan, &me(), &peers(), VX);
    assert!(problems.is_empty());
    let dev = d.vxlan.as_ref().unwrap();
    assert_eq!(
        (dev.mtu, dev.addr, dev.local),
        (1450, ip("10.244.0.0"), ip("172.30.0.11"))
    );
    assert_eq!(
        d.routes[&net("10.244.1.0/24")],
        Via::Vxlan(ip("10.244.1.0"))
    );
    assert_eq!(
        d.routes[&net("10.244.2.0/24")],
        Via::Vxlan(ip("10.244.2.0"))
    );
    assert_eq!(d.neighbours[&ip("10.244.2.0")], vtep_mac(ip("172.30.1.13")));
    assert_eq!(d.fdb[&vtep_mac(ip("172.30.1.13"))], ip("172.30.1.13"));
    assert_eq!(d.routes.len(), 2, "no route to our own CIDR");
}

#[test]
fn route_mode_needs_adjacency() {
    let (d, problems) = desired(Mode::Route, &me(), &peers(), VX);
    assert_eq!(d.routes.len(), 1);
    assert_eq!(
        d.routes[&net("10.244.1.0/24")],
        Via::Uplink(ip("172.30.0.12"))
    );
    assert!(d.vxlan.is_none());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].peer, "node-3");
    assert!(
        problems[0]
            .reason
            .contains("not on this node's subnet 172.30.0.0/24"),
        "{}",
        problems[0]
    );
}

#[test]
fn auto_mixes_and_vpc_adds_nothing() {
    let (d, problems) = desired(Mode::Auto, &me(), &peers(), VX);
    assert!(problems.is_empty());
    assert_eq!(
        d.routes[&net("10.244.1.0/24")],
        Via::Uplink(ip("172.30.0.12"))
    );
    assert_eq!(
        d.routes[&net("10.244.2.0/24")],
        Via::Vxlan(ip("10.244.2.0"))
    );
    assert!(d.vxlan.is_some());
    assert_eq!(d.fdb.len(), 1);
    let (d, _) = desired(Mode::Vpc, &me(), &peers(), VX);
    assert_eq!(d, Desired::default());
    // Auto with every peer adjacent needs no VXLAN device.
    let (d, _) = desired(Mode::Auto, &me(), &peers()[..2], VX);
    assert!(d.vxlan.is_none());
}

#[test]
fn forwarding_always_and_loose_rp_filter_only_on_the_vxlan_device() {
    let (d, _) = desired(Mode::Route, &me(), &peers()[..2], VX);
    assert_eq!(sysctls(&d), vec![("net/ipv4/ip_forward".to_string(), "1")]);
    for mode in [Mode::Vxlan, Mode::Auto] {
        let (d, _) = desired(mode, &me(), &peers(), VX);
        assert_eq!(
            sysctls(&d),
            vec![
                ("net/ipv4/ip_forward".to_string(), "1"),
                ("net/ipv4/conf/keel.vxlan/rp_filter".to_string(), "2"),
            ],
            "{mode:?}"
        );
    }
}

#[test]
fn overlapping_pod_cidrs_are_refused() {
    let (_, problems) = desired(
        Mode::Route,
        &me(),
        &[peer("bad", "172.30.0.20", "10.244.0.0/16")],
        VX,
    );
    assert!(problems[0].reason.contains("overlaps"));
}

/// What the kernel would hold after applying `d` from scratch.
fn observed_from(d: &Desired) -> Observed {
    Observed {
        vxlan: d.vxlan.as_ref().map(|v| ObservedVxlan {
            index: 9,
            mtu: v.mtu,
            up: true,
            mac: Some(v.mac),
            alias: Some(v.alias.clone()),
            addrs: [v.addr].into(),
        }),
        routes: d.routes.clone(),
        foreign_routes: BTreeSet::new(),
        neighbours: d.neighbours.clone(),
        fdb: d.fdb.clone(),
    }
}

#[test]
fn from_scratch_then_idempotent() {
    let (d, _) = desired(Mode::Vxlan, &me(), &peers(), VX);
    let (ops, _) = plan(&d, &Observed::default());
    assert!(matches!(ops[0], Op::CreateVxlan(_)));
    assert_eq!(ops[1], Op::AddVxlanAddr(ip("10.244.0.0")));
    // FDB and neighbours come before the routes that need them.
    let first_route = ops
        .iter()
        .position(|o| matches!(o, Op::ReplaceRoute(..)))
        .unwrap();
    let last_entry = ops
        .iter()
        .rposition(|o| matches!(o, Op::ReplaceFdb(..) | Op::ReplaceNeighbour(..)))
        .unwrap();
    assert!(last_entry < first_route);
    assert_eq!(ops.len(), 2 + 2 + 2 + 2);
    let (again, _) = plan(&d, &observed_from(&d));
    assert!(
        again.is_empty(),
        "an agent restart over correct state changes nothing: {again:?}"
    );
}

#[test]
fn a_leaving_peer_is_withdrawn_and_a_moved_peer_replaced() {
    let (before, _) = desired(Mode::Vxlan, &me(), &peers(), VX);
    let have = observed_from(&before);
    let mut moved = peers();
    moved.remove(1); // node-2 leaves
    moved[1].ip = ip("172.30.1.99"); // node-3 got a new IP
    let (after, _) = desired(Mode::Vxlan, &me(), &moved, VX);
    let (ops, _) = plan(&after, &have);
    assert!(ops.contains(&Op::DelRoute(net("10.244.1.0/24"))));
    assert!(ops.contains(&Op::DelNeighbour(ip("10.244.1.0"))));
    assert!(ops.contains(&Op::DelFdb(vtep_mac(ip("172.30.0.12")), ip("172.30.0.12"))));
    assert!(ops.contains(&Op::ReplaceFdb(
        vtep_mac(ip("172.30.1.99")),
        ip("172.30.1.99")
    )));
    assert!(ops.contains(&Op::ReplaceNeighbour(
        ip("10.244.2.0"),
        vtep_mac(ip("172.30.1.99"))
    )));
    assert!(
        !ops.iter()
            .any(|o| matches!(o, Op::CreateVxlan(_) | Op::DeleteVxlan))
    );
}

#[test]
fn changed_vxlan_config_recreates_the_device_and_foreign_routes_are_left_alone() {
    let (d, _) = desired(Mode::Vxlan, &me(), &peers(), VX);
    let mut have = observed_from(&d);
    have.vxlan.as_mut().unwrap().alias =
        Some(vxlan_alias(VxlanConfig { vni: 2, port: 8472 }, me().ip));
    let (ops, _) = plan(&d, &have);
    assert_eq!(ops[0], Op::DeleteVxlan);
    assert!(matches!(ops[1], Op::CreateVxlan(_)));
    assert_eq!(
        ops.iter()
            .filter(|o| matches!(o, Op::ReplaceRoute(..)))
            .count(),
        2,
        "routes over the old device are re-added"
    );

    let mut have = Observed::default();
    have.foreign_routes.insert(net("10.244.1.0/24"));
    let (d, _) = desired(Mode::Route, &me(), &peers(), VX);
    let (ops, skipped) = plan(&d, &have);
    assert!(ops.is_empty());
    assert_eq!(skipped, [net("10.244.1.0/24")]);
}

#[test]
fn switching_to_route_mode_removes_the_device() {
    let (vx, _) = desired(Mode::Vxlan, &me(), &peers(), VX);
    let (rt, _) = desired(Mode::Route, &me(), &peers(), VX);
    let (ops, _) = plan(&rt, &observed_from(&vx));
    assert!(ops.contains(&Op::DeleteVxlan));
    assert!(ops.contains(&Op::ReplaceRoute(
        net("10.244.1.0/24"),
        Via::Uplink(ip("172.30.0.12"))
    )));
    assert!(ops.contains(&Op::DelRoute(net("10.244.2.0/24"))));
    assert_eq!(Mode::Auto.pod_mtu(1500), 1450);
    assert_eq!(Mode::Route.pod_mtu(1500), 1500);
}
