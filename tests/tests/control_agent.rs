//! keel-agent with keel-control, both real processes: registration and pod
//! CIDR assignment, heartbeats, NotReady and eviction after missed
//! heartbeats (with the Deployment replacing pods elsewhere), and the
//! agent's disk cache carrying it through a control-service outage.

use std::time::Duration;

use keel_api::{
    Deployment, Node, Pod, Service,
    client::{Client, ListParams},
};
use keel_tests::process::{AgentProcess, ControlProcess, wait_until};

async fn node(c: &Client, name: &str) -> Option<Node> {
    c.get::<Node>("", name).await.ok()
}

fn ready_status(n: &Node) -> Option<String> {
    n.condition("Ready").map(|c| c.status.clone())
}

#[tokio::test]
async fn agents_register_get_distinct_pod_cidrs_and_heartbeat() {
    let control = ControlProcess::start(&[
        "--node-monitor-grace",
        "3s",
        "--node-monitor-period",
        "200ms",
    ]);
    let c = control.client();
    let a = AgentProcess::start(
        &control,
        "node-a",
        "192.0.2.10",
        &["--heartbeat-interval", "500ms"],
    );
    let b = AgentProcess::start(
        &control,
        "node-b",
        "192.0.2.11",
        &["--heartbeat-interval", "500ms"],
    );
    let na = wait_until("node-a Ready", Duration::from_secs(15), || async {
        node(&c, "node-a")
            .await
            .filter(|n| ready_status(n).as_deref() == Some("True"))
    })
    .await;
    let nb = wait_until("node-b Ready", Duration::from_secs(15), || async {
        node(&c, "node-b")
            .await
            .filter(|n| ready_status(n).as_deref() == Some("True"))
    })
    .await;
    assert_ne!(na.spec.pod_cidr, nb.spec.pod_cidr);
    assert!(
        na.spec.pod_cidr.starts_with("10.244."),
        "{}",
        na.spec.pod_cidr
    );
    assert_eq!(na.internal_ip(), Some("192.0.2.10"));
    assert!(na.status.capacity["cpu"].milli() >= 1000);
    assert!(na.status.capacity["memory"].value() > 0);
    // The agent learns its CIDR.
    let state = wait_until(
        "node-a's agent to know its CIDR",
        Duration::from_secs(10),
        || async {
            a.state().filter(|s| {
                s["podCIDR"].as_str() == Some(na.spec.pod_cidr.as_str())
                    && s["synced"] == true
                    && s["nodes"].as_array().map(Vec::len) == Some(2)
            })
        },
    )
    .await;
    let mut names: Vec<&str> = state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["node-a", "node-b"], "{state}");
    // Heartbeats keep it Ready well past the grace period.
    let hb1 = na.condition("Ready").unwrap().last_heartbeat_time.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = node(&c, "node-a").await.unwrap();
    assert_eq!(ready_status(&later).as_deref(), Some("True"));
    assert!(
        later
            .condition("Ready")
            .unwrap()
            .last_heartbeat_time
            .unwrap()
            > hb1
    );
    // A restarted agent keeps its node's CIDR.
    drop(a);
    let _a = AgentProcess::start(
        &control,
        "node-a",
        "192.0.2.10",
        &["--heartbeat-interval", "500ms"],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        node(&c, "node-a").await.unwrap().spec.pod_cidr,
        na.spec.pod_cidr
    );
    drop(b);
}

#[tokio::test]
async fn missed_heartbeats_make_a_node_not_ready_and_its_pods_move() {
    let control = ControlProcess::start(&[
        "--node-monitor-grace",
        "2s",
        "--node-monitor-period",
        "200ms",
        "--pod-eviction-timeout",
        "3s",
    ]);
    let c = control.client();
    let mut a = AgentProcess::start(
        &control,
        "node-a",
        "192.0.2.10",
        &["--heartbeat-interval", "300ms"],
    );
    let _b = AgentProcess::start(
        &control,
        "node-b",
        "192.0.2.11",
        &["--heartbeat-interval", "300ms"],
    );
    for n in ["node-a", "node-b"] {
        wait_until("nodes Ready", Duration::from_secs(15), || async {
            node(&c, n)
                .await
                .filter(|n| ready_status(n).as_deref() == Some("True"))
        })
        .await;
    }
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    c.create(&d).await.unwrap();
    // Fewest pods first: one replica per node.
    let pods = wait_until(
        "two pods scheduled on two nodes",
        Duration::from_secs(15),
        || async {
            let pods = c
                .list::<Pod>("default", &ListParams::labels("app=web"))
                .await
                .ok()?
                .items;
            let mut nodes: Vec<String> = pods.iter().map(|p| p.spec.node_name.clone()).collect();
            nodes.sort();
            (nodes == ["node-a", "node-b"]).then_some(pods)
        },
    )
    .await;
    let on_a = pods
        .iter()
        .find(|p| p.spec.node_name == "node-a")
        .unwrap()
        .metadata
        .name
        .clone();

    a.kill();
    wait_until("node-a Ready=Unknown", Duration::from_secs(10), || async {
        node(&c, "node-a")
            .await
            .filter(|n| ready_status(n).as_deref() == Some("Unknown"))
    })
    .await;
    // Its pod is marked not ready (so it would leave every Endpoints)...
    // (the node's status and its pods' are separate writes of the node
    // lifecycle controller: the pod's may land a moment after the node's).
    wait_until(
        "node-a's pod Ready=False NodeLost",
        Duration::from_secs(10),
        || async {
            let lost: Pod = c.get("default", &on_a).await.ok()?;
            lost.condition("Ready")
                .is_some_and(|c| c.status == "False" && c.reason == "NodeLost")
                .then_some(())
        },
    )
    .await;
    // ...then evicted, and the Deployment's replacement lands on node-b.
    wait_until(
        "both replicas on node-b",
        Duration::from_secs(20),
        || async {
            let pods = c
                .list::<Pod>("default", &ListParams::labels("app=web"))
                .await
                .ok()?
                .items;
            (pods.len() == 2
                && pods.iter().all(|p| p.spec.node_name == "node-b")
                && pods.iter().all(|p| p.metadata.name != on_a))
            .then_some(())
        },
    )
    .await;
    // The agent comes back: the node is Ready again.
    a.start_again();
    wait_until("node-a Ready again", Duration::from_secs(15), || async {
        node(&c, "node-a")
            .await
            .filter(|n| ready_status(n).as_deref() == Some("True"))
    })
    .await;
}

#[tokio::test]
async fn agent_keeps_its_view_through_a_control_outage_and_resumes_watching() {
    let mut control = ControlProcess::start(&[]);
    let c = control.client();
    let mut agent = AgentProcess::start(
        &control,
        "node-a",
        "192.0.2.10",
        &["--heartbeat-interval", "500ms"],
    );
    let svc = |name: &str| -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}
        }))
        .unwrap()
    };
    c.create(&svc("one")).await.unwrap();
    c.create(&svc("two")).await.unwrap();
    let has = |state: &serde_json::Value, key: &str| {
        state["services"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == key))
    };
    // Its pod CIDR too: the restarted agent is checked for it below, and
    // the Node (with the CIDR the controller gives it) can arrive after
    // the Services.
    wait_until(
        "the agent to see both services and its pod CIDR",
        Duration::from_secs(10),
        || async {
            agent.state().filter(|s| {
                has(s, "default/one") && has(s, "default/two") && s["podCIDR"].is_string()
            })
        },
    )
    .await;

    // What the agent sees reaches its disk cache within a tenth of a
    // second (more after a slow save: agent/src/sync/persist.rs); give it
    // that before stopping it.
    std::thread::sleep(Duration::from_secs(1));
    // keel-control goes away; the agent restarts meanwhile and still knows everything.
    control.stop();
    agent.stop();
    agent.start_again();
    let state = wait_until(
        "the restarted agent to load its cache",
        Duration::from_secs(10),
        || async { agent.state().filter(|s| s["synced"] == true) },
    )
    .await;
    assert!(
        has(&state, "default/one") && has(&state, "default/two"),
        "{state}"
    );
    assert!(
        state["podCIDR"]
            .as_str()
            .is_some_and(|c| c.starts_with("10.244.")),
        "{state}"
    );

    // keel-control returns; the agent resumes its watch and sees new changes.
    control.start_again();
    let c = control.client();
    c.create(&svc("three")).await.unwrap();
    c.delete::<Service>("default", "one").await.unwrap();
    wait_until(
        "the agent to resume and catch up",
        Duration::from_secs(30),
        || async {
            agent
                .state()
                .filter(|s| has(s, "default/three") && !has(s, "default/one"))
        },
    )
    .await;
    assert!(
        agent.log().contains("loaded from the agent cache"),
        "{}",
        agent.log()
    );
}
