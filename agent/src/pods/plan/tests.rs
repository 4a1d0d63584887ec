use std::sync::Arc;

use super::*;

fn pod(name: &str, uid: &str) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "d", "uid": uid},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending"}
        }))
        .unwrap(),
    )
}

fn rec(name: &str, uid: &str) -> SandboxRecord {
    SandboxRecord {
        uid: uid.into(),
        namespace: "d".into(),
        name: name.into(),
        netns: format!("p-{uid}"),
        ip: Some("10.244.0.5".parse().unwrap()),
        result: serde_json::Value::Null,
        created: keel_api::Time::now(),
    }
}

fn uids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const IP: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 11);

#[test]
fn a_sandbox_only_pod_is_running_and_ready_with_its_ips() {
    let st = sandbox_status(&pod("b", "u2"), &rec("b", "u2"), IP);
    assert_eq!(
        (st.phase, st.pod_ip.as_str(), st.host_ip.as_str()),
        (Some(PodPhase::Running), "10.244.0.5", "172.30.0.11")
    );
    let mut p = (*pod("b", "u2")).clone();
    p.status = st.clone();
    assert!(p.is_ready());
    assert!(
        same_status(&st, &sandbox_status(&p, &rec("b", "u2"), IP)),
        "settled pods need no write"
    );
}

#[test]
fn a_failed_sandbox_is_pending_and_says_why() {
    let st = failed_status(&pod("a", "u1"), "CNI plugin keel ADD: boom", IP);
    assert_eq!(st.reason, SANDBOX_FAILED);
    assert_eq!(st.message, "CNI plugin keel ADD: boom");
    let mut p = (*pod("a", "u1")).clone();
    p.status = st;
    assert!(!p.is_ready());
}

#[test]
fn status_equality_ignores_timestamps_only() {
    let mut a = sandbox_status(&pod("b", "u2"), &rec("b", "u2"), IP);
    let mut b = a.clone();
    b.conditions.reverse();
    for c in &mut b.conditions {
        c.last_transition_time = None;
    }
    b.start_time = None;
    assert!(same_status(&a, &b));
    a.pod_ip = "10.244.0.6".into();
    assert!(!same_status(&a, &b));
}

#[test]
fn sandboxes_of_gone_pods_are_orphans_those_of_bound_or_busy_pods_are_not() {
    let o = orphans(
        &uids(&["u1", "new"]),
        &uids(&["u1", "new", "leaving"]),
        &[
            rec("a", "u1"),
            rec("old", "u9"),
            rec("a", "old"),
            rec("x", "leaving"),
        ],
        &[],
        &[],
        |u| format!("p-{u}"),
    );
    assert_eq!(
        o.pods.iter().map(|p| p.uid.as_str()).collect::<Vec<_>>(),
        ["old", "u9"],
        "a pod gone while the agent was away, and the old sandbox of a recreated pod"
    );
    assert!(
        o.pods
            .iter()
            .all(|p| p.record.is_some() && p.held.is_none())
    );
}

#[test]
fn pods_the_runtime_still_holds_are_merged_with_their_records() {
    let held = PodRef {
        uid: "u9".into(),
        namespace: "d".into(),
        name: "old".into(),
        netns: None,
    };
    let lone = PodRef {
        uid: "u8".into(),
        ..held.clone()
    };
    let o = orphans(
        &uids(&[]),
        &uids(&[]),
        &[rec("old", "u9")],
        &[held.clone(), lone],
        &[],
        |u| format!("p-{u}"),
    );
    assert_eq!(o.pods.len(), 2);
    assert_eq!(o.pods[1].held.as_ref(), Some(&held));
    assert!(o.pods[1].record.is_some());
    assert!(o.pods[0].record.is_none(), "u8: only the runtime has it");
}

#[test]
fn half_made_sandboxes_of_bound_pods_are_finished_not_removed() {
    let nss = vec![
        "p-u1".to_string(),
        "p-stray".to_string(),
        "p-busy".to_string(),
    ];
    let o = orphans(&uids(&["u1"]), &uids(&["busy"]), &[], &[], &nss, |u| {
        format!("p-{u}")
    });
    assert_eq!(o.netns, ["p-stray"]);
    assert!(o.pods.is_empty());
}
