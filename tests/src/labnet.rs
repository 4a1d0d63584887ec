//! Pod networking checks in the lab, shared by its tests: a lab whose
//! agents forward pod traffic with BPF host routing, pods placed on nodes,
//! every pair probed both ways, and each node's host-routing state as its
//! pins hold it.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    time::Duration,
};

use keel_agent::net::hostrouting::datapath::{Snapshot, snapshot};
use keel_api::{Pod, client::ListParams};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};

use crate::{probe, process::wait_for, require_root};

/// The label every pod made here carries.
const APP: &str = "labnet";

/// A lab named after `tag` and this process. Its agents run without the
/// load balancer, so BPF host routing is asked for, not left to auto.
pub fn lab(tag: &str, mode: Mode, nodes: usize, segments: usize) -> LabGuard {
    require_root();
    let spec = Spec {
        name: format!("t{tag}{}", std::process::id() % 100_000),
        nodes,
        mode,
        segments,
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let opts = Options {
        agent_args: vec!["--host-routing".into(), "bpf".into()],
        ..Options::default()
    };
    LabGuard(Lab::up(&spec, &bins, &opts).expect("lab up"))
}

/// Creates a sandbox-only pod bound to `node`.
pub fn create_pod(lab: &Lab, name: &str, node: &str) {
    let c = lab.client().unwrap();
    let p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": APP}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "none"}]}
    }))
    .unwrap();
    block_on(c.create(&p)).unwrap();
}

/// Waits until `want` pods made here are ready: name → (IP, netns).
pub fn ready_pods(lab: &Lab, want: usize) -> BTreeMap<String, (Ipv4Addr, String)> {
    let c = lab.client().unwrap();
    let label = format!("app={APP}");
    wait_for("pods to be ready", Duration::from_secs(30), || {
        let list = block_on(c.list::<Pod>("default", &ListParams::labels(&label))).ok()?;
        let ready: BTreeMap<String, (Ipv4Addr, String)> = list
            .items
            .iter()
            .filter(|p| p.is_ready())
            .filter_map(|p| {
                Some((
                    p.metadata.name.clone(),
                    (p.status.pod_ip.parse().ok()?, lab.pod_netns(p).ok()?),
                ))
            })
            .collect();
        (ready.len() == want).then_some(ready)
    })
}

/// Creates one pod per (name, node), waits for them, and waits until every
/// node's host routing has picked its pods and every pod CIDR up.
pub fn pods(lab: &Lab, placement: &[(&str, &str)]) -> BTreeMap<String, (Ipv4Addr, String)> {
    for (name, node) in placement {
        create_pod(lab, name, node);
    }
    let ready = ready_pods(lab, placement.len());
    wait_programmed(lab, &ready);
    ready
}

/// Every pair both ways: TCP, UDP, ICMP.
pub fn check_pairs(pods: &BTreeMap<String, (Ipv4Addr, String)>, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        for (src, dst) in [(a, b), (b, a)] {
            let (_, src_ns) = &pods[*src];
            let (ip, dst_ns) = &pods[*dst];
            probe::all(
                &probe::open(src_ns).unwrap(),
                &probe::open(dst_ns).unwrap(),
                *ip,
            )
            .unwrap_or_else(|e| panic!("{src} → {dst} ({ip}): {e:#}"));
        }
    }
}

/// A node's host-routing state, read from its pins.
pub fn hostrouting(lab: &Lab, node: &str) -> Snapshot {
    snapshot(&lab.topology().node_bpffs(node).join("net"))
        .unwrap_or_else(|e| panic!("{node}'s host routing: {e}"))
}

/// Waits until every node's host routing knows every pod CIDR and its own
/// pods (a pod is picked up a few milliseconds after it is attached; until
/// then its packets take the kernel's path).
pub fn wait_programmed(lab: &Lab, pods: &BTreeMap<String, (Ipv4Addr, String)>) {
    let nodes = lab.topology().nodes.clone();
    for n in &nodes {
        let prefix = lab.topology().pod_netns_prefix(&n.role);
        let mine = pods
            .values()
            .filter(|(_, ns)| ns.starts_with(&prefix))
            .count();
        wait_for(
            &format!(
                "{}'s host routing to know its pods and every pod CIDR",
                n.role
            ),
            Duration::from_secs(20),
            || {
                let s = hostrouting(lab, &n.role);
                let links = s
                    .links
                    .keys()
                    .filter(|l| l.starts_with("from_pod-"))
                    .count();
                (s.cidrs.len() == nodes.len() && s.endpoints.len() == mine && links == mine)
                    .then_some(())
            },
        );
    }
}

/// The node forwarded pod traffic through BPF host routing: into its pods
/// and out of its devices.
pub fn assert_fast_path(lab: &Lab, node: &str) {
    let s = hostrouting(lab, node);
    assert!(
        s.stats["to_pod"] > 0 && s.stats["to_device"] > 0,
        "{node} forwarded nothing in BPF: {:?}",
        s.stats
    );
}

/// A long-lived TCP connection from the namespace `src` to `ip:7777` in
/// `dst`: (client, server).
pub fn open_flow(src: &str, dst: &str, ip: Ipv4Addr) -> (TcpStream, TcpStream) {
    let listener = probe::open(dst)
        .unwrap()
        .run(|| TcpListener::bind("0.0.0.0:7777").unwrap())
        .unwrap();
    let client = probe::open(src)
        .unwrap()
        .run(|| TcpStream::connect((ip, 7777)).unwrap())
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    (client, server)
}

/// The flow still carries data both ways (3 s at most).
pub fn assert_flow_alive(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&buf).unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

/// The address a TCP server on the lab's outside host at `ip` sees a
/// connection from the namespace `src` come from (after an echo round trip
/// proves the replies find their way back).
pub fn egress_source(lab: &Lab, src: &str, ip: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    probe::tcp_source(
        &probe::open(src)?,
        &probe::open(&lab.topology().outside.netns)?,
        ip,
    )
}

/// The address a UDP datagram from `src` arrives from on the outside host
/// at `ip` (no reply needed: works where an un-SNATed reply would die).
pub fn egress_udp_source(lab: &Lab, src: &str, ip: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
    probe::udp_source(
        &probe::open(src)?,
        &probe::open(&lab.topology().outside.netns)?,
        ip,
    )
}

/// `nft list table ip keel-egress` in a node's namespace (None: no table).
pub fn egress_table(lab: &Lab, node: &str) -> Option<String> {
    let ns = &lab.topology().node(node).unwrap().netns;
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "table",
            "ip",
            keel_agent::net::egress::TABLE,
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Stops a node's agent (by its PID), starts it again with `flags` changed,
/// waits until it has registered and taken a first pass; returns its log
/// since the restart.
pub fn restart_agent(lab: &mut Lab, node: &str, flags: &[(&str, &str)]) -> String {
    let log = lab
        .state
        .processes
        .iter()
        .find(|p| p.role == node)
        .unwrap()
        .log
        .clone();
    let runs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("keel-agent starting")
            .count()
    };
    let before = runs();
    lab.stop_agent(node).unwrap();
    lab.start_agent_with(node, flags).unwrap();
    wait_for("the agent to restart", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let since = text.rsplit("keel-agent starting").next()?.to_string();
        (runs() > before && since.contains("node registered")).then_some(())
    });
    // Give the reconcilers a moment to act on what they found.
    std::thread::sleep(Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    text.rsplit("keel-agent starting")
        .next()
        .unwrap()
        .to_string()
}

/// A node's `/net/status` (what `keelctl net status` prints), from its
/// agent's local socket.
pub fn net_status(lab: &Lab, node: &str) -> serde_json::Value {
    let sock = crate::lb::lab_agent_socket(lab, node);
    let body = crate::lb_node::agent_get(&sock, "/net/status")
        .unwrap_or_else(|| panic!("{node}: no /net/status"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{node}: /net/status {e}: {body}"))
}
