use super::*;

fn spec(nodes: usize, segments: usize) -> Spec {
    Spec {
        name: "t".into(),
        nodes,
        mode: Mode::Auto,
        segments,
    }
}

#[test]
fn nodes_spread_over_segments_with_distinct_addresses() {
    let t = Topology::plan(&spec(4, 2)).unwrap();
    let placed: Vec<(String, usize, String)> = t
        .nodes
        .iter()
        .map(|n| (n.role.clone(), n.segment, n.ip.to_string()))
        .collect();
    assert_eq!(
        placed,
        [
            ("node-1".into(), 0, "172.30.0.11".into()),
            ("node-2".into(), 1, "172.30.1.12".into()),
            ("node-3".into(), 0, "172.30.0.13".into()),
            ("node-4".into(), 1, "172.30.1.14".into()),
        ]
    );
    assert_eq!(t.nodes[1].gateway.to_string(), "172.30.1.1");
    assert_eq!(t.control.ip.to_string(), "172.30.0.2");
    assert_eq!(t.namespaces().len(), 2 + 1 + 3 + 4);
    // The outside host: off the fabric, never inside a pod or Service CIDR.
    assert_eq!(t.outside.netns, "keel-lab-t-outside");
    for ip in t.outside.ips {
        assert!(t.outside.subnet.contains(&ip));
        assert!(!t.cluster_cidr.contains(&ip) && !t.service_cidr.contains(&ip));
        assert!(t.segments.iter().all(|s| !s.subnet.contains(&ip)));
    }
    let spare: Ipv4Net = Outside::SPARE_CIDR.parse().unwrap();
    assert!(!spare.contains(&t.outside.ips[0]) && spare.contains(&t.outside.ips[1]));
    assert!(t.namespaces().iter().all(|n| n.starts_with("keel-lab-t-")));
    assert_eq!(t.control_url(), "https://172.30.0.2:6443");
}

#[test]
fn bad_specs_name_the_flag() {
    assert_eq!(Topology::plan(&spec(0, 1)).unwrap_err().field, "--nodes");
    assert_eq!(Topology::plan(&spec(2, 3)).unwrap_err().field, "--segments");
    let mut s = spec(1, 1);
    s.name = "Bad Name".into();
    assert_eq!(Topology::plan(&s).unwrap_err().field, "--name");
    assert_eq!("vpc".parse::<Mode>(), Ok(Mode::Vpc));
    assert!("ipip".parse::<Mode>().is_err());
}

#[test]
fn an_ha_control_plane_has_a_namespace_and_address_per_replica_and_member() {
    let cp = ControlPlane {
        replicas: 3,
        store: Store::Etcd,
    };
    let t = Topology::plan_with(&spec(50, 1), &cp).unwrap();
    let roles = |hs: Vec<&Host>| -> Vec<(String, String)> {
        hs.iter()
            .map(|h| (h.role.clone(), h.ip.to_string()))
            .collect()
    };
    assert_eq!(
        roles(t.controls()),
        [
            ("control".into(), "172.30.0.2".into()),
            ("control-2".into(), "172.30.0.4".into()),
            ("control-3".into(), "172.30.0.5".into()),
        ]
    );
    assert_eq!(
        roles(t.etcd.iter().collect()),
        [
            ("etcd-1".into(), "172.30.0.101".into()),
            ("etcd-2".into(), "172.30.0.102".into()),
            ("etcd-3".into(), "172.30.0.103".into()),
        ]
    );
    // No address twice, even with 50 nodes and 5 replicas.
    let t5 = Topology::plan_with(
        &spec(50, 1),
        &ControlPlane {
            replicas: 5,
            store: Store::Etcd,
        },
    )
    .unwrap();
    let mut ips: Vec<_> = t5
        .controls()
        .into_iter()
        .chain(&t5.etcd)
        .chain(&t5.nodes)
        .chain([&t5.ext])
        .map(|h| h.ip)
        .collect();
    let n = ips.len();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n);
    assert_eq!(t.namespaces().len(), 1 + 1 + 3 + 3 + 2 + 50);
    assert_eq!(
        t.control_urls(),
        "https://172.30.0.2:6443,https://172.30.0.4:6443,https://172.30.0.5:6443"
    );
    assert_eq!(
        t.etcd_endpoints(),
        "https://172.30.0.101:2379,https://172.30.0.102:2379,https://172.30.0.103:2379"
    );
    assert_eq!(
        t.etcd_initial_cluster(),
        "etcd-1=https://172.30.0.101:2380,etcd-2=https://172.30.0.102:2380,etcd-3=https://172.30.0.103:2380"
    );
    // The default stays one replica on redb, with no etcd.
    let d = Topology::plan(&spec(2, 1)).unwrap();
    assert_eq!((d.controls().len(), d.etcd.len()), (1, 0));
    assert_eq!(d.control_urls(), d.control_url());
}

#[test]
fn several_replicas_need_etcd() {
    let bad = |replicas, store| {
        Topology::plan_with(&spec(1, 1), &ControlPlane { replicas, store })
            .unwrap_err()
            .field
    };
    assert_eq!(bad(3, Store::Redb), "--control-replicas");
    assert_eq!(bad(0, Store::Etcd), "--control-replicas");
    assert_eq!(bad(6, Store::Etcd), "--control-replicas");
    assert!(
        Topology::plan_with(
            &spec(1, 1),
            &ControlPlane {
                replicas: 1,
                store: Store::Etcd
            }
        )
        .is_ok()
    );
    assert_eq!("etcd".parse::<Store>(), Ok(Store::Etcd));
    assert!("zk".parse::<Store>().is_err());
}
