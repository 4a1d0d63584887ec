use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn range(subnet: &str, gw: &str) -> Range {
    Range {
        subnet: subnet.parse().unwrap(),
        gateway: ip(gw),
    }
}

#[test]
fn allocation_table() {
    let r24 = range("10.1.0.0/24", "10.1.0.1");
    let r30 = range("10.1.0.0/30", "10.1.0.1");
    let rmid = range("10.1.0.0/29", "10.1.0.4");
    let taken = |ips: &[&str]| ips.iter().map(|s| ip(s)).collect::<HashSet<_>>();
    type Case<'a> = (
        &'a Range,
        HashSet<Ipv4Addr>,
        Option<&'a str>,
        Result<Ipv4Addr, AllocError>,
    );
    let cases: Vec<Case> = vec![
        // first allocation skips network and gateway
        (&r24, taken(&[]), None, Ok(ip("10.1.0.2"))),
        // continues after the last one
        (
            &r24,
            taken(&["10.1.0.2"]),
            Some("10.1.0.2"),
            Ok(ip("10.1.0.3")),
        ),
        // a released address is not reused at once
        (
            &r24,
            taken(&["10.1.0.3"]),
            Some("10.1.0.3"),
            Ok(ip("10.1.0.4")),
        ),
        // wraps around before the broadcast address, skipping the gateway
        (
            &r24,
            taken(&["10.1.0.254"]),
            Some("10.1.0.254"),
            Ok(ip("10.1.0.2")),
        ),
        // skips taken addresses
        (
            &r24,
            taken(&["10.1.0.5", "10.1.0.6"]),
            Some("10.1.0.4"),
            Ok(ip("10.1.0.7")),
        ),
        // a /30 has exactly one pod address
        (&r30, taken(&[]), None, Ok(ip("10.1.0.2"))),
        (
            &r30,
            taken(&["10.1.0.2"]),
            None,
            Err(AllocError::Exhausted {
                subnet: r30.subnet,
                capacity: 1,
            }),
        ),
        // a gateway in the middle is skipped
        (
            &rmid,
            taken(&["10.1.0.1", "10.1.0.2", "10.1.0.3"]),
            Some("10.1.0.3"),
            Ok(ip("10.1.0.5")),
        ),
        // a stale cursor outside the range restarts at the beginning
        (&r24, taken(&[]), Some("192.168.0.9"), Ok(ip("10.1.0.2"))),
    ];
    for (range, taken, last, want) in cases {
        assert_eq!(
            allocate(range, &taken, last.map(ip), None),
            want,
            "{range:?} last={last:?}"
        );
    }
}

#[test]
fn exhausts_exactly_at_capacity() {
    let r = range("10.1.0.0/28", "10.1.0.1");
    assert_eq!(r.capacity(), 13);
    let mut taken = HashSet::new();
    let mut last = None;
    for _ in 0..13 {
        let ip = allocate(&r, &taken, last, None).unwrap();
        assert!(r.usable(ip));
        assert!(taken.insert(ip), "{ip} handed out twice");
        last = Some(ip);
    }
    assert!(matches!(
        allocate(&r, &taken, last, None),
        Err(AllocError::Exhausted { capacity: 13, .. })
    ));
}

#[test]
fn requested_address() {
    let r = range("10.1.0.0/24", "10.1.0.1");
    let taken: HashSet<_> = [ip("10.1.0.9")].into();
    assert_eq!(
        allocate(&r, &taken, None, Some(ip("10.1.0.8"))),
        Ok(ip("10.1.0.8"))
    );
    assert_eq!(
        allocate(&r, &taken, None, Some(ip("10.1.0.9"))),
        Err(AllocError::RequestedTaken { ip: ip("10.1.0.9") })
    );
    for bad in ["10.1.0.0", "10.1.0.1", "10.1.0.255", "10.2.0.5"] {
        assert!(
            matches!(
                allocate(&r, &taken, None, Some(ip(bad))),
                Err(AllocError::RequestedUnusable { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn gateway_outside_the_range_does_not_count() {
    assert_eq!(range("10.1.0.0/30", "169.254.1.1").capacity(), 2);
    assert_eq!(range("10.1.0.0/30", "10.1.0.2").capacity(), 1);
}
