//! The runtime's reconciler in the agent: one [`PodWorker`] task per pod
//! bound to this node whose sandbox (network namespace + IP, made by the
//! pod manager) exists; each posts the pod's status when it changes (so
//! readiness reaches the Endpoints and the load balancer). A pod that leaves
//! the view is stopped gracefully and removed. On start, pods the runtime
//! already holds (their shims kept them running while the agent was away)
//! are adopted by the same workers; those no longer bound here are removed
//! once the view has been listed (never before: `View::synced`).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use keel_api::{Pod, client::Client, pod::PodStatus};
use tokio::sync::{Mutex, watch};

use super::{
    backend::{PodRef, PodRuntime},
    worker::{PodWorker, WorkerConfig},
};
use crate::sync::View;

/// Unused images are collected this long after start, then periodically.
const IMAGE_GC_FIRST: Duration = Duration::from_secs(60);
const IMAGE_GC_EVERY: Duration = Duration::from_secs(300);

/// What the manager needs of a pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    pub netns: PathBuf,
    pub ip: Option<std::net::Ipv4Addr>,
}

/// Source of sandboxes by pod uid (the pod manager's records).
pub trait Sandboxes: Send + Sync + 'static {
    fn get(&self) -> BTreeMap<String, SandboxInfo>;
}

impl Sandboxes for crate::pods::sandbox::Sandboxes {
    fn get(&self) -> BTreeMap<String, SandboxInfo> {
        self.load()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.uid.clone(),
                    SandboxInfo {
                        netns: r.netns_path(),
                        ip: r.ip,
                    },
                )
            })
            .collect()
    }
}

/// Handles the API shares with the workers (for logs and exec).
pub type Registry = Arc<Mutex<BTreeMap<String, PodRef>>>;

/// Uids of the pods the runtime holds containers of (running or being
/// stopped); the pod manager keeps their sandboxes until they leave it.
pub type Held = Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

pub struct RuntimeManager<R: PodRuntime + Clone> {
    pub runtime: R,
    pub client: Client,
    pub node_ip: std::net::Ipv4Addr,
    pub worker: WorkerConfig,
    /// Pod key (`namespace/name`) → the runtime's handle, for the API.
    pub pods: Registry,
    pub held: Held,
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Status equality without condition timestamps (a rewrite must not churn).
fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
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

impl<R: PodRuntime + Clone> RuntimeManager<R> {
    pub async fn run(self, mut view: watch::Receiver<View>, sandboxes: Arc<dyn Sandboxes>) {
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut cleaned_orphans = false;
        let mut next_gc = tokio::time::Instant::now() + IMAGE_GC_FIRST;
        loop {
            let v = view.borrow_and_update().clone();
            let boxes = {
                let s = sandboxes.clone();
                tokio::task::spawn_blocking(move || s.get())
                    .await
                    .unwrap_or_default()
            };
            let wanted: BTreeMap<String, Arc<Pod>> = v
                .pods
                .values()
                .filter(|p| !p.metadata.uid.is_empty())
                .map(|p| (p.metadata.uid.clone(), p.clone()))
                .collect();
            // Pods gone from the view: stop them (only once the view is real).
            if v.synced {
                running.retain(|uid, r| {
                    if wanted.contains_key(uid) {
                        true
                    } else {
                        let _ = r.stop.send(true);
                        !r.task.is_finished()
                    }
                });
                if !cleaned_orphans {
                    cleaned_orphans = true;
                    if let Ok(held) = self.runtime.pods().await {
                        for p in held.into_iter().filter(|p| !wanted.contains_key(&p.uid)) {
                            tracing::info!(pod = %p.key(), "removing a pod no longer bound to this node");
                            let rt = self.runtime.clone();
                            let held = self.held.clone();
                            held.lock().expect("held lock").insert(p.uid.clone());
                            let pod = Pod {
                                metadata: keel_api::ObjectMeta {
                                    name: p.name.clone(),
                                    namespace: p.namespace.clone(),
                                    uid: p.uid.clone(),
                                    ..Default::default()
                                },
                                ..Default::default()
                            };
                            tokio::spawn(async move {
                                let uid = p.uid.clone();
                                let mut w = PodWorker::new(rt, pod, p, WorkerConfig::default());
                                if let Err(e) = w.terminate().await {
                                    tracing::warn!("removing orphaned pod: {e}");
                                }
                                held.lock().expect("held lock").remove(&uid);
                            });
                        }
                    }
                }
            }
            if v.synced && tokio::time::Instant::now() >= next_gc {
                next_gc = tokio::time::Instant::now() + IMAGE_GC_EVERY;
                let wanted: std::collections::BTreeSet<String> = v
                    .pods
                    .values()
                    .flat_map(|p| p.spec.containers.iter().chain(&p.spec.init_containers))
                    .map(|c| c.image.clone())
                    .collect();
                if let Err(e) = self.runtime.gc_images(&wanted).await {
                    tracing::warn!(error = %e, "image GC");
                }
            }
            running.retain(|_, r| !r.task.is_finished());
            // Pods whose sandbox is still being made: look again soon (the
            // pod manager's progress does not change the view).
            let mut waiting_for_sandbox = false;
            for (uid, pod) in &wanted {
                // A finished pod (Succeeded/Failed) with no worker is left as
                // it is: its containers are not to run again.
                if running.contains_key(uid) || !pod.is_active() {
                    continue;
                }
                let Some(sb) = boxes.get(uid) else {
                    waiting_for_sandbox = true;
                    continue;
                };
                let (tx, rx) = watch::channel(false);
                let task =
                    tokio::spawn(self.worker_task((**pod).clone(), sb.clone(), rx, view.clone()));
                running.insert(uid.clone(), Running { stop: tx, task });
            }
            tokio::select! {
                changed = view.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = tokio::time::sleep(if waiting_for_sandbox {
                    Duration::from_millis(50)
                } else {
                    Duration::from_secs(1)
                }) => {}
            }
        }
    }

    fn worker_task(
        &self,
        pod: Pod,
        sb: SandboxInfo,
        mut stop: watch::Receiver<bool>,
        mut view: watch::Receiver<View>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let rt = self.runtime.clone();
        let client = self.client.clone();
        let cfg = self.worker.clone();
        let registry = self.pods.clone();
        let held = self.held.clone();
        let node_ip = self.node_ip;
        held.lock()
            .expect("held lock")
            .insert(pod.metadata.uid.clone());
        async move {
            let mut p = pod.clone();
            if let Some(ip) = sb.ip {
                p.status.pod_ip = ip.to_string();
            }
            p.status.host_ip = node_ip.to_string();
            let pr = PodRef::of(&p, Some(&sb.netns));
            let key = pr.key();
            registry.lock().await.insert(key.clone(), pr.clone());
            let mut w = PodWorker::new(rt, p, pr, cfg);
            let mut posted: Option<PodStatus> = Some(pod.status.clone());
            loop {
                if *stop.borrow() {
                    break;
                }
                // Keep the worker's copy of the spec/metadata current.
                if let Some(latest) = view
                    .borrow()
                    .pods
                    .values()
                    .find(|x| x.metadata.uid == w.pod_ref.uid)
                {
                    let mut l = (**latest).clone();
                    if let Some(ip) = sb.ip {
                        l.status.pod_ip = ip.to_string();
                    }
                    w.update(l);
                }
                match w.sync().await {
                    Ok(p) => {
                        let mut p = p.clone();
                        p.status.host_ip = node_ip.to_string();
                        if posted.as_ref().is_none_or(|s| !same_status(s, &p.status)) {
                            p.metadata.resource_version.clear();
                            match client.update_status(&p).await {
                                Ok(_) => posted = Some(p.status.clone()),
                                Err(e) if e.is_not_found() => break,
                                Err(e) => {
                                    tracing::warn!(pod = %key, error = %e, "posting pod status")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(pod = %key, error = %e, "pod sync"),
                }
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = view.changed() => {}
                    _ = tokio::time::sleep(w.next_sync()) => {}
                }
            }
            tracing::info!(pod = %key, "stopping the pod's containers");
            if let Err(e) = w.terminate().await {
                tracing::warn!(pod = %key, error = %e, "terminating pod");
            }
            registry.lock().await.remove(&key);
            held.lock().expect("held lock").remove(&pod.metadata.uid);
        }
    }
}
