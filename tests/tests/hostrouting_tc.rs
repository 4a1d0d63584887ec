//! The host-routing TC programs, packet by packet, through
//! `BPF_PROG_TEST_RUN`: maps set up through the agent's datapath, one
//! packet in, the verdict and the exact packet out (checksums computed from
//! scratch by the test, so the programs' incremental TTL update is checked
//! too), and the counter that says why.
//!
//! The runs happen in a test network namespace shaped like a node: an
//! uplink `up0` (10.0.0.1/24) with a peer node 10.0.0.2 behind which
//! 10.244.2.0/24 lives, a peer 10.0.0.3 (10.244.3.0/24) whose MAC is not
//! known yet, a narrow link `mtu0` (MTU 1000, 10.244.4.0/24 behind it), and
//! two pod veths `kv0` (10.244.1.5) and `kv1` (10.244.1.6).

use keel_agent::net::hostrouting::{
    datapath::{HostDatapath, NetDatapath},
    plan::{Endpoint, Op, Prog},
};
use keel_tests::{
    TestBpffs, TestNetns,
    packet::{Pkt, hexdiff, mac_str, verify_checksums},
    prog_run::{RunResult, run_tc},
    require_root,
};

const TC_ACT_REDIRECT: u32 = 7;
const TC_ACT_SHOT: u32 = 2;
/// TC_ACT_UNSPEC (-1): on to the next TCX program and the stack.
const NEXT: u32 = u32::MAX;

const NODE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MTU0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x40];
const MTU0_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];
const KV0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x00];
const KV1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const POD5_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 1, 5];
const POD6_MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 1, 6];

struct Node {
    netns: TestNetns,
    dp: NetDatapath,
    up0: u32,
    kv0: u32,
    // Last: unmounted once the datapath is gone.
    _bpffs: TestBpffs,
}

impl Node {
    fn new(what: &str) -> Self {
        require_root();
        let netns = TestNetns::new(what).unwrap();
        let ip = |args: &str| netns.ip(args);
        for (dev, m) in [
            ("up0", NODE_MAC),
            ("mtu0", MTU0_MAC),
            ("kv0", KV0_MAC),
            ("kv1", KV1_MAC),
        ] {
            ip(&format!(
                "link add {dev} address {} type veth peer name {dev}p",
                mac_str(m)
            ));
            ip(&format!("link set {dev} up"));
            ip(&format!("link set {dev}p up"));
        }
        ip("link set mtu0 mtu 1000");
        ip("addr add 10.0.0.1/24 dev up0");
        ip("addr add 10.0.4.1/24 dev mtu0");
        ip(&format!(
            "neigh add 10.0.0.2 lladdr {} dev up0 nud permanent",
            mac_str(PEER_MAC)
        ));
        ip(&format!(
            "neigh add 10.0.4.2 lladdr {} dev mtu0 nud permanent",
            mac_str(MTU0_PEER_MAC)
        ));
        ip("route add 10.244.2.0/24 via 10.0.0.2 dev up0");
        ip("route add 10.244.3.0/24 via 10.0.0.3 dev up0");
        ip("route add 10.244.4.0/24 via 10.0.4.2 dev mtu0");
        ip("route add 10.244.1.5/32 dev kv0");
        ip("route add 10.244.1.6/32 dev kv1");
        netns.sysctl("net.ipv4.ip_forward=1");
        let idx = |n: &str| nix::net::if_::if_nametoindex(n).unwrap();
        let (up0, kv0, kv1) = netns.run(|| (idx("up0"), idx("kv0"), idx("kv1")));
        let bpffs = TestBpffs::new(what).expect("mounting a private bpffs");
        let mut dp = NetDatapath::load(&bpffs.path().join("net")).expect("loading keel-net");
        let mut ops: Vec<Op> = [
            "10.244.1.0/24",
            "10.244.2.0/24",
            "10.244.3.0/24",
            "10.244.4.0/24",
            "10.244.9.0/24",
        ]
        .iter()
        .map(|c| Op::PutCidr(c.parse().unwrap(), 0))
        .collect();
        for (addr, ifindex, pod_mac, host_mac) in [
            ("10.244.1.5", kv0, POD5_MAC, KV0_MAC),
            ("10.244.1.6", kv1, POD6_MAC, KV1_MAC),
        ] {
            ops.push(Op::PutEndpoint(
                addr.parse().unwrap(),
                Endpoint {
                    ifindex,
                    mtu: 1500,
                    pod_mac,
                    host_mac,
                },
            ));
        }
        for op in &ops {
            dp.apply(op).unwrap();
        }
        Node {
            netns,
            dp,
            up0,
            kv0,
            _bpffs: bpffs,
        }
    }

    fn run(&self, prog: Prog, on: u32, p: &[u8]) -> RunResult {
        let fd = self.dp.program_fd(prog).unwrap();
        self.netns.run(|| run_tc(fd, p, on)).unwrap()
    }

    fn stat(&mut self, name: &str) -> u64 {
        self.dp.stats().unwrap()[name]
    }
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

/// A TCP segment from `src` to `dst` in a frame for `dst_mac`.
fn tcp(src: &str, dst: &str, dst_mac: [u8; 6]) -> Pkt {
    let mut p = Pkt::tcp(src, 40000, dst, 80, 0x18);
    p.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    p.dst_mac = dst_mac;
    p.src_mac = [0x02, 0, 0, 0, 0, 0x99];
    p
}

/// `p` after one routed hop: new MACs, TTL one less.
fn hop(p: &Pkt, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Vec<u8> {
    let mut q = p.clone();
    q.dst_mac = dst_mac;
    q.src_mac = src_mac;
    q.ttl -= 1;
    q.bytes()
}

#[test]
fn to_pod_hands_a_packet_for_a_local_pod_straight_to_its_veth() {
    let mut n = Node::new("hr-topod");
    let p = tcp("10.244.2.7", "10.244.1.5", NODE_MAC);
    let got = n.run(Prog::ToPod, n.up0, &p.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&p, POD5_MAC, KV0_MAC));
    assert_eq!(n.stat("to_pod"), 1);
    // UDP and a datagram without a checksum are no different at L3.
    let mut u = Pkt::udp("10.244.2.7", 5353, "10.244.1.6", 53, b"query");
    u.dst_mac = NODE_MAC;
    u.udp_no_csum = true;
    let got = n.run(Prog::ToPod, n.up0, &u.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&u, POD6_MAC, KV1_MAC));
    assert_eq!(n.stat("to_pod"), 2);
}

#[test]
fn to_pod_leaves_everything_else_to_the_stack_untouched() {
    let mut n = Node::new("hr-topod-else");
    let cases = [
        // For the node itself.
        tcp("10.0.0.2", "10.0.0.1", NODE_MAC),
        // For a pod this node does not have.
        tcp("10.244.2.7", "10.244.1.99", NODE_MAC),
        // For another host on the segment (a flooded frame).
        tcp("10.244.2.7", "10.244.1.5", [0x02, 0, 0, 0, 0, 0x77]),
    ];
    for p in &cases {
        let got = n.run(Prog::ToPod, n.up0, &p.bytes());
        assert_packet(&got, NEXT, &p.bytes());
    }
    // Not IPv4: an ARP request.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert_eq!(n.run(Prog::ToPod, n.up0, &arp).verdict, NEXT);
    for s in ["to_pod", "to_device", "to_neigh", "stack_fib", "stack_ttl"] {
        assert_eq!(n.stat(s), 0, "{s}");
    }
}

#[test]
fn ttl_and_mtu_limits_are_the_stacks_to_answer() {
    let mut n = Node::new("hr-limits");
    // TTL 1 would expire here: the stack sends time-exceeded.
    let mut p = tcp("10.244.2.7", "10.244.1.5", NODE_MAC);
    p.ttl = 1;
    let got = n.run(Prog::ToPod, n.up0, &p.bytes());
    assert_packet(&got, NEXT, &p.bytes());
    assert_eq!(n.stat("stack_ttl"), 1);
    // Larger than the pod's MTU (1500): the stack fragments or answers.
    let mut big = tcp("10.244.2.7", "10.244.1.5", NODE_MAC);
    big.payload = vec![7; 1500];
    let got = n.run(Prog::ToPod, n.up0, &big.bytes());
    assert_packet(&got, NEXT, &big.bytes());
    assert_eq!(n.stat("stack_mtu"), 1);
    // Larger than the egress device's MTU (mtu0: 1000) on the way out.
    let mut out = tcp("10.244.1.5", "10.244.4.7", KV0_MAC);
    out.payload = vec![7; 1100];
    let got = n.run(Prog::FromPod, n.kv0, &out.bytes());
    assert_packet(&got, NEXT, &out.bytes());
    assert_eq!(n.stat("stack_mtu"), 2);
    // The same size fits the uplink.
    let mut ok = out.clone();
    ok.dst = "10.244.2.7".parse().unwrap();
    let got = n.run(Prog::FromPod, n.kv0, &ok.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&ok, PEER_MAC, NODE_MAC));
}

#[test]
fn from_pod_routes_by_the_kernels_table() {
    let mut n = Node::new("hr-frompod");
    // To a pod on another node: out of up0 to the peer node's MAC.
    let p = tcp("10.244.1.5", "10.244.2.7", KV0_MAC);
    let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&p, PEER_MAC, NODE_MAC));
    assert_eq!(n.stat("to_device"), 1);
    // To a pod on this node: straight into its namespace.
    let p = tcp("10.244.1.5", "10.244.1.6", KV0_MAC);
    let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&p, POD6_MAC, KV1_MAC));
    assert_eq!(n.stat("to_pod"), 1);
    // The next hop's MAC is not known yet: the kernel resolves it on the
    // way out (MACs left for it to write).
    let p = tcp("10.244.1.5", "10.244.3.7", KV0_MAC);
    let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
    let mut want = p.clone();
    want.ttl -= 1;
    assert_packet(&got, TC_ACT_REDIRECT, &want.bytes());
    assert_eq!(n.stat("to_neigh"), 1);
    // A pod CIDR without a route: the stack answers (unreachable).
    let p = tcp("10.244.1.5", "10.244.9.9", KV0_MAC);
    let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
    assert_packet(&got, NEXT, &p.bytes());
    assert_eq!(n.stat("stack_fib"), 1);
}

#[test]
fn from_pod_leaves_traffic_to_anything_but_pods_to_the_stack() {
    let mut n = Node::new("hr-frompod-else");
    // The node, its peer, the outside world: the stack (and its netfilter
    // rules, masquerading…) sees those as before.
    for dst in ["10.0.0.1", "10.0.0.2", "192.0.2.1"] {
        let p = tcp("10.244.1.5", dst, KV0_MAC);
        let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
        assert_packet(&got, NEXT, &p.bytes());
    }
    assert_eq!(n.stat("to_device"), 0);
    assert_eq!(n.stat("stack_fib"), 0, "not even looked up");
}

#[test]
fn from_pod_drops_a_spoofed_source_and_counts_it() {
    let mut n = Node::new("hr-spoof");
    // Another pod's address, an address of nobody, the node's own: each
    // sent from kv0 (whose pod is 10.244.1.5), to a pod elsewhere, a pod
    // here and the outside.
    for (src, dst) in [
        ("10.244.1.6", "10.244.2.7"),
        ("10.244.1.99", "10.244.1.6"),
        ("10.0.0.1", "192.0.2.1"),
        ("192.0.2.9", "10.0.0.2"),
    ] {
        let p = tcp(src, dst, KV0_MAC);
        let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
        assert_eq!(got.verdict, TC_ACT_SHOT, "{src} → {dst}");
    }
    assert_eq!(n.stat("drop_spoofed_source"), 4);
    for s in ["to_pod", "to_device", "to_neigh", "stack_fib"] {
        assert_eq!(n.stat(s), 0, "{s}");
    }
    // The pod's own address still goes through.
    let p = tcp("10.244.1.5", "10.244.2.7", KV0_MAC);
    let got = n.run(Prog::FromPod, n.kv0, &p.bytes());
    assert_packet(&got, TC_ACT_REDIRECT, &hop(&p, PEER_MAC, NODE_MAC));
    assert_eq!(n.stat("drop_spoofed_source"), 4);
}

/// Random packets through both programs (issue 18's BPF packet-parser
/// fuzzing, as a bounded loop: libFuzzer cannot drive PROG_TEST_RUN, which
/// needs root, a loaded object and maps). Valid frames to a local pod, a
/// remote pod and the outside are mutated (truncated, header bytes
/// overwritten, random tails) from a fixed seed; every run must return a
/// TC verdict the programs use, and a redirected frame may differ from the
/// input only in its MACs, TTL and IPv4 header checksum.
#[test]
fn random_packets_get_a_valid_verdict_and_redirects_change_only_the_hop() {
    let n = Node::new("hr-fuzz");
    const TC_ACT_OK: u32 = 0;
    let bases: Vec<Vec<u8>> = [
        ("10.244.1.5", "10.244.2.7", KV0_MAC),
        ("10.244.2.7", "10.244.1.6", NODE_MAC),
        ("10.244.1.5", "192.0.2.1", KV0_MAC),
        ("10.244.1.5", "10.244.4.9", KV0_MAC),
    ]
    .iter()
    .map(|(s, d, m)| tcp(s, d, *m).bytes())
    .collect();
    // xorshift64*, seeded: a failure names the run that reproduces it.
    let mut state: u64 = 0x6b65_656c_6675_7a7a;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (mut redirected, mut ran, mut refused) = (0, 0, 0);
    for i in 0..4000u32 {
        if std::time::Instant::now() > deadline {
            break;
        }
        let mut p = bases[next() as usize % bases.len()].clone();
        for _ in 0..(next() % 4) {
            let at = 12 + next() as usize % (p.len().min(60) - 12);
            p[at] = next() as u8;
        }
        match next() % 4 {
            0 => p.truncate(14 + next() as usize % (p.len() - 14)),
            1 => p.extend((0..next() % 64).map(|_| next() as u8)),
            _ => {}
        }
        let (prog, on) = if next() % 2 == 0 {
            (Prog::FromPod, n.kv0)
        } else {
            (Prog::ToPod, n.up0)
        };
        let fd = n.dp.program_fd(prog).unwrap();
        let got = match n.netns.run(|| run_tc(fd, &p, on)) {
            Ok(got) => got,
            // The test-run harness itself refuses some frames (it parses
            // the L2/L3 header to build its skb) before any program runs.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("run {i}: {prog:?}: PROG_TEST_RUN: {e}"),
        };
        ran += 1;
        assert!(
            [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT, NEXT].contains(&got.verdict),
            "run {i}: {prog:?} returned verdict {} for {p:02x?}",
            got.verdict
        );
        if got.verdict == TC_ACT_REDIRECT {
            redirected += 1;
            assert_eq!(
                got.packet.len(),
                p.len(),
                "run {i}: redirect changed the length"
            );
            for (at, (a, b)) in p.iter().zip(&got.packet).enumerate() {
                // MACs 0..12, TTL 22, header checksum 24..26.
                let hop = at < 12 || at == 22 || at == 24 || at == 25;
                assert!(
                    hop || a == b,
                    "run {i}: {prog:?} changed byte {at} of {p:02x?}"
                );
            }
            assert_eq!(got.packet[22], p[22].wrapping_sub(1), "run {i}: TTL");
        }
    }
    eprintln!(
        "{ran} random packets run ({redirected} redirected), {refused} refused by the harness"
    );
    assert!(ran > refused, "most random frames must reach the programs");
    assert!(
        redirected > 0,
        "no random packet was redirected: the mutations never reached the forwarding path"
    );
}
