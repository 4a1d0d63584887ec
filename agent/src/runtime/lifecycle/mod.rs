//! The containers of one pod on a [`PodRuntime`] (the kubelet's
//! `SyncPod` for containers): each [`PodLifecycle::sync`] lists the pod's
//! containers, plans ([`plan`]), applies the plan (pull, resolve, start,
//! stop with grace, remove), runs the probes that are due and computes the
//! pod's status. [`PodLifecycle::terminate`] stops everything gracefully
//! and removes the pod. The caller — the pod's worker in `crate::pods`, or
//! a test — calls `sync` again when something happened: the pod changed,
//! the runtime reports an exit, or [`PodLifecycle::next_due`] came.

pub mod plan;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Duration,
};

use keel_api::{Pod, recorder::Recorder};

use self::plan::{Action, RestartState};
use super::{
    backend::{Observed, PodRef, PodRuntime, PullAuth, RuntimeError},
    container::{
        ConfigError,
        env::{Fetched, NoSources, Sources},
        projection,
        resolve::{Kind, resolve},
        volumes,
    },
    images::credentials,
    probe::{ProbeKind, Prober},
    restart::Backoff,
    shim::proto::now_ms,
    status::{self, ContainerView},
};

/// A container waiting with `CreateContainerConfigError` (a ConfigMap or
/// Secret not there yet) is tried again this soon, without growing
/// back-off: it starts by itself shortly after the object appears.
const CONFIG_RETRY: Duration = Duration::from_secs(2);

/// SIGTERM, then SIGKILL.
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// Tunables (the kubelet's values by default).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            backoff_base: super::restart::BACKOFF_BASE,
            backoff_max: super::restart::BACKOFF_MAX,
        }
    }
}

/// Per container name: why it is not running, if it is waiting.
type Waiting = BTreeMap<(bool, String), (String, String)>;

pub struct PodLifecycle<R: PodRuntime> {
    runtime: R,
    /// `start_pod` succeeded and nothing failed since (it is not asked again).
    pod_started: bool,
    pub pod_ref: PodRef,
    pod: Pod,
    cfg: WorkerConfig,
    restarts: BTreeMap<String, RestartState>,
    probers: BTreeMap<String, Prober>,
    kills: BTreeMap<String, String>,
    /// Container id → when SIGKILL follows the SIGTERM already sent.
    stopping: BTreeMap<String, u64>,
    waiting: Waiting,
    /// Last exit before the current attempt, per (init, name).
    last_exit: BTreeMap<(bool, String), (u64, super::shim::Exit)>,
    /// Image pull / create failures: no retry before this (ms).
    retry_at: BTreeMap<(bool, String), (u64, Backoff)>,
    pod_ip: Option<IpAddr>,
    /// When the next sync is due (ms since the epoch); None: only when
    /// something happens.
    next_ms: Option<u64>,
    /// ConfigMaps, Secrets and Services for the containers' environment.
    sources: Arc<dyn Sources>,
    /// What the configMap/secret volumes were last brought up to date
    /// from ([`projection::fingerprint`]).
    volumes_from: String,
    /// Where the pod's Events go (the kubelet's: Pulling, Pulled, Created,
    /// Started, Killing, Unhealthy, BackOff, Failed).
    events: Recorder,
}

impl<R: PodRuntime + Clone> PodLifecycle<R> {
    pub fn new(runtime: R, pod: Pod, pod_ref: PodRef, cfg: WorkerConfig) -> Self {
        let pod_ip = pod.status.pod_ip.parse().ok();
        Self {
            runtime,
            pod_started: false,
            pod_ref,
            pod,
            cfg,
            restarts: BTreeMap::new(),
            probers: BTreeMap::new(),
            kills: BTreeMap::new(),
            stopping: BTreeMap::new(),
            waiting: BTreeMap::new(),
            last_exit: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            pod_ip,
            next_ms: None,
            sources: Arc::new(NoSources),
            volumes_from: String::new(),
            events: Recorder::disabled("kubelet"),
        }
    }

    /// Records the pod's Events with `events` (none are recorded by default).
    pub fn with_events(mut self, events: Recorder) -> Self {
        self.events = events;
        self
    }

    /// Records an event about container `name` of the pod (the kubelet's
    /// `fieldPath`: `spec.containers{name}`).
    fn event(&self, init: bool, name: &str, warning: bool, reason: &str, message: String) {
        let mut r = keel_api::recorder::correlate::reference(&self.pod);
        if !name.is_empty() {
            r.field_path = if init {
                format!("spec.initContainers{{{name}}}")
            } else {
                format!("spec.containers{{{name}}}")
            };
        }
        if warning {
            self.events.warning(r, reason, message);
        } else {
            self.events.normal(r, reason, message);
        }
    }

    /// Where the containers' ConfigMaps, Secrets and Services come from
    /// (none by default).
    pub fn with_sources(mut self, sources: Arc<dyn Sources>) -> Self {
        self.sources = sources;
        self
    }

    /// Takes a new version of the pod (spec unchanged; status fields such
    /// as podIP may have been filled in).
    pub fn update(&mut self, pod: Pod) {
        if let Ok(ip) = pod.status.pod_ip.parse() {
            self.pod_ip = Some(ip);
        }
        let status = std::mem::take(&mut self.pod.status);
        self.pod = pod;
        self.pod.status = status;
        if let Some(ip) = self.pod_ip {
            self.pod.status.pod_ip = ip.to_string();
        }
    }

    pub fn pod(&self) -> &Pod {
        &self.pod
    }

    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// When a sync is next due by the clock alone (a probe, a back-off
    /// ending, a grace period running out), in ms since the epoch; None:
    /// only when the pod changes or a container exits.
    pub fn next_due(&self) -> Option<u64> {
        self.next_ms
    }

    /// How long until the next sync is useful, for callers that poll
    /// (at most 1 s).
    pub fn next_sync(&self) -> Duration {
        let due = self.next_ms.unwrap_or(now_ms() + 1000);
        Duration::from_millis(due.saturating_sub(now_ms()).clamp(20, 1000))
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.cfg.backoff_base, self.cfg.backoff_max)
    }

    /// One round: observe, plan, act, probe, compute status. Returns the
    /// pod with its new status.
    pub async fn sync(&mut self) -> Result<&Pod, RuntimeError> {
        let result = self.try_sync().await;
        if result.is_err() {
            // Maybe the runtime lost the pod (a killed shim): start it again.
            self.pod_started = false;
        }
        result?;
        Ok(&self.pod)
    }

    async fn try_sync(&mut self) -> Result<(), RuntimeError> {
        if !self.pod_started {
            self.runtime.start_pod(&self.pod_ref).await?;
            self.pod_started = true;
        }
        let observed = match self.runtime.list(&self.pod_ref).await {
            Ok(o) => o,
            // The runtime may have lost the pod since it was started (a
            // killed shim): start it again, once, and look again.
            Err(e) => {
                tracing::info!(pod = %self.pod_ref.key(), error = %e, "the runtime lost the pod; starting it again");
                self.runtime.start_pod(&self.pod_ref).await?;
                self.runtime.list(&self.pod_ref).await?
            }
        };
        let now = now_ms();
        // configMap/secret volumes follow their objects while containers
        // run; only a change of an object makes the files be looked at.
        let fp = projection::fingerprint(&self.pod, &*self.sources);
        if fp != self.volumes_from {
            let errs = volumes::refresh_projected(
                &self.pod,
                &self.runtime.pod_dir(&self.pod_ref),
                &crate::runtime::container::env::NodeFacts::this_node(),
                &*self.sources,
            );
            for e in &errs {
                tracing::warn!(pod = %self.pod_ref.key(), "keeping a volume's files as they were: {e}");
            }
            if errs.is_empty() {
                self.volumes_from = fp;
            }
        }
        self.escalate(&observed, now).await;
        let base = self.cfg.clone();
        // Running sidecars whose startup probe (if any) has succeeded.
        let started: std::collections::BTreeSet<String> = observed
            .iter()
            .filter(|o| o.kind_init && o.exit.is_none())
            .filter(|o| {
                self.pod
                    .spec
                    .init_containers
                    .iter()
                    .find(|c| c.name == o.name)
                    .is_some_and(|c| {
                        c.is_sidecar()
                            && self
                                .probers
                                .get(&o.id)
                                .map_or_else(|| Prober::new(c).started(), Prober::started)
                    })
            })
            .map(|o| o.id.clone())
            .collect();
        let p = plan::plan(
            &self.pod,
            &observed,
            now,
            &self.kills,
            &started,
            &mut self.restarts,
            || Backoff::new(base.backoff_base, base.backoff_max),
        );
        for (name, left) in &p.backing_off {
            let key_init = self
                .pod
                .spec
                .init_containers
                .iter()
                .any(|c| &c.name == name)
                && !p.initialized;
            // Repeats fold into one Event (count, lastTimestamp).
            self.event(
                key_init,
                name,
                true,
                "BackOff",
                format!(
                    "Back-off restarting failed container {name} in pod {}_{}({})",
                    self.pod_ref.name, self.pod_ref.namespace, self.pod.metadata.uid
                ),
            );
            self.waiting.insert(
                (key_init, name.clone()),
                (
                    "CrashLoopBackOff".into(),
                    format!(
                        "back-off {}s restarting failed container={name} pod={}_{}",
                        left.div_ceil(1000),
                        self.pod_ref.name,
                        self.pod_ref.namespace
                    ),
                ),
            );
        }
        let mut next: Option<u64> = None;
        let mut soon = |at: u64| next = Some(next.map_or(at, |n| n.min(at)));
        for left in p.backing_off.values() {
            soon(now + left);
        }
        let acted = !p.actions.is_empty();
        for a in p.actions {
            match a {
                Action::Remove { id } => {
                    if let Err(e) = self.runtime.remove_container(&self.pod_ref, &id).await {
                        tracing::warn!(pod = %self.pod_ref.key(), %id, "removing container: {e}");
                    }
                    self.probers.remove(&id);
                    self.kills.remove(&id);
                }
                Action::Kill { id, reason } => {
                    if !self.stopping.contains_key(&id) {
                        tracing::info!(pod = %self.pod_ref.key(), %id, "{reason}; stopping container");
                        if let Some(o) = observed.iter().find(|o| o.id == id) {
                            self.event(
                                o.kind_init,
                                &o.name,
                                false,
                                "Killing",
                                format!("Stopping container {}: {reason}", o.name),
                            );
                        }
                        self.stop(&id, now).await;
                    }
                }
                Action::Start {
                    kind,
                    index,
                    attempt,
                } => self.start(&observed, kind, index, attempt, now).await,
            }
        }
        // What the actions changed (only then is a second look needed).
        let observed = if acted {
            self.runtime.list(&self.pod_ref).await?
        } else {
            observed
        };
        // Started, stopping or backing off now: those set their own times.
        for (at, _) in self.retry_at.values() {
            soon(*at);
        }
        for deadline in self.stopping.values() {
            soon(*deadline);
        }
        self.next_ms = next;
        self.probe(&observed).await;
        self.status(&observed, p.init_failed);
        Ok(())
    }

    async fn stop(&mut self, id: &str, now: u64) {
        let grace = self
            .pod
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30)
            .max(0) as u64;
        let sig = if grace == 0 { SIGKILL } else { SIGTERM };
        if let Err(e) = self.runtime.signal(&self.pod_ref, id, sig).await {
            tracing::warn!(pod = %self.pod_ref.key(), %id, "signalling: {e}");
        }
        self.stopping.insert(id.to_string(), now + grace * 1000);
    }

    /// SIGKILL whatever outlived its grace period.
    async fn escalate(&mut self, observed: &[Observed], now: u64) {
        let mut done = Vec::new();
        for (id, deadline) in &self.stopping {
            match observed.iter().find(|o| &o.id == id) {
                Some(o) if o.exit.is_none() => {
                    if now >= *deadline {
                        let _ = self.runtime.signal(&self.pod_ref, id, SIGKILL).await;
                    }
                }
                _ => done.push(id.clone()),
            }
        }
        for id in done {
            self.stopping.remove(&id);
        }
    }

    async fn start(
        &mut self,
        observed: &[Observed],
        kind: Kind,
        index: usize,
        attempt: u32,
        now: u64,
    ) {
        let init = kind == Kind::Init;
        let c = if init {
            self.pod.spec.init_containers[index].clone()
        } else {
            self.pod.spec.containers[index].clone()
        };
        let key = (init, c.name.clone());
        if let Some((at, _)) = self.retry_at.get(&key)
            && now < *at
        {
            return;
        }
        // Remember the exit being replaced, for lastState.
        if let (Some(prev), _) = plan::latest(observed, init, &c.name)
            && let Some(e) = &prev.exit
        {
            self.last_exit
                .insert(key.clone(), (prev.started_at_ms, e.clone()));
        }
        let result = async {
            let auth = self.pull_auth()?;
            let policy = c.effective_pull_policy();
            // The kubelet's image events: already present, or Pulling then
            // Pulled with the time it took (a failure is recorded below).
            let present =
                policy != keel_api::pod::PullPolicy::Always && self.runtime.image_present(&c.image);
            if present {
                self.event(
                    init,
                    &c.name,
                    false,
                    "Pulled",
                    format!("Container image {:?} already present on machine", c.image),
                );
            } else if policy != keel_api::pod::PullPolicy::Never {
                self.event(
                    init,
                    &c.name,
                    false,
                    "Pulling",
                    format!("Pulling image {:?}", c.image),
                );
            }
            let pull_started = std::time::Instant::now();
            let image = self.runtime.ensure_image(&c.image, policy, &auth).await?;
            if !present && policy != keel_api::pod::PullPolicy::Never {
                let took = pull_started.elapsed();
                self.event(
                    init,
                    &c.name,
                    false,
                    "Pulled",
                    format!(
                        "Successfully pulled image {:?} in {:.3}s",
                        c.image,
                        took.as_secs_f64()
                    ),
                );
            }
            let req = resolve(
                &self.pod,
                kind,
                index,
                &image.config,
                self.runtime.node_config(),
                &self.runtime.pod_dir(&self.pod_ref),
                self.pod_ref.netns.as_deref(),
                attempt,
                &*self.sources,
            )?;
            self.runtime
                .start_container(&self.pod_ref, req, &image)
                .await
        }
        .await;
        match result {
            Ok(o) => {
                self.waiting.remove(&key);
                self.retry_at.remove(&key);
                self.probers.insert(o.id.clone(), Prober::new(&c));
                self.event(
                    init,
                    &c.name,
                    false,
                    "Created",
                    format!("Created container {}", c.name),
                );
                self.event(
                    init,
                    &c.name,
                    false,
                    "Started",
                    format!("Started container {}", c.name),
                );
            }
            Err(e) => {
                let reason = match e.reason() {
                    "ErrImagePull"
                        if self.waiting.get(&key).is_some_and(|w| {
                            w.0 == "ErrImagePull" || w.0 == "ImagePullBackOff"
                        }) =>
                    {
                        "ImagePullBackOff"
                    }
                    r => r,
                };
                tracing::warn!(pod = %self.pod_ref.key(), container = %c.name, "{reason}: {e}");
                // The kubelet's events for each: the pull failure and
                // "Error: ErrImagePull", the back-off, or "Error: <why>"
                // (CreateContainerConfigError and start failures).
                match reason {
                    "ImagePullBackOff" => {
                        self.event(
                            init,
                            &c.name,
                            false,
                            "BackOff",
                            format!("Back-off pulling image {:?}", c.image),
                        );
                        self.event(init, &c.name, true, "Failed", format!("Error: {reason}"));
                    }
                    "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName" => {
                        self.event(
                            init,
                            &c.name,
                            true,
                            "Failed",
                            format!("Failed to pull image {:?}: {e}", c.image),
                        );
                        self.event(init, &c.name, true, "Failed", format!("Error: {reason}"));
                    }
                    _ => self.event(init, &c.name, true, "Failed", format!("Error: {e}")),
                }
                self.waiting
                    .insert(key.clone(), (reason.to_string(), e.to_string()));
                let base = self.backoff();
                let entry = self.retry_at.entry(key).or_insert((0, base));
                let wait = if matches!(e, RuntimeError::Config(_)) {
                    CONFIG_RETRY
                } else {
                    entry.1.on_exit(Duration::ZERO)
                };
                entry.0 = now + wait.as_millis() as u64;
            }
        }
    }

    /// Registry credentials from the pod's imagePullSecrets, in order (the
    /// first Secret naming a registry wins). A Secret that is missing or
    /// unreadable is skipped with a warning and the pull goes on without
    /// it, as the kubelet does; one not fetched yet is waited for.
    fn pull_auth(&self) -> Result<PullAuth, RuntimeError> {
        let mut out = PullAuth::new();
        let ns = &self.pod.metadata.namespace;
        for r in &self.pod.spec.image_pull_secrets {
            match self.sources.secret(ns, &r.name) {
                Fetched::Found(s) => match credentials::from_secret(&s) {
                    Ok(creds) => {
                        for (k, v) in creds {
                            out.entry(k).or_insert(v);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(pod = %self.pod_ref.key(), "imagePullSecrets: {e}");
                    }
                },
                Fetched::Missing => {
                    tracing::warn!(pod = %self.pod_ref.key(), "imagePullSecrets: secret {ns}/{} is not there; pulling without it", r.name);
                }
                Fetched::Pending => {
                    return Err(ConfigError::new(
                        "spec.imagePullSecrets",
                        format!(
                            "secret {ns}/{} is not fetched from keel-control yet",
                            r.name
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(out)
    }

    async fn probe(&mut self, observed: &[Observed]) {
        let now = now_ms();
        let specs: BTreeMap<(bool, String), keel_api::pod::Container> = self
            .pod
            .spec
            .init_containers
            .iter()
            .map(|c| ((true, c.name.clone()), c.clone()))
            .chain(
                self.pod
                    .spec
                    .containers
                    .iter()
                    .map(|c| ((false, c.name.clone()), c.clone())),
            )
            .collect();
        for o in observed {
            if o.exit.is_some() {
                continue;
            }
            // App containers and sidecars are probed.
            let Some(c) = specs
                .get(&(o.kind_init, o.name.clone()))
                .filter(|c| !o.kind_init || c.is_sidecar())
            else {
                continue;
            };
            if !self.probers.contains_key(&o.id) {
                // Not started by this worker: adopted from before an agent
                // restart. Keep what the last posted status said.
                let posted = if o.kind_init {
                    &self.pod.status.init_container_statuses
                } else {
                    &self.pod.status.container_statuses
                };
                let posted = posted
                    .iter()
                    .find(|s| s.name == o.name && s.container_id == format!("keel://{}", o.id));
                let prober = match posted {
                    Some(s) => Prober::adopted(c, s.started.unwrap_or(false), s.ready),
                    None => Prober::new(c),
                };
                self.probers.insert(o.id.clone(), prober);
            }
            let prober = self.probers.get_mut(&o.id).expect("inserted above");
            let at = now.saturating_sub(o.started_at_ms);
            for (kind, probe) in prober.due(at) {
                let host = self.pod_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                let outcome = self
                    .runtime
                    .probe(&self.pod_ref, &o.id, c, &probe, host)
                    .await;
                let prober = self.probers.get_mut(&o.id).expect("inserted above");
                prober.record(kind, outcome.ok, at, &outcome.detail);
                if !outcome.ok {
                    // kubectl describe's "Readiness probe failed: …"; repeats
                    // are aggregated into one Event's count.
                    let kind_name = match kind {
                        ProbeKind::Startup => "Startup",
                        ProbeKind::Liveness => "Liveness",
                        ProbeKind::Readiness => "Readiness",
                    };
                    self.event(
                        o.kind_init,
                        &o.name,
                        true,
                        "Unhealthy",
                        format!("{kind_name} probe failed: {}", outcome.detail),
                    );
                }
                let prober = self.probers.get_mut(&o.id).expect("inserted above");
                tracing::debug!(pod = %self.pod_ref.key(), container = %o.name, ?kind, ok = outcome.ok, since_start_ms = at, next_ms = ?prober.next_due(), "probe: {}", outcome.detail);
                if kind != ProbeKind::Readiness && !outcome.ok {
                    tracing::info!(pod = %self.pod_ref.key(), container = %o.name, ?kind, "probe failed: {}", outcome.detail);
                }
                if let Some(msg) = &prober.kill {
                    self.kills.insert(o.id.clone(), msg.clone());
                }
            }
            if let Some(d) = self.probers.get(&o.id).and_then(Prober::next_due) {
                let at = o.started_at_ms + d;
                self.next_ms = Some(self.next_ms.map_or(at, |n| n.min(at)));
            }
        }
    }

    fn view(
        &self,
        observed: &[Observed],
        init: bool,
        c: &keel_api::pod::Container,
    ) -> ContainerView {
        let (last, _) = plan::latest(observed, init, &c.name);
        let key = (init, c.name.clone());
        let prober = last.and_then(|o| self.probers.get(&o.id));
        let sidecar = init && c.is_sidecar();
        let will_restart = last.and_then(|o| o.exit.as_ref()).is_some_and(|e| {
            if sidecar {
                return !plan::main_done(&self.pod, observed);
            }
            super::restart::should_restart(self.pod.spec.restart_policy, e.code)
                && (!init || e.code != 0)
        });
        let mut waiting = self.waiting.get(&key).cloned();
        if let Some(o) = last
            && o.exit.is_none()
            && waiting.as_ref().is_some_and(|w| w.0 == "CrashLoopBackOff")
        {
            waiting = None;
        }
        if last.is_some_and(|o| o.exit.is_some()) && !will_restart {
            waiting = None;
        }
        ContainerView {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: last.map(|o| o.image_id.clone()).unwrap_or_default(),
            container_id: last.map(|o| o.id.clone()).unwrap_or_default(),
            running_since_ms: last.filter(|o| o.exit.is_none()).map(|o| o.started_at_ms),
            exit: last.and_then(|o| o.exit.clone().map(|e| (o.started_at_ms, e))),
            last_exit: self.last_exit.get(&key).cloned(),
            waiting,
            will_restart,
            ready: prober.is_none_or(Prober::ready) && (!init || sidecar),
            sidecar,
            started: prober.is_none_or(Prober::started),
            restart_count: last.map(|o| o.attempt).unwrap_or(0),
        }
    }

    fn status(&mut self, observed: &[Observed], init_failed: bool) {
        let init: Vec<ContainerView> = self
            .pod
            .spec
            .init_containers
            .iter()
            .map(|c| self.view(observed, true, c))
            .collect();
        let app: Vec<ContainerView> = self
            .pod
            .spec
            .containers
            .iter()
            .map(|c| self.view(observed, false, c))
            .collect();
        let mut pod = self.pod.clone();
        status::apply(&mut pod, &init, &app, init_failed);
        self.pod.status = pod.status;
    }

    /// Stops every container (SIGTERM, SIGKILL after the pod's grace
    /// period), then removes the pod from the runtime. Bounded by the grace
    /// period plus a few seconds.
    pub async fn terminate(&mut self) -> Result<(), RuntimeError> {
        let grace = self
            .pod
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30)
            .max(0) as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(grace + 10);
        let now = now_ms();
        let observed = match self.runtime.list(&self.pod_ref).await {
            Ok(o) => o,
            Err(_) => return self.runtime.remove_pod(&self.pod_ref).await,
        };
        // Main containers first; sidecars once those have exited (as the
        // kubelet stops them: after the containers they serve).
        let sidecars: std::collections::BTreeSet<String> = self
            .pod
            .spec
            .init_containers
            .iter()
            .filter(|c| c.is_sidecar())
            .map(|c| c.name.clone())
            .collect();
        let is_sidecar = |o: &Observed| o.kind_init && sidecars.contains(&o.name);
        let mut sidecars_stopped = false;
        for o in observed
            .iter()
            .filter(|o| o.exit.is_none() && !is_sidecar(o))
        {
            self.event(
                o.kind_init,
                &o.name,
                false,
                "Killing",
                format!("Stopping container {}", o.name),
            );
            self.stop(&o.id, now).await;
        }
        loop {
            let observed = self.runtime.list(&self.pod_ref).await?;
            if observed.iter().all(|o| o.exit.is_some()) {
                break;
            }
            if !sidecars_stopped && observed.iter().all(|o| o.exit.is_some() || is_sidecar(o)) {
                sidecars_stopped = true;
                let now = now_ms();
                for o in observed.iter().filter(|o| o.exit.is_none()) {
                    self.event(
                        true,
                        &o.name,
                        false,
                        "Killing",
                        format!("Stopping container {}", o.name),
                    );
                    self.stop(&o.id, now).await;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RuntimeError::Timeout {
                    pod: self.pod_ref.key(),
                    what: "stopping the containers (grace period, then SIGKILL)",
                    after: Duration::from_secs(grace + 10),
                });
            }
            self.escalate(&observed, now_ms()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.runtime.remove_pod(&self.pod_ref).await
    }
}

#[cfg(test)]
mod tests;
