//! keel-control's exec VPC provider end to end, with keel-control in a
//! test namespace and Nodes posted through the API as agents would: a
//! provider that fails as a whole shows on the Node's `VPCRouteUnavailable`
//! condition (and stays there through the agent's own status writes); the
//! lab's router program, with a route quota, programs the namespace's
//! table, refuses the route beyond the quota on that node only, and gives
//! it the room a withdrawn node frees.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use keel_api::{
    Node,
    client::{Client, ClientConfig},
    node::NodeAddress,
};
use keel_sys::ns::NetNs;
use keel_tests::{
    TestNetns,
    lb_node::NsProcess,
    process::{bin, wait_for, wait_until},
    require_root,
};

const CONDITION: &str = "VPCRouteUnavailable";

/// keel-control on the namespace's loopback with `--vpc-provider`, and a
/// client that connects from inside the namespace.
fn control(netns: &TestNetns, dir: &Path, provider: &str) -> (NsProcess, Client) {
    let data = dir.join("control");
    let p = NsProcess::start(
        netns,
        bin("keel-control"),
        vec![
            "--listen".into(),
            "127.0.0.1:6443".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--vpc-provider".into(),
            provider.into(),
        ],
        dir.join("control.log"),
    );
    wait_for("keel-control's token", Duration::from_secs(20), || {
        data.join("client.json").exists().then_some(())
    });
    let config = ClientConfig::load(&data.join("client.json")).expect("client config");
    let client = Client::with_connector(
        &config,
        keel_lab::connect::in_netns(&NetNs::named_path(netns.name())),
    )
    .expect("client");
    (p, client)
}

/// Registers a Node and posts its InternalIP as its agent would (the whole
/// status, unconditionally, with only the agent's own conditions); its pod
/// CIDR.
async fn register(c: &Client, name: &str, ip: &str) -> String {
    let n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    let n = c.create(&n).await.expect("create node");
    agent_status(c, name, ip).await;
    n.spec.pod_cidr
}

async fn agent_status(c: &Client, name: &str, ip: &str) {
    let mut n: Node = c.get("", name).await.expect("get node");
    n.metadata.resource_version.clear();
    n.status.addresses = vec![NodeAddress {
        type_: "InternalIP".into(),
        address: ip.into(),
    }];
    n.status.conditions.clear();
    n.set_condition("Ready", "True", "KeelAgentReady", "posting", None);
    c.update_status(&n).await.expect("node status");
}

/// The node's condition (status, reason, message) once `want` holds.
async fn condition(
    c: &Client,
    name: &str,
    want: impl Fn(&str, &str) -> bool,
) -> (String, String, String) {
    wait_until(
        &format!("{name}'s {CONDITION} condition"),
        Duration::from_secs(30),
        || async {
            let n: Node = c.get("", name).await.ok()?;
            let cond = n.condition(CONDITION)?;
            want(&cond.status, &cond.reason).then(|| {
                (
                    cond.status.clone(),
                    cond.reason.clone(),
                    cond.message.clone(),
                )
            })
        },
    )
    .await
}

fn executable(path: &Path, body: &str) {
    std::fs::write(path, body).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn a_failing_provider_shows_on_the_node_and_survives_the_agents_status_writes() {
    require_root();
    let netns = TestNetns::new("vpc-fail").expect("netns");
    let dir = tempfile::Builder::new()
        .prefix("keel-t-vpc-fail-")
        .tempdir()
        .expect("temp dir");
    let script = dir.path().join("vpc-provider");
    executable(
        &script,
        "#!/bin/sh\ncat >/dev/null\necho 'RouteLimitExceeded: route table rtb-test holds 50 of 50 routes' >&2\nexit 3\n",
    );
    let (control, c) = control(&netns, dir.path(), &format!("exec:{}", script.display()));

    let cidr = register(&c, "n1", "10.0.0.11").await;
    let (_, reason, message) = condition(&c, "n1", |s, _| s == "True").await;
    assert_eq!(reason, "VPCProviderFailed");
    assert!(
        message.contains(&format!("route {cidr} via 10.0.0.11"))
            && message.contains("exit status: 3")
            && message.contains("RouteLimitExceeded: route table rtb-test holds 50 of 50 routes"),
        "{message}"
    );

    // The agent's next heartbeat omits the condition; keel-control keeps it.
    agent_status(&c, "n1", "10.0.0.11").await;
    let n: Node = c.get("", "n1").await.unwrap();
    assert!(n.is_ready());
    let cond = n
        .condition(CONDITION)
        .expect("kept through the agent's write");
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "VPCProviderFailed")
    );
    drop(control);
}

#[tokio::test]
async fn the_lab_router_program_programs_the_table_within_its_quota() {
    require_root();
    let netns = TestNetns::new("vpc-lab").expect("netns");
    // The "VPC": this namespace's own table, with the nodes' addresses on link.
    netns.ip("link add up0 type veth peer name up0p");
    netns.ip("addr add 10.0.0.1/24 dev up0");
    netns.ip("link set up0p up");
    netns.ip("link set up0 up");
    let dir = tempfile::Builder::new()
        .prefix("keel-t-vpc-lab-")
        .tempdir()
        .expect("temp dir");
    let provider = format!(
        "exec:{} lab vpc-router --netns {} --max-routes 1",
        bin("keelctl").display(),
        netns.name()
    );
    let (control, c) = control(&netns, dir.path(), &provider);
    let routes = || {
        let out = netns
            .command("ip")
            .args(["route", "show", "proto", "77"])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let cidr1 = register(&c, "n1", "10.0.0.11").await;
    let (_, reason, message) = condition(&c, "n1", |s, _| s == "False").await;
    assert_eq!(reason, "RouteCreated");
    assert!(
        message.contains(&format!("route {cidr1} via 10.0.0.11")),
        "{message}"
    );
    let cidr2 = register(&c, "n2", "10.0.0.12").await;
    let (_, reason, message) = condition(&c, "n2", |s, _| s == "True").await;
    assert_eq!(reason, "RouteLimitExceeded");
    assert!(message.contains("holds 1 of 1 routes"), "{message}");
    let table = routes();
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(table.contains(&format!("{cidr1} via 10.0.0.11")), "{table}");
    // n1 keeps its route and its condition.
    let (status, _, _) = condition(&c, "n1", |_, _| true).await;
    assert_eq!(status, "False");

    // n1 leaves: its route is withdrawn and n2's takes the free entry.
    c.delete::<Node>("", "n1").await.expect("delete n1");
    let (_, reason, _) = condition(&c, "n2", |s, _| s == "False").await;
    assert_eq!(reason, "RouteCreated");
    let table = routes();
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(table.contains(&format!("{cidr2} via 10.0.0.12")), "{table}");
    drop(control);
}
