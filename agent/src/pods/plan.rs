//! The pure decisions about pods: the status a pod without a container
//! runtime reports, the status of a pod whose sandbox could not be made,
//! when two statuses are the same (a rewrite must not churn), and which
//! sandboxes and runtime pods nobody owns any more (left by a crash, or by
//! pods deleted while the agent was away).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use keel_api::{
    Pod,
    pod::{PodPhase, PodStatus},
};

use super::sandbox::SandboxRecord;
use crate::runtime::backend::PodRef;

/// Reason on pods of a node without a container runtime: the pod is its
/// network sandbox (a namespace attached by CNI) and nothing else.
pub const SANDBOX_ONLY: &str = "SandboxOnly";
pub const SANDBOX_FAILED: &str = "SandboxCreationFailed";

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

/// Equal but for condition timestamps and the start time, which a rewrite
/// (or a restarted agent computing them again) must not churn.
pub fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
    let strip = |s: &PodStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s.conditions.sort_by(|x, y| x.type_.cmp(&y.type_));
        s.start_time = None;
        s
    };
    strip(a) == strip(b)
}

/// A pod nobody owns any more: its sandbox record, what the runtime still
/// holds of it, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub uid: String,
    /// `namespace/name`, for logs.
    pub key: String,
    pub record: Option<SandboxRecord>,
    pub held: Option<PodRef>,
}

/// What to clean up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orphans {
    pub pods: Vec<Orphan>,
    /// Network namespaces with our prefix that no record, pod or worker
    /// explains (a crash half-way through making a sandbox).
    pub netns: Vec<String>,
}

/// Finds what nobody owns. `busy` are the uids a worker is handling
/// (running or tearing down); `desired` the uids of the pods bound here.
pub fn orphans(
    desired: &BTreeSet<String>,
    busy: &BTreeSet<String>,
    records: &[SandboxRecord],
    held: &[PodRef],
    namespaces: &[String],
    netns_name: impl Fn(&str) -> String,
) -> Orphans {
    let owned = |uid: &str| desired.contains(uid) || busy.contains(uid);
    let mut pods: BTreeMap<String, Orphan> = BTreeMap::new();
    for r in records.iter().filter(|r| !owned(&r.uid)) {
        pods.insert(
            r.uid.clone(),
            Orphan {
                uid: r.uid.clone(),
                key: r.key(),
                record: Some(r.clone()),
                held: None,
            },
        );
    }
    for h in held.iter().filter(|h| !owned(&h.uid)) {
        pods.entry(h.uid.clone())
            .or_insert_with(|| Orphan {
                uid: h.uid.clone(),
                key: h.key(),
                record: None,
                held: None,
            })
            .held = Some(h.clone());
    }
    let explained: BTreeSet<String> = records
        .iter()
        .map(|r| r.netns.clone())
        .chain(desired.iter().chain(busy).map(|uid| netns_name(uid)))
        .collect();
    Orphans {
        pods: pods.into_values().collect(),
        netns: namespaces
            .iter()
            .filter(|n| !explained.contains(*n))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
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
}
