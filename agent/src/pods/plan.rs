//! What the pod manager should do, decided from the pods bound to this node
//! and the sandboxes it has (pure, unit-tested).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::Ipv4Addr,
    sync::Arc,
};

use keel_api::{
    Pod,
    pod::{PodPhase, PodStatus},
};

use super::sandbox::SandboxRecord;

/// Reason on pods of a node without a container runtime: the pod is its
/// network sandbox (a namespace attached by CNI) and nothing else.
pub const SANDBOX_ONLY: &str = "SandboxOnly";
pub const SANDBOX_FAILED: &str = "SandboxCreationFailed";

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods that need a sandbox.
    pub create: Vec<Arc<Pod>>,
    /// Sandboxes whose pod is gone (or was replaced by one with a new uid).
    pub delete: Vec<SandboxRecord>,
    /// Namespaces with our prefix that no record or pod explains (left by a
    /// crash half-way through a create).
    pub orphans: Vec<String>,
    /// Pods whose reported status should change.
    pub status: Vec<Pod>,
}

/// The status a sandbox-only pod should report.
pub fn sandbox_status(pod: &Pod, rec: &SandboxRecord, node_ip: Ipv4Addr) -> PodStatus {
    let mut p = pod.clone();
    p.status.phase = Some(PodPhase::Running);
    p.status.pod_ip = rec.ip.map(|ip| ip.to_string()).unwrap_or_default();
    p.status.host_ip = node_ip.to_string();
    p.status.start_time = Some(p.status.start_time.unwrap_or(rec.created));
    p.status.reason = String::new();
    p.status.message =
        "keel-agent runs no container runtime on this node: the pod is its network sandbox".into();
    for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        p.set_condition(
            c,
            "True",
            if c == "PodScheduled" {
                ""
            } else {
                SANDBOX_ONLY
            },
            "",
        );
    }
    p.status
}

/// The status of a pod whose sandbox could not be made.
pub fn failed_status(pod: &Pod, why: &str, node_ip: Ipv4Addr) -> PodStatus {
    let mut p = pod.clone();
    p.status.phase = Some(PodPhase::Pending);
    p.status.host_ip = node_ip.to_string();
    p.status.reason = SANDBOX_FAILED.into();
    p.status.message = why.to_string();
    p.set_condition("Ready", "False", SANDBOX_FAILED, why);
    p.set_condition("ContainersReady", "False", SANDBOX_FAILED, why);
    p.status
}

/// Equal but for condition timestamps (which a rewrite must not churn).
fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
    let strip = |s: &PodStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s.conditions.sort_by(|x, y| x.type_.cmp(&y.type_));
        s
    };
    strip(a) == strip(b)
}

/// Decides creates, deletes and status writes. `failures` holds the last
/// error of pods whose sandbox could not be made.
pub fn plan(
    pods: &BTreeMap<String, Arc<Pod>>,
    records: &[SandboxRecord],
    namespaces: &[String],
    netns_name: impl Fn(&str) -> String,
    failures: &HashMap<String, String>,
    node_ip: Ipv4Addr,
) -> Plan {
    let mut plan = Plan::default();
    let desired: BTreeMap<&str, &Arc<Pod>> = pods
        .values()
        .filter(|p| p.is_active() && !p.metadata.uid.is_empty())
        .map(|p| (p.metadata.uid.as_str(), p))
        .collect();
    let recorded: BTreeMap<&str, &SandboxRecord> =
        records.iter().map(|r| (r.uid.as_str(), r)).collect();
    for (uid, pod) in &desired {
        match recorded.get(uid) {
            Some(rec) => {
                let want = sandbox_status(pod, rec, node_ip);
                if !same_status(&want, &pod.status) {
                    let mut p = (***pod).clone();
                    p.status = want;
                    plan.status.push(p);
                }
            }
            None => {
                plan.create.push((*pod).clone());
                if let Some(why) = failures.get(*uid) {
                    let want = failed_status(pod, why, node_ip);
                    if !same_status(&want, &pod.status) {
                        let mut p = (***pod).clone();
                        p.status = want;
                        plan.status.push(p);
                    }
                }
            }
        }
    }
    for rec in records {
        if !desired.contains_key(rec.uid.as_str()) {
            plan.delete.push(rec.clone());
        }
    }
    let explained: BTreeSet<String> = records
        .iter()
        .map(|r| r.netns.clone())
        .chain(desired.keys().map(|uid| netns_name(uid)))
        .collect();
    plan.orphans = namespaces
        .iter()
        .filter(|n| !explained.contains(*n))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
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

    fn pods(list: &[Arc<Pod>]) -> BTreeMap<String, Arc<Pod>> {
        list.iter()
            .map(|p| (format!("d/{}", p.metadata.name), p.clone()))
            .collect()
    }

    const IP: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 11);

    #[test]
    fn creates_missing_deletes_gone_and_reports_status() {
        let p = plan(
            &pods(&[pod("a", "u1"), pod("b", "u2")]),
            &[rec("b", "u2"), rec("old", "u9")],
            &[],
            |u| format!("p-{u}"),
            &HashMap::new(),
            IP,
        );
        assert_eq!(
            p.create
                .iter()
                .map(|p| p.metadata.uid.as_str())
                .collect::<Vec<_>>(),
            ["u1"]
        );
        assert_eq!(
            p.delete.iter().map(|r| r.uid.as_str()).collect::<Vec<_>>(),
            ["u9"]
        );
        assert_eq!(p.status.len(), 1);
        let st = &p.status[0].status;
        assert_eq!(
            (st.phase, st.pod_ip.as_str(), st.host_ip.as_str()),
            (Some(PodPhase::Running), "10.244.0.5", "172.30.0.11")
        );
        assert!(p.status[0].is_ready());
    }

    #[test]
    fn settled_pods_need_nothing() {
        let mut b = (*pod("b", "u2")).clone();
        let r = rec("b", "u2");
        b.status = sandbox_status(&b, &r, IP);
        let p = plan(
            &pods(&[Arc::new(b)]),
            &[r],
            &["p-u2".into()],
            |u| format!("p-{u}"),
            &HashMap::new(),
            IP,
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn a_recreated_pod_gets_a_new_sandbox() {
        let p = plan(
            &pods(&[pod("a", "new")]),
            &[rec("a", "old")],
            &[],
            |u| format!("p-{u}"),
            &HashMap::new(),
            IP,
        );
        assert_eq!(p.create[0].metadata.uid, "new");
        assert_eq!(p.delete[0].uid, "old");
    }

    #[test]
    fn orphans_and_failures() {
        let mut failures = HashMap::new();
        failures.insert("u1".to_string(), "CNI plugin keel ADD: boom".to_string());
        let nss = vec!["p-u1".to_string(), "p-stray".to_string()];
        let p = plan(
            &pods(&[pod("a", "u1")]),
            &[],
            &nss,
            |u| format!("p-{u}"),
            &failures,
            IP,
        );
        assert_eq!(
            p.orphans,
            ["p-stray"],
            "a half-made sandbox of a desired pod is finished, not removed"
        );
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.status[0].status.reason, SANDBOX_FAILED);
        assert!(!p.status[0].is_ready());
    }

    #[test]
    fn finished_pods_lose_their_sandbox() {
        let mut done = (*pod("a", "u1")).clone();
        done.status.phase = Some(PodPhase::Succeeded);
        let p = plan(
            &pods(&[Arc::new(done)]),
            &[rec("a", "u1")],
            &[],
            |u| format!("p-{u}"),
            &HashMap::new(),
            IP,
        );
        assert_eq!(p.delete.len(), 1);
        assert!(p.create.is_empty());
    }
}
