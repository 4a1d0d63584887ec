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
