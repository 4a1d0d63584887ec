//! The Deployment controller: keeps `replicas` pods of the current template
//! running, replaces deleted or evicted ones, rolls to a new template within
//! maxSurge/maxUnavailable (or all at once with Recreate), and reports
//! replica counts in the Deployment's status.

use std::{collections::BTreeSet, sync::Arc};

use keel_api::{
    Deployment, Kind, ObjectMeta, Pod, Resource,
    deployment::DeploymentCondition,
    meta::OwnerReference,
    recorder::{Recorder, correlate::reference},
};

use super::{ControllerConfig, Follower, Work};
use crate::store::{Obj, Precondition, State, Store, StoreError};

/// The most pods one pass creates for one Deployment (Kubernetes'
/// ReplicaSet controller's `BurstReplicas`): however large `replicas`, a
/// pass holds a bounded number of new pods; the next pass goes on.
pub const BURST: usize = 500;

/// The condition a refused pod create sets (Kubernetes' `ReplicaFailure`).
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Label carrying the hash of the template a pod was made from.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// A stable hash of the pod template (FNV-1a over its JSON), 10 hex digits.
pub fn template_hash(d: &Deployment) -> String {
    let json = serde_json::to_vec(&d.spec.template).expect("templates serialize");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create(Box<Pod>),
    Delete(Arc<Pod>),
}

/// Pods to create and delete for one Deployment, and the status it should
/// report. Pure.
pub fn plan(
    d: &Deployment,
    owned: &[Arc<Pod>],
) -> (Vec<Action>, keel_api::deployment::DeploymentStatus) {
    let hash = template_hash(d);
    let replicas = d.replicas().max(0) as usize;
    // Deleted pods waiting for their finalizers count for nothing, as
    // Kubernetes' FilterActivePods has it.
    let owned: Vec<Arc<Pod>> = owned
        .iter()
        .filter(|p| !p.metadata.is_terminating())
        .cloned()
        .collect();
    let owned = owned.as_slice();
    let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| p.is_active()).collect();
    let (new, old): (Vec<&Arc<Pod>>, Vec<&Arc<Pod>>) = active
        .iter()
        .partition(|p| p.metadata.labels.get(TEMPLATE_HASH_LABEL) == Some(&hash));
    let ready = |ps: &[&Arc<Pod>]| ps.iter().filter(|p| p.is_ready()).count();
    let (new_ready, old_ready) = (ready(&new), ready(&old));
    let mut actions = Vec::new();
    // A deleted Deployment waiting for its finalizers only reports status.
    let deleting = d.metadata.is_terminating();

    // Finished pods of a Deployment (which restarts Always) are replaced.
    for p in owned.iter().filter(|p| !p.is_active()) {
        actions.push(Action::Delete(p.clone()));
    }

    let (surge, max_unavailable) = d.rollout_bounds();
    let (surge, max_unavailable) = (surge.max(0) as usize, max_unavailable.max(0) as usize);
    let mut creates = 0usize;
    let mut deletes: Vec<Arc<Pod>> = Vec::new();
    if d.spec.paused {
        // As Kubernetes: a paused Deployment does not roll, but its
        // ReplicaSets still keep their pods and follow a change of
        // replicas. keel has no ReplicaSets: a lost pod is replaced from
        // its own template group (the current template's if it has pods,
        // else the largest old one), and surplus pods go old first.
        let total = active.len();
        if total < replicas {
            if !new.is_empty() {
                creates = replicas - total;
            } else if let Some(model) = largest_group(&old) {
                for _ in total..replicas.min(total + BURST) {
                    actions.push(Action::Create(Box::new(sibling(model))));
                }
            }
        } else if total > replicas {
            let surplus = total - replicas;
            let from_old = surplus.min(old.len());
            deletes.extend(victims(&old, from_old));
            deletes.extend(victims(&new, surplus - from_old));
        }
    } else {
        if d.is_recreate() {
            if !old.is_empty() {
                deletes.extend(old.iter().map(|p| (*p).clone()));
            } else if new.len() < replicas {
                creates = replicas - new.len();
            }
        } else if new.len() < replicas {
            // Room above replicas while old pods remain.
            let total = new.len() + old.len();
            let allowed = (replicas + surge).saturating_sub(total);
            creates = (replicas - new.len()).min(if old.is_empty() { usize::MAX } else { allowed });
        }
        if new.len() > replicas {
            deletes.extend(victims(&new, new.len() - replicas));
        }
        if !d.is_recreate() && !old.is_empty() {
            // As Kubernetes scales down the old ReplicaSet: never below
            // replicas - maxUnavailable available pods, counting new pods that
            // are not ready yet as unavailable; unready old pods go first.
            let min_available = replicas.saturating_sub(max_unavailable);
            let new_unavailable = new.len() - new_ready;
            let mut budget =
                (new.len() + old.len()).saturating_sub(min_available + new_unavailable);
            let mut old_sorted: Vec<&Arc<Pod>> = old.clone();
            old_sorted.sort_by_key(|p| {
                (
                    p.is_ready(),
                    std::cmp::Reverse(p.metadata.creation_timestamp),
                )
            });
            let mut healthy_budget = (new_ready + old_ready).saturating_sub(min_available);
            for p in old_sorted {
                if budget == 0 {
                    break;
                }
                if p.is_ready() {
                    if healthy_budget == 0 {
                        break;
                    }
                    healthy_budget -= 1;
                }
                deletes.push(p.clone());
                budget -= 1;
            }
        }
    }
    for _ in 0..creates.min(BURST) {
        actions.push(Action::Create(Box::new(new_pod(d, &hash))));
    }
    actions.extend(deletes.into_iter().map(Action::Delete));
    if deleting {
        actions.clear();
    }

    let available = (new_ready + old_ready) as i64;
    let desired = replicas as i64;
    let mut status = keel_api::deployment::DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: active.len() as i64,
        updated_replicas: new.len() as i64,
        ready_replicas: available,
        available_replicas: available,
        unavailable_replicas: (desired - available).max(0),
        conditions: d.status.conditions.clone(),
    };
    let is_available = available >= desired - max_unavailable as i64;
    set_condition(
        &mut status.conditions,
        "Available",
        if is_available { "True" } else { "False" },
        if is_available {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        &format!("{available} of {desired} replicas available"),
    );
    let done = new.len() == replicas && old.is_empty() && new_ready == replicas;
    let was_paused = d
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == "Progressing" && c.reason == "DeploymentPaused");
    if d.spec.paused {
        // Kubernetes' checkPausedConditions.
        set_condition(
            &mut status.conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        );
    } else if was_paused {
        set_condition(
            &mut status.conditions,
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
        );
    } else {
        set_condition(
            &mut status.conditions,
            "Progressing",
            "True",
            if done {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            },
            &format!("{} of {desired} replicas updated", new.len()),
        );
    }
    (actions, status)
}

fn set_condition(
    conditions: &mut Vec<DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(keel_api::Time::now());
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message.into();
        }
        None => conditions.push(DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Some(keel_api::Time::now()),
        }),
    }
}

/// Which pods to remove when there are too many: unscheduled first, then
/// not ready, then the newest.
fn victims(pods: &[&Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut v: Vec<&Arc<Pod>> = pods.to_vec();
    v.sort_by_key(|p| {
        (
            !p.spec.node_name.is_empty(),
            p.is_ready(),
            std::cmp::Reverse(p.metadata.creation_timestamp),
        )
    });
    v.into_iter().take(n).cloned().collect()
}

/// A pod of the largest template group among `pods` (ties: the group
/// with the newest pod), to copy.
fn largest_group<'a>(pods: &[&'a Arc<Pod>]) -> Option<&'a Arc<Pod>> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&'a Arc<Pod>>> = Default::default();
    for p in pods {
        let hash = p.metadata.labels.get(TEMPLATE_HASH_LABEL);
        groups
            .entry(hash.map_or("", String::as_str))
            .or_default()
            .push(p);
    }
    groups
        .into_values()
        .max_by_key(|g| {
            (
                g.len(),
                g.iter().map(|p| p.metadata.creation_timestamp).max(),
            )
        })
        .and_then(|g| g.into_iter().max_by_key(|p| p.metadata.creation_timestamp))
}

/// A new pod like `model` (same template group, labels and owner), not
/// yet scheduled.
fn sibling(model: &Pod) -> Pod {
    let m = &model.metadata;
    let prefix = match m.generate_name.as_str() {
        "" => format!("{}-", m.name),
        g => g.to_string(),
    };
    let mut spec = model.spec.clone();
    spec.node_name.clear();
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            generate_name: prefix,
            namespace: m.namespace.clone(),
            labels: m.labels.clone(),
            annotations: m.annotations.clone(),
            owner_references: m.owner_references.clone(),
            ..ObjectMeta::default()
        },
        spec,
        status: Default::default(),
    }
}

fn new_pod(d: &Deployment, hash: &str) -> Pod {
    let mut labels = d.spec.template.metadata.labels.clone();
    labels.insert(TEMPLATE_HASH_LABEL.into(), hash.into());
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            generate_name: format!("{}-{hash}-", d.metadata.name),
            namespace: d.metadata.namespace.clone(),
            labels,
            annotations: d.spec.template.metadata.annotations.clone(),
            owner_references: vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: d.metadata.name.clone(),
                uid: d.metadata.uid.clone(),
                controller: true,
                block_owner_deletion: Some(true),
            }],
            ..ObjectMeta::default()
        },
        spec: d.spec.template.spec.clone(),
        status: Default::default(),
    }
}

pub async fn run(store: Store, cfg: ControllerConfig, events: Recorder) {
    let mut follower = Follower::new(store.clone(), cfg.resync);
    loop {
        let (state, dirty) = match follower.next().await {
            Work::Resync(state) => {
                let all: BTreeSet<String> = state.deployments.keys().cloned().collect();
                // Pods whose Deployment is gone are garbage-collected.
                collect_orphans(&store, &state).await;
                (state, all)
            }
            Work::Events(events, state) => {
                let mut dirty = BTreeSet::new();
                let mut deleted_owner = false;
                for e in &events {
                    match &e.obj {
                        Obj::Deployment(d) => {
                            dirty.insert(d.key());
                            deleted_owner |= !state.deployments.contains_key(&d.key());
                        }
                        Obj::Pod(p) => {
                            if let Some(uid) = p.metadata.controller_uid()
                                && let Some(d) =
                                    state.deployments.values().find(|d| d.metadata.uid == uid)
                            {
                                dirty.insert(d.key());
                            }
                        }
                        _ => {}
                    }
                }
                if deleted_owner {
                    collect_orphans(&store, &state).await;
                }
                (state, dirty)
            }
        };
        for key in dirty {
            if let Some(d) = state.deployments.get(&key)
                && let Err(e) = sync(&store, &state, d, &events).await
            {
                tracing::debug!(deployment = %key, error = %e, "deployment sync refused; will retry");
            }
        }
    }
}

/// Creates and deletes the Deployment's pods (recording `SuccessfulCreate`
/// and `SuccessfulDelete` on it, as Kubernetes' ReplicaSet controller does
/// on the ReplicaSet keel does not have) and writes its status.
async fn sync(
    store: &Store,
    state: &State,
    d: &Arc<Deployment>,
    events: &Recorder,
) -> Result<(), StoreError> {
    let owned = state.pods_owned_by(&d.metadata.uid);
    let (actions, mut status) = plan(d, &owned);
    let mut failed = None;
    for action in actions {
        match action {
            Action::Create(pod) => match store.create(*pod).await {
                Ok(o) => events.normal(
                    reference(&**d),
                    "SuccessfulCreate",
                    format!("Created pod: {}", o.meta().name),
                ),
                Err(e) => {
                    // Refused (a quota, say): report it on the Deployment and
                    // stop this pass; a later one tries again.
                    let message = crate::api::error::ApiError::from(e.clone()).0.message;
                    events.warning(
                        reference(&**d),
                        "FailedCreate",
                        format!("Error creating: {message}"),
                    );
                    set_condition(
                        &mut status.conditions,
                        REPLICA_FAILURE,
                        "True",
                        "FailedCreate",
                        &message,
                    );
                    failed = Some(e);
                    break;
                }
            },
            Action::Delete(pod) => {
                let pre = Precondition {
                    uid: Some(pod.metadata.uid.clone()),
                    resource_version: None,
                };
                match store
                    .delete(Kind::Pod, &pod.metadata.namespace, &pod.metadata.name, pre)
                    .await
                {
                    Ok(_) => events.normal(
                        reference(&**d),
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", pod.metadata.name),
                    ),
                    Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if failed.is_none() {
        status.conditions.retain(|c| c.type_ != REPLICA_FAILURE);
    }
    if status != d.status {
        let mut next = (**d).clone();
        next.status = status;
        store.update_status(next).await?;
    }
    failed.map_or(Ok(()), Err)
}

/// Deletes pods whose controlling Deployment no longer exists.
async fn collect_orphans(store: &Store, state: &State) {
    let live: BTreeSet<&str> = state
        .deployments
        .values()
        .map(|d| d.metadata.uid.as_str())
        .collect();
    for (uid, keys) in state.pods_by_owner.iter() {
        if live.contains(uid.as_str()) {
            continue;
        }
        for key in keys.iter() {
            let Some(p) = state.pods.get(key) else {
                continue;
            };
            if p.metadata
                .owner_references
                .iter()
                .any(|o| o.controller && o.kind == "Deployment")
            {
                let pre = Precondition {
                    uid: Some(p.metadata.uid.clone()),
                    resource_version: None,
                };
                let _ = store
                    .delete(Kind::Pod, &p.metadata.namespace, &p.metadata.name, pre)
                    .await;
            }
        }
    }
}

pub mod history;

#[cfg(test)]
mod tests;
