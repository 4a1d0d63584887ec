use super::*;

#[test]
fn names_are_stable_short_and_distinct() {
    let a = host_ifname("c0ffee", "eth0");
    assert_eq!(a.len(), 15);
    assert!(a.starts_with("kv"));
    assert_eq!(a, host_ifname("c0ffee", "eth0"));
    assert_ne!(a, host_ifname("c0ffee", "eth1"));
    assert_ne!(
        a,
        host_ifname("c0ffe", "eeth0"),
        "the separator keeps (id, ifname) pairs apart"
    );
    // Pinned: a change here would orphan every existing pod's veth.
    assert_eq!(
        host_ifname("abc", "eth0"),
        format!("kv{:013x}", fnv1a(&["abc", "eth0"]) >> 12)
    );
}

#[test]
fn macs_are_unicast_and_local() {
    let m = host_mac("c", "eth0");
    assert_eq!(m[0] & 0x01, 0, "unicast");
    assert_eq!(m[0] & 0x02, 0x02, "locally administered");
    assert_eq!(
        pod_mac("10.1.2.3".parse().unwrap()),
        [0x0a, 0x58, 10, 1, 2, 3]
    );
}

#[test]
fn alias_round_trip() {
    let a = alias("pods", "abc-1", "eth0");
    assert_eq!(parse_alias(&a), Some(("pods", "abc-1", "eth0")));
    assert_eq!(parse_alias("something else"), None);
    assert_eq!(parse_alias("keel-cni:pods"), None);
}
