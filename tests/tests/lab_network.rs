//! Cross-node pod networking end to end, in the lab, for every mode: TCP,
//! UDP and ICMP between pods on the same node and on different nodes, both
//! directions (forwarded by BPF host routing, as its counters show); a
//! removed node's routes withdrawn everywhere; an agent
//! restart that changes nothing and keeps an established flow; and
//! `lab down` leaving nothing behind. Egress in vxlan and route modes: pods
//! reach the lab's outside host SNATed to their node's IP, keep their own
//! address to other pods and to a `--non-masquerade-cidr`, a flow to the
//! outside survives an agent restart, and `--masquerade=false` removes the
//! rule.

use std::time::Duration;

use keel_api::Node;
use keel_lab::{Lab, Mode, block_on};
use keel_tests::{
    labnet::{
        assert_fast_path, assert_flow_alive, check_pairs, egress_source, egress_table,
        egress_udp_source, lab, net_status, open_flow, pods, restart_agent,
    },
    probe,
    process::wait_for,
};

/// A node's pod CIDR, from its Node.
fn pod_cidr_of(lab: &Lab, node: &str) -> String {
    let c = lab.client().unwrap();
    block_on(c.get::<Node>("", node)).unwrap().spec.pod_cidr
}

/// A node's IP on the fabric.
fn node_ip(lab: &Lab, node: &str) -> std::net::Ipv4Addr {
    lab.topology().node(node).unwrap().ip
}

/// Each (pod, node): the outside host sees the pod's TCP connection come
/// from its node's IP, and the reply finds its way back.
fn assert_egress_snat(
    lab: &Lab,
    pods: &std::collections::BTreeMap<String, (std::net::Ipv4Addr, String)>,
    on: &[(&str, &str)],
) {
    let outside = lab.topology().outside.ips[0];
    for (pod, node) in on {
        let seen = egress_source(lab, &pods[*pod].1, outside)
            .unwrap_or_else(|e| panic!("{pod} → outside {outside}: {e:#}"));
        assert_eq!(seen, node_ip(lab, node), "{pod} on {node} → outside");
    }
}

fn node_routes(lab: &Lab, node: &str) -> String {
    let ns = &lab.topology().node(node).unwrap().netns;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ip", "route", "show", "proto", "77"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn node_fdb(lab: &Lab, node: &str) -> String {
    let ns = &lab.topology().node(node).unwrap().netns;
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "bridge",
            "fdb",
            "show",
            "dev",
            "keel.vxlan",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kernel parameter (path under /proc/sys) inside a node's namespace.
fn node_sysctl(lab: &Lab, node: &str, rel: &str) -> String {
    let ns = &lab.topology().node(node).unwrap().netns;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/proc/sys/{rel}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Stops a node's agent and deletes its Node: every other node (and the
/// VPC) must withdraw what led to its pod CIDR.
fn remove_node(lab: &mut Lab, node: &str) -> String {
    let c = lab.client().unwrap();
    let n: Node = block_on(c.get::<Node>("", node)).unwrap();
    lab.stop_agent(node).unwrap();
    block_on(c.delete::<Node>("", node)).unwrap();
    n.spec.pod_cidr
}

#[test]
fn vxlan_across_two_segments() {
    let mut lab = lab("vx", Mode::Vxlan, 3, 2);
    let pods = pods(
        &lab,
        &[
            ("a1", "node-1"),
            ("a2", "node-1"),
            ("b", "node-2"),
            ("c", "node-3"),
        ],
    );
    check_pairs(&pods, &[("a1", "a2"), ("a1", "b"), ("a1", "c"), ("b", "c")]);
    for node in ["node-1", "node-2", "node-3"] {
        assert_fast_path(&lab, node);
    }
    // Set by each agent in its own namespace (the lab sets neither).
    for node in ["node-1", "node-2", "node-3"] {
        assert_eq!(node_sysctl(&lab, node, "net/ipv4/ip_forward"), "1");
        assert_eq!(
            node_sysctl(&lab, node, "net/ipv4/conf/keel.vxlan/rp_filter"),
            "2"
        );
    }
    // Egress: to the outside host SNATed to the node's IP (from both
    // segments, BPF host routing handing the packets to the stack);
    // between pods across nodes the pod keeps its address.
    assert_egress_snat(&lab, &pods, &[("a1", "node-1"), ("b", "node-2")]);
    let table = egress_table(&lab, "node-1").expect("node-1's egress table");
    assert!(
        table.contains("ip saddr 10.244.") && table.contains("masquerade"),
        "{table}"
    );

    // An agent restart over correct state changes nothing and keeps an
    // established cross-node connection, and one to the outside.
    let (b_ip, b_ns) = pods["b"].clone();
    let (mut client, mut server) = open_flow(&pods["a1"].1, &b_ns, b_ip);
    assert_eq!(
        server.peer_addr().unwrap().ip(),
        pods["a1"].0,
        "pod to pod across nodes is not SNATed"
    );
    let outside = lab.topology().outside.clone();
    let (mut out_client, mut out_server) = open_flow(&pods["a1"].1, &outside.netns, outside.ips[0]);
    assert_eq!(
        out_server.peer_addr().unwrap().ip(),
        node_ip(&lab, "node-1")
    );
    assert_flow_alive(&mut out_client, &mut out_server);
    let before = node_routes(&lab, "node-1");
    lab.stop_agent("node-1").unwrap();
    lab.start_agent("node-1").unwrap();
    let log = lab
        .state
        .processes
        .iter()
        .find(|p| p.role == "node-1")
        .unwrap()
        .log
        .clone();
    wait_for(
        "the restarted agent to reconcile",
        Duration::from_secs(20),
        || {
            let text = std::fs::read_to_string(&log).ok()?;
            let runs = text.matches("keel-agent starting").count();
            (runs >= 2
                && text
                    .rsplit("keel-agent starting")
                    .next()?
                    .contains("node registered"))
            .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    let after_restart = text.rsplit("keel-agent starting").next().unwrap();
    assert!(
        !after_restart.contains("node networking updated")
            && !after_restart.contains("host routing updated")
            && !after_restart.contains("egress updated"),
        "the restarted agent changed networking:\n{text}"
    );
    assert_eq!(node_routes(&lab, "node-1"), before);
    assert_eq!(egress_table(&lab, "node-1").as_ref(), Some(&table));
    assert_flow_alive(&mut client, &mut server);
    for _ in 0..3 {
        assert_flow_alive(&mut out_client, &mut out_server);
    }

    // node-3 leaves: its route, neighbour and FDB entry go everywhere.
    let c3_ip = lab.topology().node("node-3").unwrap().ip.to_string();
    let cidr = remove_node(&mut lab, "node-3");
    for node in ["node-1", "node-2"] {
        wait_for(
            "node-3's route to be withdrawn",
            Duration::from_secs(20),
            || {
                (!node_routes(&lab, node).contains(&cidr) && !node_fdb(&lab, node).contains(&c3_ip))
                    .then_some(())
            },
        );
    }
    check_pairs(&pods, &[("a1", "b")]);
}

#[test]
fn route_mode_reaches_adjacent_nodes_and_refuses_the_others() {
    let mut lab = lab("rt", Mode::Route, 4, 2);
    // node-1 and node-3 share segment 0, node-2 and node-4 segment 1.
    let pods = pods(
        &lab,
        &[
            ("a1", "node-1"),
            ("a2", "node-1"),
            ("c", "node-3"),
            ("b", "node-2"),
            ("d", "node-4"),
        ],
    );
    check_pairs(&pods, &[("a1", "a2"), ("a1", "c"), ("b", "d")]);
    assert_eq!(node_sysctl(&lab, "node-1", "net/ipv4/ip_forward"), "1");
    for node in ["node-1", "node-2", "node-3", "node-4"] {
        assert_fast_path(&lab, node);
    }
    assert!(
        node_routes(&lab, "node-1").contains("via 172.30.0.13 dev eth0"),
        "{}",
        node_routes(&lab, "node-1")
    );
    // Across segments there is no route, and the Node says why.
    let (ip, ns) = &pods["b"];
    assert!(
        probe::tcp(
            &probe::open(&pods["a1"].1).unwrap(),
            &probe::open(ns).unwrap(),
            *ip
        )
        .is_err()
    );
    let c = lab.client().unwrap();
    let n1: Node = block_on(c.get::<Node>("", "node-1")).unwrap();
    let cond = n1.condition("NetworkUnavailable").expect("condition");
    assert_eq!(cond.status, "True");
    assert!(
        cond.message.contains("node-2") && cond.message.contains("L2 adjacency"),
        "{}",
        cond.message
    );

    // Egress in route mode: SNATed to the node's IP, from both segments;
    // to an adjacent node's pod the pod keeps its address.
    assert_egress_snat(&lab, &pods, &[("a1", "node-1"), ("d", "node-4")]);
    let (c_ip, c_ns) = pods["c"].clone();
    let (_client, server) = open_flow(&pods["a1"].1, &c_ns, c_ip);
    assert_eq!(server.peer_addr().unwrap().ip(), pods["a1"].0);
    drop(server);
    let [out, spare] = lab.topology().outside.ips;
    let a1 = pods["a1"].clone();
    // The outside host has no route to pod CIDRs: without SNAT, datagrams
    // arrive from the pod's address and connections never complete.
    assert_eq!(
        egress_udp_source(&lab, &a1.1, spare).unwrap(),
        node_ip(&lab, "node-1")
    );
    // A --non-masquerade-cidr keeps the pod's address for what it covers,
    // and only that.
    let spare_cidr = keel_lab::topology::Outside::SPARE_CIDR;
    restart_agent(&mut lab, "node-1", &[("--non-masquerade-cidr", spare_cidr)]);
    wait_for(
        "the non-masquerade CIDR in node-1's table",
        Duration::from_secs(20),
        || {
            egress_table(&lab, "node-1")
                .filter(|t| t.contains(spare_cidr))
                .map(drop)
        },
    );
    assert_eq!(egress_udp_source(&lab, &a1.1, spare).unwrap(), a1.0);
    assert_eq!(
        egress_source(&lab, &a1.1, out).unwrap(),
        node_ip(&lab, "node-1")
    );
    // `keelctl net status` says so.
    let st = net_status(&lab, "node-1");
    let eg = &st["egress"];
    assert_eq!(eg["masquerade"], true, "{st}");
    assert_eq!(eg["table"], "ip keel-egress", "{st}");
    assert_eq!(eg["source"], pod_cidr_of(&lab, "node-1"), "{st}");
    assert!(
        eg["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == spare_cidr),
        "{st}"
    );
    // --masquerade=false: the table goes, the pod's own address reaches the
    // outside host, whose reply has no way back.
    restart_agent(&mut lab, "node-1", &[("--masquerade", "false")]);
    wait_for(
        "node-1's egress table to go",
        Duration::from_secs(20),
        || egress_table(&lab, "node-1").is_none().then_some(()),
    );
    let st = net_status(&lab, "node-1");
    assert_eq!(
        (&st["egress"]["masquerade"], &st["egress"]["table"]),
        (&serde_json::json!(false), &serde_json::Value::Null),
        "{st}"
    );
    assert_eq!(egress_udp_source(&lab, &a1.1, out).unwrap(), a1.0);
    assert!(egress_source(&lab, &a1.1, out).is_err());
    // Other nodes keep theirs.
    assert_egress_snat(&lab, &pods, &[("d", "node-4")]);
}

#[test]
fn vpc_routes_across_two_segments() {
    let mut lab = lab("vpc", Mode::Vpc, 3, 2);
    let pods = pods(
        &lab,
        &[
            ("a1", "node-1"),
            ("a2", "node-1"),
            ("b", "node-2"),
            ("c", "node-3"),
        ],
    );
    check_pairs(&pods, &[("a1", "a2"), ("a1", "b"), ("a1", "c"), ("b", "c")]);
    for node in ["node-1", "node-2", "node-3"] {
        assert_fast_path(&lab, node);
    }
    let router = |lab: &Lab| {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.topology().router,
                "ip",
                "route",
                "show",
                "proto",
                "77",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(router(&lab).lines().count(), 3, "{}", router(&lab));
    assert!(
        node_routes(&lab, "node-1").is_empty(),
        "vpc mode adds no routes on nodes"
    );
    // The router knows pod CIDRs here; the outside host still does not.
    assert_egress_snat(&lab, &pods, &[("a1", "node-1"), ("b", "node-2")]);
    let cidr = remove_node(&mut lab, "node-3");
    wait_for(
        "node-3's VPC route to be withdrawn",
        Duration::from_secs(20),
        || (!router(&lab).contains(&cidr)).then_some(()),
    );
    assert_eq!(router(&lab).lines().count(), 2);
}

#[test]
fn auto_routes_adjacent_nodes_and_tunnels_to_the_rest_then_lab_down_leaves_nothing() {
    let lab = lab("auto", Mode::Auto, 3, 2);
    let pods = pods(
        &lab,
        &[
            ("a1", "node-1"),
            ("a2", "node-1"),
            ("b", "node-2"),
            ("c", "node-3"),
        ],
    );
    check_pairs(&pods, &[("a1", "a2"), ("a1", "b"), ("a1", "c"), ("b", "c")]);
    for node in ["node-1", "node-2", "node-3"] {
        assert_fast_path(&lab, node);
    }
    let routes = node_routes(&lab, "node-1");
    assert!(
        routes.contains("via 172.30.0.13 dev eth0"),
        "node-3 is adjacent: direct route\n{routes}"
    );
    assert!(
        routes.contains("dev keel.vxlan"),
        "node-2 is not: VXLAN\n{routes}"
    );

    let name = lab.name().to_string();
    let pids: Vec<i32> = lab.state.processes.iter().map(|p| p.pid).collect();
    let dir = lab.state.dir.clone();
    let pins = lab.topology().node_bpffs("node-1");
    assert!(pins.exists());
    drop(lab);
    assert!(
        !pins.parent().unwrap().exists(),
        "BPF pins left: {}",
        pins.display()
    );
    let prefix = format!("keel-lab-{name}-");
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !netns.iter().any(|n| n.starts_with(&prefix)),
        "namespaces left: {netns:?}"
    );
    for pid in pids {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
        assert!(!alive, "process {pid} of the lab is still running");
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&prefix), "mounts left");
    let cg = keel_lab::cgroup2_root()
        .unwrap()
        .join(format!("keel-lab-{name}-nodes"));
    assert!(!cg.exists(), "cgroup {} left", cg.display());
    assert!(!dir.exists(), "lab dir {} left", dir.display());
}

#[test]
fn lab_down_after_a_crash_finds_everything_by_prefix() {
    let mut lab = lab("crash", Mode::Vxlan, 2, 1);
    let _pods = pods(&lab, &[("a", "node-1"), ("b", "node-2")]);
    // Everything the lab started dies at once, and its state file is lost.
    for p in &lab.state.processes {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    std::fs::remove_file(keel_lab::State::path(&lab.state.dir)).unwrap();
    let name = lab.name().to_string();
    let swept = Lab::down(&name).unwrap();
    assert!(swept.errors.is_empty(), "{swept}");
    assert!(
        swept.netns >= 2 + 3 + 2,
        "node, pod and fabric namespaces: {swept}"
    );
    let prefix = format!("keel-lab-{name}-");
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !netns.iter().any(|n| n.starts_with(&prefix)),
        "namespaces left: {netns:?}"
    );
    assert!(!lab.state.dir.exists());
    // The guard's own down finds nothing left to do.
    lab.0.state.processes.clear();
}
