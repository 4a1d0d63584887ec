//! Leader election of keel-control replicas on etcd, for the controllers:
//! exactly one replica at a time holds `<prefix>/leader`, a key bound to an
//! etcd lease it keeps alive.
//!
//! Fencing, twice over:
//! - The leader steps down on its own once it has not had a keep-alive
//!   answered for `ttl - ttl/3` since the request was sent. etcd expires
//!   the lease no earlier than `ttl` after it received that request, and
//!   only then can another replica take the key, so the old leader has
//!   stopped before a new one starts (clocks need only run at the same
//!   rate).
//! - Every write of a controller on etcd carries a [`Fence`]: its
//!   transaction also requires the leader key to still have the create
//!   revision it had when this replica won. A write that a paused or
//!   partitioned old leader sends late is refused by etcd itself.

use std::{sync::Arc, time::Duration};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, WatchOptions};

use super::etcd::{EtcdConfig, EtcdError};

/// Writes carrying this fence commit only while the leader key still has
/// this create revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub revision: i64,
}

/// This replica leads until `lost` turns true (or the value is dropped,
/// which revokes the lease so another replica takes over at once).
pub struct Leadership {
    pub fence: Arc<Fence>,
    pub lost: tokio::sync::watch::Receiver<bool>,
    keeper: tokio::task::JoinHandle<()>,
    client: Client,
    lease: i64,
}

impl Leadership {
    /// Resolves once leadership is lost.
    pub async fn wait_lost(&mut self) {
        let _ = self.lost.wait_for(|l| *l).await;
    }

    /// Gives leadership up now (revokes the lease).
    pub async fn resign(self) {
        self.keeper.abort();
        let _ = self.client.lease_client().revoke(self.lease).await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

pub struct Elector {
    client: Client,
    key: String,
    id: String,
    ttl: Duration,
}

impl Elector {
    /// `id` names this replica in the leader key's value.
    pub fn new(client: Client, cfg: &EtcdConfig, id: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            key: format!("{}/leader", cfg.prefix),
            id: id.into(),
            // etcd leases have whole seconds.
            ttl: Duration::from_secs(ttl.as_secs().max(2)),
        }
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) -> Result<Leadership, EtcdError> {
        let ttl_secs = self.ttl.as_secs().max(2) as i64;
        loop {
            // The lease's TTL runs from when etcd granted it: count from
            // before asking.
            let granted_at = tokio::time::Instant::now();
            let lease = self.client.lease_client().grant(ttl_secs, None).await?.id();
            let resp = self
                .client
                .kv_client()
                .txn(
                    Txn::new()
                        .when([Compare::create_revision(
                            self.key.clone(),
                            CompareOp::Equal,
                            0,
                        )])
                        .and_then([TxnOp::put(
                            self.key.clone(),
                            self.id.clone(),
                            Some(PutOptions::new().with_lease(lease)),
                        )]),
                )
                .await?;
            if resp.succeeded() {
                let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                let (tx, lost) = tokio::sync::watch::channel(false);
                let keeper =
                    tokio::spawn(keep(self.client.clone(), lease, self.ttl, granted_at, tx));
                tracing::info!(replica = %self.id, revision, "leading the controllers");
                return Ok(Leadership {
                    fence: Arc::new(Fence {
                        key: self.key.clone(),
                        revision,
                    }),
                    lost,
                    keeper,
                    client: self.client.clone(),
                    lease,
                });
            }
            let _ = self.client.lease_client().revoke(lease).await;
            self.wait_vacant(resp.header().map(|h| h.revision()).unwrap_or(0))
                .await;
        }
    }

    /// Returns once the leader key is deleted after `revision` (or after a
    /// TTL, to try again in any case).
    async fn wait_vacant(&self, revision: i64) {
        let watch = async {
            let mut stream = self
                .client
                .watch_client()
                .watch(
                    self.key.clone(),
                    Some(WatchOptions::new().with_start_revision(revision + 1)),
                )
                .await?;
            while let Some(resp) = stream.message().await? {
                if resp.canceled()
                    || resp
                        .events()
                        .iter()
                        .any(|e| e.event_type() == etcd_client::EventType::Delete)
                {
                    break;
                }
            }
            Ok::<_, etcd_client::Error>(())
        };
        let _ = tokio::time::timeout(self.ttl, watch).await;
    }
}

/// Keeps the lease alive; reports loss once no keep-alive sent in the last
/// `ttl - ttl/3` has been answered.
async fn keep(
    client: Client,
    lease: i64,
    ttl: Duration,
    granted_at: tokio::time::Instant,
    lost: tokio::sync::watch::Sender<bool>,
) {
    let safe = ttl - ttl / 3;
    // The lease runs out no earlier than `ttl` after the last request etcd
    // answered was sent.
    let mut valid_until = granted_at + safe;
    let every = ttl / 6;
    let mut lc = client.lease_client();
    let mut stream = None;
    loop {
        if tokio::time::Instant::now() >= valid_until {
            tracing::warn!(lease, "leadership lost: no keep-alive answered in time");
            let _ = lost.send(true);
            return;
        }
        if stream.is_none() {
            stream = match tokio::time::timeout_at(valid_until, lc.keep_alive(lease)).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
        }
        let (keeper, answers) = stream.as_mut().expect("set above");
        let sent = tokio::time::Instant::now();
        let answered = async {
            keeper.keep_alive().await?;
            answers.message().await
        };
        match tokio::time::timeout_at(valid_until, answered).await {
            Ok(Ok(Some(a))) if a.ttl() > 0 => valid_until = sent + safe,
            Ok(Ok(Some(_))) => {
                tracing::warn!(lease, "leadership lost: the lease expired");
                let _ = lost.send(true);
                return;
            }
            _ => stream = None,
        }
        tokio::time::sleep(every).await;
    }
}
