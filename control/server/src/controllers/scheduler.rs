//! The scheduler: binds each pod without a `nodeName` to the Ready,
//! schedulable node with the fewest pods among those that match its
//! nodeSelector, have room for its requests and have its host ports free
//! (Kubernetes' NodePorts filter: `hostPort`s, and a hostNetwork pod's
//! container ports, by protocol and address). Pods that fit nowhere get
//! PodScheduled=False (Unschedulable) and are retried when nodes change.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use keel_api::{
    Node, Pod, Resource, Selector,
    pod::HostPort,
    recorder::{Recorder, correlate::reference},
};

use super::{ControllerConfig, Follower, Work};
use crate::store::{Obj, State, Store, WriteOp};

/// The kubelet's default pod limit, used when a node reports no "pods" capacity.
pub const DEFAULT_MAX_PODS: u64 = 110;

/// What is already placed on a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub pods: u64,
    pub cpu_milli: u64,
    pub memory_milli: u64,
}

/// Usage per node, kept incrementally from pod events.
#[derive(Debug, Default)]
pub struct Cache {
    placed: HashMap<String, (String, Usage)>,
    usage: HashMap<String, Usage>,
    /// Host ports held on each node, with how many pods hold each (a pod
    /// bound by hand may share one with another).
    ports: HashMap<String, BTreeMap<HostPort, u32>>,
    /// The host ports each placed pod holds.
    held: HashMap<String, Vec<HostPort>>,
}

impl Cache {
    pub fn rebuild(state: &State) -> Self {
        let mut c = Cache::default();
        for (key, pod) in state.pods.iter() {
            c.set(key, Some(pod));
        }
        c
    }

    fn unplace(&mut self, key: &str) {
        if let Some((node, u)) = self.placed.remove(key) {
            let n = self.usage.entry(node.clone()).or_default();
            n.pods -= u.pods;
            n.cpu_milli -= u.cpu_milli;
            n.memory_milli -= u.memory_milli;
            if let (Some(held), Some(ports)) = (self.held.remove(key), self.ports.get_mut(&node)) {
                for hp in held {
                    if let Some(c) = ports.get_mut(&hp) {
                        *c -= 1;
                        if *c == 0 {
                            ports.remove(&hp);
                        }
                    }
                }
                if ports.is_empty() {
                    self.ports.remove(&node);
                }
            }
        }
    }

    /// Records a pod's current placement (None: deleted).
    pub fn set(&mut self, key: &str, pod: Option<&Pod>) {
        self.unplace(key);
        let Some(pod) = pod.filter(|p| !p.spec.node_name.is_empty() && p.is_active()) else {
            return;
        };
        let u = Usage {
            pods: 1,
            cpu_milli: pod.request_milli("cpu"),
            memory_milli: pod.request_milli("memory"),
        };
        let n = self.usage.entry(pod.spec.node_name.clone()).or_default();
        n.pods += 1;
        n.cpu_milli += u.cpu_milli;
        n.memory_milli += u.memory_milli;
        let held = pod.spec.host_ports();
        if !held.is_empty() {
            let ports = self.ports.entry(pod.spec.node_name.clone()).or_default();
            for hp in &held {
                *ports.entry(hp.clone()).or_default() += 1;
            }
            self.held.insert(key.to_string(), held);
        }
        self.placed
            .insert(key.to_string(), (pod.spec.node_name.clone(), u));
    }

    pub fn usage(&self, node: &str) -> Usage {
        self.usage.get(node).copied().unwrap_or_default()
    }

    /// Whether one of `wanted` is already held on `node`.
    pub fn ports_conflict(&self, node: &str, wanted: &[HostPort]) -> bool {
        let Some(held) = self.ports.get(node) else {
            return false;
        };
        wanted.iter().any(|w| held.keys().any(|h| h.conflicts(w)))
    }
}

fn allocatable(node: &Node, resource: &str) -> Option<u64> {
    node.status
        .allocatable
        .get(resource)
        .or_else(|| node.status.capacity.get(resource))
        .map(|q| q.milli())
}

/// The node for `pod`, or why there is none ("0/3 nodes are available: …"). Pure.
pub fn pick(pod: &Pod, nodes: &[Arc<Node>], cache: &Cache) -> Result<String, String> {
    let selector = Selector::from_map(&pod.spec.node_selector);
    let (cpu, mem) = (pod.request_milli("cpu"), pod.request_milli("memory"));
    let host_ports = pod.spec.host_ports();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut best: Option<(u64, &str)> = None;
    for node in nodes {
        let u = cache.usage(&node.metadata.name);
        let reason = if !node.is_ready() {
            Some("node(s) not ready")
        } else if node.spec.unschedulable {
            Some("node(s) unschedulable")
        } else if !selector.matches(&node.metadata.labels) {
            Some("node(s) didn't match the pod's node selector")
        } else if u.pods + 1
            > allocatable(node, "pods")
                .map(|m| m / 1000)
                .unwrap_or(DEFAULT_MAX_PODS)
        {
            Some("too many pods")
        } else if allocatable(node, "cpu").is_some_and(|a| u.cpu_milli + cpu > a) {
            Some("insufficient cpu")
        } else if allocatable(node, "memory").is_some_and(|a| u.memory_milli + mem > a) {
            Some("insufficient memory")
        } else if cache.ports_conflict(&node.metadata.name, &host_ports) {
            Some("node(s) didn't have free ports for the requested pod ports")
        } else {
            None
        };
        match reason {
            Some(r) => *reasons.entry(r).or_default() += 1,
            None => {
                let name = node.metadata.name.as_str();
                if best.is_none_or(|(pods, n)| (u.pods, name) < (pods, n)) {
                    best = Some((u.pods, name));
                }
            }
        }
    }
    match best {
        Some((_, name)) => Ok(name.to_string()),
        None => {
            let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            Err(format!(
                "0/{} nodes are available{}{}",
                nodes.len(),
                if why.is_empty() { "" } else { ": " },
                why.join(", ")
            ))
        }
    }
}

pub async fn run(store: Store, cfg: ControllerConfig, events: Recorder) {
    let mut follower = Follower::new(store.clone(), cfg.resync);
    let mut cache = Cache::default();
    loop {
        let (state, nodes_changed) = match follower.next().await {
            Work::Resync(state) => {
                cache = Cache::rebuild(&state);
                (state, true)
            }
            Work::Events(events, state) => {
                let mut nodes_changed = false;
                for e in &events {
                    match &e.obj {
                        Obj::Pod(p) => {
                            let key = p.key();
                            cache.set(&key, state.pods.get(&key).map(|p| &**p));
                        }
                        Obj::Node(_) => nodes_changed = true,
                        _ => {}
                    }
                }
                (state, nodes_changed)
            }
        };
        schedule(&store, &state, &mut cache, nodes_changed, &events).await;
    }
}

/// Binds every unscheduled pod it can. Pods already marked unschedulable are
/// only retried when nodes changed.
async fn schedule(
    store: &Store,
    state: &State,
    cache: &mut Cache,
    nodes_changed: bool,
    events: &Recorder,
) {
    use futures_util::StreamExt;
    let nodes: Vec<Arc<Node>> = state.nodes.values().cloned().collect();
    // Decide every placement first (each one counts against the next), then
    // write them all at once so the store commits them in groups.
    let mut writes = Vec::new();
    for pod in state.pods_on("") {
        if pod.metadata.is_terminating() {
            continue; // deleted, waiting for its finalizers
        }
        let marked = pod
            .condition("PodScheduled")
            .is_some_and(|c| c.status == "False");
        if marked && !nodes_changed {
            continue;
        }
        match pick(&pod, &nodes, cache) {
            Ok(node) => {
                let mut placed = (*pod).clone();
                placed.spec.node_name = node.clone();
                cache.set(&pod.key(), Some(&placed));
                writes.push((
                    pod,
                    WriteOp::Bind {
                        namespace: placed.metadata.namespace.clone(),
                        name: placed.metadata.name.clone(),
                        uid: placed.metadata.uid.clone(),
                        node: node.clone(),
                    },
                    node,
                ));
            }
            Err(why) => {
                let mut st = (*pod).clone();
                st.set_condition("PodScheduled", "False", "Unschedulable", &why);
                st.metadata.resource_version.clear();
                writes.push((
                    pod,
                    WriteOp::Update {
                        obj: st.into(),
                        status: true,
                    },
                    why,
                ));
            }
        }
    }
    let results: Vec<_> = futures_util::stream::iter(writes)
        .map(|(pod, op, detail)| async move {
            let bind = matches!(op, WriteOp::Bind { .. });
            (pod, bind, detail, store.write(op).await)
        })
        .buffer_unordered(256)
        .collect()
        .await;
    // What users look for in `kubectl describe pod`: Scheduled (the node is
    // the detail) or FailedScheduling (why no node fits).
    for (pod, bind, detail, result) in results {
        match result {
            Ok(_) if bind => {
                tracing::debug!(pod = %pod.key(), "scheduled");
                events.normal(
                    reference(&*pod),
                    "Scheduled",
                    format!("Successfully assigned {} to {detail}", pod.key()),
                );
            }
            Ok(_) => events.warning(reference(&*pod), "FailedScheduling", detail),
            Err(e) => {
                tracing::debug!(pod = %pod.key(), error = %e, "scheduling write refused; will retry");
                if bind {
                    // Not bound after all: take it off the node's usage.
                    cache.set(&pod.key(), Some(&pod));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
