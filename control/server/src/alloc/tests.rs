use super::*;

fn ranges() -> Ranges {
    Ranges {
        cluster_cidr: "10.244.0.0/22".parse().unwrap(),
        node_prefix: 24,
        service_cidr: "10.96.0.0/29".parse().unwrap(),
        node_ports: 30000..=30002,
    }
}

#[test]
fn pod_cidrs_are_distinct_until_exhausted() {
    let r = ranges();
    let mut used = OrdMap::new();
    let mut cursor = 0;
    let mut got = Vec::new();
    for i in 0..4 {
        let c = pod_cidr(&used, &r, &mut cursor, None, &format!("n{i}")).unwrap();
        used.insert(c, format!("n{i}"));
        got.push(c.to_string());
    }
    assert_eq!(
        got,
        [
            "10.244.0.0/24",
            "10.244.1.0/24",
            "10.244.2.0/24",
            "10.244.3.0/24"
        ]
    );
    assert!(matches!(
        pod_cidr(&used, &r, &mut cursor, None, "n5"),
        Err(AllocError::Exhausted { .. })
    ));
    // Freed, then reused only after the scan wraps around.
    used.remove(&"10.244.1.0/24".parse::<Ipv4Net>().unwrap());
    assert_eq!(
        pod_cidr(&used, &r, &mut cursor, None, "n5")
            .unwrap()
            .to_string(),
        "10.244.1.0/24"
    );
}

#[test]
fn requested_pod_cidr_is_checked() {
    let r = ranges();
    let mut used = OrdMap::new();
    used.insert("10.244.1.0/24".parse().unwrap(), "a".to_string());
    let mut c = 0;
    let req = |s: &str| Some(s.parse().unwrap());
    assert!(matches!(
        pod_cidr(&used, &r, &mut c, req("10.245.0.0/24"), "b"),
        Err(AllocError::OutOfRange { .. })
    ));
    assert!(matches!(
        pod_cidr(&used, &r, &mut c, req("10.244.0.0/25"), "b"),
        Err(AllocError::Misaligned { .. })
    ));
    assert!(matches!(
        pod_cidr(&used, &r, &mut c, req("10.244.1.0/24"), "b"),
        Err(AllocError::InUse { .. })
    ));
    assert_eq!(
        pod_cidr(&used, &r, &mut c, req("10.244.1.0/24"), "a")
            .unwrap()
            .to_string(),
        "10.244.1.0/24"
    );
    assert_eq!(
        pod_cidr(&used, &r, &mut c, req("10.244.2.0/24"), "b")
            .unwrap()
            .to_string(),
        "10.244.2.0/24"
    );
}

#[test]
fn cluster_ips_skip_network_and_broadcast() {
    let r = ranges();
    let mut used = OrdMap::new();
    let mut cursor = 0;
    let mut got = Vec::new();
    while let Ok(ip) = cluster_ip(&used, &r, &mut cursor, None, "s") {
        used.insert(ip, format!("s{ip}"));
        got.push(ip.to_string());
    }
    assert_eq!(
        got,
        [
            "10.96.0.1",
            "10.96.0.2",
            "10.96.0.3",
            "10.96.0.4",
            "10.96.0.5",
            "10.96.0.6"
        ]
    );
    let mut c = 0;
    let req = |s: &str| Some(s.parse().unwrap());
    assert!(matches!(
        cluster_ip(&OrdMap::new(), &r, &mut c, req("10.96.0.0"), "x"),
        Err(AllocError::OutOfRange { .. })
    ));
    assert!(matches!(
        cluster_ip(&OrdMap::new(), &r, &mut c, req("10.96.0.7"), "x"),
        Err(AllocError::OutOfRange { .. })
    ));
    assert!(matches!(
        cluster_ip(&used, &r, &mut c, req("10.96.0.3"), "x"),
        Err(AllocError::InUse { .. })
    ));
}

#[test]
fn node_ports_within_one_request_are_distinct() {
    let r = ranges();
    let used = OrdMap::new();
    let mut cursor = 0;
    let a = node_port(&used, &r, &mut cursor, None, "s", &[]).unwrap();
    let b = node_port(&used, &r, &mut cursor, None, "s", &[a]).unwrap();
    let c = node_port(&used, &r, &mut cursor, None, "s", &[a, b]).unwrap();
    assert_eq!((a, b, c), (30000, 30001, 30002));
    assert!(matches!(
        node_port(&used, &r, &mut cursor, None, "s", &[a, b, c]),
        Err(AllocError::Exhausted { .. })
    ));
    assert!(matches!(
        node_port(&used, &r, &mut cursor, Some(80), "s", &[]),
        Err(AllocError::OutOfRange { .. })
    ));
}

#[test]
fn overlapping_ranges_are_refused() {
    let mut r = Ranges::default();
    assert!(r.validate().is_ok());
    r.service_cidr = "10.244.128.0/20".parse().unwrap();
    assert!(r.validate().unwrap_err().contains("overlap"));
}
