//! The load-balancer reconciler: the single writer of the LB maps, run by
//! the agent's reconcile driver with Service keys (`namespace/name`).
//!
//! Each sync recomputes the desired frontends of the Services whose object
//! or Endpoints changed (the keys the view's subscription hands it), plans
//! the delta for the frontends that touched, and applies it. Nothing is
//! planned before the view is synced (every informer listed once), so a
//! restart never deletes what it has not seen yet. A full pass — the first
//! after start (adoption of the pinned maps), every resync, and the retry
//! of a failed apply — recomputes every Service, re-reads the maps from the
//! kernel when asked to, and compares everything.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use super::{
    apply::{ApplyError, apply, observe},
    desired::Desired,
    maps::{LbMaps, MapsError},
    model::{self, Frontend, NodeInfo},
    observed::Observed,
    plan::{Scope, Summary, plan},
};
use crate::{
    reconcile::{self, Batch, Handle, Reconcile, Report, backoff::Backoff},
    sync::{View, Views},
};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading the LB maps: {0}")]
    Read(#[source] Box<MapsError>),
    #[error(transparent)]
    Apply(#[from] Box<ApplyError>),
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Services whose desired state was recomputed.
    pub services: usize,
    /// Frontends compared.
    pub frontends: usize,
    pub ops: usize,
    pub created: usize,
    pub replaced: usize,
    pub header_only: usize,
    pub deleted: usize,
    /// A full comparison (start, resync, retry), not a delta.
    pub full: bool,
    /// Planning and applying, in microseconds.
    pub plan_us: u64,
    pub apply_us: u64,
}

/// What the reconciler reports (the local API's `/lb/status`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LbStatus {
    pub node: String,
    /// The view was synced and at least one sync succeeded.
    pub programmed: bool,
    pub frontends: usize,
    pub backends: usize,
    pub syncs: u64,
    pub last_sync: Option<SyncReport>,
    /// Seconds since the epoch of the last successful sync.
    pub last_sync_at: Option<u64>,
    pub last_error: Option<String>,
    /// Fields skipped and frontends claimed twice, per Service.
    pub problems: Vec<String>,
}

/// State shared with the local API: the status and, per frontend, the
/// Service it belongs to (for dumps).
#[derive(Debug, Default)]
pub struct Shared {
    pub status: LbStatus,
    pub services: BTreeMap<Frontend, String>,
}

pub struct Reconciler<M: LbMaps> {
    maps: M,
    node: NodeInfo,
    observed: Observed,
    desired: Desired,
    /// The desired state's problems as last listed, and the generation of
    /// the desired state they were listed at (listing them costs a walk).
    problems: (u64, Vec<String>),
    /// The next sync compares everything (after start, a resync, an error).
    full: bool,
    /// ... and re-reads the maps first.
    reread: bool,
    shared: Arc<RwLock<Shared>>,
    /// Where the addresses NodePorts answer on may be changed from outside
    /// (read at each sync; a change is a full pass).
    node_port_ips: Arc<RwLock<Vec<std::net::Ipv4Addr>>>,
}

impl<M: LbMaps> Reconciler<M> {
    /// Adopts whatever the maps hold.
    pub fn new(maps: M, node: NodeInfo) -> Result<Self, ReconcileError> {
        let observed = observe(&maps).map_err(|e| ReconcileError::Read(Box::new(e)))?;
        let shared = Arc::new(RwLock::new(Shared {
            status: LbStatus {
                node: node.name.clone(),
                ..Default::default()
            },
            services: BTreeMap::new(),
        }));
        Ok(Self {
            maps,
            node_port_ips: Arc::new(RwLock::new(node.node_port_ips.clone())),
            node,
            observed,
            desired: Desired::default(),
            problems: (u64::MAX, Vec::new()),
            full: true,
            reread: false,
            shared,
        })
    }

    pub fn shared(&self) -> Arc<RwLock<Shared>> {
        self.shared.clone()
    }

    /// The addresses NodePorts answer on, to change from outside.
    pub fn node_port_ips(&self) -> Arc<RwLock<Vec<std::net::Ipv4Addr>>> {
        self.node_port_ips.clone()
    }

    pub fn maps(&self) -> &M {
        &self.maps
    }

    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// Asks the next sync to re-read the maps and compare everything.
    pub fn request_resync(&mut self) {
        self.full = true;
        self.reread = true;
    }

    /// One sync of the Services `keys` name (everything with `all`)
    /// against `view`; None when the view is not synced yet.
    pub fn sync(
        &mut self,
        view: &View,
        keys: &BTreeSet<String>,
        all: bool,
    ) -> Result<Option<SyncReport>, ReconcileError> {
        if !view.synced {
            return Ok(None);
        }
        let result = self.try_sync(view, keys, all);
        if self.desired.generation() != self.problems.0 {
            self.problems = (self.desired.generation(), self.desired.problems());
        }
        let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
        let s = &mut shared.status;
        s.frontends = self.observed.frontends.len();
        s.backends = self.observed.backends.len();
        s.problems = self.problems.1.clone();
        match &result {
            Ok(report) => {
                s.programmed = true;
                s.syncs += 1;
                s.last_sync = Some(*report);
                s.last_sync_at = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs());
                s.last_error = None;
            }
            Err(e) => s.last_error = Some(e.to_string()),
        }
        result.map(Some)
    }

    fn try_sync(
        &mut self,
        view: &View,
        keys: &BTreeSet<String>,
        all: bool,
    ) -> Result<SyncReport, ReconcileError> {
        let ips = self
            .node_port_ips
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if ips != self.node.node_port_ips {
            self.node.node_port_ips = ips;
            self.full = true;
        }
        if self.reread {
            self.observed = observe(&self.maps).map_err(|e| ReconcileError::Read(Box::new(e)))?;
            self.reread = false;
        }
        let full = self.full || all;
        let (services, touched) = if full {
            self.absorb_all(view)
        } else {
            self.absorb(view, keys)
        };
        let t0 = Instant::now();
        let p = if full {
            plan(&self.desired, &self.observed, Scope::All)
        } else {
            plan(&self.desired, &self.observed, Scope::Only(&touched))
        };
        let t1 = Instant::now();
        if let Err(e) = apply(&p, &mut self.maps, &mut self.observed) {
            // Retry from what the kernel really holds, comparing everything.
            self.request_resync();
            return Err(Box::new(e).into());
        }
        let t2 = Instant::now();
        self.full = false;
        self.name_frontends(full, &touched);
        let Summary {
            created,
            replaced,
            header_only,
            deleted,
            unchanged,
        } = p.summary;
        Ok(SyncReport {
            services,
            frontends: created + replaced + header_only + deleted + unchanged,
            ops: p.ops.len(),
            created,
            replaced,
            header_only,
            deleted,
            full,
            plan_us: (t1 - t0).as_micros() as u64,
            apply_us: (t2 - t1).as_micros() as u64,
        })
    }

    /// Recomputes the desired state of the Services `keys` names; returns
    /// how many and the frontends that may have changed.
    fn absorb(&mut self, view: &View, keys: &BTreeSet<String>) -> (usize, BTreeSet<Frontend>) {
        let mut touched = BTreeSet::new();
        for key in keys {
            touched.extend(self.recompute(view, key));
        }
        (keys.len(), touched)
    }

    /// Recomputes every Service's desired state (a full pass).
    fn absorb_all(&mut self, view: &View) -> (usize, BTreeSet<Frontend>) {
        let gone: Vec<String> = self
            .desired
            .services()
            .filter(|k| match k.strip_prefix(model::HOST_PORT_PREFIX) {
                Some(pod) => !view.pods.contains_key(pod),
                None => !view.services.contains_key(*k),
            })
            .map(str::to_string)
            .collect();
        let mut touched = BTreeSet::new();
        for key in gone.iter().chain(view.services.keys()) {
            touched.extend(self.recompute(view, key));
        }
        for pod in view.pods.keys() {
            touched.extend(self.recompute(view, &model::host_port_key(pod)));
        }
        (view.services.len() + gone.len(), touched)
    }

    /// Recomputes what `key` (a Service, or a pod's host ports) claims.
    fn recompute(&mut self, view: &View, key: &str) -> BTreeSet<Frontend> {
        if let Some(pod) = key.strip_prefix(model::HOST_PORT_PREFIX) {
            let (frontends, errors) = view
                .pods
                .get(pod)
                .map(|p| model::host_ports(p, &self.node))
                .unwrap_or_default();
            // A pod without host ports claims nothing and is not tracked.
            return if frontends.is_empty() && errors.is_empty() {
                self.desired.remove_service(key)
            } else {
                self.desired.set_service(key, frontends, errors)
            };
        }
        match view.services.get(key) {
            Some(svc) => {
                let (frontends, errors) =
                    model::frontends(svc, view.endpoints.get(key).map(|e| &**e), &self.node);
                self.desired.set_service(key, frontends, errors)
            }
            None => self.desired.remove_service(key),
        }
    }

    fn name_frontends(&self, full: bool, touched: &BTreeSet<Frontend>) {
        let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
        if full {
            shared.services = self
                .desired
                .frontends()
                .map(|(fe, s)| (*fe, s.service.clone()))
                .collect();
            return;
        }
        for fe in touched {
            match self.desired.get(fe) {
                Some(s) => {
                    shared.services.insert(*fe, s.service.clone());
                }
                None => {
                    shared.services.remove(fe);
                }
            }
        }
    }
}

/// The reconciler on the agent's driver: keys are Service keys.
pub struct Driven<M: LbMaps, K> {
    rec: Reconciler<M>,
    views: Views,
    /// Kept alive as long as the reconciler (the loaded programs).
    _keep: K,
}

impl<M: LbMaps + Send + 'static, K: Send + 'static> Reconcile for Driven<M, K> {
    type Key = String;

    fn reconcile(&mut self, batch: &Batch<String>) -> Report<String> {
        let view = self.views.current();
        match self.rec.sync(&view, &batch.keys, batch.all) {
            Ok(Some(r)) => {
                if r.ops > 0 || r.full {
                    tracing::info!(
                        services = r.services,
                        ops = r.ops,
                        full = r.full,
                        plan_us = r.plan_us,
                        apply_us = r.apply_us,
                        "lb: synced"
                    );
                }
                Report::ok()
            }
            // Not synced yet: the subscription asks for a full pass once it is.
            Ok(None) => Report::ok(),
            Err(e) => Report::fail_batch(batch, e),
        }
    }
}

/// Runs `rec` on a driver thread of its own: a sync per batch of changed
/// Services (debounced by a few milliseconds), retries with back-off, a
/// full pass every `resync`. `keep` (e.g. the loaded programs) lives as
/// long as the thread.
pub fn start<M: LbMaps + Send + 'static, K: Send + 'static>(
    rec: Reconciler<M>,
    views: &Views,
    resync: Duration,
    keep: K,
) -> std::io::Result<(Handle<String>, std::thread::JoinHandle<()>)> {
    let (handle, join) = reconcile::spawn(
        "lb",
        Driven {
            rec,
            views: views.clone(),
            _keep: keep,
        },
        reconcile::Options {
            debounce: DEBOUNCE,
            resync: Some(resync),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(30)),
        },
    )?;
    let h = handle.clone();
    views.subscribe(move |_, changes| {
        if changes.synced {
            h.trigger_all();
        }
        h.trigger_many(
            changes
                .services
                .iter()
                .chain(changes.endpoints.iter())
                .cloned()
                .chain(changes.pods.iter().map(|p| model::host_port_key(p))),
        );
    });
    Ok((handle, join))
}

/// Changes this close together are programmed in one sync.
const DEBOUNCE: Duration = Duration::from_millis(2);

#[cfg(test)]
mod tests;
