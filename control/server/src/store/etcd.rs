//! The store on etcd (v3 API, through `etcd-client`): etcd holds the
//! objects and decides every write; each keel-control replica keeps the same
//! in-memory state and watch history as on redb, fed by one etcd watch.
//!
//! - Objects live at `<prefix>/registry/<plural>/<namespace>/<name>` (or
//!   `<plural>/<name>` when cluster-scoped); their `resourceVersion` is the
//!   key's mod revision, so it is etcd's revision and the same on every
//!   replica.
//! - A write is computed against the replica's state at revision R (the same
//!   validation and admission as on redb), then committed as one etcd
//!   transaction that compares the mod revision of the key it writes with the
//!   one that state had (0: absent). If another replica wrote first, the
//!   transaction fails, the replica waits until its watch has the newer
//!   state and computes the write again: optimistic concurrency is etcd's.
//! - Allocations (pod CIDRs, cluster IPs, node ports) are computed from the
//!   state like everything else; a write that may allocate also requires
//!   that `<prefix>/alloc` was last written at or before R, and writes it.
//!   Every allocation thus commits in the transaction of the object that
//!   holds it, and no replica allocates from a state that misses another
//!   replica's allocation.
//! - A write is acknowledged once this replica's watch has applied its
//!   revision, so a client reads its own writes from the replica it wrote to.
//! - A replica that lost a race, or starts, writes a barrier key
//!   (`<prefix>/sync/<replica>`) and waits until its watch delivers it: then
//!   its state has everything before. etcd's own progress notifications
//!   move the revision on when nothing changes. On start the
//!   watch begins up to `history` revisions back (as far as etcd still has
//!   them), so a client resumes from a resourceVersion it got from another
//!   replica or before a restart; older than that is `410 Expired`, as is
//!   everything before a relist the replica had to make after falling behind
//!   etcd's compaction.
//! - One task compacts etcd's history periodically (to the revision seen one
//!   interval earlier, as kube-apiserver does).
//! - etcd's NOSPACE alarm (its `--quota-backend-bytes` reached) is the
//!   store's full disk: writes get 507, deletes are still taken (etcd takes
//!   them), and `/readyz` fails until the alarm is disarmed. A refused
//!   write says so at once; a task looks at the alarms every
//!   [`ALARM_POLL`] to see them raised by another replica's writes, and
//!   cleared.

use std::{path::PathBuf, sync::Arc, time::Duration};

use etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, ConnectOptions, EventType as EtcdEventType,
    GetOptions, KvClient, TxnOp, WatchOptions, WatchResponse, WatchStream,
};
use keel_api::{AnyObject, EventType, Kind};

use super::leader::Fence;
use super::{
    Event, Obj, Request, Shared, State, StoreConfig, StoreError, WriteOp, WriterHealth, admit::Ctx,
    apply, backend::Batch, history::History,
};
use crate::alloc::Cursors;

/// How often a write is computed again after losing a race to another
/// replica before it is refused as a conflict.
const MAX_ATTEMPTS: usize = 32;
/// Writes one replica sends to etcd at once.
const MAX_IN_FLIGHT: usize = 256;
/// How long a write waits for the replica's watch to reach its revision.
const WATCH_WAIT: Duration = Duration::from_secs(5);
/// How long a write may spend on etcd's round trips (transactions, the
/// fence check, barriers) before it is answered 503 (nothing was sent) or
/// 504 (a transaction was sent and not answered). A replica that lost etcd
/// thus answers within seconds instead of holding its clients, as
/// kube-apiserver bounds its storage calls.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How often a replica asks etcd whether it answers (a linearizable read,
/// which needs the members' quorum), and how long it waits for the answer.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a starting replica keeps trying while etcd does not answer
/// (a member restarting, an election) before it gives up and exits (its
/// supervisor starts it again). Short: a refused client certificate looks
/// the same as a member going away (the handshake ends), and should not
/// keep a misconfigured replica waiting long.
const START_PATIENCE: Duration = Duration::from_secs(10);
/// How often etcd's alarms are read.
const ALARM_POLL: Duration = Duration::from_secs(2);

/// Client certificate authentication to etcd (kube-apiserver's
/// `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`).
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the members (`http://host:2379` or `https://…`).
    pub endpoints: Vec<String>,
    /// Every key keel writes starts with this (no trailing slash).
    pub prefix: String,
    pub tls: Option<EtcdTls>,
    /// How often etcd's history is compacted; zero: never.
    pub compact_interval: Duration,
    pub dial_timeout: Duration,
    /// The store's key ring (from [`StoreConfig::encryption`], set when the
    /// store opens): Secrets are sealed in etcd.
    encryption: Option<Arc<super::envelope::KeyRing>>,
}

impl EtcdConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            prefix: "/keel".into(),
            tls: None,
            compact_interval: Duration::from_secs(300),
            dial_timeout: Duration::from_secs(5),
            encryption: None,
        }
    }

    fn registry(&self) -> String {
        format!("{}/registry/", self.prefix)
    }

    fn alloc_key(&self) -> String {
        format!("{}/alloc", self.prefix)
    }

    fn object_key(&self, obj: &Obj) -> String {
        format!("{}{}/{}", self.registry(), obj.kind().plural(), obj.key())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("--etcd-endpoints: at least one endpoint is needed")]
    NoEndpoints,
    #[error("etcd TLS: reading {path}: {source}")]
    Tls {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd TLS: --etcd-certfile and --etcd-keyfile go together")]
    HalfIdentity,
    #[error("connecting to etcd at {endpoints}: {source}")]
    Connect {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd: {0}")]
    Call(#[from] etcd_client::Error),
    #[error("etcd key {key}: {message}")]
    Decode { key: String, message: String },
    #[error("etcd watch: {0}")]
    Watch(String),
    #[error("{0}; start again")]
    Compacted(String),
}

impl EtcdError {
    /// Whether this is etcd not answering for now (worth trying again), as
    /// opposed to a configuration or data problem.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EtcdError::Connect { .. } | EtcdError::Call(_) | EtcdError::Watch(_)
        )
    }
}

/// Whether an error (of any layer) comes from etcd not answering for now.
pub fn is_transient_any(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<etcd_client::Error>().is_some()
            || c.downcast_ref::<EtcdError>()
                .is_some_and(EtcdError::is_transient)
    })
}

/// Runs `f` until it succeeds or fails for a reason `transient` does not
/// accept, for up to [`START_PATIENCE`] (a replica starting while a member
/// restarts or etcd elects a leader waits instead of exiting at the first
/// refused connection).
pub async fn patiently<T, E, F, Fut>(
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut f: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + START_PATIENCE;
    let mut backoff = Duration::from_millis(200);
    loop {
        match f().await {
            Err(e) if transient(&e) && tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(error = %e, "{what}: etcd does not answer; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

/// How a failed call to etcd bears on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The connection to the member could not be made: etcd never saw
    /// the request (another member may take it).
    NeverSent,
    /// etcd's quota is reached (its NOSPACE alarm).
    NoSpace,
    /// Sent, and no definite answer (connection lost, etcd's own timeout,
    /// a leader change): it may or may not have been committed.
    Unknown,
}

/// Classifies a failed etcd call from its full text (the error and its
/// sources), the only form in which tonic's transport errors can be told
/// apart.
fn failure_of(text: &str) -> Failure {
    if text.contains("database space exceeded") {
        Failure::NoSpace
    } else if text.contains("tcp connect error") || text.contains("ConnectionRefused") {
        Failure::NeverSent
    } else {
        Failure::Unknown
    }
}

fn full_text(e: &etcd_client::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// The answer to a write that etcd did not take: 503 when nothing was
/// sent, 504 when it may have been committed.
fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "etcd is unreachable from this keel-control replica ({why}); the write was not committed, try another replica"
    ))
}

fn timed_out(why: &str) -> StoreError {
    StoreError::Timeout(format!(
        "etcd did not confirm the write ({why}); it may or may not have been committed: read the object before retrying"
    ))
}

impl From<EtcdError> for StoreError {
    fn from(e: EtcdError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// How long a member gets to take a TCP connection before a client passes
/// it over.
const MEMBER_DIAL: Duration = Duration::from_millis(500);
/// How often a long-lived client's members are dialled (see [`connect_steered`]).
const STEER_EVERY: Duration = Duration::from_millis(500);

/// An endpoint as etcd-client keys its balancer: with its scheme (`https://`
/// when TLS is configured, as etcd-client adds it).
fn with_scheme(cfg: &EtcdConfig, endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else if cfg.tls.is_some() {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

/// The `host:port` an endpoint URL names (etcd's client port 2379 when it
/// has none).
fn member_addr(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    let has_port = match authority.rfind(']') {
        Some(i) => authority[i..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:2379")
    })
}

/// Which members take a TCP connection within [`MEMBER_DIAL`]; when none
/// does, all of them (calls then fail with etcd's own error).
async fn reachable(endpoints: &[String]) -> Vec<bool> {
    let up = futures_util::future::join_all(endpoints.iter().map(|e| async move {
        let Some(addr) = member_addr(e) else {
            return true;
        };
        matches!(
            tokio::time::timeout(MEMBER_DIAL, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        )
    }))
    .await;
    if up.iter().any(|u| *u) {
        up
    } else {
        vec![true; endpoints.len()]
    }
}

/// Connects to the cluster through the members that take connections now
/// (all of them when none does). etcd-client's balancer keeps sending
/// calls to a member whose connection is refused, so a member that is down
/// is left out from the start.
pub async fn connect(cfg: &EtcdConfig) -> Result<Client, EtcdError> {
    Ok(connect_to_reachable(cfg).await?.0)
}

/// [`connect`], for a client that lives as long as the process: a task
/// dials every member each [`STEER_EVERY`] and takes one out of the
/// client's balancer while it refuses connections (killed, restarting,
/// cut off), and puts it back once it takes them, as etcd's own clients
/// steer by member health. Calls that still reach a dead member in
/// between are retried where they are known not to have been sent.
pub async fn connect_steered(cfg: &EtcdConfig) -> Result<Client, EtcdError> {
    let (client, endpoints, in_use) = connect_to_reachable(cfg).await?;
    if endpoints.len() > 1 {
        tokio::spawn(steer(client.clone(), endpoints, in_use));
    }
    Ok(client)
}

async fn steer(client: Client, endpoints: Vec<String>, mut in_use: Vec<bool>) {
    loop {
        tokio::time::sleep(STEER_EVERY).await;
        let want = reachable(&endpoints).await;
        for (i, e) in endpoints.iter().enumerate() {
            let changed = match (want[i], in_use[i]) {
                (true, false) => client.add_endpoint(e).await.map(|()| {
                    tracing::info!(member = %e, "etcd member takes connections again: in use");
                }),
                (false, true) => client.remove_endpoint(e).await.map(|()| {
                    tracing::warn!(member = %e, "etcd member refuses connections: passed over until it takes them");
                }),
                _ => continue,
            };
            match changed {
                Ok(()) => in_use[i] = want[i],
                // The balancer is gone: so is every user of the client.
                Err(err) => {
                    tracing::debug!(error = %err, "etcd: steering the client stops");
                    return;
                }
            }
        }
    }
}

async fn connect_to_reachable(
    cfg: &EtcdConfig,
) -> Result<(Client, Vec<String>, Vec<bool>), EtcdError> {
    if cfg.endpoints.is_empty() {
        return Err(EtcdError::NoEndpoints);
    }
    let endpoints: Vec<String> = cfg.endpoints.iter().map(|e| with_scheme(cfg, e)).collect();
    let in_use = reachable(&endpoints).await;
    let chosen: Vec<&String> = endpoints
        .iter()
        .zip(&in_use)
        .filter_map(|(e, up)| up.then_some(e))
        .collect();
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(cfg.dial_timeout)
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if let Some(tls) = &cfg.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| EtcdError::Tls {
                path: p.clone(),
                source,
            })
        };
        let mut t = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)?));
        match (&tls.cert, &tls.key) {
            (Some(c), Some(k)) => {
                t = t.identity(etcd_client::Identity::from_pem(read(c)?, read(k)?));
            }
            (None, None) => {}
            _ => return Err(EtcdError::HalfIdentity),
        }
        opts = opts.with_tls(t);
    }
    let client = Client::connect(&chosen, Some(opts))
        .await
        .map_err(|source| EtcdError::Connect {
            endpoints: cfg.endpoints.join(","),
            source,
        })?;
    Ok((client, endpoints, in_use))
}

/// The API token every replica accepts: `<prefix>/token`, set to
/// `candidate` when absent (readable by whoever can read etcd, like
/// Kubernetes' Secrets).
pub async fn shared_token(cfg: &EtcdConfig, candidate: &str) -> Result<String, EtcdError> {
    let mut kv = connect(cfg).await?.kv_client();
    let key = format!("{}/token", cfg.prefix);
    let resp = kv
        .txn(
            etcd_client::Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), candidate, None)])
                .or_else([TxnOp::get(key.clone(), None)]),
        )
        .await?;
    if resp.succeeded() {
        return Ok(candidate.to_string());
    }
    for r in resp.op_responses() {
        if let etcd_client::TxnOpResponse::Get(g) = r
            && let Some(kv) = g.kvs().first()
        {
            return Ok(String::from_utf8_lossy(kv.value()).trim().to_string());
        }
    }
    Err(EtcdError::Decode {
        key,
        message: "present but unreadable".into(),
    })
}

fn decode(cfg: &EtcdConfig, key: &[u8], value: &[u8], revision: i64) -> Result<Obj, EtcdError> {
    let secrets = format!("{}{}/", cfg.registry(), Kind::Secret.plural());
    let value = match key.strip_prefix(secrets.as_bytes()) {
        Some(name) => {
            let name = String::from_utf8_lossy(name);
            super::envelope::reveal(
                cfg.encryption.as_deref(),
                &format!("Secret {name}"),
                &secret_aad(&name),
                value,
            )
            .map_err(|e| EtcdError::Decode {
                key: String::from_utf8_lossy(key).into_owned(),
                message: e.to_string(),
            })?
        }
        None => std::borrow::Cow::Borrowed(value),
    };
    let any = AnyObject::from_json(&value).map_err(|e| EtcdError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })?;
    Ok(Obj::from_any(any).with_resource_version(&revision.to_string()))
}

/// What a Secret's sealed value is bound to (`ns/name` → the same identity
/// as on redb, independent of the etcd prefix).
fn secret_aad(key: &str) -> String {
    format!("{}/{key}", Kind::Secret.as_str())
}

/// Refuses a replica whose key file cannot open what the others seal:
/// the first replica stores a sealed check value at `<prefix>/encryption-check`,
/// every later one must open it (a replica with another key would otherwise
/// fail on the first Secret another replica writes).
async fn same_key_as_the_others(
    kv: &mut KvClient,
    cfg: &EtcdConfig,
    ring: &super::envelope::KeyRing,
) -> Result<(), StoreError> {
    const AAD: &str = "encryption-check";
    let key = format!("{}/{AAD}", cfg.prefix);
    let txn = etcd_client::Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), ring.seal(AAD, b"keel"), None)])
        .or_else([TxnOp::get(key.clone(), None)]);
    let resp = patiently(
        "checking the encryption key",
        EtcdError::is_transient,
        || {
            let (mut kv, txn) = (kv.clone(), txn.clone());
            async move { Ok(kv.txn(txn).await?) }
        },
    )
    .await?;
    if resp.succeeded() {
        return Ok(());
    }
    for r in resp.op_responses() {
        if let etcd_client::TxnOpResponse::Get(g) = r
            && let Some(kv) = g.kvs().first()
        {
            return match ring.open(&key, AAD, kv.value()) {
                Ok(v) if &*v == b"keel" => Ok(()),
                Ok(_) => Err(StoreError::Backend(format!(
                    "etcd key {key}: unexpected value"
                ))),
                Err(e) => Err(StoreError::Backend(format!(
                    "{e}: the other replicas on this etcd seal Secrets with another key; \
                     give every replica the same --encryption-key-file"
                ))),
            };
        }
    }
    Ok(())
}

/// Reads every object: the state at etcd's current revision.
async fn load(kv: &mut KvClient, cfg: &EtcdConfig) -> Result<State, EtcdError> {
    let resp = kv
        .get(cfg.registry(), Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let mut state = State {
        revision: revision.max(0) as u64,
        ..State::default()
    };
    for kv in resp.kvs() {
        state.put(decode(cfg, kv.key(), kv.value(), kv.mod_revision())?);
    }
    Ok(state)
}

/// Opens a watch on everything under the prefix from `from` (inclusive)
/// and reads etcd's first answer to it (the confirmation, which says
/// whether `from` was compacted).
async fn start_watch(
    client: &Client,
    cfg: &EtcdConfig,
    from: i64,
) -> Result<(WatchStream, WatchResponse), EtcdError> {
    let opts = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_progress_notify()
        .with_start_revision(from);
    let mut stream = client
        .watch_client()
        .watch(format!("{}/", cfg.prefix), Some(opts))
        .await?;
    let first = stream
        .message()
        .await?
        .ok_or_else(|| EtcdError::Watch("closed before it was created".into()))?;
    Ok((stream, first))
}

/// A confirmed watch that etcd canceled all the same.
fn refused(first: &WatchResponse) -> Result<(), EtcdError> {
    if first.canceled() {
        return Err(EtcdError::Watch(format!(
            "canceled: {}",
            first.cancel_reason()
        )));
    }
    Ok(())
}

/// Opens a watch on everything under the prefix from `from` (inclusive),
/// moving `from` up to etcd's compaction point when it is older; returns
/// the revision it starts from.
async fn open_watch(
    client: &Client,
    cfg: &EtcdConfig,
    from: i64,
) -> Result<(WatchStream, i64), EtcdError> {
    let mut from = from.max(1);
    loop {
        let (stream, first) = start_watch(client, cfg, from).await?;
        if first.compact_revision() > 0 && first.compact_revision() > from {
            from = first.compact_revision();
            continue;
        }
        refused(&first)?;
        return Ok((stream, from));
    }
}

/// What one watch response means for the store.
enum Applied {
    /// Events (each newer than the state), the revision reached.
    Events(Vec<Arc<Event>>, u64),
    /// Nothing changed in the registry up to this revision.
    Progress(u64),
    /// The watch fell behind etcd's compaction (at this revision; 0:
    /// unknown): relist.
    Compacted(i64),
    Nothing,
}

fn interpret(resp: &WatchResponse, cfg: &EtcdConfig) -> Result<Applied, EtcdError> {
    if resp.compact_revision() > 0 {
        return Ok(Applied::Compacted(resp.compact_revision()));
    }
    if resp.canceled() {
        return Err(EtcdError::Watch(format!(
            "canceled: {}",
            resp.cancel_reason()
        )));
    }
    if resp.events().is_empty() {
        if resp.created() {
            return Ok(Applied::Nothing);
        }
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0).max(0) as u64;
        return Ok(Applied::Progress(rev));
    }
    let registry = cfg.registry();
    let mut events = Vec::new();
    let mut last = 0u64;
    for e in resp.events() {
        let Some(kv) = e.kv() else { continue };
        let rev = kv.mod_revision().max(0) as u64;
        last = last.max(rev);
        if !kv.key().starts_with(registry.as_bytes()) {
            continue;
        }
        let ev = match e.event_type() {
            EtcdEventType::Put => {
                let obj = decode(cfg, kv.key(), kv.value(), kv.mod_revision())?;
                let type_ = if kv.create_revision() == kv.mod_revision() {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                Event::new(rev, type_, obj)
            }
            EtcdEventType::Delete => {
                let Some(prev) = e.prev_kv() else {
                    tracing::warn!(
                        key = %String::from_utf8_lossy(kv.key()),
                        "etcd delete without the previous value (compacted); relisting"
                    );
                    return Ok(Applied::Compacted(0));
                };
                // The deleted object carries the revision of its deletion.
                let obj = decode(cfg, prev.key(), prev.value(), kv.mod_revision())?;
                Event::new(rev, EventType::Deleted, obj)
            }
        };
        events.push(Arc::new(ev));
    }
    Ok(Applied::Events(events, last))
}

/// Folds events into a state (only those newer than it).
fn fold(state: &mut State, events: &[Arc<Event>], revision: u64) {
    for e in events {
        if e.revision <= state.revision {
            continue;
        }
        match e.type_ {
            EventType::Deleted => {
                state.remove(e.obj.kind(), &e.obj.key());
            }
            _ => state.put(e.obj.clone()),
        }
    }
    state.revision = state.revision.max(revision);
}

/// Reads every object, opens the watch as far back as the history reaches
/// and reads it up to a barrier written after the list.
async fn start(
    client: &Client,
    kv: &mut KvClient,
    cfg: &EtcdConfig,
    config: &StoreConfig,
    id: &str,
) -> Result<(State, History, WatchStream), EtcdError> {
    let mut state = load(kv, cfg).await?;
    let loaded = state.revision;
    // History: as far back as `history` revisions (or etcd's compaction).
    let from = loaded.saturating_sub(config.history as u64) + 1;
    let (mut stream, from) = open_watch(client, cfg, from as i64).await?;
    if from as u64 > loaded + 1 {
        return Err(EtcdError::Compacted(format!(
            "etcd compacted past revision {loaded} while it was read"
        )));
    }
    // Revisions before `from` are gone (or older than the history keeps).
    let mut history = History::with_budget(
        config.history,
        config.history_bytes,
        (from as u64).saturating_sub(1),
    );
    // Read until the watch has delivered a barrier written after the list:
    // then the history holds every change up to the list and the state
    // everything up to the barrier. (etcd 3.4 answers a progress request at
    // once with its current revision, even to a watcher still catching up,
    // so a progress response cannot serve as that mark.)
    let barrier = barrier(kv, cfg, id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state.revision < barrier {
        let msg = tokio::time::timeout_at(deadline, stream.message())
            .await
            .map_err(|_| {
                EtcdError::Watch("the watch did not deliver the start barrier within 30 s".into())
            })??
            .ok_or_else(|| EtcdError::Watch("closed".into()))?;
        match interpret(&msg, cfg)? {
            Applied::Events(events, rev) => {
                fold(&mut state, &events, rev);
                history.push(events);
            }
            Applied::Progress(_) | Applied::Nothing => {}
            // etcd confirms a watch from a compacted revision, then cancels
            // it: start from the compaction point when nothing was read yet.
            Applied::Compacted(at)
                if at > 0
                    && at as u64 <= loaded + 1
                    && state.revision == loaded
                    && history.is_empty() =>
            {
                stream = open_watch(client, cfg, at).await?.0;
                history = History::with_budget(
                    config.history,
                    config.history_bytes,
                    (at as u64).saturating_sub(1),
                );
            }
            Applied::Compacted(_) => {
                return Err(EtcdError::Compacted(
                    "etcd compacted the history while it was read".into(),
                ));
            }
        }
    }
    Ok((state, history, stream))
}

impl super::Store {
    /// Opens the store on etcd: reads every object, fills the watch history
    /// from etcd's, and starts the watch, the writer and the compactor.
    pub async fn open_etcd(mut cfg: EtcdConfig, config: StoreConfig) -> Result<Self, StoreError> {
        cfg.encryption = config.encryption.clone();
        config.ranges.validate().map_err(StoreError::Backend)?;
        let client = patiently("connecting to etcd", EtcdError::is_transient, || {
            connect_steered(&cfg)
        })
        .await?;
        let mut kv = client.kv_client();
        if let Some(ring) = cfg.encryption.clone() {
            same_key_as_the_others(&mut kv, &cfg, &ring).await?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        // A compaction racing the start cancels the watch: read again.
        let mut attempt = 0;
        let (state, history, stream) = loop {
            let started = patiently(
                "reading the store from etcd",
                EtcdError::is_transient,
                || {
                    let (client, mut kv, cfg, config, id) =
                        (&client, kv.clone(), &cfg, &config, &id);
                    async move { start(client, &mut kv, cfg, config, id).await }
                },
            );
            match started.await {
                Err(EtcdError::Compacted(e)) if attempt < 5 => {
                    attempt += 1;
                    tracing::info!(error = %e, "etcd: starting again");
                }
                r => break r?,
            }
        };
        let (revision, _) = tokio::sync::watch::channel(state.revision);
        let shared = Arc::new(Shared {
            health: Default::default(),
            unreachable: Default::default(),
            state: std::sync::RwLock::new(Arc::new(state)),
            history: std::sync::RwLock::new(history),
            revision,
            stats: Default::default(),
        });
        tokio::spawn(mirror(
            client.clone(),
            cfg.clone(),
            config.clone(),
            shared.clone(),
            stream,
        ));
        tokio::spawn(probe(kv.clone(), cfg.clone(), shared.clone()));
        if !cfg.compact_interval.is_zero() {
            tokio::spawn(compactor(kv.clone(), cfg.compact_interval, shared.clone()));
        }
        tokio::spawn(alarms(client.clone(), shared.clone()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Request>(4096);
        tokio::spawn(
            EtcdWriter {
                kv,
                cfg,
                shared: shared.clone(),
                config,
                cursors: Default::default(),
                id,
            }
            .run(rx),
        );
        Ok(Self {
            shared,
            writer: tx,
            fence: None,
        })
    }
}

fn publish(shared: &Shared, events: Vec<Arc<Event>>, revision: u64) {
    {
        let mut st = shared.state.write().expect("state lock");
        if events.is_empty() && revision <= st.revision {
            return;
        }
        let mut next = (**st).clone();
        fold(&mut next, &events, revision);
        *st = Arc::new(next);
        shared.history.write().expect("history lock").push(events);
    }
    let rev = shared.state.read().expect("state lock").revision;
    shared.revision.send_replace(rev);
}

/// Follows etcd: applies every change to the state and history (and etcd's
/// progress notifications, sent only to a watcher that has caught up, to
/// the revision), reconnects from the last revision, relists after
/// falling behind etcd's compaction.
async fn mirror(
    client: Client,
    cfg: EtcdConfig,
    config: StoreConfig,
    shared: Arc<Shared>,
    mut stream: WatchStream,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let failed = loop {
            tokio::select! {
                m = stream.message() => {
                    let msg = match m {
                        Ok(Some(m)) => m,
                        Ok(None) => break EtcdError::Watch("closed by etcd".into()),
                        Err(e) => break e.into(),
                    };
                    backoff = Duration::from_millis(100);
                    match interpret(&msg, &cfg) {
                        Ok(Applied::Events(events, rev)) => {
                            let current = shared.state.read().expect("state lock").revision;
                            let events: Vec<_> = events.into_iter().filter(|e| e.revision > current).collect();
                            publish(&shared, events, rev);
                        }
                        Ok(Applied::Progress(rev)) => publish(&shared, Vec::new(), rev),
                        Ok(Applied::Nothing) => {}
                        Ok(Applied::Compacted(_)) => break EtcdError::Watch("compacted".into()),
                        Err(e) => break e,
                    }
                }
            }
        };
        tracing::warn!(error = %failed, "etcd watch ended; resuming");
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            let after = shared.state.read().expect("state lock").revision;
            let compacted = matches!(&failed, EtcdError::Watch(m) if m == "compacted");
            if !compacted {
                match open_watch_exact(&client, &cfg, after as i64 + 1).await {
                    Ok(Some(s)) => {
                        stream = s;
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "etcd watch: reconnecting");
                        continue;
                    }
                }
            }
            // The revisions after ours are gone: relist, and tell watchers
            // older than the new list to relist too.
            match relist(&client, &cfg, &config, &shared).await {
                Ok(s) => {
                    stream = s;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "etcd: relisting"),
            }
        }
    }
}

/// A watch from exactly `from`, or None when etcd compacted past it.
async fn open_watch_exact(
    client: &Client,
    cfg: &EtcdConfig,
    from: i64,
) -> Result<Option<WatchStream>, EtcdError> {
    let (stream, first) = start_watch(client, cfg, from).await?;
    if first.compact_revision() > 0 {
        return Ok(None);
    }
    refused(&first)?;
    Ok(Some(stream))
}

async fn relist(
    client: &Client,
    cfg: &EtcdConfig,
    config: &StoreConfig,
    shared: &Shared,
) -> Result<WatchStream, EtcdError> {
    let state = load(&mut client.kv_client(), cfg).await?;
    let revision = state.revision;
    let stream = open_watch_exact(client, cfg, revision as i64 + 1)
        .await?
        .ok_or_else(|| EtcdError::Watch("compacted again while relisting".into()))?;
    {
        let mut st = shared.state.write().expect("state lock");
        *st = Arc::new(state);
        *shared.history.write().expect("history lock") =
            History::with_budget(config.history, config.history_bytes, revision);
    }
    tracing::warn!(
        revision,
        "etcd: relisted after falling behind its compaction"
    );
    shared.revision.send_replace(revision);
    Ok(stream)
}

/// Asks etcd every [`PROBE_EVERY`] whether it answers this replica and
/// records the verdict (`/readyz`, and writes refused at once while it
/// does not), as kube-apiserver's etcd readiness check does.
async fn probe(mut kv: KvClient, cfg: EtcdConfig, shared: Arc<Shared>) {
    let key = format!("{}/health", cfg.prefix);
    loop {
        let verdict = probe_once(&mut kv, &key).await.err();
        {
            let mut now = shared.unreachable.write().expect("probe lock");
            match (&*now, &verdict) {
                (None, Some(why)) => {
                    tracing::warn!(error = %why, "etcd does not answer this replica: not ready, writes refused (503)")
                }
                (Some(_), None) => tracing::info!("etcd answers again: ready"),
                _ => {}
            }
            *now = verdict;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// One linearizable read (etcd answers it only with its quorum), within
/// [`PROBE_TIMEOUT`]; a member that cannot be connected to is passed over
/// for another.
async fn probe_once(kv: &mut KvClient, key: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    loop {
        let get = kv.get(key, Some(GetOptions::new().with_count_only()));
        match tokio::time::timeout_at(deadline, get).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if never_sent(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(Err(e)) => return Err(full_text(&e)),
            Err(_) => return Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    }
}

/// Compacts etcd's history to the revision seen one interval earlier.
async fn compactor(mut kv: KvClient, every: Duration, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut previous = 0u64;
    loop {
        tick.tick().await;
        if previous > 0 {
            match kv.compact(previous as i64, None).await {
                Ok(_) => tracing::info!(revision = previous, "etcd: compacted"),
                // Another replica compacted to here or further.
                Err(e) if e.to_string().contains("compacted") => {}
                Err(e) => tracing::warn!(error = %e, "etcd: compaction failed"),
            }
        }
        previous = shared.state.read().expect("state lock").revision;
    }
}

/// What etcd's NOSPACE alarm means for the store's health.
fn nospace(detail: &str) -> WriterHealth {
    WriterHealth::DiskFull(format!(
        "etcd's NOSPACE alarm: {detail}; compact and defragment etcd, then `etcdctl alarm disarm`"
    ))
}

/// Keeps the store's health in step with etcd's NOSPACE alarm, whichever
/// replica's write raised it, and notices when it is disarmed.
async fn alarms(client: Client, shared: Arc<Shared>) {
    let mut maintenance = client.maintenance_client();
    let mut tick = tokio::time::interval(ALARM_POLL);
    loop {
        tick.tick().await;
        let raised = match maintenance
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await
        {
            Ok(r) => r
                .alarms()
                .iter()
                .filter(|a| a.alarm() == AlarmType::Nospace)
                .map(|a| format!("{:x}", a.member_id()))
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::debug!(error = %e, "etcd: reading alarms");
                continue;
            }
        };
        let mut health = shared.health.write().expect("health lock");
        match (raised.is_empty(), &*health) {
            (false, WriterHealth::Ok) => {
                tracing::warn!(members = ?raised, "etcd: NOSPACE alarm raised; only deletes are taken");
                *health = nospace(&format!(
                    "raised on member(s) {}, its space quota is reached",
                    raised.join(", ")
                ));
            }
            (true, WriterHealth::DiskFull(_)) => {
                tracing::info!("etcd: NOSPACE alarm cleared; writes are taken again");
                *health = WriterHealth::Ok;
            }
            _ => {}
        }
    }
}

/// Writes `<prefix>/sync/<id>` and returns its revision: once the watch
/// (which covers the prefix) has delivered it, it has delivered everything
/// before it.
async fn barrier(kv: &mut KvClient, cfg: &EtcdConfig, id: &str) -> Result<u64, etcd_client::Error> {
    let resp = kv
        .put(format!("{}/sync/{id}", cfg.prefix), Vec::<u8>::new(), None)
        .await?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or(0).max(0) as u64)
}

/// Whether a failed call surely never reached etcd (the connection to the
/// member could not be made).
fn never_sent(e: &etcd_client::Error) -> bool {
    failure_of(&full_text(e)) == Failure::NeverSent
}

/// Whether a write may allocate (a pod CIDR, a cluster IP, node ports).
fn may_allocate(op: &WriteOp) -> bool {
    match op {
        WriteOp::Create(o)
        | WriteOp::Update {
            obj: o,
            status: false,
        } => {
            matches!(o, AnyObject::Node(_) | AnyObject::Service(_))
        }
        _ => false,
    }
}

struct EtcdWriter {
    kv: KvClient,
    cfg: EtcdConfig,
    shared: Arc<Shared>,
    config: StoreConfig,
    cursors: Arc<tokio::sync::Mutex<Cursors>>,
    /// This replica's barrier key name.
    id: String,
}

impl EtcdWriter {
    /// Writes run concurrently (up to [`MAX_IN_FLIGHT`]): etcd orders
    /// them and its compares refuse the loser of a race on one key. Writes
    /// that may allocate run one at a time on this replica, so they do not
    /// all pick the same free value and lose to each other.
    async fn run(self, mut rx: tokio::sync::mpsc::Receiver<Request>) {
        let this = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        while let Some(Request {
            op,
            reply,
            fence,
            dry_run,
        }) = rx.recv().await
        {
            if dry_run {
                let _ = reply.send(this.dry_run(op).await);
                continue;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let this = this.clone();
            tokio::spawn(async move {
                let result = this.write(op, fence.as_deref()).await;
                let _ = reply.send(result);
                drop(slot);
            });
        }
    }

    /// Sends a transaction that changes objects, until `deadline`; a
    /// member that cannot be connected to (killed, restarting) never saw
    /// it, so it goes to another one. A transaction sent and not answered
    /// may or may not have committed: 504, the client's to resolve, as with
    /// kube-apiserver.
    async fn txn(
        &self,
        txn: etcd_client::Txn,
        deadline: tokio::time::Instant,
    ) -> Result<etcd_client::TxnResponse, StoreError> {
        let mut kv = self.kv.clone();
        loop {
            let e = match tokio::time::timeout_at(deadline, kv.txn(txn.clone())).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(timed_out(&format!("no answer within {REQUEST_DEADLINE:?}")));
                }
            };
            let text = full_text(&e);
            match failure_of(&text) {
                Failure::NeverSent if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %text, "etcd: a member is unreachable; trying another");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Failure::NeverSent => return Err(unavailable(&text)),
                // etcd's NOSPACE alarm: its quota is reached.
                Failure::NoSpace => {
                    let mut health = self.shared.health.write().expect("health lock");
                    if *health == WriterHealth::Ok {
                        *health = nospace("database space exceeded");
                    }
                    return Err(StoreError::NoSpace(format!(
                        "etcd's space quota is reached, its NOSPACE alarm: {e}; compact and defragment etcd, then `etcdctl alarm disarm`"
                    )));
                }
                Failure::Unknown => return Err(timed_out(&text)),
            }
        }
    }

    /// A call that changes no object (the fence check, a barrier), bounded
    /// by `deadline`; one that never reached a member goes to another, and
    /// a failure is answered as etcd being unreachable (the write itself
    /// was not committed by it).
    async fn call<T, Fut>(
        &self,
        deadline: tokio::time::Instant,
        mut f: impl FnMut() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        loop {
            match tokio::time::timeout_at(deadline, f()).await {
                Ok(Ok(t)) => return Ok(t),
                Ok(Err(e)) if never_sent(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(e)) => return Err(unavailable(&full_text(&e))),
                Err(_) => {
                    return Err(unavailable(&format!(
                        "no answer within {REQUEST_DEADLINE:?}"
                    )));
                }
            }
        }
    }

    /// Waits until the replica's state has reached `revision`, which etcd
    /// committed: if the watch does not get there, the write happened but
    /// this replica cannot show it (504).
    async fn caught_up(&self, revision: u64) -> Result<(), StoreError> {
        let mut rx = self.shared.revision.subscribe();
        match tokio::time::timeout(WATCH_WAIT, rx.wait_for(|r| *r >= revision)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::Timeout(format!(
                "etcd committed revision {revision} but this replica's watch of etcd has not seen it within {WATCH_WAIT:?}"
            ))),
        }
    }

    /// Refuses a write at once while the probe finds etcd unreachable:
    /// nothing is sent, so the client may take it to another replica.
    fn reachable(&self) -> Result<(), StoreError> {
        match self
            .shared
            .unreachable
            .read()
            .expect("probe lock")
            .as_deref()
        {
            Some(why) => Err(unavailable(why)),
            None => Ok(()),
        }
    }

    /// `dryRun=All`: the write applied to a scratch copy of this replica's
    /// state and allocation cursors; nothing reaches etcd.
    async fn dry_run(&self, op: WriteOp) -> Result<Obj, StoreError> {
        let base = self.shared.state.read().expect("state lock").clone();
        let mut scratch = (*base).clone();
        let mut cursors = self.cursors.lock().await.clone();
        let mut ctx = Ctx {
            ranges: &self.config.ranges,
            limits: &self.config.limits,
            cursors: &mut cursors,
        };
        apply(
            &mut scratch,
            &mut ctx,
            op,
            &mut Batch::default(),
            &mut Vec::new(),
        )
    }

    async fn write(&self, op: WriteOp, fence: Option<&Fence>) -> Result<Obj, StoreError> {
        self.reachable()?;
        // From before waiting for the cursors: a write queued behind one
        // that hangs on etcd is bounded too.
        let deadline = tokio::time::Instant::now() + REQUEST_DEADLINE;
        let allocates = may_allocate(&op);
        // Held for the whole write when it may allocate; other writes never
        // touch the cursors.
        let mut shared_cursors = if allocates {
            let cursors = self.cursors.clone().lock_owned();
            Some(
                tokio::time::timeout_at(deadline, cursors)
                    .await
                    .map_err(|_| {
                        unavailable(&format!(
                            "earlier writes held this one for {REQUEST_DEADLINE:?}"
                        ))
                    })?,
            )
        } else {
            None
        };
        let mut unused = Cursors::default();
        for _ in 0..MAX_ATTEMPTS {
            let base = self.shared.state.read().expect("state lock").clone();
            let mut next = (*base).clone();
            let mut batch = Batch::default();
            let mut events = Vec::new();
            let mut ctx = Ctx {
                ranges: &self.config.ranges,
                limits: &self.config.limits,
                cursors: match shared_cursors.as_mut() {
                    Some(c) => c,
                    None => &mut unused,
                },
            };
            let obj = apply(&mut next, &mut ctx, op.clone(), &mut batch, &mut events)?;
            if events.is_empty() {
                return Ok(obj);
            }
            let mut compares = Vec::new();
            let mut ops = Vec::new();
            for e in &events {
                let key = self.cfg.object_key(&e.obj);
                let current = base
                    .get(e.obj.kind(), &e.obj.key())
                    .map(|o| o.meta().revision())
                    .unwrap_or(0);
                compares.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    current as i64,
                ));
                match e.type_ {
                    EventType::Deleted => ops.push(TxnOp::delete(key, None)),
                    _ => {
                        let mut value = e.obj.with_resource_version("").to_json();
                        if let (Kind::Secret, Some(ring)) =
                            (e.obj.kind(), self.cfg.encryption.as_deref())
                        {
                            value = ring.seal(&secret_aad(&e.obj.key()), &value);
                        }
                        ops.push(TxnOp::put(key, value, None))
                    }
                }
            }
            if allocates {
                let alloc = self.cfg.alloc_key();
                compares.push(Compare::mod_revision(
                    alloc.clone(),
                    CompareOp::Less,
                    base.revision as i64 + 1,
                ));
                ops.push(TxnOp::put(alloc, Vec::<u8>::new(), None));
            }
            if let Some(f) = fence {
                compares.push(Compare::create_revision(
                    f.key.clone(),
                    CompareOp::Equal,
                    f.revision,
                ));
            }
            let txn = etcd_client::Txn::new().when(compares).and_then(ops);
            let resp = self.txn(txn, deadline).await?;
            let revision = resp.header().map(|h| h.revision()).unwrap_or(0).max(0) as u64;
            if resp.succeeded() {
                self.caught_up(revision).await?;
                return Ok(obj.with_resource_version(&revision.to_string()));
            }
            if let Some(f) = fence {
                let now = self
                    .call(deadline, || {
                        let (mut kv, key) = (self.kv.clone(), f.key.clone());
                        async move { kv.get(key, None).await }
                    })
                    .await?;
                let holder = now.kvs().first().map(|kv| kv.create_revision());
                if holder != Some(f.revision) {
                    let e = &events[0].obj;
                    return Err(StoreError::Conflict {
                        kind: e.kind(),
                        key: e.key(),
                        message:
                            "this replica no longer leads the controllers; the write is refused"
                                .into(),
                    });
                }
            }
            // Another writer changed what this write read: wait until the
            // state has everything up to a barrier written after the failed
            // transaction, then decide again.
            let _ = revision;
            let barrier = self
                .call(deadline, || {
                    let mut kv = self.kv.clone();
                    async move { barrier(&mut kv, &self.cfg, &self.id).await }
                })
                .await?;
            self.caught_up(barrier)
                .await
                .map_err(|_| unavailable("this replica's watch of etcd lags behind"))?;
        }
        let (kind, key) = match &op {
            WriteOp::Create(o) | WriteOp::Update { obj: o, .. } => {
                let m = o.meta();
                (o.kind(), join_key(&m.namespace, &m.name))
            }
            WriteOp::Bind {
                namespace, name, ..
            } => (Kind::Pod, join_key(namespace, name)),
            WriteOp::Delete {
                kind,
                namespace,
                name,
                ..
            } => (*kind, join_key(namespace, name)),
        };
        Err(StoreError::Conflict {
            kind,
            key,
            message: format!("lost {MAX_ATTEMPTS} races with other writers in a row; retry"),
        })
    }
}

fn join_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

#[cfg(test)]
mod tests;
