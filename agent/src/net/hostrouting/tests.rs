use super::{
    datapath::FakeDatapath,
    plan::{Device, PodDev},
    *,
};

fn devs() -> Devices {
    Devices {
        pod_devs: vec![PodDev {
            dev: Device {
                ifindex: 5,
                name: "kv0000000000005".into(),
            },
            mac: [2, 0, 0, 0, 0, 5],
            mtu: 1500,
            pods: vec![("10.244.0.5".parse().unwrap(), [0x0a, 0x58, 10, 244, 0, 5])],
        }],
        uplink: Some(Device {
            ifindex: 2,
            name: "eth0".into(),
        }),
        vxlan: None,
    }
}

fn cidrs() -> BTreeMap<Ipv4Net, bool> {
    [
        ("10.244.0.0/24".parse().unwrap(), true),
        ("10.244.1.0/24".parse().unwrap(), false),
    ]
    .into()
}

#[test]
fn a_second_pass_changes_nothing() {
    let mut dp = FakeDatapath::default();
    assert_eq!(sync(&mut dp, &devs(), Some(&cidrs())).unwrap(), 5);
    assert_eq!(sync(&mut dp, &devs(), Some(&cidrs())).unwrap(), 0);
}

#[test]
fn before_the_view_syncs_cidrs_are_kept() {
    let mut dp = FakeDatapath::default();
    sync(&mut dp, &devs(), Some(&cidrs())).unwrap();
    dp.applied.clear();
    // A restarted agent, its view not synced yet: devices are
    // reconciled, the CIDRs it cannot know yet are left alone.
    assert_eq!(sync(&mut dp, &Devices::default(), None).unwrap(), 3);
    assert!(
        dp.applied
            .iter()
            .all(|op| !matches!(op, plan::Op::DelCidr(_) | plan::Op::PutCidr(..))),
        "{:?}",
        dp.applied
    );
    assert_eq!(dp.state.cidrs.len(), 2);
    assert_eq!(
        dp.state.cidrs[&"10.244.0.0/24".parse().unwrap()],
        keel_ebpf_common::net::CIDR_F_LOCAL
    );
}

#[test]
fn a_failed_change_stops_the_pass_and_the_next_one_finishes() {
    let mut dp = FakeDatapath {
        fail: 1,
        ..FakeDatapath::default()
    };
    assert!(sync(&mut dp, &devs(), Some(&cidrs())).is_err());
    assert!(dp.applied.is_empty());
    assert_eq!(sync(&mut dp, &devs(), Some(&cidrs())).unwrap(), 5);
    assert_eq!(sync(&mut dp, &devs(), Some(&cidrs())).unwrap(), 0);
}

#[test]
fn modes_parse_and_bad_ones_say_what_is_allowed() {
    assert_eq!("bpf".parse::<Mode>(), Ok(Mode::Bpf));
    assert_eq!("kernel".parse::<Mode>(), Ok(Mode::Kernel));
    assert_eq!("auto".parse::<Mode>(), Ok(Mode::Auto));
    assert_eq!(
        "fast".parse::<Mode>().unwrap_err(),
        "\"fast\" is not auto, bpf or kernel"
    );
}

#[test]
fn dumps_read_like_the_maps() {
    let snap = datapath::Snapshot {
        cidrs: [
            ("10.244.0.0/24".to_string(), 1),
            ("10.244.1.0/24".to_string(), 0),
        ]
        .into(),
        endpoints: [(
            "10.244.0.5".parse().unwrap(),
            plan::Endpoint {
                ifindex: 7,
                mtu: 1500,
                pod_mac: [0x0a, 0x58, 10, 244, 0, 5],
                host_mac: [2, 0, 0, 0, 0, 7],
            },
        )]
        .into(),
        links: [("to_pod-2".to_string(), 2)].into(),
        stats: [("to_pod", 3)].into(),
    };
    assert_eq!(
        dump_text(&snap),
        "CIDR 10.244.0.0/24 local\nCIDR 10.244.1.0/24\nEP 10.244.0.5 dev=#7 mtu=1500 mac=0a:58:0a:f4:00:05 gw=02:00:00:00:00:07\nLINK to_pod-2 #2\nSTAT to_pod 3\n"
    );
}
