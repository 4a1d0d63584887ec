//! The scheduler: binds each pod without a `nodeName` to the Ready,
//! schedulable node with the fewest pods among those that match its
//! nodeSelector and have room for its requests. Pods that fit nowhere get
//! PodScheduled=False (Unschedulable) and are retried when nodes change.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use keel_api::{Node, Pod, Resource, Selector};

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
            let n = self.usage.entry(node).or_default();
            n.pods -= u.pods;
            n.cpu_milli -= u.cpu_milli;
            n.memory_milli -= u.memory_milli;
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
        self.placed
            .insert(key.to_string(), (pod.spec.node_name.clone(), u));
    }

    pub fn usage(&self, node: &str) -> Usage {
        self.usage.get(node).copied().unwrap_or_default()
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

pub async fn run(store: Store, cfg: ControllerConfig) {
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
        schedule(&store, &state, &mut cache, nodes_changed).await;
    }
}

/// Binds every unscheduled pod it can. Pods already marked unschedulable are
/// only retried when nodes changed.
async fn schedule(store: &Store, state: &State, cache: &mut Cache, nodes_changed: bool) {
    use futures_util::StreamExt;
    let nodes: Vec<Arc<Node>> = state.nodes.values().cloned().collect();
    // Decide every placement first (each one counts against the next), then
    // write them all at once so the store commits them in groups.
    let mut writes = Vec::new();
    for pod in state.pods_on("") {
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
                        node,
                    },
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
                ));
            }
        }
    }
    let results: Vec<_> = futures_util::stream::iter(writes)
        .map(|(pod, op)| async move {
            let bind = matches!(op, WriteOp::Bind { .. });
            (pod, bind, store.write(op).await)
        })
        .buffer_unordered(256)
        .collect()
        .await;
    for (pod, bind, result) in results {
        match result {
            Ok(_) if bind => tracing::debug!(pod = %pod.key(), "scheduled"),
            Ok(_) => {}
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
mod tests {
    use super::*;

    fn node(name: &str, ready: bool, labels: &[(&str, &str)], cpu: &str, pods: &str) -> Arc<Node> {
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": pods}}
        }))
        .unwrap();
        n.set_condition("Ready", if ready { "True" } else { "False" }, "", "", None);
        Arc::new(n)
    }

    fn pod(name: &str, node: &str, cpu: &str, selector: &[(&str, &str)]) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "d"},
            "spec": {
                "nodeName": node,
                "nodeSelector": selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn picks_ready_node_with_fewest_pods() {
        let nodes = vec![
            node("a", true, &[], "4", "10"),
            node("b", true, &[], "4", "10"),
            node("c", false, &[], "4", "10"),
        ];
        let mut cache = Cache::default();
        cache.set("d/x", Some(&pod("x", "a", "100m", &[])));
        assert_eq!(
            pick(&pod("p", "", "100m", &[]), &nodes, &cache),
            Ok("b".into())
        );
        cache.set("d/y", Some(&pod("y", "b", "100m", &[])));
        assert_eq!(
            pick(&pod("p", "", "100m", &[]), &nodes, &cache),
            Ok("a".into()),
            "ties go by name"
        );
        cache.set("d/x", None);
        assert_eq!(
            pick(&pod("p", "", "100m", &[]), &nodes, &cache),
            Ok("a".into())
        );
    }

    #[test]
    fn respects_resources_selector_and_pod_limit() {
        let nodes = vec![
            node("a", true, &[("disk", "ssd")], "1", "10"),
            node("b", true, &[], "4", "1"),
        ];
        let mut cache = Cache::default();
        cache.set("d/x", Some(&pod("x", "b", "0", &[])));
        // b is full (1 pod max); a has 1 cpu.
        assert_eq!(
            pick(&pod("p", "", "500m", &[]), &nodes, &cache),
            Ok("a".into())
        );
        let err = pick(&pod("p", "", "2", &[]), &nodes, &cache).unwrap_err();
        assert_eq!(
            err,
            "0/2 nodes are available: 1 insufficient cpu, 1 too many pods"
        );
        let err = pick(&pod("p", "", "0", &[("disk", "hdd")]), &nodes, &cache).unwrap_err();
        assert!(
            err.contains("2 node(s) didn't match the pod's node selector"),
            "{err}"
        );
        assert!(
            pick(&pod("p", "", "0", &[]), &[], &cache)
                .unwrap_err()
                .starts_with("0/0 nodes")
        );
    }

    #[test]
    fn finished_pods_free_their_share() {
        let mut cache = Cache::default();
        let mut p = pod("x", "a", "1", &[]);
        cache.set("d/x", Some(&p));
        assert_eq!(cache.usage("a").cpu_milli, 1000);
        p.status.phase = Some(keel_api::pod::PodPhase::Succeeded);
        cache.set("d/x", Some(&p));
        assert_eq!(cache.usage("a"), Usage::default());
    }
}
