//! One pod's worker: a task that owns the pod's whole life on this node,
//! as the kubelet's per-pod `SyncPod` does.
//!
//! Each pass: the sandbox first (adopted from its journal record, or made:
//! network namespace + CNI ADD), then the containers ([`PodLifecycle`]:
//! init containers, containers, probes), then the status, written only
//! when it changed — this worker is the pod status's only writer. A pod
//! that reached Succeeded or Failed keeps its exited containers (logs) and
//! gives its sandbox back (CNI DEL frees the address). A hostNetwork pod
//! has no sandbox: it runs in the node's network with the node's IP, and
//! nothing of its network is made or deleted. When the pod leaves
//! the node the worker stops the containers (SIGTERM, grace, SIGKILL),
//! tears the sandbox down, and ends.
//!
//! A worker wakes only for its own reasons: its pod changed (the pods
//! reconciler hands it the new object), a container exited (the runtime
//! says so), or one of its own timers came (a probe, a back-off, a grace
//! period, a retry, the periodic resync). Nothing happening anywhere else
//! in the cluster wakes it.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use keel_api::{
    Pod,
    pod::{PodPhase, PodStatus},
};
use tokio::{
    sync::{Semaphore, mpsc},
    time::Instant,
};

use super::{
    plan::{Orphan, failed_status, same_status, sandbox_status},
    sandbox::{SandboxError, SandboxOps, SandboxRecord},
    status::{StatusWriter, WriteError},
};
use crate::{
    reconcile::backoff::{Backoff, Retry},
    runtime::{
        api::Registry,
        backend::{PodRef, PodRuntime},
        lifecycle::{PodLifecycle, WorkerConfig},
        shim::proto::now_ms,
    },
};

/// A pod with nothing to do is looked at this often anyway (the kubelet's
/// resync), and a runtime that reports exits is asked again this often.
pub const RESYNC: Duration = Duration::from_secs(60);
/// How often a runtime that cannot report exits (now) is polled.
const POLL: Duration = Duration::from_secs(1);
/// Sandbox creation and teardown retries.
const SANDBOX_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// Status write and runtime retries.
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
/// Attempts at tearing a sandbox down before leaving it to the periodic
/// orphan cleanup.
const TEARDOWN_ATTEMPTS: u32 = 8;

/// What a worker is told.
#[derive(Debug)]
pub enum Msg {
    /// A new version of the pod.
    Update(Arc<Pod>),
    /// Look again (the CNI configuration appeared).
    Poke,
    /// The pod left this node: stop everything and end.
    Gone,
}

/// Why a worker woke up, counted for the agent's status and the tests.
#[derive(Debug, Default)]
pub struct Wakes {
    /// Its pod changed in a way that needs a pass.
    pub pod: AtomicU64,
    /// Its pod's object changed in nothing this worker acts on (its own
    /// status write coming back).
    pub echo: AtomicU64,
    /// The runtime reported an exit (or its wait ran out: a resync).
    pub runtime: AtomicU64,
    /// A timer of its own.
    pub timer: AtomicU64,
    pub poke: AtomicU64,
    /// Passes made.
    pub syncs: AtomicU64,
}

impl Wakes {
    pub fn snapshot(&self) -> serde_json::Value {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "pod": l(&self.pod),
            "echo": l(&self.echo),
            "runtime": l(&self.runtime),
            "timer": l(&self.timer),
            "poke": l(&self.poke),
            "syncs": l(&self.syncs),
        })
    }
}

/// What every worker of a node shares.
pub struct Ctx<R> {
    /// The ConfigMaps and Secrets the node's pods reference.
    pub refs: Arc<crate::sync::refs::Refs>,
    /// Where pod status goes (keel-control).
    pub status: Arc<dyn StatusWriter>,
    pub node_ip: Ipv4Addr,
    pub sandboxes: Arc<dyn SandboxOps>,
    /// None: no container runtime; pods are their network sandboxes.
    pub runtime: Option<R>,
    pub registry: Registry,
    /// Sandboxes made at once (CNI plugins are processes).
    pub slots: Arc<Semaphore>,
    pub lifecycle: WorkerConfig,
    pub wakes: Wakes,
    /// Where the pods' Events go (as the kubelet, on this node).
    pub events: keel_api::recorder::Recorder,
}

/// Runs the worker of `pod` until it is told the pod is gone.
pub async fn run<R: PodRuntime + Clone>(
    ctx: Arc<Ctx<R>>,
    pod: Arc<Pod>,
    rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut w = PodWorker::new(ctx, pod);
    w.run(rx).await;
}

struct PodWorker<R: PodRuntime> {
    ctx: Arc<Ctx<R>>,
    key: String,
    uid: String,
    pod: Arc<Pod>,
    sandbox: Option<SandboxRecord>,
    /// A finished pod's sandbox is gone.
    released: bool,
    sandbox_retry: Retry,
    sandbox_at: Option<Instant>,
    lifecycle: Option<PodLifecycle<R>>,
    /// The status last written (or read back from the server).
    posted: Option<PodStatus>,
    post_retry: Retry,
    post_at: Option<Instant>,
    runtime_retry: Retry,
    runtime_at: Option<Instant>,
    /// The runtime could not say whether containers exited (an older shim,
    /// containerd's events not up yet): look again then.
    poll_at: Option<Instant>,
    /// Succeeded or Failed: containers stay down, the sandbox is given back.
    finished: bool,
    /// The runtime's exit generation this worker has acted on.
    exits: Option<u64>,
    /// The pending wait for the runtime's next exit, kept across other
    /// wake-ups so that waking for something else costs the runtime nothing.
    exit_wait: Option<ExitWait>,
}

/// The wait for the runtime's next exit runs as a task of its own, so it
/// reaches the runtime at once even while the worker is busy (a half-sent
/// request would hold up a shim); dropped, it is aborted.
struct ExitWait(tokio::task::JoinHandle<Result<Option<u64>, ()>>);

impl Drop for ExitWait {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What woke the worker.
enum Wake {
    Msg(Option<Msg>),
    Runtime(Result<Option<u64>, ()>),
    Timer,
}

impl<R: PodRuntime + Clone> PodWorker<R> {
    fn new(ctx: Arc<Ctx<R>>, pod: Arc<Pod>) -> Self {
        let finished = matches!(
            pod.status.phase,
            Some(PodPhase::Succeeded | PodPhase::Failed)
        );
        Self {
            key: format!("{}/{}", pod.metadata.namespace, pod.metadata.name),
            uid: pod.metadata.uid.clone(),
            posted: Some(pod.status.clone()),
            pod,
            ctx,
            sandbox: None,
            released: false,
            sandbox_retry: Retry::new(SANDBOX_BACKOFF),
            sandbox_at: None,
            lifecycle: None,
            post_retry: Retry::new(RETRY_BACKOFF),
            post_at: None,
            runtime_retry: Retry::new(RETRY_BACKOFF),
            runtime_at: None,
            poll_at: None,
            finished,
            exits: None,
            exit_wait: None,
        }
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut dirty = true;
        loop {
            if dirty {
                self.ctx.wakes.syncs.fetch_add(1, Ordering::Relaxed);
                let t0 = std::time::Instant::now();
                self.sync().await;
                tracing::debug!(pod = %self.key, took_ms = t0.elapsed().as_millis() as u64, "pass");
            }
            let woke = self.wait(&mut rx).await;
            tracing::debug!(pod = %self.key, woke = match &woke {
                Wake::Msg(_) => "message",
                Wake::Runtime(_) => "runtime",
                Wake::Timer => "timer",
            }, "woke");
            match woke {
                Wake::Msg(Some(Msg::Update(p))) => {
                    dirty = self.take(p);
                    let c = if dirty {
                        &self.ctx.wakes.pod
                    } else {
                        &self.ctx.wakes.echo
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Wake::Msg(Some(Msg::Poke)) => {
                    self.ctx.wakes.poke.fetch_add(1, Ordering::Relaxed);
                    dirty = true;
                }
                Wake::Msg(Some(Msg::Gone) | None) => break,
                Wake::Runtime(r) => {
                    self.ctx.wakes.runtime.fetch_add(1, Ordering::Relaxed);
                    dirty = true;
                    match r {
                        Ok(Some(g)) => {
                            // The first generation: look once more, an exit
                            // may have come between the last list and now.
                            self.exits = Some(g);
                        }
                        // The runtime cannot tell now (an older shim,
                        // containerd's events not up yet): look again in a
                        // moment (the pass just made is the look for now).
                        Ok(None) => {
                            self.poll_at = Some(Instant::now() + POLL);
                            dirty = false;
                        }
                        Err(()) => {
                            self.exits = None;
                            self.runtime_at =
                                Some(Instant::now() + self.runtime_retry.next_delay());
                            dirty = false;
                        }
                    }
                }
                Wake::Timer => {
                    self.ctx.wakes.timer.fetch_add(1, Ordering::Relaxed);
                    dirty = true;
                }
            }
        }
        self.teardown().await;
    }

    /// Takes a new version of the pod; whether it needs a pass.
    fn take(&mut self, p: Arc<Pod>) -> bool {
        let spec_changed = p.spec != self.pod.spec;
        // downwardAPI volumes show the labels and annotations.
        let meta_changed = p.metadata.labels != self.pod.metadata.labels
            || p.metadata.annotations != self.pod.metadata.annotations;
        // Someone else wrote the status (the node controller marking the
        // pod not ready while the node was unreachable): write ours again.
        let status_changed = self
            .posted
            .as_ref()
            .is_none_or(|s| !same_status(s, &p.status));
        if status_changed {
            self.posted = Some(p.status.clone());
        }
        self.pod = p;
        spec_changed || status_changed || meta_changed
    }

    /// Waits for the next reason to act.
    async fn wait(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Wake {
        let deadline = self.next_wake();
        let listen = !self.finished && self.runtime_at.is_none() && self.poll_at.is_none();
        if !listen {
            self.exit_wait = None;
        } else if self.exit_wait.is_none()
            && let (Some(rt), Some(l)) = (self.ctx.runtime.clone(), self.lifecycle.as_ref())
        {
            let (pr, seen, key) = (l.pod_ref.clone(), self.exits, self.key.clone());
            // The first time only the current generation, at once.
            let timeout = if seen.is_some() {
                RESYNC
            } else {
                Duration::ZERO
            };
            self.exit_wait = Some(ExitWait(tokio::spawn(async move {
                rt.wait(&pr, seen, timeout).await.map_err(|e| {
                    tracing::debug!(pod = %key, error = %e, "waiting for the runtime");
                })
            })));
        }
        let exits = async {
            match self.exit_wait.as_mut() {
                Some(w) => (&mut w.0).await.unwrap_or(Err(())),
                None => std::future::pending().await,
            }
        };
        let woke = tokio::select! {
            m = rx.recv() => Wake::Msg(m),
            r = exits => Wake::Runtime(r),
            _ = tokio::time::sleep_until(deadline) => Wake::Timer,
        };
        if matches!(woke, Wake::Runtime(_)) {
            self.exit_wait = None;
        }
        woke
    }

    /// When a timer of this worker's comes next.
    fn next_wake(&mut self) -> Instant {
        let now = Instant::now();
        let containers = self.ctx.runtime.is_some() && !self.finished;
        // With containers, the wait for the runtime's next exit times out
        // after a RESYNC: that is the resync (and a runtime that cannot
        // report exits is polled through `runtime_at`).
        let mut at = now + if containers { RESYNC * 2 } else { RESYNC };
        if let Some(due) = self.lifecycle.as_ref().and_then(|l| l.next_due()) {
            at = at.min(now + Duration::from_millis(due.saturating_sub(now_ms())));
        }
        // Retry timers that came are done with: the pass just made was it.
        for t in [&mut self.runtime_at, &mut self.poll_at] {
            if t.is_some_and(|t| t <= now) {
                *t = None;
            }
        }
        for t in [self.sandbox_at, self.post_at, self.runtime_at, self.poll_at]
            .into_iter()
            .flatten()
        {
            at = at.min(t);
        }
        at
    }

    async fn sync(&mut self) {
        if self.finished {
            self.release_sandbox().await;
            return;
        }
        let Some(rec) = self.ensure_sandbox().await else {
            return;
        };
        let node_ip = self.ctx.node_ip;
        let status = match self.ctx.runtime.clone() {
            None => Some(sandbox_status(&self.pod, &rec, node_ip)),
            Some(rt) => self.sync_containers(rt, &rec).await,
        };
        if let Some(status) = status {
            let terminal = matches!(status.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
            self.post(status).await;
            if terminal && self.post_at.is_none() {
                tracing::info!(pod = %self.key, "pod finished; giving its sandbox back");
                self.finished = true;
                self.release_sandbox().await;
            }
        }
    }

    /// The sandbox, adopted or made; None (with the failure posted) if it
    /// cannot be made now.
    async fn ensure_sandbox(&mut self) -> Option<SandboxRecord> {
        if let Some(rec) = &self.sandbox {
            return Some(rec.clone());
        }
        // The node's network: nothing to make, nothing to adopt.
        if self.pod.spec.host_network {
            let rec = SandboxRecord::host(&self.pod, self.ctx.node_ip);
            self.sandbox = Some(rec.clone());
            return Some(rec);
        }
        if self.sandbox_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let sb = self.ctx.sandboxes.clone();
        let uid = self.uid.clone();
        let pod = self.pod.clone();
        let permit = self.ctx.slots.clone().acquire_owned().await.ok();
        let made = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if let Some(rec) = sb.record(&uid)? {
                if sb.alive(&rec) {
                    return Ok((rec, false));
                }
                // The namespace went (a reboot): release, then make anew.
                sb.delete(&rec.uid, &rec.netns, Some(&rec.result))?;
            }
            sb.create(&pod).map(|rec| (rec, true))
        })
        .await;
        match made {
            Ok(Ok((rec, fresh))) => {
                if fresh {
                    tracing::info!(pod = %self.key, ip = ?rec.ip, netns = %rec.netns, "sandbox ready");
                }
                self.sandbox_at = None;
                self.sandbox_retry.reset();
                self.sandbox = Some(rec.clone());
                Some(rec)
            }
            Ok(Err(e)) => {
                let delay = self.sandbox_retry.next_delay();
                tracing::warn!(pod = %self.key, error = %e, attempts = self.sandbox_retry.failures(), retry_in = ?delay, "sandbox creation failed");
                self.sandbox_at = Some(Instant::now() + delay);
                let st = failed_status(&self.pod, &e.to_string(), self.ctx.node_ip);
                self.post(st).await;
                None
            }
            Err(e) => {
                tracing::error!(pod = %self.key, error = %e, "sandbox task failed");
                self.sandbox_at = Some(Instant::now() + self.sandbox_retry.next_delay());
                None
            }
        }
    }

    /// One pass over the containers; their status, or None after an error
    /// (retried).
    async fn sync_containers(&mut self, rt: R, rec: &SandboxRecord) -> Option<PodStatus> {
        let node_ip = self.ctx.node_ip;
        let with_ips = |p: &Pod| {
            let mut p = p.clone();
            if let Some(ip) = rec.ip {
                p.status.pod_ip = ip.to_string();
            }
            p.status.host_ip = node_ip.to_string();
            p
        };
        match &mut self.lifecycle {
            Some(l) => l.update(with_ips(&self.pod)),
            None => {
                let p = with_ips(&self.pod);
                // A hostNetwork pod's probes dial from the agent's own
                // namespace, the node's.
                let netns = (!rec.is_host()).then(|| rec.netns_path());
                let pr = PodRef::of(&p, netns.as_deref());
                self.ctx
                    .registry
                    .lock()
                    .await
                    .insert(self.key.clone(), pr.clone());
                self.lifecycle = Some(
                    PodLifecycle::new(rt, p, pr, self.ctx.lifecycle.clone())
                        .with_sources(self.ctx.refs.clone())
                        .with_events(self.ctx.events.clone()),
                );
            }
        }
        let l = self.lifecycle.as_mut().expect("made above");
        match l.sync().await {
            Ok(p) => {
                self.runtime_retry.reset();
                self.runtime_at = None;
                let mut st = p.status.clone();
                st.host_ip = node_ip.to_string();
                Some(st)
            }
            Err(e) => {
                let delay = self.runtime_retry.next_delay();
                tracing::warn!(pod = %self.key, error = %e, retry_in = ?delay, "pod sync");
                self.exits = None;
                self.runtime_at = Some(Instant::now() + delay);
                None
            }
        }
    }

    /// Writes `status` unless it is what was last written.
    async fn post(&mut self, status: PodStatus) {
        if self
            .posted
            .as_ref()
            .is_some_and(|s| same_status(s, &status))
        {
            self.post_at = None;
            return;
        }
        let mut p = (*self.pod).clone();
        p.status = status;
        // Only this worker writes its pod's status: no optimistic check.
        p.metadata.resource_version.clear();
        match self.ctx.status.write(&p).await {
            Ok(()) => {
                self.posted = Some(p.status);
                self.post_retry.reset();
                self.post_at = None;
            }
            // Deleted: the pods reconciler will say so.
            Err(WriteError::NotFound) => self.post_at = None,
            Err(e) => {
                let delay = self.post_retry.next_delay();
                tracing::warn!(pod = %self.key, error = %e, retry_in = ?delay, "posting pod status");
                self.post_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Gives the sandbox back (CNI DEL, namespace, record), retrying on the
    /// worker's timer until it is gone.
    async fn release_sandbox(&mut self) {
        if self.released || self.sandbox_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let rec = match self.sandbox.take() {
            Some(r) => Some(r),
            None => {
                let sb = self.ctx.sandboxes.clone();
                let uid = self.uid.clone();
                tokio::task::spawn_blocking(move || sb.record(&uid))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
            }
        };
        let Some(rec) = rec else {
            self.sandbox_at = None;
            self.released = true;
            return;
        };
        if let Err(e) = delete_sandbox(&self.ctx.sandboxes, &rec).await {
            let delay = self.sandbox_retry.next_delay();
            tracing::warn!(pod = %self.key, error = %e, retry_in = ?delay, "removing sandbox; will retry");
            self.sandbox = Some(rec);
            self.sandbox_at = Some(Instant::now() + delay);
        } else {
            self.sandbox_at = None;
            self.released = true;
        }
    }

    /// The pod left: containers first (they keep their network through
    /// their grace period), then the sandbox.
    async fn teardown(&mut self) {
        if let Some(l) = self.lifecycle.as_mut() {
            tracing::info!(pod = %self.key, "stopping the pod's containers");
            if let Err(e) = l.terminate().await {
                tracing::warn!(pod = %self.key, error = %e, "terminating pod");
            }
        } else if let Some(rt) = &self.ctx.runtime {
            // Never synced here (e.g. adopted and deleted at once): the
            // runtime may still hold it.
            let pr = PodRef::of(&self.pod, None);
            remove_held(rt.clone(), &self.pod, pr, self.ctx.lifecycle.clone()).await;
        }
        unregister(&self.ctx.registry, &self.key, &self.uid).await;
        let sb = self.ctx.sandboxes.clone();
        let uid = self.uid.clone();
        let rec = match self.sandbox.take() {
            Some(r) => Some(r),
            None => tokio::task::spawn_blocking(move || sb.record(&uid))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
        };
        if let Some(rec) = rec {
            remove_sandbox_retrying(&self.ctx.sandboxes, &rec, &self.key).await;
        }
        tracing::info!(pod = %self.key, "pod removed from this node");
    }
}

/// Tears down what a pod nobody owns left behind: its containers (if the
/// runtime holds any), then its sandbox.
pub async fn remove_orphan<R: PodRuntime + Clone>(ctx: Arc<Ctx<R>>, o: Orphan) {
    tracing::info!(pod = %o.key, uid = %o.uid, "removing a pod no longer bound to this node");
    if let (Some(rt), Some(held)) = (&ctx.runtime, &o.held) {
        let pod = Pod {
            metadata: keel_api::ObjectMeta {
                name: held.name.clone(),
                namespace: held.namespace.clone(),
                uid: held.uid.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        remove_held(rt.clone(), &pod, held.clone(), ctx.lifecycle.clone()).await;
    }
    if let Some(rec) = &o.record {
        remove_sandbox_retrying(&ctx.sandboxes, rec, &o.key).await;
    }
}

/// Stops and removes whatever the runtime holds of `pod`.
async fn remove_held<R: PodRuntime + Clone>(rt: R, pod: &Pod, pr: PodRef, cfg: WorkerConfig) {
    let key = pr.key();
    let mut l = PodLifecycle::new(rt, pod.clone(), pr, cfg);
    if let Err(e) = l.terminate().await {
        tracing::warn!(pod = %key, error = %e, "removing the pod's containers");
    }
}

async fn unregister(registry: &Registry, key: &str, uid: &str) {
    let mut r = registry.lock().await;
    if r.get(key).is_some_and(|p| p.uid == uid) {
        r.remove(key);
    }
}

async fn delete_sandbox(
    sandboxes: &Arc<dyn SandboxOps>,
    rec: &SandboxRecord,
) -> Result<(), SandboxError> {
    // The node's network is not the pod's to give back (no CNI DEL).
    if rec.is_host() {
        return Ok(());
    }
    let sb = sandboxes.clone();
    let rec = rec.clone();
    tokio::task::spawn_blocking(move || sb.delete(&rec.uid, &rec.netns, Some(&rec.result)))
        .await
        .unwrap_or_else(|e| Err(SandboxError::Task(e.to_string())))
}

/// Deletes a sandbox, retrying with back-off a bounded number of times
/// (after that the periodic orphan cleanup finds its record again).
async fn remove_sandbox_retrying(sandboxes: &Arc<dyn SandboxOps>, rec: &SandboxRecord, key: &str) {
    let mut retry = Retry::new(SANDBOX_BACKOFF);
    loop {
        match delete_sandbox(sandboxes, rec).await {
            Ok(()) => {
                tracing::info!(pod = %key, "sandbox removed");
                return;
            }
            Err(e) if retry.failures() + 1 >= TEARDOWN_ATTEMPTS => {
                tracing::error!(pod = %key, error = %e, "removing sandbox failed; left to the orphan cleanup");
                return;
            }
            Err(e) => {
                let delay = retry.next_delay();
                tracing::warn!(pod = %key, error = %e, retry_in = ?delay, "removing sandbox; will retry");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
