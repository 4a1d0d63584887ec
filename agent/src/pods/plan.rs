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
mod tests;
