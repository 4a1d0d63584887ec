//! The load balancer through the real binaries: keel-control and a
//! keel-agent with `--cgroup-root`, `--bpffs` and an uplink, all inside one
//! test network namespace. Services and (through pod status writes, as a
//! kubelet would make them) Endpoints go through the API; clients run in
//! the agent's cgroup root; `keelctl lb` reads the agent's socket.
//!
//! The pods "run" on a node that has no agent ("ghost"): their addresses
//! are served by `keel-testbin id-serve` on the namespace's loopback.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    process::Stdio,
    time::Duration,
};

use keel_api::{Pod, Service};
use keel_tests::{
    lb::{Spawned, dial, field, id_server},
    lb_node::LbNode,
    process::{bin, wait_for},
};

const PODS: [(&str, &str); 3] = [
    ("web-1", "10.244.1.1"),
    ("web-2", "10.244.1.2"),
    ("web-3", "10.244.1.3"),
];

fn backends_up(node: &LbNode) -> Spawned {
    for (_, ip) in PODS {
        let st = node
            .netns
            .command("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let addrs: Vec<String> = PODS.iter().map(|(_, ip)| format!("{ip}:8080")).collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    id_server(&node.netns, &addrs)
}

fn create_service(node: &LbNode, name: &str, extra: serde_json::Value) -> Service {
    let mut spec =
        serde_json::json!({"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    node.block_on(node.client.create(&svc)).unwrap()
}

/// A pod of app `app` on the ghost node with `ip`, Ready or not.
fn set_pod(node: &LbNode, name: &str, app: &str, ip: &str, ready: bool) {
    let client = &node.client;
    node.block_on(async {
        let existing = client.get::<Pod>("default", name).await;
        let pod = match existing {
            Ok(p) => p,
            Err(_) => {
                let p: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
                    "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "busybox",
                        "ports": [{"containerPort": 8080}]}]}
                }))
                .unwrap();
                client.create(&p).await.unwrap()
            }
        };
        let mut st = pod.clone();
        st.status.pod_ip = ip.into();
        st.status.phase = Some(keel_api::pod::PodPhase::Running);
        st.set_condition("Ready", if ready { "True" } else { "False" }, "", "");
        client.update_status(&st).await.unwrap();
    });
}

fn header_line<'a>(dump: &'a str, vip: &str) -> Option<&'a str> {
    dump.lines()
        .find(|l| l.starts_with(&format!("SVC {vip}:80/TCP slot=0 ")))
}

fn servers(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| field(l, "server").unwrap_or(l).to_string())
        .collect()
}

#[test]
fn services_and_endpoints_flow_into_the_datapath_and_survive_an_agent_restart() {
    let mut node = LbNode::start("lb-agent");
    let _servers = backends_up(&node);
    let svc = create_service(&node, "web", serde_json::json!({}));
    let vip = svc.spec.cluster_ip.clone();
    assert!(!vip.is_empty(), "a cluster IP was allocated");
    for (name, ip) in PODS {
        set_pod(&node, name, "web", ip, true);
    }
    let dump = node.wait_dump("three ready backends", |l| {
        l.starts_with(&format!("SVC {vip}:80/TCP slot=0 ")) && l.contains(" count=3 ")
    });
    assert!(
        header_line(&dump, &vip).unwrap().ends_with("(default/web)"),
        "{dump}"
    );
    let lines = dial(&node.netns, &node.cgroup, "tcp", &format!("{vip}:80"), 30);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "peer") == Some(&format!("{vip}:80")[..])),
        "{lines:?}"
    );
    assert_eq!(servers(&lines).len(), 3, "{lines:?}");

    // keelctl reads the same through the socket.
    let out = std::process::Command::new(bin("keelctl"))
        .args(["lb", "dump", "--agent-socket"])
        .arg(node.socket())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        header_line(&text, &vip).is_some_and(|l| l.contains(" count=3 ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("DROPS sock_no_backend=0 ")),
        "{text}"
    );

    // A backend turns unready: no new connections reach it.
    set_pod(&node, "web-3", "web", "10.244.1.3", false);
    node.wait_dump("two ready backends", |l| {
        l.starts_with(&format!("SVC {vip}:80/TCP slot=0 ")) && l.contains(" count=2 ")
    });
    let lines = dial(&node.netns, &node.cgroup, "tcp", &format!("{vip}:80"), 30);
    assert_eq!(
        servers(&lines),
        ["10.244.1.1:8080", "10.244.1.2:8080"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );

    // A long-lived connection, then the agent is killed.
    let bin_tb = bin("keel-testbin");
    let bin_tb = bin_tb.to_str().unwrap();
    let mut hold = node
        .netns
        .command(bin_tb)
        .args(["join-cgroup", node.cgroup.path().to_str().unwrap(), "--"])
        .args([bin_tb, "lb-hold", &format!("{vip}:80")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hold_in = hold.stdin.take().unwrap();
    let mut hold_out = BufReader::new(hold.stdout.take().unwrap());
    let _hold = Spawned { child: hold };
    let mut line = String::new();
    hold_out.read_line(&mut line).unwrap();
    assert!(line.starts_with("server=10.244.1."), "{line}");
    let before = node.agent_get("/lb/dump").unwrap();
    let services_before: Vec<&str> = before.lines().filter(|l| l.starts_with("SVC ")).collect();
    node.agent.kill();

    // With no agent running the pinned programs keep translating.
    let lines = dial(&node.netns, &node.cgroup, "tcp", &format!("{vip}:80"), 5);
    assert!(
        lines
            .iter()
            .all(|l| field(l, "peer") == Some(&format!("{vip}:80")[..])),
        "{lines:?}"
    );

    node.agent.start_again();
    node.wait_programmed();
    let status = node.status().unwrap();
    assert_eq!(status["lastSync"]["full"], true, "{status}");
    assert_eq!(
        status["lastSync"]["ops"], 0,
        "adoption rewrote something: {status}"
    );
    let after = node.agent_get("/lb/dump").unwrap();
    let services_after: Vec<&str> = after.lines().filter(|l| l.starts_with("SVC ")).collect();
    assert_eq!(
        services_before, services_after,
        "the maps changed across the restart"
    );
    writeln!(hold_in, "still-alive").unwrap();
    hold_in.flush().unwrap();
    let mut echo = String::new();
    hold_out.read_line(&mut echo).unwrap();
    assert_eq!(echo.trim(), "echo=still-alive");

    // The Service goes away: its address is no longer translated.
    node.block_on(node.client.delete::<Service>("default", "web"))
        .unwrap();
    wait_for("the frontend to go", Duration::from_secs(30), || {
        let d = node.agent_get("/lb/dump")?;
        header_line(&d, &vip).is_none().then_some(())
    });
    assert_eq!(
        dial(&node.netns, &node.cgroup, "tcp", &format!("{vip}:80"), 1),
        vec!["error=NetworkUnreachable"]
    );
}

#[test]
fn a_service_without_ready_endpoints_refuses_and_the_drop_is_counted() {
    let node = LbNode::start("lb-agent-refuse");
    let svc = create_service(&node, "empty", serde_json::json!({}));
    let vip = svc.spec.cluster_ip.clone();
    node.wait_dump("the empty service", |l| {
        l.starts_with(&format!("SVC {vip}:80/TCP slot=0 ")) && l.contains(" count=0 ")
    });
    assert_eq!(
        dial(&node.netns, &node.cgroup, "tcp", &format!("{vip}:80"), 2),
        vec!["error=ConnectionRefused", "error=ConnectionRefused"]
    );
    let out = std::process::Command::new(bin("keelctl"))
        .args(["lb", "drops", "--agent-socket"])
        .arg(node.socket())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("DROPS sock_no_backend=2 ")),
        "{text}"
    );
}
