//! The load-balancer reconciler: the single writer of the LB maps.
//!
//! Each sync folds the latest view into the desired state — only the
//! Services whose object or Endpoints changed (pointer comparison of the
//! view's `Arc`s) are recomputed — plans the delta for the frontends that
//! touched, and applies it. Nothing is planned before the view is synced
//! (every informer listed once), so a restart never deletes what it has not
//! seen yet. The first sync after start compares everything (adoption of
//! the pinned maps); so does a periodic resync, which re-reads the maps from
//! the kernel first. A failed apply is retried with exponential backoff
//! from a fresh read. Changes that arrive while a sync runs are coalesced
//! into the next one by the watch channel.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use keel_api::{Endpoints, Service};
use tokio::sync::watch;

use super::{
    apply::{ApplyError, apply, observe},
    desired::Desired,
    maps::{LbMaps, MapsError},
    model::{self, Frontend, NodeInfo},
    observed::Observed,
    plan::{Scope, Summary, plan},
};
use crate::sync::View;

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
    services: BTreeMap<String, Arc<Service>>,
    endpoints: BTreeMap<String, Arc<Endpoints>>,
    /// The next sync compares everything (after start, a resync, an error).
    full: bool,
    /// ... and re-reads the maps first.
    reread: bool,
    shared: Arc<RwLock<Shared>>,
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
            node,
            observed,
            desired: Desired::default(),
            services: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            full: true,
            reread: false,
            shared,
        })
    }

    pub fn shared(&self) -> Arc<RwLock<Shared>> {
        self.shared.clone()
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

    /// One sync against `view`; None when the view is not synced yet.
    pub fn sync(&mut self, view: &View) -> Result<Option<SyncReport>, ReconcileError> {
        if !view.synced {
            return Ok(None);
        }
        let result = self.try_sync(view);
        let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
        let s = &mut shared.status;
        s.frontends = self.observed.frontends.len();
        s.backends = self.observed.backends.len();
        s.problems = self.desired.problems();
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

    fn try_sync(&mut self, view: &View) -> Result<SyncReport, ReconcileError> {
        if self.reread {
            self.observed = observe(&self.maps).map_err(|e| ReconcileError::Read(Box::new(e)))?;
            self.reread = false;
        }
        let (services, touched) = self.absorb(view);
        let full = self.full;
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

    /// Folds the view's changed Services and Endpoints into the desired
    /// state; returns how many Services were recomputed and the frontends
    /// that may have changed.
    fn absorb(&mut self, view: &View) -> (usize, BTreeSet<Frontend>) {
        let mut changed = BTreeSet::new();
        diff(&self.services, &view.services, &mut changed);
        diff(&self.endpoints, &view.endpoints, &mut changed);
        let mut touched = BTreeSet::new();
        for key in &changed {
            match view.services.get(key) {
                Some(svc) => {
                    let (frontends, errors) =
                        model::frontends(svc, view.endpoints.get(key).map(|e| &**e), &self.node);
                    touched.extend(self.desired.set_service(key, frontends, errors));
                }
                None => touched.extend(self.desired.remove_service(key)),
            }
        }
        for key in &changed {
            remember(&mut self.services, &view.services, key);
            remember(&mut self.endpoints, &view.endpoints, key);
        }
        (changed.len(), touched)
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

fn remember<T>(mine: &mut BTreeMap<String, Arc<T>>, theirs: &BTreeMap<String, Arc<T>>, key: &str) {
    match theirs.get(key) {
        Some(v) => {
            mine.insert(key.to_string(), v.clone());
        }
        None => {
            mine.remove(key);
        }
    }
}

/// Keys whose object differs (by pointer: the view shares unchanged objects)
/// between two maps, added to `out`.
fn diff<T>(
    old: &BTreeMap<String, Arc<T>>,
    new: &BTreeMap<String, Arc<T>>,
    out: &mut BTreeSet<String>,
) {
    let mut a = old.iter().peekable();
    let mut b = new.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return,
            (Some((k, _)), None) => {
                out.insert((*k).clone());
                a.next();
            }
            (None, Some((k, _))) => {
                out.insert((*k).clone());
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.insert((*ka).clone());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.insert((*kb).clone());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(va, vb) {
                        out.insert((*ka).clone());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
}

/// Runs the reconciler on its own thread (map writes are blocking
/// syscalls) until the view's sender goes away: a sync per view change,
/// retries with backoff after errors, a full resync every `resync`.
pub fn spawn<M: LbMaps + Send + 'static>(
    rec: Reconciler<M>,
    view: watch::Receiver<View>,
    resync: Duration,
) -> std::thread::JoinHandle<()> {
    spawn_with(rec, view, resync, ())
}

/// [`spawn`], keeping `keep` (e.g. the loaded programs) alive on the thread.
pub fn spawn_with<M: LbMaps + Send + 'static, K: Send + 'static>(
    mut rec: Reconciler<M>,
    mut view: watch::Receiver<View>,
    resync: Duration,
    keep: K,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("keel-lb".into())
        .spawn(move || {
            let _keep = keep;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime");
            rt.block_on(async move {
                let mut backoff = Duration::from_millis(100);
                let mut retry_at: Option<tokio::time::Instant> = None;
                let mut next_resync = tokio::time::Instant::now() + resync;
                loop {
                    let v = view.borrow_and_update().clone();
                    match rec.sync(&v) {
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
                            backoff = Duration::from_millis(100);
                            retry_at = None;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "lb: sync failed");
                            retry_at = Some(tokio::time::Instant::now() + backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                    tokio::select! {
                        changed = view.changed() => if changed.is_err() { return },
                        _ = async { tokio::time::sleep_until(retry_at.expect("set")).await }, if retry_at.is_some() => {}
                        _ = tokio::time::sleep_until(next_resync) => {
                            rec.request_resync();
                            next_resync = tokio::time::Instant::now() + resync;
                        }
                    }
                }
            });
        })
        .expect("spawning the LB reconciler thread")
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
