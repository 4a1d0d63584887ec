//! Service load balancing end to end in the lab: two nodes (VXLAN), pods
//! on both, the load balancer on in every agent (`--cgroup-root` = the
//! node's cgroup subtree, pins in a private bpffs), clients in pods, on a
//! node itself and in the external namespace; a pod's hostPort (TCP, UDP)
//! reached on its node's IP from outside, until the pod is deleted.
//!
//! The lab starts its agents without load balancing; [`enable_lb`] restarts
//! each with the LB flags (the agents' recorded command lines are
//! extended), which also exercises an agent restart under live pods.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    process::Stdio,
    time::Duration,
};

use keel_api::{Pod, Service};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on};
use keel_tests::{
    TestBpffs,
    lb::{
        Spawned, enable_lb, field, lab_agent_socket as socket, lab_pods as pods,
        serve_in_pods as serve, testbin_in as in_ns,
    },
    lb_node::agent_get,
    process::wait_for,
    require_root,
};

fn lab(tag: &str) -> LabGuard {
    require_root();
    let spec = Spec {
        name: format!("t{tag}{}", std::process::id() % 100_000),
        nodes: 2,
        mode: Mode::Vxlan,
        segments: 1,
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    LabGuard(Lab::up(&spec, &bins, &Options::default()).expect("lab up"))
}

/// `lb-dial KIND ADDR N` from `target` (a pod, a node, `ext`).
fn dial(lab: &Lab, target: &str, kind: &str, addr: &str, n: usize) -> Vec<String> {
    let (netns, cg) = lab.target(target).unwrap();
    let out = in_ns(
        &netns,
        cg.as_deref(),
        &["lb-dial", kind, addr, &n.to_string()],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "lb-dial from {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn servers(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| field(l, "server").unwrap_or(l).to_string())
        .collect()
}

fn create_service(lab: &Lab, v: serde_json::Value) -> Service {
    let svc: Service = serde_json::from_value(v).unwrap();
    block_on(lab.client().unwrap().create(&svc)).unwrap()
}

/// Waits until every node's dump shows `vip:port/proto` with `count` backends.
fn wait_count(lab: &Lab, frontend: &str, count: usize) {
    for n in &lab.topology().nodes {
        let sock = socket(lab, &n.role);
        wait_for(
            &format!("{frontend} with {count} backends on {}", n.role),
            Duration::from_secs(30),
            || {
                let d = agent_get(&sock, "/lb/dump")?;
                d.lines()
                    .any(|l| {
                        l.starts_with(&format!("SVC {frontend} slot=0 "))
                            && l.contains(&format!(" count={count} "))
                    })
                    .then_some(())
            },
        );
    }
}

#[test]
fn services_across_nodes_from_pods_nodes_and_outside() {
    let bpffs = TestBpffs::new("lblab").unwrap();
    let mut lab = lab("lb");
    enable_lb(&mut lab, &bpffs);
    let p = pods(
        &lab,
        &[
            ("web-1", "node-1", "web"),
            ("web-2", "node-2", "web"),
            ("client-1", "node-1", "client"),
            ("client-2", "node-2", "client"),
        ],
    );
    let _servers = serve(&p, &["web-1", "web-2"]);
    let web = create_service(
        &lab,
        serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "dns", "port": 53, "targetPort": 8080, "protocol": "UDP"}
            ]}
        }),
    );
    let vip = web.spec.cluster_ip.clone();
    let node_port = web.spec.ports[0].node_port.unwrap();
    wait_count(&lab, &format!("{vip}:80/TCP"), 2);
    wait_count(&lab, &format!("{vip}:53/UDP"), 2);
    let both: BTreeSet<String> = ["web-1", "web-2"]
        .iter()
        .map(|n| format!("{}:8080", p[*n].0))
        .collect();

    // ClusterIP from a pod on each node and from a node itself, TCP and UDP:
    // every connection shows the Service as its peer, and both backends
    // (one local, one remote for every client) answer. 20 random picks over
    // two backends miss one with probability 2^-19.
    // web-1 dialling its own Service reaches itself too (hairpin).
    for from in ["client-1", "client-2", "node-1", "web-1"] {
        let lines = dial(&lab, from, "tcp", &format!("{vip}:80"), 20);
        assert!(
            lines
                .iter()
                .all(|l| field(l, "peer") == Some(&format!("{vip}:80")[..])),
            "{from}: {lines:?}"
        );
        assert_eq!(servers(&lines), both, "{from}: {lines:?}");
        let lines = dial(&lab, from, "udp", &format!("{vip}:53"), 20);
        assert!(
            lines
                .iter()
                .all(|l| field(l, "from") == Some(&format!("{vip}:53")[..])),
            "{from}: {lines:?}"
        );
        assert_eq!(servers(&lines), both, "{from} (UDP): {lines:?}");
    }

    // NodePort from outside, to each node: both backends reached through
    // either node (Maglev over 20 flows).
    for n in &lab.topology().nodes {
        let lines = dial(&lab, "ext", "tcp", &format!("{}:{node_port}", n.ip), 20);
        assert!(
            lines.iter().all(|l| field(l, "server").is_some()),
            "via {}: {lines:?}",
            n.role
        );
        assert_eq!(servers(&lines), both, "via {}: {lines:?}", n.role);
    }

    // Traffic policies. internalTrafficPolicy Local: a ClusterIP
    // connection stays on the client's node. externalTrafficPolicy Local:
    // a NodePort connection goes to the receiving node's own endpoint and
    // keeps the client's address.
    let local = create_service(
        &lab,
        serde_json::json!({
            "metadata": {"name": "web-local", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                     "internalTrafficPolicy": "Local", "externalTrafficPolicy": "Local",
                     "ports": [{"port": 80, "targetPort": 8080}]}
        }),
    );
    let local_vip = local.spec.cluster_ip.clone();
    let local_port = local.spec.ports[0].node_port.unwrap();
    wait_count(&lab, &format!("{local_vip}:80/TCP"), 1);
    let only = |pod: &str| -> BTreeSet<String> { [format!("{}:8080", p[pod].0)].into() };
    for (client, server) in [("client-1", "web-1"), ("client-2", "web-2")] {
        let lines = dial(&lab, client, "tcp", &format!("{local_vip}:80"), 10);
        assert_eq!(servers(&lines), only(server), "{client}: {lines:?}");
    }
    let ext_ip = lab.topology().ext.ip;
    for (node, server) in [("node-1", "web-1"), ("node-2", "web-2")] {
        let ip = lab.topology().node(node).unwrap().ip;
        let lines = dial(&lab, "ext", "tcp", &format!("{ip}:{local_port}"), 10);
        assert_eq!(servers(&lines), only(server), "via {node}: {lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| field(l, "client").is_some_and(|c| c.starts_with(&format!("{ext_ip}:")))),
            "the backend sees the client's own address via {node}: {lines:?}"
        );
    }

    // NodePorts answer on every address of the uplink: one added to
    // node-1's is served within the agent's address poll.
    let node1 = lab.topology().node("node-1").unwrap().clone();
    let [a, b, c, _] = node1.ip.octets();
    let extra = std::net::Ipv4Addr::new(a, b, c, 111);
    let added = std::process::Command::new("ip")
        .args([
            "-n",
            &node1.netns,
            "addr",
            "add",
            &format!("{extra}/24"),
            "dev",
            "eth0",
        ])
        .status()
        .unwrap();
    assert!(added.success());
    wait_for(
        "node-1's NodePort on its second address",
        Duration::from_secs(30),
        || {
            let l = dial(&lab, "ext", "tcp", &format!("{extra}:{node_port}"), 1);
            field(&l[0], "server").map(drop)
        },
    );

    // A pod's hostPort, TCP and UDP: node-1's IP:hostPort from outside
    // reaches that pod's containerPort through the NodePort path, until
    // the pod is deleted.
    host_ports(&lab);

    // A Service without endpoints refuses at once, on the socket path and
    // on the NodePort path.
    let empty = create_service(
        &lab,
        serde_json::json!({
            "metadata": {"name": "empty", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "nobody"},
                     "ports": [{"port": 80, "targetPort": 8080}]}
        }),
    );
    wait_count(&lab, &format!("{}:80/TCP", empty.spec.cluster_ip), 0);
    assert_eq!(
        dial(
            &lab,
            "client-1",
            "tcp",
            &format!("{}:80", empty.spec.cluster_ip),
            1
        ),
        vec!["error=ConnectionRefused"]
    );
    let n1 = lab.topology().node("node-1").unwrap().ip;
    assert_eq!(
        dial(
            &lab,
            "ext",
            "tcp",
            &format!("{n1}:{}", empty.spec.ports[0].node_port.unwrap()),
            1
        ),
        vec!["error=ConnectionRefused"]
    );

    // Long-lived connections through the ClusterIP and the NodePort, then
    // node-1's agent restarts: both stay up, and the agent rewrites nothing.
    let hold = |target: &str, addr: &str| {
        let (netns, cg) = lab.target(target).unwrap();
        let mut child = in_ns(&netns, cg.as_deref(), &["lb-hold", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(field(&first, "server").is_some(), "{first}");
        (Spawned { child }, stdin, out)
    };
    let mut holds = vec![
        hold("client-1", &format!("{vip}:80")),
        hold("ext", &format!("{n1}:{node_port}")),
    ];
    let sock = socket(&lab, "node-1");
    let svc_lines = |d: String| -> Vec<String> {
        d.lines()
            .filter(|l| l.starts_with("SVC "))
            .map(str::to_string)
            .collect()
    };
    let before = svc_lines(agent_get(&sock, "/lb/dump").unwrap());
    lab.stop_agent("node-1").unwrap();
    lab.start_agent("node-1").unwrap();
    wait_for(
        "node-1's load balancer after restart",
        Duration::from_secs(60),
        || {
            let s: serde_json::Value =
                serde_json::from_str(&agent_get(&sock, "/lb/status")?).ok()?;
            (s["programmed"] == true).then_some(s)
        },
    );
    let s: serde_json::Value =
        serde_json::from_str(&agent_get(&sock, "/lb/status").unwrap()).unwrap();
    assert_eq!(s["lastSync"]["ops"], 0, "the restart rewrote maps: {s}");
    assert_eq!(svc_lines(agent_get(&sock, "/lb/dump").unwrap()), before);
    for (i, (_, stdin, out)) in holds.iter_mut().enumerate() {
        writeln!(stdin, "after-restart-{i}").unwrap();
        stdin.flush().unwrap();
        let mut echo = String::new();
        out.read_line(&mut echo).unwrap();
        assert_eq!(echo.trim(), format!("echo=after-restart-{i}"));
    }

    // A backend deleted: no new connection reaches it.
    block_on(lab.client().unwrap().delete::<Pod>("default", "web-2")).unwrap();
    wait_count(&lab, &format!("{vip}:80/TCP"), 1);
    let lines = dial(&lab, "client-2", "tcp", &format!("{vip}:80"), 20);
    assert_eq!(
        servers(&lines),
        [format!("{}:8080", p["web-1"].0)].into_iter().collect(),
        "{lines:?}"
    );
    // With its only local endpoint gone, node-2 drops the Local NodePort
    // (so that an outside balancer fails over) and refuses the Local
    // ClusterIP; node-1 still serves both.
    let n2 = lab.topology().node("node-2").unwrap().ip;
    wait_for(
        "node-2 to drop the Local NodePort",
        Duration::from_secs(30),
        || {
            let l = dial(&lab, "ext", "tcp", &format!("{n2}:{local_port}"), 1);
            l[0].starts_with("error=TimedOut").then_some(())
        },
    );
    assert_eq!(
        dial(&lab, "client-2", "tcp", &format!("{local_vip}:80"), 1),
        vec!["error=ConnectionRefused"]
    );
    let lines = dial(&lab, "ext", "tcp", &format!("{n1}:{local_port}"), 5);
    assert_eq!(servers(&lines), only("web-1"), "{lines:?}");
    drop(holds);
}

#[test]
fn client_ip_affinity_in_the_lab() {
    let bpffs = TestBpffs::new("lblab-aff").unwrap();
    let mut lab = lab("lba");
    enable_lb(&mut lab, &bpffs);
    let p = pods(
        &lab,
        &[
            ("s-1", "node-1", "sticky"),
            ("s-2", "node-2", "sticky"),
            ("s-3", "node-2", "sticky"),
            ("c", "node-1", "client"),
        ],
    );
    let _servers = serve(&p, &["s-1", "s-2", "s-3"]);
    let svc = create_service(
        &lab,
        serde_json::json!({
            "metadata": {"name": "sticky", "namespace": "default"},
            "spec": {"selector": {"app": "sticky"}, "sessionAffinity": "ClientIP",
                     "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 2}},
                     "ports": [{"port": 80, "targetPort": 8080}]}
        }),
    );
    let vip = svc.spec.cluster_ip.clone();
    wait_count(&lab, &format!("{vip}:80/TCP"), 3);
    let lines = dial(&lab, "c", "tcp", &format!("{vip}:80"), 15);
    let first = servers(&lines);
    assert_eq!(
        first.len(),
        1,
        "15 consecutive connections, one backend: {lines:?}"
    );
    let first = first.into_iter().next().unwrap();
    // After the timeout a new choice is made: it differs from the first
    // with probability 2/3 per round (12 rounds all equal: 2e-6).
    let mut moved = false;
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(2500));
        let l = dial(&lab, "c", "tcp", &format!("{vip}:80"), 1);
        if field(&l[0], "server") != Some(first.as_str()) {
            moved = true;
            break;
        }
    }
    assert!(moved, "affinity never expired");
}

/// A pod with hostPorts on node-1 answers on node-1's IP from `ext` (TCP
/// and UDP), and not once it is deleted.
fn host_ports(lab: &Lab) {
    let c = lab.client().unwrap();
    let hp: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hostport", "namespace": "default"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "none",
            "ports": [
                {"containerPort": 8080, "hostPort": 18080},
                {"containerPort": 8080, "hostPort": 18053, "protocol": "UDP"}
            ]}]}
    }))
    .unwrap();
    block_on(c.create(&hp)).unwrap();
    let hp = wait_for("the hostPort pod Ready", Duration::from_secs(60), || {
        block_on(c.get::<Pod>("default", "hostport"))
            .ok()
            .filter(|p| p.is_ready())
    });
    let ip: std::net::Ipv4Addr = hp.status.pod_ip.parse().unwrap();
    let netns = lab.pod_netns(&hp).unwrap();
    let _server = serve(
        &[("hostport".to_string(), (ip, netns))]
            .into_iter()
            .collect(),
        &["hostport"],
    );
    let n1 = lab.topology().node("node-1").unwrap().ip;
    // Programmed on node-1 only.
    let fe = format!("SVC {n1}:18080/TCP slot=0 ");
    wait_for(
        "node-1's hostPort frontend",
        Duration::from_secs(30),
        || {
            agent_get(&socket(lab, "node-1"), "/lb/dump")?
                .lines()
                .any(|l| l.starts_with(&fe) && l.contains(" count=1 "))
                .then_some(())
        },
    );
    assert!(
        !agent_get(&socket(lab, "node-2"), "/lb/dump")
            .unwrap()
            .contains(&fe)
    );
    let me: BTreeSet<String> = [format!("{ip}:8080")].into_iter().collect();
    let lines = dial(lab, "ext", "tcp", &format!("{n1}:18080"), 5);
    assert_eq!(servers(&lines), me, "{lines:?}");
    let lines = dial(lab, "ext", "udp", &format!("{n1}:18053"), 5);
    assert_eq!(servers(&lines), me, "UDP: {lines:?}");
    // Only on its own node.
    let n2 = lab.topology().node("node-2").unwrap().ip;
    assert_eq!(
        dial(lab, "ext", "tcp", &format!("{n2}:18080"), 1),
        vec!["error=ConnectionRefused"]
    );
    block_on(c.delete::<Pod>("default", "hostport")).unwrap();
    wait_for(
        "the hostPort to stop answering",
        Duration::from_secs(60),
        || {
            (dial(lab, "ext", "tcp", &format!("{n1}:18080"), 1) == ["error=ConnectionRefused"])
                .then_some(())
        },
    );
}
