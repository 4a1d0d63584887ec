use super::*;

#[test]
fn names_and_counters_line_up() {
    assert_eq!(STATS.len(), STATS_LEN as usize);
    assert_eq!(STATS[NetStat::ToPod as usize], "to_pod");
    assert_eq!(STATS[NetStat::StackMtu as usize], "stack_mtu");
    // Map and program names must fit the kernel's 16-byte names.
    for n in MAPS.iter().chain([FROM_POD_PROG, TO_POD_PROG].iter()) {
        assert!(n.len() < 16, "{n} is too long for a BPF object name");
    }
}

#[test]
fn cidr_entries_display_like_ip_route() {
    let mut e = CidrEntry {
        addr: u32::from_ne_bytes([10, 244, 1, 0]),
        prefix_len: 24,
        value: CidrValue {
            flags: CIDR_F_LOCAL,
        },
    };
    assert_eq!(e.to_string(), "CIDR 10.244.1.0/24 local");
    e.value.flags = 0;
    assert_eq!(e.to_string(), "CIDR 10.244.1.0/24");
    let ep = EndpointEntry {
        addr: u32::from_ne_bytes([10, 244, 1, 5]),
        value: Endpoint {
            ifindex: 7,
            mtu: 1500,
            pod_mac: [0x0a, 0x58, 10, 244, 1, 5],
            host_mac: [2, 0xaa, 0, 0, 0, 1],
        },
    };
    assert_eq!(
        ep.to_string(),
        "EP 10.244.1.5 dev=#7 mtu=1500 mac=0a:58:0a:f4:01:05 gw=02:aa:00:00:00:01"
    );
}
