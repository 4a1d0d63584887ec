//! Pods on this node. One [`worker`] per pod owns the pod's whole life —
//! sandbox, containers, probes, status, teardown — like the kubelet's pod
//! workers; this module is the reconciler (on the agent's driver, keyed by
//! `namespace/name`) that starts a worker for each pod bound here, hands
//! each only the changes of its own pod, and tells it when its pod is
//! gone. It also writes the node's CNI configuration once the node has a
//! pod CIDR, and on every full pass cleans up what nobody owns (sandboxes
//! and runtime pods of pods deleted while the agent was away, namespaces a
//! crash left half-made).
//!
//! - [`plan`]: the pure decisions (sandbox-only status, orphans).
//! - [`sandbox`]: network namespace + CNI chain, with its journal record;
//!   [`cni`]: running the plugins and writing the configuration.
//! - [`status`]: where pod status is written.

pub mod cni;
pub mod plan;
pub mod sandbox;
pub mod status;
#[cfg(test)]
mod testutil;
pub mod worker;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinHandle,
};

use self::{
    cni::CniSetup,
    sandbox::SandboxOps,
    status::StatusWriter,
    worker::{Ctx, Msg, Wakes},
};
use crate::{
    reconcile::{self, Batch, Handle, Reconcile, Report, backoff::Backoff},
    runtime::{api::Registry, backend::PodRuntime, lifecycle::WorkerConfig},
    sync::{
        View, Views,
        refs::{Refs, references},
    },
};

/// Sandboxes made at once.
const PARALLEL_CREATES: usize = 16;
/// A full pass (workers checked, orphans cleaned up) this often.
const RESYNC: Duration = Duration::from_secs(60);
/// Unused images are collected this long after start, then periodically.
const IMAGE_GC_FIRST: Duration = Duration::from_secs(60);
const IMAGE_GC_EVERY: Duration = Duration::from_secs(300);

/// What the pods of a node need.
pub struct PodsConfig {
    pub status: Arc<dyn StatusWriter>,
    pub node_name: String,
    pub node_ip: Ipv4Addr,
    pub sandboxes: Arc<dyn SandboxOps>,
    /// Writes the node's CNI configuration (None: the operator does).
    pub cni: Option<CniSetup>,
    /// MTU for pod interfaces (node networking decides it).
    pub mtu: u32,
    pub registry: Registry,
    pub lifecycle: WorkerConfig,
    /// Fetches the ConfigMaps and Secrets the pods reference (None: none
    /// can be fetched; every reference is missing).
    pub client: Option<keel_api::client::Client>,
    /// Where the pods' Events go.
    pub events: keel_api::recorder::Recorder,
}

/// A pod's worker, as the reconciler knows it.
struct Worker {
    uid: String,
    /// The resourceVersion of the pod it was last handed: a full pass
    /// (start, resync) hands it nothing it already has, so the
    /// reconciler's own clock wakes no worker.
    sent: String,
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<()>,
}

/// The pods reconciler.
struct Pods<R: PodRuntime + Clone> {
    ctx: Arc<Ctx<R>>,
    views: Views,
    rt: tokio::runtime::Handle,
    cni: Option<CniSetup>,
    mtu: u32,
    /// Running workers by pod key.
    workers: BTreeMap<String, Worker>,
    /// Workers tearing their pod down, by uid.
    leaving: BTreeMap<String, JoinHandle<()>>,
    /// Pods whose ConfigMaps or Secrets changed since their worker last heard.
    pokes: Arc<Mutex<BTreeSet<String>>>,
}

/// The running pods reconciler.
pub struct Running {
    pub handle: Handle<String>,
    /// Why workers woke up, all together.
    pub wakes: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
}

/// Starts the pods reconciler (and, with a runtime, its image GC) on the
/// current tokio runtime.
pub fn start<R: PodRuntime + Clone>(
    cfg: PodsConfig,
    runtime: Option<R>,
    views: &Views,
) -> std::io::Result<Running> {
    let refs = Refs::new(cfg.client, views.clone());
    let ctx = Arc::new(Ctx {
        refs: refs.clone(),
        status: cfg.status,
        node_ip: cfg.node_ip,
        sandboxes: cfg.sandboxes,
        runtime,
        registry: cfg.registry,
        slots: Arc::new(Semaphore::new(PARALLEL_CREATES)),
        lifecycle: cfg.lifecycle,
        wakes: Wakes::default(),
        events: cfg.events,
    });
    let rt = tokio::runtime::Handle::current();
    if let Some(r) = ctx.runtime.clone() {
        rt.spawn(image_gc(r, views.clone()));
    }
    let pokes: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let (handle, _thread) = reconcile::spawn(
        "pods",
        Pods {
            ctx: ctx.clone(),
            views: views.clone(),
            rt,
            cni: cfg.cni,
            mtu: cfg.mtu,
            workers: BTreeMap::new(),
            leaving: BTreeMap::new(),
            pokes: pokes.clone(),
        },
        reconcile::Options {
            debounce: Duration::from_millis(1),
            resync: Some(RESYNC),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        },
    )?;
    // A referenced ConfigMap or Secret changed: poke the pods using it.
    let h = handle.clone();
    refs.on_change(Box::new(move |keys| {
        pokes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keys.iter().cloned());
        h.trigger_many(keys);
    }));
    let h = handle.clone();
    let node = cfg.node_name;
    let cidr = Mutex::new(None);
    views.subscribe(move |v, changes| {
        if changes.synced || changes.fresh {
            h.trigger_all();
        }
        if changes.nodes.contains(&node) {
            let now = v.pod_cidr();
            let mut last = cidr.lock().unwrap_or_else(|e| e.into_inner());
            if *last != now {
                *last = now;
                h.trigger_all();
            }
        }
        h.trigger_many(changes.pods.iter().cloned());
    });
    Ok(Running {
        handle,
        wakes: Arc::new(move || ctx.wakes.snapshot()),
    })
}

impl<R: PodRuntime + Clone> Reconcile for Pods<R> {
    type Key = String;

    fn reconcile(&mut self, batch: &Batch<String>) -> Report<String> {
        let v = self.views.current();
        // Nothing is known to be gone before every informer has listed.
        if !v.synced {
            return Report::ok();
        }
        self.leaving.retain(|_, t| !t.is_finished());
        let mut report = Report::ok();
        if let Err(e) = self.write_cni_conf(&v) {
            report.all_failed = Some(e.to_string());
        }
        let keys: BTreeSet<String> = if batch.all {
            v.pods.keys().chain(self.workers.keys()).cloned().collect()
        } else {
            batch.keys.clone()
        };
        for key in &keys {
            self.dispatch(&v, key);
        }
        // Only by what keel-control listed, never by the disk cache alone
        // (it may be some events behind).
        if batch.all && v.fresh {
            self.clean_up(&v);
        }
        report
    }
}

impl<R: PodRuntime + Clone> Pods<R> {
    /// Writes the CNI configuration when it changed, and tells the workers
    /// (some may wait for it).
    fn write_cni_conf(&mut self, v: &View) -> Result<(), cni::CniError> {
        let (Some(cni), Some(cidr)) = (&self.cni, v.pod_cidr()) else {
            return Ok(());
        };
        if cni.write_conf(cidr, self.mtu)? {
            tracing::info!(%cidr, mtu = self.mtu, "wrote the CNI configuration");
            for w in self.workers.values() {
                let _ = w.tx.send(Msg::Poke);
            }
        }
        Ok(())
    }

    /// Brings the worker of `key` in line with the view.
    fn dispatch(&mut self, v: &View, key: &str) {
        // A deleted pod waiting for its finalizers is stopped like a gone one.
        let want = v
            .pods
            .get(key)
            .filter(|p| !p.metadata.uid.is_empty() && !p.metadata.is_terminating());
        self.ctx
            .refs
            .set_pod(key, want.map(|p| references(p)).unwrap_or_default());
        let poked = self
            .pokes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let (Some(w), Some(p)) = (self.workers.get_mut(key), want)
            && w.uid == p.metadata.uid
            && !w.task.is_finished()
        {
            let rv = &p.metadata.resource_version;
            if rv.is_empty() || *rv != w.sent {
                w.sent = rv.clone();
                let _ = w.tx.send(Msg::Update(p.clone()));
            } else if poked {
                let _ = w.tx.send(Msg::Poke);
            }
            return;
        }
        // Gone, replaced by a pod of the same name, or its worker died.
        if let Some(w) = self.workers.remove(key) {
            let _ = w.tx.send(Msg::Gone);
            self.leaving.insert(w.uid, w.task);
        }
        if let Some(p) = want {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = self.rt.spawn(worker::run(self.ctx.clone(), p.clone(), rx));
            self.workers.insert(
                key.to_string(),
                Worker {
                    uid: p.metadata.uid.clone(),
                    sent: p.metadata.resource_version.clone(),
                    tx,
                    task,
                },
            );
        }
    }

    /// Removes what no pod and no worker owns.
    fn clean_up(&mut self, v: &View) {
        let desired: BTreeSet<String> = v
            .pods
            .values()
            .filter(|p| !p.metadata.is_terminating())
            .map(|p| p.metadata.uid.clone())
            .collect();
        let busy: BTreeSet<String> = self
            .workers
            .values()
            .map(|w| w.uid.clone())
            .chain(self.leaving.keys().cloned())
            .collect();
        let held = match &self.ctx.runtime {
            Some(r) => match self.rt.block_on(r.pods()) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "listing the runtime's pods");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let records = match self.ctx.sandboxes.load() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading sandbox records");
                return;
            }
        };
        let sb = self.ctx.sandboxes.clone();
        let found = plan::orphans(&desired, &busy, &records, &held, &sb.namespaces(), |uid| {
            sb.netns_name(uid)
        });
        for o in found.pods {
            let uid = o.uid.clone();
            let task = self.rt.spawn(worker::remove_orphan(self.ctx.clone(), o));
            self.leaving.insert(uid, task);
        }
        for netns in found.netns {
            let sb = self.ctx.sandboxes.clone();
            self.rt.spawn_blocking(move || {
                tracing::info!(%netns, "removing a half-made sandbox");
                let uid = sb.uid_of(&netns);
                if let Err(e) = sb.delete(&uid, &netns, None) {
                    tracing::warn!(%netns, error = %e, "removing an orphaned sandbox; will retry");
                }
            });
        }
    }
}

/// Removes images no pod of this node names, after a minute and then
/// every five.
async fn image_gc<R: PodRuntime>(runtime: R, views: Views) {
    tokio::time::sleep(IMAGE_GC_FIRST).await;
    loop {
        let v = views.current();
        if v.synced {
            let wanted: BTreeSet<String> = v
                .pods
                .values()
                .flat_map(|p| p.spec.containers.iter().chain(&p.spec.init_containers))
                .map(|c| c.image.clone())
                .collect();
            if let Err(e) = runtime.gc_images(&wanted).await {
                tracing::warn!(error = %e, "image GC");
            }
        }
        tokio::time::sleep(IMAGE_GC_EVERY).await;
    }
}

#[cfg(test)]
mod tests;
