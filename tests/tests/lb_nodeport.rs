//! NodePort with real packets: the TC programs attached (TCX) to a node's
//! uplink inside test namespaces, a client in an "external" namespace, one
//! backend pod on the node and one on a peer node, all on one L2 segment
//! (a bridge in its own namespace). Nothing touches the host's namespace.
//!
//! ```text
//!   ext 10.0.0.9 ─┐
//!   node 10.0.0.1 ┼─ br0 (fabric)      node: pod 10.244.1.5 (local backend)
//!   peer 10.0.0.2 ┘                    peer: pod 10.244.2.5 (remote backend)
//! ```

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use keel_agent::lb::common::{SVC_F_NODEPORT, SVC_F_SOCK, SVC_F_TC, Stat};
use keel_tests::{
    TestNetns,
    lb::{LbFixture, Spawned, addr, field, id_server, spec},
    process::bin,
    require_root,
};

const NP: u8 = SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT;

struct Topo {
    _servers: Vec<Spawned>,
    lb: LbFixture,
    ext: TestNetns,
    node: TestNetns,
    // Kept until the end (dropped after the namespaces above use them).
    _peer_pod: TestNetns,
    _node_pod: TestNetns,
    _peer: TestNetns,
    _fabric: TestNetns,
}

/// A pod namespace behind a point-to-point veth from `host` (as keel-cni
/// wires pods): `ip/32` inside, a host route to it, proxy ARP on the host side.
fn pod(host: &TestNetns, what: &str, pod_ip: &str, host_if: &str) -> TestNetns {
    let pod = TestNetns::new(what).unwrap();
    host.ip(&format!(
        "link add {host_if} type veth peer name eth0 netns {}",
        pod.name()
    ));
    host.ip(&format!("link set {host_if} up"));
    host.ip(&format!("route add {pod_ip}/32 dev {host_if}"));
    host.sysctl(&format!("net.ipv4.conf.{host_if}.proxy_arp=1"));
    pod.ip("link set eth0 up");
    pod.ip(&format!("addr add {pod_ip}/32 dev eth0"));
    pod.ip("route add default dev eth0");
    pod
}

impl Topo {
    fn new(what: &str) -> Self {
        require_root();
        let fabric = TestNetns::new(&format!("{what}-fab")).unwrap();
        fabric.ip("link add br0 type bridge");
        fabric.ip("link set br0 up");
        let host = |name: &str, port: &str, addr: &str| {
            let ns = TestNetns::new(&format!("{what}-{name}")).unwrap();
            fabric.ip(&format!(
                "link add {port} type veth peer name up0 netns {}",
                ns.name()
            ));
            fabric.ip(&format!("link set {port} master br0"));
            fabric.ip(&format!("link set {port} up"));
            ns.ip("link set up0 up");
            ns.ip(&format!("addr add {addr}/24 dev up0"));
            ns
        };
        let ext = host("ext", "p-ext", "10.0.0.9");
        let node = host("node", "p-node", "10.0.0.1");
        let peer = host("peer", "p-peer", "10.0.0.2");
        for ns in [&node, &peer] {
            ns.sysctl("net.ipv4.ip_forward=1");
        }
        // The node reaches the peer's pods through the peer (route mode).
        node.ip("route add 10.244.2.0/24 via 10.0.0.2 dev up0");
        let node_pod = pod(&node, &format!("{what}-npod"), "10.244.1.5", "pod0");
        let peer_pod = pod(&peer, &format!("{what}-ppod"), "10.244.2.5", "pod0");
        let servers = vec![
            id_server(&node_pod, &["10.244.1.5:8080"]),
            id_server(&peer_pod, &["10.244.2.5:8080"]),
        ];
        let mut lb = LbFixture::new(what);
        lb.set_snat("10.0.0.1");
        let dp = &mut lb.dp;
        node.run(|| dp.attach_tc("up0"))
            .expect("attaching TC to the node's uplink");
        Topo {
            _servers: servers,
            lb,
            ext,
            node,
            _peer_pod: peer_pod,
            _node_pod: node_pod,
            _peer: peer,
            _fabric: fabric,
        }
    }

    /// `lb-dial tcp ADDR N` from the external namespace (no cgroup: the
    /// socket programs play no part).
    fn dial(&self, addr: &str, n: usize) -> Vec<String> {
        let out = self
            .ext
            .command(bin("keel-testbin").to_str().unwrap())
            .args(["lb-dial", "tcp", addr, &n.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn nodeport_from_outside_reaches_local_and_remote_backends() {
    let mut t = Topo::new("np");
    t.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.1.5:8080/TCP*", "10.244.2.5:8080/TCP"]),
        )],
    );
    let lines = t.dial("10.0.0.1:30080", 40);
    let mut by_server: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &lines {
        let server = field(l, "server").unwrap_or_else(|| panic!("dial failed: {l}"));
        assert_eq!(field(l, "peer"), Some("10.0.0.1:30080"), "{l}");
        let client = field(l, "client").unwrap().to_string();
        by_server
            .entry(server.to_string())
            .or_default()
            .push(client);
    }
    // 40 flows, Maglev over two backends: both get flows (a miss has
    // probability 2·2^-40).
    assert_eq!(by_server.len(), 2, "{lines:?}");
    // The local pod sees the client's address (DNAT only); the remote one
    // sees the node's (SNAT, so its replies come back through the node).
    assert!(
        by_server["10.244.1.5:8080"]
            .iter()
            .all(|c| c.starts_with("10.0.0.9:")),
        "{by_server:?}"
    );
    assert!(
        by_server["10.244.2.5:8080"]
            .iter()
            .all(|c| c.starts_with("10.0.0.1:")),
        "{by_server:?}"
    );
    let stats = t.lb.maps.stats().unwrap();
    assert!(stats[Stat::TcNewFlow as usize] >= 40, "{stats:?}");
    let drops: u64 = keel_agent::lb::common::STATS
        .iter()
        .zip(&stats)
        .filter(|((_, d), _)| *d)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(drops, 0, "{stats:?}");
}

#[test]
fn nodeport_without_backends_is_refused_at_once() {
    let mut t = Topo::new("np-refuse");
    t.lb.set(
        "test/empty",
        vec![(addr("10.0.0.1:30081/TCP"), spec(NP, 0, &[]))],
    );
    // The client's connect() fails with ECONNREFUSED (the ICMP port
    // unreachable the TC program answers with), not a timeout.
    assert_eq!(
        t.dial("10.0.0.1:30081", 2),
        vec!["error=ConnectionRefused"; 2]
    );
    assert_eq!(t.lb.maps.stats().unwrap()[Stat::TcNoBackend as usize], 2);
}

#[test]
fn an_established_nodeport_flow_keeps_its_backend_after_it_leaves_the_service() {
    use std::io::{BufRead, BufReader, Write};
    let mut t = Topo::new("np-keep");
    t.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.2.5:8080/TCP"]),
        )],
    );
    let b = bin("keel-testbin");
    let mut child = t
        .ext
        .command(b.to_str().unwrap())
        .args(["lb-hold", "10.0.0.1:30080"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _hold = Spawned { child };
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(field(&first, "server"), Some("10.244.2.5:8080"), "{first}");
    // The Service's only backend is replaced by another (the old pod still
    // runs, as an unready one would): the established flow keeps going to
    // it, as with kube-proxy's conntrack; new flows go to the new backend.
    t.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.1.5:8080/TCP*"]),
        )],
    );
    let lines = t.dial("10.0.0.1:30080", 3);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "server") == Some("10.244.1.5:8080")),
        "{lines:?}"
    );
    for i in 0..20 {
        writeln!(stdin, "ping-{i}").unwrap();
        stdin.flush().unwrap();
        let mut echo = String::new();
        out.read_line(&mut echo).unwrap();
        assert_eq!(echo.trim(), format!("echo=ping-{i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = &t.node;
}
