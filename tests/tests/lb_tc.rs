//! The NodePort/externalIP TC programs, packet by packet, through
//! `BPF_PROG_TEST_RUN`: each fixture sets up the maps (through the agent's
//! planner and applier), feeds one packet and checks the verdict and the
//! exact packet that comes out, checksums included (computed from scratch
//! by the test, not by the kernel's incremental updates).
//!
//! The runs happen inside a test network namespace that looks like a node:
//! an uplink `up0` with the node IP 10.0.0.1/24, a client 10.0.0.9 and a
//! peer node 10.0.0.2 (the route to remote pods 10.244.2.0/24) as permanent
//! neighbours, and a pod veth `pod0` to a local pod 10.244.1.5.

use std::collections::BTreeMap;

use keel_agent::lb::{
    common::{
        CT_ORIGINAL, CT_REPLY, MAGLEV_CHUNK, SNAT_PORT_COUNT, SNAT_PORT_MIN, STATS, SVC_F_AFFINITY,
        SVC_F_LOCAL_ONLY, SVC_F_NODEPORT, SVC_F_SOCK, SVC_F_TC, Stat, TC_EGRESS_PROG,
        TC_INGRESS_PROG, flow_hash,
    },
    maps::LbMaps,
};
use keel_tests::{
    TestNetns,
    lb::{LbFixture, addr, spec},
    packet::{
        ACK, Pkt, SYN, hexdiff, icmp_error, icmp_port_unreachable, mac_str, verify_checksums,
    },
    prog_run::{RunResult, run_tc},
    require_root,
};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const NODE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x09];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const POD0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const POD_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x05];
const NP: u8 = SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT;

struct Node {
    netns: TestNetns,
    lb: LbFixture,
    up0: u32,
    pod0: u32,
}

impl Node {
    fn new(what: &str) -> Self {
        require_root();
        let netns = TestNetns::new(what).unwrap();
        let ip = |args: &str| netns.ip(args);
        ip(&format!(
            "link add up0 address {} type veth peer name up0p",
            mac_str(NODE_MAC)
        ));
        ip(&format!(
            "link add pod0 address {} type veth peer name pod0p",
            mac_str(POD0_MAC)
        ));
        for l in ["up0", "up0p", "pod0", "pod0p"] {
            ip(&format!("link set {l} up"));
        }
        ip("addr add 10.0.0.1/24 dev up0");
        ip(&format!(
            "neigh add 10.0.0.9 lladdr {} dev up0 nud permanent",
            mac_str(CLIENT_MAC)
        ));
        ip(&format!(
            "neigh add 10.0.0.2 lladdr {} dev up0 nud permanent",
            mac_str(PEER_MAC)
        ));
        ip("route add 10.244.2.0/24 via 10.0.0.2 dev up0");
        ip("route add 10.244.1.5/32 dev pod0");
        ip(&format!(
            "neigh add 10.244.1.5 lladdr {} dev pod0 nud permanent",
            mac_str(POD_MAC)
        ));
        netns.sysctl("net.ipv4.ip_forward=1");
        let (up0, pod0) = netns.run(|| {
            (
                nix::net::if_::if_nametoindex("up0").unwrap(),
                nix::net::if_::if_nametoindex("pod0").unwrap(),
            )
        });
        let mut lb = LbFixture::new(what);
        lb.set_snat("10.0.0.1");
        Node {
            netns,
            lb,
            up0,
            pod0,
        }
    }

    fn run(&self, prog: &'static str, p: &[u8]) -> RunResult {
        let fd = self.lb.dp.program_fd(prog).unwrap();
        let ifindex = self.up0;
        self.netns.run(|| run_tc(fd, p, ifindex)).unwrap()
    }

    fn ingress(&self, p: &Pkt) -> RunResult {
        self.run(TC_INGRESS_PROG, &p.bytes())
    }

    fn stat(&self, s: Stat) -> u64 {
        self.lb.maps.stats().unwrap()[s as usize]
    }
}

/// The SNAT port the first try picks for a flow (the map starts empty).
fn snat_port(p: &Pkt) -> u16 {
    let h = flow_hash(
        u32::from_ne_bytes(p.src.octets()),
        u32::from_ne_bytes(p.dst.octets()),
        p.sport.to_be(),
        p.dport.to_be(),
        p.proto,
    );
    SNAT_PORT_MIN + (h % SNAT_PORT_COUNT as u32) as u16
}

fn assert_packet(got: &RunResult, verdict: u32, want: &[u8]) {
    assert_eq!(got.verdict, verdict, "verdict");
    assert!(
        got.packet == want,
        "packet differs:\n{}",
        hexdiff(&got.packet, want)
    );
    verify_checksums(&got.packet).unwrap();
}

#[test]
fn nodeport_to_a_remote_backend_dnat_snat_and_reverse() {
    let mut node = Node::new("tc-remote");
    node.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.2.5:8080/TCP"]),
        )],
    );
    let syn = Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN);
    let sp = snat_port(&syn);
    let got = node.ingress(&syn);
    let want = Pkt {
        src_mac: NODE_MAC,
        dst_mac: PEER_MAC,
        src: "10.0.0.1".parse().unwrap(),
        sport: sp,
        dst: "10.244.2.5".parse().unwrap(),
        dport: 8080,
        ttl: 63,
        ..syn.clone()
    };
    assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());

    // Both directions are tracked.
    let ct = node.lb.maps.conntrack().unwrap();
    assert_eq!(ct.len(), 2, "{ct:?}");
    assert_eq!(ct.iter().filter(|(k, _)| k.dir == CT_ORIGINAL).count(), 1);
    assert_eq!(ct.iter().filter(|(k, _)| k.dir == CT_REPLY).count(), 1);

    // The backend's SYN-ACK comes back to the SNAT port and goes to the client.
    let synack = Pkt {
        src_mac: PEER_MAC,
        dst_mac: NODE_MAC,
        ..Pkt::tcp("10.244.2.5", 8080, "10.0.0.1", sp, SYN | ACK)
    };
    let got = node.ingress(&synack);
    let want = Pkt {
        src_mac: NODE_MAC,
        dst_mac: CLIENT_MAC,
        src: "10.0.0.1".parse().unwrap(),
        sport: 30080,
        dst: "10.0.0.9".parse().unwrap(),
        dport: 40000,
        ttl: 63,
        ..synack.clone()
    };
    assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());

    // The client's next packet keeps the backend and the SNAT port.
    let ack = Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, ACK);
    let got = node.ingress(&ack);
    let want = Pkt {
        src_mac: NODE_MAC,
        dst_mac: PEER_MAC,
        src: "10.0.0.1".parse().unwrap(),
        sport: sp,
        dst: "10.244.2.5".parse().unwrap(),
        dport: 8080,
        ttl: 63,
        ..ack.clone()
    };
    assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());
    assert_eq!(node.stat(Stat::TcNewFlow), 1);
    assert_eq!(node.stat(Stat::TcTracked), 2);
}

#[test]
fn nodeport_to_a_local_backend_dnat_only_and_egress_reverse() {
    let mut node = Node::new("tc-local");
    node.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.1.5:8080/TCP*"]),
        )],
    );
    let syn = Pkt::tcp("10.0.0.9", 40001, "10.0.0.1", 30080, SYN);
    let got = node.ingress(&syn);
    // The client's address is kept; straight to the pod's veth.
    let want = Pkt {
        src_mac: POD0_MAC,
        dst_mac: POD_MAC,
        dst: "10.244.1.5".parse().unwrap(),
        dport: 8080,
        ttl: 63,
        ..syn.clone()
    };
    assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());
    let _ = node.pod0;

    // The pod's reply, routed by the host out of the uplink: egress puts
    // the NodePort back as its source; nothing else changes.
    let reply = Pkt {
        src_mac: NODE_MAC,
        dst_mac: CLIENT_MAC,
        ttl: 63,
        ..Pkt::tcp("10.244.1.5", 8080, "10.0.0.9", 40001, SYN | ACK)
    };
    let got = node.run(TC_EGRESS_PROG, &reply.bytes());
    let want = Pkt {
        src: "10.0.0.1".parse().unwrap(),
        sport: 30080,
        ..reply.clone()
    };
    assert_packet(&got, TC_ACT_OK, &want.bytes());
}

#[test]
fn udp_with_and_without_checksum() {
    let mut node = Node::new("tc-udp");
    node.lb.set(
        "test/dns",
        vec![(
            addr("10.0.0.1:30053/UDP"),
            spec(NP, 0, &["10.244.2.5:5353/UDP"]),
        )],
    );
    for (sport, no_csum) in [(50000u16, false), (50001, true)] {
        let q = Pkt {
            udp_no_csum: no_csum,
            ..Pkt::udp("10.0.0.9", sport, "10.0.0.1", 30053, b"query?")
        };
        let sp = snat_port(&q);
        let got = node.ingress(&q);
        let want = Pkt {
            src_mac: NODE_MAC,
            dst_mac: PEER_MAC,
            src: "10.0.0.1".parse().unwrap(),
            sport: sp,
            dst: "10.244.2.5".parse().unwrap(),
            dport: 5353,
            ttl: 63,
            ..q.clone()
        };
        assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());
        if no_csum {
            assert_eq!(
                &got.packet[40..42],
                &[0, 0],
                "a zero UDP checksum stays zero"
            );
        }
    }
}

#[test]
fn no_ready_backend_answers_port_unreachable() {
    let mut node = Node::new("tc-refuse");
    node.lb.set(
        "test/empty",
        vec![(addr("10.0.0.1:30081/TCP"), spec(NP, 0, &[]))],
    );
    let syn = Pkt::tcp("10.0.0.9", 40002, "10.0.0.1", 30081, SYN);
    let got = node.ingress(&syn);
    assert_packet(&got, TC_ACT_REDIRECT, &icmp_port_unreachable(&syn));
    assert_eq!(node.stat(Stat::TcNoBackend), 1);
    assert!(STATS[Stat::TcNoBackend as usize].1, "counted as a drop");

    // externalTrafficPolicy Local without a local backend: dropped, as
    // Kubernetes does (so an external load balancer fails over).
    node.lb.set(
        "test/local",
        vec![(
            addr("10.0.0.1:30082/TCP"),
            spec(NP | SVC_F_LOCAL_ONLY, 0, &[]),
        )],
    );
    let got = node.ingress(&Pkt::tcp("10.0.0.9", 40003, "10.0.0.1", 30082, SYN));
    assert_eq!(got.verdict, TC_ACT_SHOT);
    assert_eq!(node.stat(Stat::NoLocalBackend), 1);
}

#[test]
fn anything_else_passes_untouched() {
    let mut node = Node::new("tc-pass");
    node.lb.set(
        "test/web",
        vec![
            (
                addr("10.0.0.1:30080/TCP"),
                spec(NP, 0, &["10.244.2.5:8080/TCP"]),
            ),
            // A ClusterIP is for sockets only, not for TC.
            (
                addr("10.96.0.10:80/TCP"),
                spec(SVC_F_SOCK, 0, &["10.244.2.5:8080/TCP"]),
            ),
        ],
    );
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "another port",
            Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30079, SYN).bytes(),
        ),
        (
            "another protocol",
            Pkt::udp("10.0.0.9", 40000, "10.0.0.1", 30080, b"x").bytes(),
        ),
        (
            "a ClusterIP",
            Pkt::tcp("10.0.0.9", 40000, "10.96.0.10", 80, SYN).bytes(),
        ),
        ("ARP", arp),
        // (BPF_PROG_TEST_RUN refuses IPv4 frames shorter than the IP header.)
        (
            "a truncated TCP header",
            Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN).bytes()[..40].to_vec(),
        ),
    ];
    for (what, p) in cases {
        let got = node.run(TC_INGRESS_PROG, &p);
        assert_eq!(got.verdict, TC_ACT_OK, "{what}");
        assert_eq!(got.packet, p, "{what}: changed");
        let got = node.run(TC_EGRESS_PROG, &p);
        assert_eq!(
            (got.verdict, &got.packet),
            (TC_ACT_OK, &p),
            "{what} (egress)"
        );
    }
    assert!(node.lb.maps.conntrack().unwrap().is_empty());
    // TTL about to expire: dropped and counted, not forwarded.
    let dying = Pkt {
        ttl: 1,
        ..Pkt::tcp("10.0.0.9", 40004, "10.0.0.1", 30080, SYN)
    };
    assert_eq!(node.ingress(&dying).verdict, TC_ACT_SHOT);
    assert_eq!(node.stat(Stat::Ttl), 1);
}

/// 300 flows over three remote backends: every flow lands where the
/// frontend's Maglev table (read back from the map) says, all three get
/// flows, and the output packets are all valid.
#[test]
fn maglev_spreads_flows_as_the_table_says() {
    let mut node = Node::new("tc-maglev");
    let backends = [
        "10.244.2.5:8080/TCP",
        "10.244.2.6:8080/TCP",
        "10.244.2.7:8080/TCP",
    ];
    node.lb.set(
        "test/web",
        vec![(addr("10.0.0.1:30080/TCP"), spec(NP, 0, &backends))],
    );
    let fe = addr("10.0.0.1:30080/TCP");
    let services = node.lb.maps.services().unwrap();
    let header = services
        .iter()
        .find(|(k, _)| k.is_header() && k.addr == fe.ip_be())
        .map(|(_, v)| *v)
        .unwrap();
    let slot_backend: BTreeMap<u16, u32> = services
        .iter()
        .filter(|(k, _)| k.rev == header.rev && k.slot > 0)
        .map(|(k, v)| (k.slot, v.backend_id))
        .collect();
    let backend_ip: BTreeMap<u32, [u8; 4]> = node
        .lb
        .maps
        .backends()
        .unwrap()
        .into_iter()
        .map(|(id, b)| (id, b.addr.to_ne_bytes()))
        .collect();
    let chunks: BTreeMap<u16, Vec<u16>> = node
        .lb
        .maps
        .maglev()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.id == header.id && k.rev == header.rev)
        .map(|(k, c)| (k.chunk, c.slots.to_vec()))
        .collect();
    let mut seen = BTreeMap::<[u8; 4], usize>::new();
    for sport in 20000..20300u16 {
        let p = Pkt::tcp("10.0.0.9", sport, "10.0.0.1", 30080, SYN);
        let got = node.ingress(&p);
        assert_eq!(got.verdict, TC_ACT_REDIRECT);
        verify_checksums(&got.packet).unwrap();
        let dst: [u8; 4] = got.packet[30..34].try_into().unwrap();
        let h = flow_hash(
            u32::from_ne_bytes([10, 0, 0, 9]),
            u32::from_ne_bytes([10, 0, 0, 1]),
            sport.to_be(),
            30080u16.to_be(),
            6,
        );
        let i = (h % header.maglev_m) as usize;
        let slot = chunks[&((i / MAGLEV_CHUNK) as u16)][i % MAGLEV_CHUNK];
        assert_eq!(
            dst, backend_ip[&slot_backend[&slot]],
            "flow from port {sport}"
        );
        *seen.entry(dst).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|&n| n >= 60), "{seen:?}");
}

#[test]
fn client_ip_affinity_holds_across_flows() {
    let mut node = Node::new("tc-affinity");
    let backends = [
        "10.244.2.5:8080/TCP",
        "10.244.2.6:8080/TCP",
        "10.244.2.7:8080/TCP",
    ];
    node.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP | SVC_F_AFFINITY, 60, &backends),
        )],
    );
    let mut dsts = std::collections::BTreeSet::new();
    for sport in 30000..30015u16 {
        let got = node.ingress(&Pkt::tcp("10.0.0.9", sport, "10.0.0.1", 30080, SYN));
        assert_eq!(got.verdict, TC_ACT_REDIRECT);
        dsts.insert(got.packet[30..34].to_vec());
    }
    assert_eq!(dsts.len(), 1, "15 flows of one client, one backend");
    assert_eq!(node.lb.maps.affinity().unwrap().len(), 1);
}

/// Path MTU discovery through a NodePort: a router between this node and
/// a remote backend answers the DNAT+SNAT'ed packet with "fragmentation
/// needed"; the client gets it about the packet it sent (its own address
/// and port to the NodePort), from the router, with every checksum right.
#[test]
fn icmp_errors_about_a_dnat_snat_flow_go_back_to_the_client() {
    let mut node = Node::new("tc-icmp");
    node.lb.set(
        "test/web",
        vec![(
            addr("10.0.0.1:30080/TCP"),
            spec(NP, 0, &["10.244.2.5:8080/TCP"]),
        )],
    );
    let syn = Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN);
    let sp = snat_port(&syn);
    let got = node.ingress(&syn);
    assert_eq!(got.verdict, TC_ACT_REDIRECT);
    let sent = got.packet.clone();
    // What the client sent, as it left this node (TTL 63), quoted.
    let client_view = Pkt {
        ttl: 63,
        ..syn.clone()
    }
    .bytes();
    let mtu = [0, 0, 0x05, 0x00];

    // From a router on the way (the peer node here).
    let frag = icmp_error(
        (NODE_MAC, PEER_MAC),
        "10.0.0.2",
        "10.0.0.1",
        64,
        3,
        4,
        mtu,
        &sent[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &frag);
    let want = icmp_error(
        (CLIENT_MAC, NODE_MAC),
        "10.0.0.2",
        "10.0.0.9",
        63,
        3,
        4,
        mtu,
        &client_view[14..42],
    );
    assert_packet(&got, TC_ACT_REDIRECT, &want);

    // From the backend itself: it seems to come from the frontend, as the
    // flow's replies do.
    let unreach = icmp_error(
        (NODE_MAC, PEER_MAC),
        "10.244.2.5",
        "10.0.0.1",
        64,
        3,
        3,
        [0; 4],
        &sent[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &unreach);
    let want = icmp_error(
        (CLIENT_MAC, NODE_MAC),
        "10.0.0.1",
        "10.0.0.9",
        63,
        3,
        3,
        [0; 4],
        &client_view[14..42],
    );
    assert_packet(&got, TC_ACT_REDIRECT, &want);

    // About a flow the node does not know: passes untouched.
    let other = Pkt {
        sport: sp.wrapping_add(1),
        ..Pkt::tcp("10.0.0.1", 0, "10.244.2.5", 8080, SYN)
    }
    .bytes();
    let stray = icmp_error(
        (NODE_MAC, PEER_MAC),
        "10.0.0.2",
        "10.0.0.1",
        64,
        3,
        4,
        mtu,
        &other[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &stray);
    assert_packet(&got, TC_ACT_OK, &stray);
}

/// The other leg: a router on the client's side answers the frontend's
/// reply with "fragmentation needed"; the backend gets it about the reply
/// it sent (its own address and port to where it sent it: the SNAT port
/// for a remote backend, the client for a local one), with every checksum
/// right, so its path MTU drops too. From the client itself, it seems to
/// come from where the backend's replies went.
#[test]
fn icmp_errors_about_a_reply_to_the_client_go_to_the_backend() {
    let mut node = Node::new("tc-icmp-rev");
    node.lb.set(
        "test/web",
        vec![
            (
                addr("10.0.0.1:30080/TCP"),
                spec(NP, 0, &["10.244.2.5:8080/TCP"]),
            ),
            (
                addr("10.0.0.1:30081/TCP"),
                spec(NP, 0, &["10.244.1.5:8080/TCP*"]),
            ),
        ],
    );
    let mtu = [0, 0, 0x05, 0x00];

    // A remote backend (DNAT + SNAT).
    let syn = Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN);
    let sp = snat_port(&syn);
    assert_eq!(node.ingress(&syn).verdict, TC_ACT_REDIRECT);
    let reply = Pkt {
        src_mac: PEER_MAC,
        dst_mac: NODE_MAC,
        ..Pkt::tcp("10.244.2.5", 8080, "10.0.0.1", sp, SYN | ACK)
    };
    let got = node.ingress(&reply);
    assert_eq!(got.verdict, TC_ACT_REDIRECT);
    let to_client = got.packet.clone();
    // The reply as the backend sent it, as it left this node (TTL 63).
    let backend_view = Pkt { ttl: 63, ..reply }.bytes();
    let frag = icmp_error(
        (NODE_MAC, CLIENT_MAC),
        "10.0.0.3",
        "10.0.0.1",
        64,
        3,
        4,
        mtu,
        &to_client[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &frag);
    let want = icmp_error(
        (PEER_MAC, NODE_MAC),
        "10.0.0.3",
        "10.244.2.5",
        63,
        3,
        4,
        mtu,
        &backend_view[14..42],
    );
    assert_packet(&got, TC_ACT_REDIRECT, &want);
    // From the client itself: it seems to come from the SNAT address.
    let unreach = icmp_error(
        (NODE_MAC, CLIENT_MAC),
        "10.0.0.9",
        "10.0.0.1",
        64,
        3,
        3,
        [0; 4],
        &to_client[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &unreach);
    let want = icmp_error(
        (PEER_MAC, NODE_MAC),
        "10.0.0.1",
        "10.244.2.5",
        63,
        3,
        3,
        [0; 4],
        &backend_view[14..42],
    );
    assert_packet(&got, TC_ACT_REDIRECT, &want);

    // A local backend (DNAT only; egress put the NodePort back on its
    // reply): the error reaches the pod about the reply it sent to the
    // client.
    let syn = Pkt::tcp("10.0.0.9", 40001, "10.0.0.1", 30081, SYN);
    assert_eq!(node.ingress(&syn).verdict, TC_ACT_REDIRECT);
    let reply = Pkt {
        src_mac: NODE_MAC,
        dst_mac: CLIENT_MAC,
        ttl: 63,
        ..Pkt::tcp("10.244.1.5", 8080, "10.0.0.9", 40001, SYN | ACK)
    };
    let got = node.run(TC_EGRESS_PROG, &reply.bytes());
    assert_eq!(got.verdict, TC_ACT_OK);
    let frag = icmp_error(
        (NODE_MAC, CLIENT_MAC),
        "10.0.0.3",
        "10.0.0.1",
        64,
        3,
        4,
        mtu,
        &got.packet[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &frag);
    let want = icmp_error(
        (POD_MAC, POD0_MAC),
        "10.0.0.3",
        "10.244.1.5",
        63,
        3,
        4,
        mtu,
        &reply.bytes()[14..42],
    );
    assert_packet(&got, TC_ACT_REDIRECT, &want);

    // About a reply the node does not know: passes untouched.
    let other = Pkt::tcp("10.0.0.1", 30080, "10.0.0.9", 40999, SYN | ACK).bytes();
    let stray = icmp_error(
        (NODE_MAC, CLIENT_MAC),
        "10.0.0.3",
        "10.0.0.1",
        64,
        3,
        4,
        mtu,
        &other[14..42],
    );
    let got = node.run(TC_INGRESS_PROG, &stray);
    assert_packet(&got, TC_ACT_OK, &stray);
}
