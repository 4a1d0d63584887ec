//! Node lifecycle: a node that misses heartbeats for the grace period goes
//! Ready=Unknown and its pods stop being Ready (so they leave Endpoints);
//! after the eviction timeout its pods are deleted, and Deployments replace
//! them on other nodes.

use std::{sync::Arc, time::SystemTime};

use keel_api::{
    Kind, Node, Pod, Resource, Time,
    recorder::{Recorder, correlate::reference},
};

use super::ControllerConfig;
use crate::store::{Precondition, State, Store};

/// Reason set on a node whose agent stopped reporting.
pub const NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
/// Reason set on pods of such a node.
pub const NODE_LOST: &str = "NodeLost";

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Ready → Unknown: the agent stopped posting status.
    MarkUnknown(Arc<Node>),
    /// The pod's Ready condition goes False because its node is lost.
    MarkPodNotReady(Arc<Pod>),
    /// Delete the pod (its node has been NotReady past the eviction timeout).
    Evict(Arc<Pod>),
}

/// When the node last proved it was alive.
fn last_heartbeat(node: &Node) -> Option<SystemTime> {
    node.condition("Ready")
        .and_then(|c| c.last_heartbeat_time)
        .or(node.metadata.creation_timestamp)
        .map(|t| t.0)
}

/// What to do about every node at `now`. Pure.
pub fn plan(state: &State, now: SystemTime, cfg: &ControllerConfig) -> Vec<Action> {
    let mut actions = Vec::new();
    for node in state.nodes.values() {
        let since_heartbeat = last_heartbeat(node)
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let ready = node.condition("Ready");
        let status = ready.map(|c| c.status.as_str()).unwrap_or("Unknown");
        let stale = since_heartbeat > cfg.node_grace;
        if stale && status != "Unknown" {
            actions.push(Action::MarkUnknown(node.clone()));
        }
        if status == "True" && !stale {
            continue;
        }
        // Not ready (reported, or unknown): pods are not ready either, and
        // past the eviction timeout they are deleted.
        let not_ready_since = match ready {
            Some(c) if c.status != "True" => c.last_transition_time.map(|t| t.0),
            // Just going stale now: count from the last heartbeat.
            _ => last_heartbeat(node),
        };
        let evict = not_ready_since
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d > cfg.pod_eviction_timeout);
        for pod in state.pods_on(&node.metadata.name) {
            if evict {
                actions.push(Action::Evict(pod));
            } else if (stale || status == "Unknown")
                && pod
                    .condition("Ready")
                    .is_none_or(|c| c.status == "True" || c.reason != NODE_LOST)
                && pod.is_active()
            {
                actions.push(Action::MarkPodNotReady(pod));
            }
        }
    }
    actions
}

pub async fn run(store: Store, cfg: ControllerConfig, events: Recorder) {
    let mut tick = tokio::time::interval(cfg.node_monitor_period);
    loop {
        tick.tick().await;
        let state = store.snapshot();
        for action in plan(&state, SystemTime::now(), &cfg) {
            if let Err(e) = apply(&store, action, &events).await {
                tracing::debug!(error = %e, "node lifecycle write refused; retrying next period");
            }
        }
    }
}

/// Writes one action, recording what Kubernetes' node controller records:
/// `NodeNotReady` on the Node and on each of its pods, and the eviction.
async fn apply(
    store: &Store,
    action: Action,
    events: &Recorder,
) -> Result<(), crate::store::StoreError> {
    match action {
        Action::MarkUnknown(node) => {
            let mut n = (*node).clone();
            let heartbeat = n.condition("Ready").and_then(|c| c.last_heartbeat_time);
            n.set_condition(
                "Ready",
                "Unknown",
                NODE_STATUS_UNKNOWN,
                "keel-agent stopped posting node status",
                heartbeat,
            );
            tracing::warn!(node = %n.metadata.name, "node stopped posting status: Ready=Unknown");
            store.update_status(n).await?;
            events.normal(
                reference(&*node),
                "NodeNotReady",
                format!("Node {} status is now: NodeNotReady", node.metadata.name),
            );
        }
        Action::MarkPodNotReady(pod) => {
            let mut p = (*pod).clone();
            p.set_condition(
                "Ready",
                "False",
                NODE_LOST,
                "the pod's node stopped posting status",
            );
            p.set_condition(
                "ContainersReady",
                "False",
                NODE_LOST,
                "the pod's node stopped posting status",
            );
            store.update_status(p).await?;
            events.warning(reference(&*pod), "NodeNotReady", "Node is not ready");
        }
        Action::Evict(pod) => {
            tracing::warn!(pod = %pod.key(), node = %pod.spec.node_name, "evicting pod from a lost node");
            let pre = Precondition {
                uid: Some(pod.metadata.uid.clone()),
                resource_version: None,
            };
            store
                .delete(Kind::Pod, &pod.metadata.namespace, &pod.metadata.name, pre)
                .await?;
            events.normal(
                reference(&*pod),
                "NodeControllerEviction",
                format!(
                    "Marking for deletion Pod {} from Node {}",
                    pod.key(),
                    pod.spec.node_name
                ),
            );
        }
    }
    Ok(())
}

#[doc(hidden)]
pub fn heartbeat_at(node: &mut Node, at: SystemTime) {
    node.set_condition(
        "Ready",
        "True",
        "KeelAgentReady",
        "keel-agent is posting ready status",
        Some(Time(at)),
    );
    for c in &mut node.status.conditions {
        c.last_transition_time = Some(Time(at));
    }
}

#[cfg(test)]
mod tests;
