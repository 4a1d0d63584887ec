//! The store: desired state in memory (immutable snapshots), an event
//! history for watch, and one writer thread that validates, allocates,
//! persists through a [`Backend`] and publishes.
//!
//! Writes that arrive together are committed together (group commit): one
//! durable transaction for the batch, each write its own revision. A write
//! is acknowledged only after its batch is durable, and readers only ever
//! see durable state.

mod admit;
pub mod backend;
pub mod envelope;
pub mod etcd;
pub mod history;
pub mod leader;
pub mod limits;
pub mod redb;
pub mod state;

use std::{
    sync::{Arc, RwLock},
    thread,
};

use bytes::Bytes;
use keel_api::{AnyObject, EventType, FieldError, Kind, Resource, Time};
use rand::Rng;

use self::{
    admit::{Admit, Ctx},
    backend::Batch,
    history::{EventRecord, History},
    limits::Bounded,
};
pub use self::{
    backend::{Backend, BackendError, Fault, MemoryBackend},
    history::{Event, Expired},
    limits::Limits,
    state::{Obj, State, Stored},
};
use crate::alloc::{Cursors, Ranges};

/// How many writes one group commit takes at most.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub ranges: Ranges,
    /// Events kept for watch resume.
    pub history: usize,
    /// Bytes of watch lines kept for watch resume (`--watch-history-bytes`).
    pub history_bytes: usize,
    /// Seals Secrets (objects and their watch events) before they reach the
    /// backend; None stores them as they are.
    pub encryption: Option<Arc<envelope::KeyRing>>,
    /// Bounds on replicas, Service ports and objects per namespace.
    pub limits: Limits,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            ranges: Ranges::default(),
            history: 20_000,
            history_bytes: 256 << 20,
            encryption: None,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {key} not found")]
    NotFound { kind: Kind, key: String },
    #[error("{kind} {key} already exists")]
    AlreadyExists { kind: Kind, key: String },
    #[error("{kind} {key}: {message}")]
    Conflict {
        kind: Kind,
        key: String,
        message: String,
    },
    #[error("{kind} {key} is invalid: {}", causes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        kind: Kind,
        key: String,
        causes: Vec<FieldError>,
    },
    /// Refused by policy, not by the object: a quota (403 Forbidden).
    #[error("{kind} {key} is forbidden: {message}")]
    Forbidden {
        kind: Kind,
        key: String,
        message: String,
    },
    #[error("storage failed: {0}")]
    Backend(String),
    /// The store has no space left (the disk holding redb's file, or
    /// etcd's quota): only deletes are taken.
    #[error(
        "keel-control's store has no space left ({0}): writes are refused until space is freed; deletes are still taken"
    )]
    NoSpace(String),
    #[error("the store is shut down")]
    Closed,
    /// The store's backend (etcd) cannot be reached from this replica; the
    /// write was not sent, so nothing changed (503: try another replica).
    #[error("{0}")]
    Unavailable(String),
    /// The backend (etcd) did not confirm the write in time: it may or may
    /// not have been committed (504, kube-apiserver's `Timeout`); whoever
    /// wrote reads the object again before retrying.
    #[error("{0}")]
    Timeout(String),
}

/// Only-if conditions for update and delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Precondition {
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum WriteOp {
    Create(AnyObject),
    /// Replace; `status` selects the status subresource. A non-empty
    /// resourceVersion in the object must be the current one.
    Update {
        obj: AnyObject,
        status: bool,
    },
    /// Binds an unscheduled pod to a node and sets PodScheduled=True in one
    /// revision (Kubernetes' binding subresource).
    Bind {
        namespace: String,
        name: String,
        uid: String,
        node: String,
    },
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        precondition: Precondition,
    },
}

struct Request {
    op: WriteOp,
    /// Validate, default and allocate as the write would, on a scratch copy
    /// of the state: nothing is stored, no event is sent, no allocation
    /// stays taken (`dryRun=All`).
    dry_run: bool,
    /// On etcd: commit only while this replica leads (controllers' writes).
    fence: Option<Arc<leader::Fence>>,
    reply: tokio::sync::oneshot::Sender<Result<Obj, StoreError>>,
}

struct Shared {
    /// How the writer is doing (`/readyz`, `/healthz`).
    health: RwLock<WriterHealth>,
    /// On etcd: why etcd does not answer this replica now (None: it does),
    /// from a periodic probe; `/readyz` fails and writes are refused at
    /// once (503) while it is set.
    unreachable: RwLock<Option<String>>,
    state: RwLock<Arc<State>>,
    history: RwLock<History>,
    revision: tokio::sync::watch::Sender<u64>,
    stats: CommitStats,
}

/// How the store's writer is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriterHealth {
    #[default]
    Ok,
    /// The disk is full: only deletes are taken (not ready; a restart would
    /// not help, so still live).
    DiskFull(String),
    /// The backend failed and could not recover: neither ready nor live.
    Failed(String),
}

/// What the local writer's group commits did (`/metrics`).
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Group commits written to the backend.
    pub commits: std::sync::atomic::AtomicU64,
    /// Writes those commits carried (the sum of group sizes).
    pub writes: std::sync::atomic::AtomicU64,
    /// Time spent committing to the backend, in microseconds.
    pub commit_us: std::sync::atomic::AtomicU64,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: tokio::sync::mpsc::Sender<Request>,
    fence: Option<Arc<leader::Fence>>,
}

/// Storage keys of Secrets start with this.
const SECRET_PREFIX: &str = "Secret/";

/// `Secret ns/name` from a Secret's storage key (errors name the Secret).
fn secret_name(skey: &str) -> String {
    format!(
        "Secret {}",
        skey.strip_prefix(SECRET_PREFIX).unwrap_or(skey)
    )
}

/// What a sealed watch event is bound to (its revision: the record itself
/// is opaque until opened).
fn event_aad(revision: u64) -> String {
    format!("event/{revision}")
}

/// Seals the Secrets a batch persists: their objects (bound to their
/// storage key) and their watch events (bound to the revision).
fn seal_secrets(ring: &envelope::KeyRing, batch: &mut Batch, events: &[Arc<Event>]) {
    for (key, value) in &mut batch.writes {
        if let (true, Some(v)) = (key.starts_with(SECRET_PREFIX), value.as_mut()) {
            *v = Bytes::from(ring.seal(key, v));
        }
    }
    for (e, (rev, record)) in events.iter().zip(batch.events.iter_mut()) {
        if e.obj.kind() == Kind::Secret {
            *record = Bytes::from(ring.seal(&event_aad(*rev), record));
        }
    }
}

/// The storage key of an object: `Kind/namespace/name` or `Kind/name`.
fn storage_key(kind: Kind, key: &str) -> String {
    format!("{}/{key}", kind.as_str())
}

impl Store {
    /// Loads everything from the backend and starts the writer thread.
    pub fn open(mut backend: Box<dyn Backend>, config: StoreConfig) -> Result<Self, StoreError> {
        config.ranges.validate().map_err(StoreError::Backend)?;
        let snap = backend
            .load()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut state = State {
            revision: snap.revision,
            ..State::default()
        };
        let ring = config.encryption.as_deref();
        for (key, stored) in &snap.objects {
            let json = if key.starts_with(SECRET_PREFIX) {
                envelope::reveal(ring, &secret_name(key), key, stored)
                    .map_err(|e| StoreError::Backend(e.to_string()))?
            } else {
                std::borrow::Cow::Borrowed(&stored[..])
            };
            let obj = AnyObject::from_json(&json)
                .map_err(|e| StoreError::Backend(format!("stored object {key}: {e}")))?;
            state.put(Obj::from_any(obj));
        }
        let mut history =
            History::with_budget(config.history, config.history_bytes, snap.compacted);
        let mut events = Vec::with_capacity(snap.events.len());
        for (rev, stored) in &snap.events {
            let json = envelope::reveal(
                ring,
                &format!("stored watch event of a Secret at revision {rev}"),
                &event_aad(*rev),
                stored,
            )
            .map_err(|e| StoreError::Backend(e.to_string()))?;
            let rec: EventRecord = serde_json::from_slice(&json)
                .map_err(|e| StoreError::Backend(format!("stored event {rev}: {e}")))?;
            let obj = AnyObject::from_value(rec.object)
                .map_err(|e| StoreError::Backend(format!("stored event {rev}: {e}")))?;
            events.push(Arc::new(Event::new(*rev, rec.type_, Obj::from_any(obj))));
        }
        history.push(events);
        let (revision, _) = tokio::sync::watch::channel(state.revision);
        let shared = Arc::new(Shared {
            health: RwLock::new(WriterHealth::Ok),
            unreachable: RwLock::new(None),
            state: RwLock::new(Arc::new(state)),
            history: RwLock::new(history),
            revision,
            stats: CommitStats::default(),
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Request>(4096);
        let writer_shared = shared.clone();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                Writer {
                    backend,
                    shared: writer_shared,
                    config,
                    cursors: Cursors::default(),
                }
                .run(rx)
            })
            .map_err(|e| StoreError::Backend(format!("starting the writer: {e}")))?;
        Ok(Self {
            shared,
            writer: tx,
            fence: None,
        })
    }

    /// A handle whose writes commit only while `fence` holds (the leader
    /// key is the one this replica won); for the controllers on etcd.
    pub fn fenced(&self, fence: Arc<leader::Fence>) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The current state (an O(1) snapshot).
    pub fn snapshot(&self) -> Arc<State> {
        self.shared.state.read().expect("state lock").clone()
    }

    pub fn revision(&self) -> u64 {
        *self.shared.revision.borrow()
    }

    /// Events after `revision`, or Expired when some were compacted away.
    pub fn events_after(&self, revision: u64) -> Result<Vec<Arc<Event>>, Expired> {
        self.shared
            .history
            .read()
            .expect("history lock")
            .after(revision)
    }

    /// The oldest revision a watch can resume from.
    pub fn compacted(&self) -> u64 {
        self.shared
            .history
            .read()
            .expect("history lock")
            .compacted()
    }

    /// How the writer is doing.
    pub fn health(&self) -> WriterHealth {
        self.shared.health.read().expect("health lock").clone()
    }

    /// On etcd: why etcd does not answer this replica now (its probe's last
    /// word); None when it does, and always on redb.
    pub fn backend_unreachable(&self) -> Option<String> {
        self.shared.unreachable.read().expect("probe lock").clone()
    }

    #[cfg(test)]
    pub fn set_backend_unreachable(&self, why: Option<String>) {
        *self.shared.unreachable.write().expect("probe lock") = why;
    }

    /// Group-commit counters (the local writer's; etcd commits are etcd's).
    pub fn commit_stats(&self) -> &CommitStats {
        &self.shared.stats
    }

    /// How many follow the revision: API watches and the controllers.
    pub fn subscribers(&self) -> usize {
        self.shared.revision.receiver_count()
    }

    /// A receiver that changes whenever the revision advances.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.revision.subscribe()
    }

    /// Performs one write; resolves once it is durable (or refused).
    pub async fn write(&self, op: WriteOp) -> Result<Obj, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Request {
                op,
                dry_run: false,
                reply,
                fence: self.fence.clone(),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// What `write(op)` would answer now, without writing anything: the
    /// same validation, defaults and allocations, run by the writer on a
    /// scratch copy of the state and allocators.
    pub async fn dry_run(&self, op: WriteOp) -> Result<Obj, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Request {
                op,
                dry_run: true,
                reply,
                fence: None,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn create(&self, obj: impl Into<AnyObject>) -> Result<Obj, StoreError> {
        self.write(WriteOp::Create(obj.into())).await
    }

    pub async fn update(&self, obj: impl Into<AnyObject>) -> Result<Obj, StoreError> {
        self.write(WriteOp::Update {
            obj: obj.into(),
            status: false,
        })
        .await
    }

    pub async fn update_status(&self, obj: impl Into<AnyObject>) -> Result<Obj, StoreError> {
        self.write(WriteOp::Update {
            obj: obj.into(),
            status: true,
        })
        .await
    }

    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        precondition: Precondition,
    ) -> Result<Obj, StoreError> {
        self.write(WriteOp::Delete {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            precondition,
        })
        .await
    }
}

struct Writer {
    backend: Box<dyn Backend>,
    shared: Arc<Shared>,
    config: StoreConfig,
    cursors: Cursors,
}

impl Writer {
    fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut requests = vec![first];
            while requests.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
            self.commit(requests);
        }
    }

    fn health(&self) -> WriterHealth {
        self.shared.health.read().expect("health lock").clone()
    }

    fn set_health(&self, h: WriterHealth) {
        let mut cur = self.shared.health.write().expect("health lock");
        if *cur != h {
            *cur = h;
        }
    }

    fn commit(&mut self, requests: Vec<Request>) {
        // A full disk takes only deletes (which free space), as etcd's
        // NOSPACE alarm does.
        let full = self.backend.disk_full();
        match (&full, self.health()) {
            (true, WriterHealth::Ok) => self.set_health(WriterHealth::DiskFull(
                "no space left on the store's disk".into(),
            )),
            (false, WriterHealth::DiskFull(_)) => self.set_health(WriterHealth::Ok),
            _ => {}
        }
        let base = self.shared.state.read().expect("state lock").clone();
        let mut next = (*base).clone();
        let mut batch = Batch::default();
        let mut events = Vec::new();
        let mut results = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        // One process is its only writer: nothing to fence.
        for Request {
            op, dry_run, reply, ..
        } in requests
        {
            if full && !dry_run && !matches!(op, WriteOp::Delete { .. }) {
                let _ = reply.send(Err(StoreError::NoSpace(
                    "the disk holding its file is full: no space left on device".into(),
                )));
                continue;
            }
            if dry_run {
                let mut scratch = next.clone();
                let mut cursors = self.cursors.clone();
                let mut ctx = Ctx {
                    ranges: &self.config.ranges,
                    limits: &self.config.limits,
                    cursors: &mut cursors,
                };
                let result = apply(
                    &mut scratch,
                    &mut ctx,
                    op,
                    &mut Batch::default(),
                    &mut Vec::new(),
                );
                let _ = reply.send(result);
                continue;
            }
            let mut ctx = Ctx {
                ranges: &self.config.ranges,
                limits: &self.config.limits,
                cursors: &mut self.cursors,
            };
            results.push(apply(&mut next, &mut ctx, op, &mut batch, &mut events));
            replies.push(reply);
        }
        if !events.is_empty() {
            // By count and by bytes, what the in-memory history will keep
            // is what the backend keeps.
            let compacted = self
                .shared
                .history
                .read()
                .expect("history lock")
                .compaction_after(&events);
            batch.revision = next.revision;
            batch.compacted = compacted;
            batch.events = events
                .iter()
                .map(|e: &Arc<Event>| (e.revision, e.record()))
                .collect();
            if let Some(ring) = &self.config.encryption {
                seal_secrets(ring, &mut batch, &events);
            }
            let started = std::time::Instant::now();
            let committed = self.backend.commit(&batch);
            {
                use std::sync::atomic::Ordering::Relaxed;
                let st = &self.shared.stats;
                st.commits.fetch_add(1, Relaxed);
                st.writes.fetch_add(replies.len() as u64, Relaxed);
                st.commit_us
                    .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            }
            if let Err(e) = committed {
                tracing::error!(error = %e, "commit failed; the batch is refused");
                let refusal = match e.fault {
                    backend::Fault::NoSpace => {
                        self.set_health(WriterHealth::DiskFull(e.message.clone()));
                        StoreError::NoSpace(format!(
                            "the disk holding its file is full: {}",
                            e.message
                        ))
                    }
                    backend::Fault::Fatal => {
                        self.set_health(WriterHealth::Failed(e.message.clone()));
                        StoreError::Backend(e.to_string())
                    }
                    backend::Fault::Other => StoreError::Backend(e.to_string()),
                };
                for reply in replies {
                    let _ = reply.send(Err(refusal.clone()));
                }
                if e.fault == backend::Fault::Fatal {
                    // Nothing more can be stored: exit so the supervisor
                    // restarts keel-control on a fresh open of the store
                    // (health says so meanwhile, for whoever asks first).
                    tracing::error!(error = %e, "the store cannot recover; exiting");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    std::process::exit(70);
                }
                return;
            }
            let revision = next.revision;
            *self.shared.state.write().expect("state lock") = Arc::new(next);
            self.shared
                .history
                .write()
                .expect("history lock")
                .push(events);
            self.shared.revision.send_replace(revision);
            if !full {
                self.set_health(WriterHealth::Ok);
            }
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

fn apply(
    state: &mut State,
    ctx: &mut Ctx,
    op: WriteOp,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) -> Result<Obj, StoreError> {
    match op {
        WriteOp::Create(any) => match any {
            AnyObject::Node(o) => create(state, ctx, o, batch, events),
            AnyObject::Pod(o) => create(state, ctx, o, batch, events),
            AnyObject::Service(o) => create(state, ctx, o, batch, events),
            AnyObject::Endpoints(o) => create(state, ctx, o, batch, events),
            AnyObject::Deployment(o) => create(state, ctx, o, batch, events),
            AnyObject::ConfigMap(o) => create(state, ctx, o, batch, events),
            AnyObject::Secret(o) => create(state, ctx, o, batch, events),
            AnyObject::Event(o) => create(state, ctx, o, batch, events),
        },
        WriteOp::Update { obj, status } => match obj {
            AnyObject::Node(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Pod(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Service(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Endpoints(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Deployment(o) => update(state, ctx, o, status, batch, events),
            AnyObject::ConfigMap(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Secret(o) => update(state, ctx, o, status, batch, events),
            AnyObject::Event(o) => update(state, ctx, o, status, batch, events),
        },
        WriteOp::Bind {
            namespace,
            name,
            uid,
            node,
        } => bind(
            state,
            &format!("{namespace}/{name}"),
            &uid,
            &node,
            batch,
            events,
        ),
        WriteOp::Delete {
            kind,
            namespace,
            name,
            precondition,
        } => {
            let key = if kind.namespaced() {
                format!("{namespace}/{name}")
            } else {
                name
            };
            delete(state, kind, &key, &precondition, batch, events)
        }
    }
}

fn record(
    state: &mut State,
    type_: EventType,
    obj: Obj,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) {
    let skey = storage_key(obj.kind(), &obj.key());
    match type_ {
        EventType::Deleted => batch.writes.push((skey, None)),
        _ => batch.writes.push((skey, Some(Bytes::from(obj.to_json())))),
    }
    events.push(Arc::new(Event::new(state.revision, type_, obj)));
}

fn invalid<R: Resource>(key: &str, causes: Vec<FieldError>) -> StoreError {
    StoreError::Invalid {
        kind: Kind::parse(R::KIND).expect("kind"),
        key: key.to_string(),
        causes,
    }
}

fn kind_of<R: Resource>() -> Kind {
    Kind::parse(R::KIND).expect("every Resource is a Kind")
}

/// Kubernetes' alphabet for generated name suffixes (no vowels, no look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn create<R: Stored + Admit + Bounded>(
    state: &mut State,
    ctx: &mut Ctx,
    mut obj: R,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) -> Result<Obj, StoreError> {
    if obj.meta().name.is_empty() && !obj.meta().generate_name.is_empty() {
        let prefix = obj.meta().generate_name.clone();
        let mut rng = rand::rng();
        loop {
            let suffix: String = (0..5)
                .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
                .collect();
            obj.meta_mut().name = format!("{prefix}{suffix}");
            if !R::map(state).contains_key(&obj.key()) {
                break;
            }
        }
    }
    let key = obj.key();
    let mut errs = obj.validate();
    errs.extend(obj.check_limits(ctx.limits));
    if !errs.is_empty() {
        return Err(invalid::<R>(&key, errs));
    }
    if R::map(state).contains_key(&key) {
        return Err(StoreError::AlreadyExists {
            kind: kind_of::<R>(),
            key,
        });
    }
    let max = ctx.limits.max_objects_per_namespace;
    if max > 0 && limits::counted(kind_of::<R>()) {
        let used = state.objects_in(&obj.meta().namespace);
        if used >= max {
            return Err(StoreError::Forbidden {
                kind: kind_of::<R>(),
                key,
                message: limits::quota_message(&obj.meta().namespace, used, max),
            });
        }
    }
    obj.set_type_meta();
    {
        let m = obj.meta_mut();
        m.uid = uuid::Uuid::new_v4().to_string();
        m.creation_timestamp = Some(Time::now());
        m.generation = 1;
        // Only a DELETE sets these.
        m.deletion_timestamp = None;
        m.deletion_grace_period_seconds = None;
    }
    obj.admit_create(state, ctx)
        .map_err(|causes| invalid::<R>(&key, causes))?;
    state.revision += 1;
    obj.meta_mut().resource_version = state.revision.to_string();
    let stored = R::wrap(Arc::new(obj));
    state.put(stored.clone());
    record(state, EventType::Added, stored.clone(), batch, events);
    Ok(stored)
}

fn check_precondition(
    kind: Kind,
    key: &str,
    current: &keel_api::ObjectMeta,
    p: &Precondition,
) -> Result<(), StoreError> {
    if let Some(uid) = &p.uid
        && *uid != current.uid
    {
        return Err(StoreError::Conflict {
            kind,
            key: key.into(),
            message: format!(
                "precondition failed: uid {uid} does not match the stored object's {}",
                current.uid
            ),
        });
    }
    if let Some(rv) = p.resource_version
        && rv != current.revision()
    {
        return Err(StoreError::Conflict {
            kind,
            key: key.into(),
            message: format!(
                "the object has been modified (resourceVersion {rv}, now {}); read it again and retry",
                current.resource_version
            ),
        });
    }
    Ok(())
}

fn update<R: Stored + Admit + Bounded>(
    state: &mut State,
    ctx: &mut Ctx,
    obj: R,
    status: bool,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) -> Result<Obj, StoreError> {
    let key = obj.key();
    let kind = kind_of::<R>();
    let old = R::map(state)
        .get(&key)
        .cloned()
        .ok_or_else(|| StoreError::NotFound {
            kind,
            key: key.clone(),
        })?;
    let m = obj.meta();
    let pre = Precondition {
        uid: (!m.uid.is_empty()).then(|| m.uid.clone()),
        resource_version: (!m.resource_version.is_empty())
            .then(|| {
                m.resource_version.parse().map_err(|_| {
                    invalid::<R>(
                        &key,
                        vec![FieldError {
                            field: "metadata.resourceVersion".into(),
                            message: format!("{:?} is not a resource version", m.resource_version),
                        }],
                    )
                })
            })
            .transpose()?,
    };
    check_precondition(kind, &key, old.meta(), &pre)?;
    let mut new = if status {
        // The status subresource changes only the status.
        let mut n = R::with_status_of(&old, &obj);
        n.admit_status_update(&old);
        n
    } else {
        let mut n = obj;
        n.copy_status(&old);
        let (keep, m) = (old.meta(), n.meta_mut());
        m.uid = keep.uid.clone();
        m.creation_timestamp = keep.creation_timestamp;
        m.generation = keep.generation;
        m.generate_name = keep.generate_name.clone();
        m.deletion_timestamp = keep.deletion_timestamp;
        m.deletion_grace_period_seconds = keep.deletion_grace_period_seconds;
        n
    };
    new.set_type_meta();
    new.meta_mut().resource_version = old.meta().resource_version.clone();
    let mut errs = new.validate();
    if old.meta().is_terminating()
        && let Some(added) = new
            .meta()
            .finalizers
            .iter()
            .find(|f| !old.meta().finalizers.contains(f))
    {
        errs.push(FieldError {
            field: "metadata.finalizers".into(),
            message: format!(
                "{added:?}: no new finalizers can be added if the object is being deleted"
            ),
        });
    }
    if !status && errs.is_empty() {
        // Carry server-assigned values (cluster IP, node ports, pod CIDR)
        // that the update omitted, then check what may not change.
        if let Err(causes) = new.admit_update(&old, state, ctx) {
            errs.extend(causes);
        }
        errs.extend(new.validate_update(&old));
        errs.extend(new.check_limits(ctx.limits));
        if !new.spec_eq(&old) {
            new.meta_mut().generation += 1;
        }
    }
    if !errs.is_empty() {
        return Err(invalid::<R>(&key, errs));
    }
    if new == *old {
        // Nothing changed: no new revision, no event.
        return Ok(R::wrap(old));
    }
    if new.meta().is_terminating() && new.meta().finalizers.is_empty() {
        // The last finalizer is gone: so is the object.
        return Ok(remove(state, R::wrap(Arc::new(new)), batch, events));
    }
    state.revision += 1;
    new.meta_mut().resource_version = state.revision.to_string();
    let stored = R::wrap(Arc::new(new));
    state.put(stored.clone());
    record(state, EventType::Modified, stored.clone(), batch, events);
    Ok(stored)
}

fn delete(
    state: &mut State,
    kind: Kind,
    key: &str,
    pre: &Precondition,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) -> Result<Obj, StoreError> {
    let old = state.get(kind, key).ok_or_else(|| StoreError::NotFound {
        kind,
        key: key.into(),
    })?;
    check_precondition(kind, key, old.meta(), pre)?;
    if !old.meta().finalizers.is_empty() {
        // As Kubernetes: the object stays, marked, until its finalizers
        // are removed (an update that removes the last one deletes it).
        if old.meta().is_terminating() {
            return Ok(old);
        }
        state.revision += 1;
        let marked = old.with_meta(|m| {
            m.deletion_timestamp = Some(Time::now());
            m.deletion_grace_period_seconds = Some(0);
        });
        let marked = marked.with_resource_version(&state.revision.to_string());
        state.put(marked.clone());
        record(state, EventType::Modified, marked.clone(), batch, events);
        return Ok(marked);
    }
    Ok(remove(state, old, batch, events))
}

/// Removes `old` from the state, recording its DELETED event.
fn remove(state: &mut State, old: Obj, batch: &mut Batch, events: &mut Vec<Arc<Event>>) -> Obj {
    let (kind, key) = (old.kind(), old.key());
    state.remove(kind, &key);
    state.revision += 1;
    // The deleted object carries the revision of its deletion, as in Kubernetes.
    let rev = state.revision.to_string();
    let gone = old.with_resource_version(&rev);
    record(state, EventType::Deleted, gone.clone(), batch, events);
    gone
}

fn bind(
    state: &mut State,
    key: &str,
    uid: &str,
    node: &str,
    batch: &mut Batch,
    events: &mut Vec<Arc<Event>>,
) -> Result<Obj, StoreError> {
    let kind = Kind::Pod;
    let old = state
        .pods
        .get(key)
        .cloned()
        .ok_or_else(|| StoreError::NotFound {
            kind,
            key: key.into(),
        })?;
    check_precondition(
        kind,
        key,
        &old.metadata,
        &Precondition {
            uid: Some(uid.into()),
            resource_version: None,
        },
    )?;
    if !old.spec.node_name.is_empty() {
        return Err(StoreError::Conflict {
            kind,
            key: key.into(),
            message: format!("already bound to {}", old.spec.node_name),
        });
    }
    if let Err(e) = keel_api::validate::dns1123_subdomain(node) {
        return Err(StoreError::Invalid {
            kind,
            key: key.into(),
            causes: vec![FieldError {
                field: "spec.nodeName".into(),
                message: e,
            }],
        });
    }
    let mut pod = (*old).clone();
    pod.spec.node_name = node.to_string();
    pod.set_condition("PodScheduled", "True", "", "");
    state.revision += 1;
    pod.metadata.resource_version = state.revision.to_string();
    let stored = Obj::Pod(Arc::new(pod));
    state.put(stored.clone());
    record(state, EventType::Modified, stored.clone(), batch, events);
    Ok(stored)
}

#[cfg(test)]
mod tests;
