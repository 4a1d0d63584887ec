//! keel-cni end to end, one plugin run per process as a runtime does it,
//! in fresh namespaces: a test *node* namespace is the host side and each
//! pod has its own namespace. Every command, every supported version,
//! idempotence, rollback, GC, STATUS, invalid input, delegated IPAM.

use std::{net::Ipv4Addr, time::Duration};

use keel_sys::netlink::{
    Handle,
    addr::AddrList,
    link::{LinkAdd, LinkGet, LinkSet, VethPeer},
    route::{Route, RouteDel, RouteList},
};
use keel_tests::{
    TestNetns,
    cni::{Attach, Node, Pod, listen_in, result_ip},
    require_root,
};
use serde_json::{Value, json};

const VERSIONS: [&str; 4] = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const TIMEOUT: Duration = Duration::from_secs(3);

fn gw(subnet: &str) -> Ipv4Addr {
    let base: Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    Ipv4Addr::from(u32::from(base) + 1)
}

/// The pod's side as the kernel has it: (eth0 up, MTU, addresses,
/// routes as "dst via gw").
fn pod_state(pod: &Pod, ifname: &str) -> (bool, u32, Vec<String>, Vec<String>, bool) {
    pod.ns.run(|| {
        let mut h = Handle::new().unwrap();
        let link = LinkGet::Name(ifname.into())
            .execute(&mut h)
            .unwrap()
            .expect("pod interface exists");
        let addrs = AddrList::v4().link(link.index).execute(&mut h).unwrap();
        let routes = RouteList::v4().oif(link.index).execute(&mut h).unwrap();
        let lo = LinkGet::Index(1).execute(&mut h).unwrap().unwrap();
        (
            link.up,
            link.mtu,
            addrs.iter().map(|a| a.addr.to_string()).collect(),
            routes
                .iter()
                .map(|r| format!("{} via {:?}", r.dst, r.gateway))
                .collect(),
            lo.up,
        )
    })
}

#[test]
fn add_check_del_in_every_version() {
    require_root();
    for version in VERSIONS {
        let node = Node::new("cni-ver");
        let pod = Pod::new("cni-verp");
        let subnet = "10.20.0.0/24";
        let conf = node.conf(version, "vers", subnet);
        let attach = pod.attach();

        let result = node
            .keel("ADD", Some(&attach), &conf)
            .ok()
            .expect("ADD prints a result");
        assert_eq!(result["cniVersion"], version);
        let ip = result_ip(&result);
        assert!(
            ip != gw(subnet) && ip.octets()[..3] == [10, 20, 0],
            "{version}: {ip}"
        );
        assert_eq!(result["ips"][0]["address"], format!("{ip}/32"));
        assert_eq!(result["ips"][0]["gateway"], gw(subnet).to_string());
        assert_eq!(
            result["ips"][0].get("version").is_some(),
            version < "1.0.0",
            "{version}: {result}"
        );
        assert_eq!(
            result["interfaces"][1].get("mtu").is_some(),
            version == "1.1.0",
            "{version}: {result}"
        );
        assert_eq!(result["interfaces"][1]["name"], "eth0");
        assert_eq!(
            result["interfaces"][1]["sandbox"],
            pod.ns.ns().path().to_str().unwrap()
        );
        assert_eq!(
            result["routes"][0],
            json!({"dst": "0.0.0.0/0", "gw": gw(subnet).to_string()})
        );

        // The pod: eth0 up with the MTU, a /32, the gateway on the link and
        // the default route via it; loopback up.
        let (up, mtu, addrs, routes, lo_up) = pod_state(&pod, "eth0");
        assert!(up && lo_up, "{version}: eth0 or lo down");
        assert_eq!(mtu, 1400);
        assert_eq!(addrs, vec![format!("{ip}/32")]);
        assert!(
            routes.contains(&format!("0.0.0.0/0 via Some({})", gw(subnet))),
            "{routes:?}"
        );
        assert!(
            routes.contains(&format!("{}/32 via None", gw(subnet))),
            "{routes:?}"
        );

        // The node: one keel veth with the alias, a /32 route to the pod.
        let links = node.keel_links();
        assert_eq!(links.len(), 1, "{version}: {links:?}");
        assert_eq!(
            links[0].alias.as_deref(),
            Some(format!("keel-cni:vers:{}:eth0", pod.id).as_str())
        );
        assert_eq!(links[0].mtu, 1400);
        assert_eq!(
            node.reservations("vers"),
            vec![(pod.id.clone(), "eth0".into(), ip)]
        );

        // Both directions work: node → pod, and pod → the gateway.
        let _pod_listener = listen_in(&pod.ns, ip, 8080);
        assert!(
            node.can_connect(ip, 8080, TIMEOUT),
            "{version}: node cannot reach the pod"
        );
        let _node_listener = listen_in(&node.ns, gw(subnet), 8081);
        assert!(
            pod.ns.run(|| std::net::TcpStream::connect_timeout(
                &(gw(subnet), 8081).into(),
                TIMEOUT
            )
            .is_ok()),
            "{version}: the pod cannot reach its gateway"
        );

        let mut check_conf = conf.clone();
        check_conf["prevResult"] = result.clone();
        let check = node.keel("CHECK", Some(&attach), &check_conf);
        if version == "0.3.1" {
            let (code, msg) = check.err();
            assert_eq!(code, 1, "CHECK is not in 0.3.1: {msg}");
            assert!(msg.starts_with("cniVersion"), "{msg}");
        } else {
            check.ok();
        }

        node.keel("DEL", Some(&attach), &conf).ok();
        assert!(node.keel_links().is_empty(), "{version}: DEL left a link");
        assert!(
            node.reservations("vers").is_empty(),
            "{version}: DEL left a reservation"
        );
        assert_eq!(
            pod.links().len(),
            1,
            "{version}: only lo remains in the pod"
        );
        node.keel("DEL", Some(&attach), &conf).ok();
    }
}

#[test]
fn pods_reach_each_other_through_the_node() {
    require_root();
    let node = Node::new("cni-p2p");
    let (a, b) = (Pod::new("cni-p2pa"), Pod::new("cni-p2pb"));
    let conf = node.conf("1.1.0", "p2p", "10.21.0.0/24");
    let ip_a = result_ip(&node.keel("ADD", Some(&a.attach()), &conf).ok().unwrap());
    let ip_b = result_ip(&node.keel("ADD", Some(&b.attach()), &conf).ok().unwrap());
    assert_ne!(ip_a, ip_b);
    let _l = listen_in(&b.ns, ip_b, 9000);
    assert!(
        a.ns.run(|| std::net::TcpStream::connect_timeout(&(ip_b, 9000).into(), TIMEOUT).is_ok()),
        "pod a cannot reach pod b"
    );
    // Forwarding is switched on per link, never namespace-wide.
    let all = node
        .ns
        .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/forwarding").unwrap());
    assert_eq!(all.trim(), "0");
}

#[test]
fn repeated_add_converges_to_the_same_address() {
    require_root();
    let node = Node::new("cni-rep");
    let pod = Pod::new("cni-repp");
    let conf = node.conf("1.0.0", "rep", "10.22.0.0/24");
    let first = node.keel("ADD", Some(&pod.attach()), &conf).ok().unwrap();
    let second = node.keel("ADD", Some(&pod.attach()), &conf).ok().unwrap();
    assert_eq!(result_ip(&first), result_ip(&second));
    assert_eq!(node.keel_links().len(), 1);
    assert_eq!(node.reservations("rep").len(), 1);
    let _l = listen_in(&pod.ns, result_ip(&second), 80);
    assert!(node.can_connect(result_ip(&second), 80, TIMEOUT));
}

#[test]
fn requested_address_through_cni_args() {
    require_root();
    let node = Node::new("cni-arg");
    let pod = Pod::new("cni-argp");
    let conf = node.conf("1.1.0", "args", "10.23.0.0/24");
    let mut attach = pod.attach();
    attach.args = Some("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.23.0.77".into());
    let r = node.keel("ADD", Some(&attach), &conf).ok().unwrap();
    assert_eq!(result_ip(&r), "10.23.0.77".parse::<Ipv4Addr>().unwrap());
    // The gateway is never handed out, even on request; nothing is left.
    let other = Pod::new("cni-argq");
    let mut bad = other.attach();
    bad.args = Some("IP=10.23.0.1".into());
    let (code, msg) = node.keel("ADD", Some(&bad), &conf).err();
    assert_eq!(code, 4, "{msg}");
    assert!(msg.contains("CNI_ARGS"), "{msg}");
    assert_eq!(node.keel_links().len(), 1);
    assert_eq!(node.reservations("args").len(), 1);
}

#[test]
fn del_succeeds_when_the_namespace_is_gone() {
    require_root();
    let node = Node::new("cni-gone");
    let conf = node.conf("1.1.0", "gone", "10.24.0.0/24");
    let pod = Pod::new("cni-gonep");
    let attach = pod.attach();
    node.keel("ADD", Some(&attach), &conf).ok();
    assert_eq!(node.keel_links().len(), 1);
    drop(pod); // deletes the namespace: its veth end, and so the pair, go
    assert!(
        keel_tests::cni::wait_for(TIMEOUT, || node.keel_links().is_empty()),
        "the veth outlived its namespace"
    );
    // With the old path, and with no CNI_NETNS at all, DEL succeeds and
    // releases the address.
    node.keel("DEL", Some(&attach), &conf).ok();
    assert!(node.reservations("gone").is_empty());
    let no_ns = Attach {
        netns: None,
        ..attach.clone()
    };
    node.keel("DEL", Some(&no_ns), &conf).ok();
}

#[test]
fn del_is_idempotent_and_releases_without_a_link() {
    require_root();
    let node = Node::new("cni-del");
    let pod = Pod::new("cni-delp");
    let conf = node.conf("0.4.0", "del", "10.25.0.0/24");
    // DEL of something never added.
    node.keel("DEL", Some(&pod.attach()), &conf).ok();
    assert!(
        !node.data.path().join("del").exists(),
        "DEL must not create the store"
    );
    node.keel("ADD", Some(&pod.attach()), &conf).ok();
    // The link disappears behind keel's back; DEL still releases the IP.
    let name = node.keel_links()[0].name.clone();
    node.ns
        .run(|| keel_sys::netlink::link::LinkDel::Name(name).execute(&mut Handle::new().unwrap()))
        .unwrap();
    node.keel("DEL", Some(&pod.attach()), &conf).ok();
    node.keel("DEL", Some(&pod.attach()), &conf).ok();
    assert!(node.reservations("del").is_empty());
}

#[test]
fn check_reports_every_mismatch() {
    require_root();
    let node = Node::new("cni-chk");
    let pod = Pod::new("cni-chkp");
    let conf = node.conf("1.1.0", "chk", "10.26.0.0/24");
    let result = node.keel("ADD", Some(&pod.attach()), &conf).ok().unwrap();
    let ip = result_ip(&result);
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result.clone();
    node.keel("CHECK", Some(&pod.attach()), &check_conf).ok();

    // Missing prevResult is a config error naming it.
    let (code, msg) = node.keel("CHECK", Some(&pod.attach()), &conf).err();
    assert_eq!((code, msg.starts_with("prevResult")), (7, true), "{msg}");

    // Break three things: the pod's MTU, the node's route, the reservation.
    pod.ns.run(|| {
        let mut h = Handle::new().unwrap();
        let l = LinkGet::Name("eth0".into())
            .execute(&mut h)
            .unwrap()
            .unwrap();
        LinkSet::index(l.index).mtu(1300).execute(&mut h).unwrap();
    });
    let host = node.keel_links()[0].clone();
    node.ns
        .run(|| {
            RouteDel(Route::direct(
                format!("{ip}/32").parse().unwrap(),
                host.index,
            ))
            .execute(&mut Handle::new()?)
        })
        .unwrap();
    let state = node.data.path().join("chk/state.json");
    std::fs::write(&state, br#"{"reservations": []}"#).unwrap();

    let (code, msg) = node.keel("CHECK", Some(&pod.attach()), &check_conf).err();
    assert_eq!(code, 101, "{msg}");
    assert!(msg.contains("MTU 1300"), "{msg}");
    assert!(msg.contains(&format!("no route {ip}/32")), "{msg}");
    assert!(msg.contains("ipam: no reservation"), "{msg}");
    assert!(msg.starts_with("CHECK found 3 mismatch"), "{msg}");
}

#[test]
fn gc_releases_everything_not_valid() {
    require_root();
    let node = Node::new("cni-gc");
    let conf = node.conf("1.1.0", "gc", "10.27.0.0/24");
    let pods: Vec<Pod> = (0..3).map(|_| Pod::new("cni-gcp")).collect();
    for p in &pods {
        node.keel("ADD", Some(&p.attach()), &conf).ok();
    }
    // Another network's attachment on the same node is not touched.
    let other_conf = node.conf("1.1.0", "gc-other", "10.28.0.0/24");
    let other = Pod::new("cni-gco");
    node.keel("ADD", Some(&other.attach()), &other_conf).ok();
    assert_eq!(node.keel_links().len(), 4);

    // Without the list, GC refuses rather than removing everything.
    let (code, msg) = node.keel("GC", None, &conf).err();
    assert_eq!(code, 7, "{msg}");
    assert!(msg.starts_with("cni.dev/valid-attachments"), "{msg}");
    // GC is a 1.1 command.
    let mut old = conf.clone();
    old["cniVersion"] = "1.0.0".into();
    old["cni.dev/valid-attachments"] = json!([]);
    assert_eq!(node.keel("GC", None, &old).err().0, 1);

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([{"containerID": pods[0].id, "ifname": "eth0"}]);
    node.keel("GC", None, &gc_conf).ok();
    let left: Vec<_> = node
        .reservations("gc")
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(left, vec![pods[0].id.clone()]);
    assert_eq!(
        node.keel_links().len(),
        2,
        "the valid one and the other network's remain"
    );
    assert_eq!(node.reservations("gc-other").len(), 1);
    assert_eq!(pods[1].links().len(), 1, "the stale pod lost its eth0");
    assert_eq!(pods[0].links().len(), 2, "the valid pod kept its eth0");
}

#[test]
fn status_answers_50_when_an_add_could_not_succeed() {
    require_root();
    let node = Node::new("cni-st");
    let conf = node.conf("1.1.0", "st", "10.29.0.0/30");
    node.keel("STATUS", None, &conf).ok();
    let pod = Pod::new("cni-stp");
    node.keel("ADD", Some(&pod.attach()), &conf).ok();
    let (code, msg) = node.keel("STATUS", None, &conf).err();
    assert_eq!(code, 50, "{msg}");
    assert!(msg.contains("no free address"), "{msg}");

    // No subnet yet (the agent has not learned the pod CIDR).
    let mut no_subnet = conf.clone();
    no_subnet.as_object_mut().unwrap().remove("subnet");
    let (code, msg) = node.keel("STATUS", None, &no_subnet).err();
    assert_eq!(code, 50, "{msg}");
    assert!(msg.contains("subnet"), "{msg}");

    let mut old = conf.clone();
    old["cniVersion"] = "1.0.0".into();
    assert_eq!(node.keel("STATUS", None, &old).err().0, 1);
}

#[test]
fn exhausted_pool_fails_cleanly() {
    require_root();
    let node = Node::new("cni-ex");
    let conf = node.conf("1.1.0", "ex", "10.30.0.0/30");
    let (a, b) = (Pod::new("cni-exa"), Pod::new("cni-exb"));
    node.keel("ADD", Some(&a.attach()), &conf).ok();
    let (code, msg) = node.keel("ADD", Some(&b.attach()), &conf).err();
    assert_eq!(code, 100, "{msg}");
    assert!(msg.contains("no free address in 10.30.0.0/30"), "{msg}");
    assert_eq!(node.keel_links().len(), 1);
    assert_eq!(node.reservations("ex").len(), 1);
    assert_eq!(b.links().len(), 1, "nothing was added to the second pod");
    // Freeing the address makes room again.
    node.keel("DEL", Some(&a.attach()), &conf).ok();
    node.keel("ADD", Some(&b.attach()), &conf).ok();
}

#[test]
fn version_lists_the_supported_versions() {
    require_root();
    let node = Node::new("cni-vv");
    let out = node
        .run_raw("VERSION", None, br#"{"cniVersion":"1.1.0"}"#)
        .ok()
        .unwrap();
    assert_eq!(out["cniVersion"], "1.1.0");
    assert_eq!(out["supportedVersions"], json!(VERSIONS));
}

#[test]
fn invalid_input_gets_the_spec_code_naming_the_field_and_changes_nothing() {
    require_root();
    let node = Node::new("cni-inv");
    let pod = Pod::new("cni-invp");
    let good = node.conf("1.1.0", "inv", "10.31.0.0/24");
    let text = |v: &Value| serde_json::to_vec(v).unwrap();
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        text(&c)
    };
    let attach = pod.attach();
    let long_if = Attach {
        ifname: "averyveryverylongname".into(),
        ..attach.clone()
    };
    let no_ns = Attach {
        netns: None,
        ..attach.clone()
    };
    let missing_ns = Attach {
        netns: Some("/run/netns/keel-t-does-not-exist".into()),
        ..attach.clone()
    };
    let bad_id = Attach {
        container_id: "-x".into(),
        ..attach.clone()
    };
    // (what, CNI_COMMAND, attachment, stdin, expected code, field named)
    type Case<'a> = (&'a str, &'a str, Option<&'a Attach>, Vec<u8>, u64, &'a str);
    let cases: Vec<Case> = vec![
        (
            "bad JSON",
            "ADD",
            Some(&attach),
            b"{\"cniVersion\": ".to_vec(),
            6,
            "network config is not valid JSON",
        ),
        (
            "not a CIDR",
            "ADD",
            Some(&attach),
            with("subnet", "10.31.0.0".into()),
            7,
            "subnet",
        ),
        (
            "host bits",
            "ADD",
            Some(&attach),
            with("subnet", "10.31.0.9/24".into()),
            7,
            "subnet",
        ),
        (
            "unknown version",
            "ADD",
            Some(&attach),
            with("cniVersion", "0.9.9".into()),
            1,
            "cniVersion",
        ),
        (
            "bad mtu",
            "ADD",
            Some(&attach),
            with("mtu", 70000.into()),
            7,
            "mtu",
        ),
        (
            "no name",
            "ADD",
            Some(&attach),
            with("name", Value::Null),
            7,
            "name",
        ),
        (
            "ipam without type",
            "ADD",
            Some(&attach),
            with("ipam", json!({})),
            7,
            "ipam.type",
        ),
        (
            "IFNAME too long",
            "ADD",
            Some(&long_if),
            text(&good),
            4,
            "CNI_IFNAME",
        ),
        (
            "no CNI_NETNS",
            "ADD",
            Some(&no_ns),
            text(&good),
            4,
            "CNI_NETNS",
        ),
        (
            "bad container id",
            "ADD",
            Some(&bad_id),
            text(&good),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "no container id",
            "ADD",
            None,
            text(&good),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "netns missing",
            "ADD",
            Some(&missing_ns),
            text(&good),
            3,
            "CNI_NETNS",
        ),
        (
            "unknown command",
            "ATTACH",
            Some(&attach),
            text(&good),
            4,
            "CNI_COMMAND",
        ),
        (
            "ipam plugin missing",
            "ADD",
            Some(&attach),
            with("ipam", json!({"type": "no-such-ipam"})),
            7,
            "ipam.type",
        ),
    ];
    for (what, command, attach, stdin, want_code, field) in cases {
        let out = node.run_raw(command, attach, &stdin);
        let (code, msg) = out.err();
        assert_eq!(code, want_code, "{what}: {msg}");
        assert!(
            msg.starts_with(field),
            "{what}: {msg:?} should name {field}"
        );
        let v = out.json().unwrap();
        assert!(v["cniVersion"].is_string(), "{what}: {v}");
    }
    // Nothing changed: no links, no store, the pod untouched.
    assert!(node.keel_links().is_empty());
    assert_eq!(node.links().len(), 1, "only lo in the node");
    assert_eq!(
        std::fs::read_dir(node.data.path()).unwrap().count(),
        0,
        "no store was created"
    );
    assert_eq!(pod.links().len(), 1, "only lo in the pod");
}

#[test]
fn failed_add_leaves_nothing_behind() {
    require_root();
    let node = Node::new("cni-rb");
    let conf = node.conf("1.1.0", "rb", "10.32.0.0/24");

    // The pod already has an eth0: the veth cannot be created.
    let pod = Pod::new("cni-rbp");
    pod.ns
        .run(|| LinkAdd::veth("eth0", VethPeer::new("other0")).execute(&mut Handle::new()?))
        .unwrap();
    let (code, msg) = node.keel("ADD", Some(&pod.attach()), &conf).err();
    assert_eq!(code, 4, "{msg}");
    assert!(msg.starts_with("CNI_IFNAME: eth0 already exists"), "{msg}");
    assert!(node.keel_links().is_empty());
    assert!(
        node.reservations("rb").is_empty(),
        "the reservation was rolled back"
    );

    // A link with the attachment's host-side name that belongs to
    // something else: refused, left alone, nothing reserved.
    let pod2 = Pod::new("cni-rbq");
    let name = keel_cni::attach::host_ifname(&pod2.id, "eth0");
    node.ns
        .run(|| {
            let mut h = Handle::new()?;
            LinkAdd::veth(&name, VethPeer::new("peer-x")).execute(&mut h)?;
            let l = LinkGet::Name(name.clone()).execute(&mut h)?.unwrap();
            LinkSet::index(l.index)
                .alias("someone-else")
                .execute(&mut h)
        })
        .unwrap();
    let (code, msg) = node.keel("ADD", Some(&pod2.attach()), &conf).err();
    assert_eq!(code, 102, "{msg}");
    assert_eq!(node.keel_links().len(), 1);
    assert_eq!(node.keel_links()[0].alias.as_deref(), Some("someone-else"));
    assert!(node.reservations("rb").is_empty());
    assert_eq!(pod2.links().len(), 1);
}

#[test]
fn delegated_ipam_with_debian_host_local() {
    require_root();
    let node = Node::new("cni-hl");
    let pod = Pod::new("cni-hlp");
    let hl_dir = node.data.path().join("host-local");
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "hl",
        "type": "keel",
        "mtu": 1450,
        "ipam": {
            "type": "host-local",
            "dataDir": hl_dir,
            "ranges": [[{"subnet": "10.33.0.0/24", "rangeStart": "10.33.0.50"}]],
            "routes": [{"dst": "10.96.0.0/12"}],
        },
    });
    let result = node.keel("ADD", Some(&pod.attach()), &conf).ok().unwrap();
    let ip = result_ip(&result);
    assert_eq!(
        ip,
        "10.33.0.50".parse::<Ipv4Addr>().unwrap(),
        "host-local chose the address: {result}"
    );
    assert_eq!(
        result["ips"][0]["gateway"], "10.33.0.1",
        "host-local's gateway is used"
    );
    assert!(
        hl_dir.join("hl/10.33.0.50").exists(),
        "host-local recorded the reservation"
    );
    assert!(
        !node.data.path().join("hl").exists(),
        "the built-in store is not used"
    );
    // host-local's extra route is installed via the gateway.
    let (_, mtu, _, routes, _) = pod_state(&pod, "eth0");
    assert_eq!(mtu, 1450);
    assert!(
        routes.contains(&"10.96.0.0/12 via Some(10.33.0.1)".to_string()),
        "{routes:?}"
    );
    let _l = listen_in(&pod.ns, ip, 7000);
    assert!(node.can_connect(ip, 7000, TIMEOUT));

    let mut check_conf = conf.clone();
    check_conf["prevResult"] = result;
    node.keel("CHECK", Some(&pod.attach()), &check_conf).ok();

    node.keel("DEL", Some(&pod.attach()), &conf).ok();
    assert!(
        !hl_dir.join("hl/10.33.0.50").exists(),
        "host-local released the address"
    );
    assert!(node.keel_links().is_empty());
    node.keel("DEL", Some(&pod.attach()), &conf).ok();
}

#[test]
fn prev_result_from_an_earlier_plugin_is_kept() {
    require_root();
    let node = Node::new("cni-prev");
    let pod = Pod::new("cni-prevp");
    let mut conf = node.conf("1.0.0", "prev", "10.34.0.0/24");
    conf["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "net0", "sandbox": "/x"}],
        "ips": [{"address": "192.0.2.5/24", "interface": 0}],
    });
    let r = node.keel("ADD", Some(&pod.attach()), &conf).ok().unwrap();
    assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
    assert_eq!(r["ips"][0]["address"], "192.0.2.5/24");
    assert_eq!(
        r["ips"][1]["interface"], 2,
        "keel's pod interface, after the earlier one"
    );
}

/// A helper for the other CNI test files: the node namespace must have no
/// route off the machine.
#[test]
fn test_namespaces_have_no_way_out() {
    require_root();
    let ns = TestNetns::new("cni-iso").unwrap();
    let routes = ns
        .run(|| RouteList::v4().execute(&mut Handle::new()?))
        .unwrap();
    assert!(routes.is_empty(), "{routes:?}");
}

#[test]
fn gc_removes_only_the_alias_less_veths_this_network_owns() {
    require_root();
    let node = Node::new("cni-gco");
    let conf = node.conf("1.1.0", "gco", "10.43.0.0/24");
    // One of this network's attachments whose alias never got set (an ADD
    // killed in between): its reservation names it.
    let mine = Pod::new("cni-gcop");
    node.keel("ADD", Some(&mine.attach()), &conf).ok();
    let mine_name = keel_cni::attach::host_ifname(&mine.id, "eth0");
    // An alias-less keel-named veth of some other network.
    let foreign = keel_cni::attach::host_ifname("another-networks-pod", "eth0");
    node.ns
        .run(|| {
            let mut h = Handle::new()?;
            let l = LinkGet::Name(mine_name.clone()).execute(&mut h)?.unwrap();
            LinkSet::index(l.index).alias("").execute(&mut h)?;
            LinkAdd::veth(&foreign, VethPeer::new("gco-peer")).execute(&mut h)
        })
        .unwrap();
    assert!(
        node.keel_links()
            .iter()
            .all(|l| l.alias.as_deref().unwrap_or_default().is_empty()),
        "both alias-less"
    );
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    node.keel("GC", None, &gc).ok();
    let left: Vec<String> = node.keel_links().into_iter().map(|l| l.name).collect();
    assert_eq!(left, vec![foreign], "only this network's veth went");
    assert!(node.reservations("gco").is_empty());
}

#[test]
fn oversized_environment_values_get_the_spec_error_before_anything_is_made() {
    require_root();
    let node = Node::new("cni-big");
    let conf = node.conf("1.1.0", "big", "10.44.0.0/24");
    let pod = Pod::new("cni-bigp");
    for len in [100 * 1024, 300] {
        let mut a = pod.attach();
        a.container_id = "a".repeat(len);
        let (code, msg) = node.keel("ADD", Some(&a), &conf).err();
        assert_eq!(code, 4, "{msg}");
        assert!(msg.starts_with("CNI_CONTAINERID"), "{msg}");
        assert!(msg.len() < 300, "the message does not echo the value");
    }
    let mut a = pod.attach();
    a.netns = Some(format!("/{}", "n".repeat(5000)).into());
    let (code, msg) = node.keel("ADD", Some(&a), &conf).err();
    assert_eq!(code, 4, "{msg}");
    assert!(msg.starts_with("CNI_NETNS"), "{msg}");
    assert!(node.keel_links().is_empty());
    assert!(node.reservations("big").is_empty());
    assert_eq!(pod.links().len(), 1, "only lo in the pod");
}
