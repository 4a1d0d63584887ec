use super::*;

fn dev(ifindex: u32, name: &str) -> Device {
    Device {
        ifindex,
        name: name.into(),
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const GW7: Mac = [2, 0, 0, 0, 0, 7];
const GW9: Mac = [2, 0, 0, 0, 0, 9];

fn pod_mac(a: &str) -> Mac {
    let o = ip(a).octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

fn pod_dev(ifindex: u32, mac: Mac, pods: &[&str]) -> PodDev {
    PodDev {
        dev: dev(ifindex, &format!("kv{ifindex:013}")),
        mac,
        mtu: 1450,
        pods: pods.iter().map(|a| (ip(a), pod_mac(a))).collect(),
    }
}

fn ep(ifindex: u32, host_mac: Mac, a: &str) -> Endpoint {
    Endpoint {
        ifindex,
        mtu: 1450,
        pod_mac: pod_mac(a),
        host_mac,
    }
}

fn inputs() -> Inputs {
    Inputs {
        pod_devs: vec![
            pod_dev(7, GW7, &["10.244.0.7"]),
            pod_dev(9, GW9, &["10.244.0.9"]),
        ],
        uplink: Some(dev(2, "eth0")),
        vxlan: Some(dev(3, "keel.vxlan")),
        cidrs: [(net("10.244.0.0/24"), true), (net("10.244.1.0/24"), false)].into(),
    }
}

/// What the kernel holds once `want` was applied.
fn applied(want: &Desired) -> Observed {
    Observed {
        cidrs: want.cidrs.clone(),
        endpoints: want.endpoints.clone(),
        links: want
            .links
            .iter()
            .map(|(pin, a)| {
                (
                    pin.clone(),
                    ObservedLink {
                        ifindex: a.ifindex,
                        ingress: true,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn from_nothing_everything_is_added_removals_never() {
    let want = desired(&inputs());
    let ops = plan(&want, &Observed::default());
    let text: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        text,
        [
            "pod CIDR 10.244.0.0/24 flags=1",
            "pod CIDR 10.244.1.0/24 flags=0",
            "pod 10.244.0.7 on #7 mtu=1450 mac=0a:58:0a:f4:00:07 gw=02:00:00:00:00:07",
            "pod 10.244.0.9 on #9 mtu=1450 mac=0a:58:0a:f4:00:09 gw=02:00:00:00:00:09",
            "attach keel_from_pod to kv0000000000007 as from_pod-7",
            "attach keel_from_pod to kv0000000000009 as from_pod-9",
            "attach keel_to_pod to eth0 as to_pod-2",
            "attach keel_to_pod to keel.vxlan as to_pod-3",
        ]
    );
}

#[test]
fn applied_state_needs_nothing() {
    let want = desired(&inputs());
    assert_eq!(plan(&want, &applied(&want)), []);
}

#[test]
fn a_pod_leaving_removes_only_its_device() {
    let before = desired(&inputs());
    let mut i = inputs();
    i.pod_devs.retain(|d| d.dev.ifindex != 9);
    let mut have = applied(&before);
    // The kernel detaches a TCX link when its device goes.
    have.links.get_mut("from_pod-9").unwrap().ifindex = 0;
    assert_eq!(
        plan(&desired(&i), &have),
        [
            Op::Detach("from_pod-9".into()),
            Op::DelEndpoint(ip("10.244.0.9"))
        ]
    );
}

#[test]
fn a_recreated_device_gets_a_new_link_and_the_old_pin_goes() {
    let before = desired(&inputs());
    let mut i = inputs();
    i.vxlan = Some(dev(12, "keel.vxlan"));
    let mut have = applied(&before);
    have.links.get_mut("to_pod-3").unwrap().ifindex = 0;
    assert_eq!(
        plan(&desired(&i), &have),
        [
            Op::Detach("to_pod-3".into()),
            Op::Attach {
                pin: "to_pod-12".into(),
                at: Attachment {
                    prog: Prog::ToPod,
                    ifindex: 12,
                    dev: "keel.vxlan".into()
                }
            }
        ]
    );
}

#[test]
fn a_pin_attached_to_the_wrong_place_is_replaced() {
    let want = desired(&inputs());
    let mut have = applied(&want);
    // Same name, but the kernel says it sits on another device, or on egress.
    have.links.get_mut("from_pod-7").unwrap().ifindex = 8;
    have.links.get_mut("to_pod-2").unwrap().ingress = false;
    let ops = plan(&want, &have);
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert_eq!(ops[0], Op::Detach("from_pod-7".into()));
    assert_eq!(ops[1], Op::Detach("to_pod-2".into()));
    assert!(matches!(&ops[2], Op::Attach { pin, .. } if pin == "from_pod-7"));
    assert!(matches!(&ops[3], Op::Attach { pin, .. } if pin == "to_pod-2"));
}

#[test]
fn cidr_changes_are_deltas() {
    let before = desired(&inputs());
    let mut i = inputs();
    // Node 10.244.1.0/24 leaves, 10.244.2.0/24 joins, and a host-bit CIDR is
    // normalised the way the kernel's LPM trie would hold it.
    i.cidrs.remove(&net("10.244.1.0/24"));
    i.cidrs.insert(net("10.244.2.7/24"), false);
    assert_eq!(
        plan(&desired(&i), &applied(&before)),
        [
            Op::DelCidr(net("10.244.1.0/24")),
            Op::PutCidr(net("10.244.2.0/24"), 0)
        ]
    );
}

#[test]
fn a_changed_flag_is_rewritten() {
    let before = desired(&inputs());
    let mut have = applied(&before);
    have.cidrs.insert(net("10.244.1.0/24"), CIDR_F_LOCAL);
    assert_eq!(plan(&before, &have), [Op::PutCidr(net("10.244.1.0/24"), 0)]);
}

#[test]
fn unknown_pins_and_devices_are_cleared() {
    let want = desired(&Inputs::default());
    let mut have = Observed::default();
    have.links.insert(
        "stray".into(),
        ObservedLink {
            ifindex: 4,
            ingress: true,
        },
    );
    have.endpoints
        .insert(ip("10.244.0.44"), ep(44, GW7, "10.244.0.44"));
    assert_eq!(
        plan(&want, &have),
        [
            Op::Detach("stray".into()),
            Op::DelEndpoint(ip("10.244.0.44"))
        ]
    );
}

#[test]
fn a_pod_readded_on_a_new_veth_moves_its_endpoint() {
    let before = desired(&inputs());
    let mut i = inputs();
    // The same pod address behind a new veth (a repeated ADD): the entry
    // is rewritten in place, never deleted first.
    i.pod_devs[1] = pod_dev(11, GW9, &["10.244.0.9"]);
    let mut have = applied(&before);
    have.links.get_mut("from_pod-9").unwrap().ifindex = 0;
    let ops = plan(&desired(&i), &have);
    assert_eq!(
        ops[..2],
        [
            Op::Detach("from_pod-9".into()),
            Op::PutEndpoint(ip("10.244.0.9"), ep(11, GW9, "10.244.0.9")),
        ]
    );
    assert!(matches!(&ops[2], Op::Attach { pin, .. } if pin == "from_pod-11"));
    assert_eq!(ops.len(), 3);
}

#[test]
fn a_veth_without_a_routed_address_gets_its_program_but_no_endpoint() {
    let i = Inputs {
        pod_devs: vec![pod_dev(7, GW7, &[])],
        ..Inputs::default()
    };
    let want = desired(&i);
    assert!(want.endpoints.is_empty());
    assert_eq!(want.links.len(), 1);
}

#[test]
fn pin_names_round_trip_and_reject_strangers() {
    assert_eq!(pin_name(Prog::FromPod, 17), "from_pod-17");
    assert_eq!(parse_pin("from_pod-17"), Some((Prog::FromPod, 17)));
    assert_eq!(parse_pin("to_pod-2"), Some((Prog::ToPod, 2)));
    for bad in ["to_pod-0", "to_pod-02", "to_pod-", "elsewhere.3", "to_pod"] {
        assert_eq!(parse_pin(bad), None, "{bad}");
    }
}
