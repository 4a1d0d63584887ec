//! Controllers inside keel-control. Each follows the store's event history
//! (resyncing from a snapshot when it falls behind or on a timer), computes
//! what should change with pure functions, and writes through the store
//! with preconditions so it never overwrites a concurrent change; a refused
//! write is retried on the next event or resync.

pub mod deployments;
pub mod endpoints;
pub mod events;
pub mod nodes;
pub mod routes;
pub mod scheduler;

use std::{sync::Arc, time::Duration};

use crate::store::{Event, State, Store};

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// How often node heartbeats are checked.
    pub node_monitor_period: Duration,
    /// A node that has not posted status for this long becomes NotReady (Unknown).
    pub node_grace: Duration,
    /// Pods on a node NotReady for this long are evicted (and replaced by
    /// their Deployment elsewhere).
    pub pod_eviction_timeout: Duration,
    /// Full recomputation period of the event-driven controllers.
    pub resync: Duration,
    /// Events last seen longer ago than this are deleted.
    pub event_ttl: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            node_monitor_period: Duration::from_secs(2),
            node_grace: Duration::from_secs(40),
            pod_eviction_timeout: Duration::from_secs(300),
            resync: Duration::from_secs(30),
            event_ttl: Duration::from_secs(3600),
        }
    }
}

/// What a controller gets to act on next.
pub enum Work {
    /// New events since the last call, with the state after them.
    Events(Vec<Arc<Event>>, Arc<State>),
    /// Recompute everything from this state (start, timer, or fell behind).
    Resync(Arc<State>),
}

/// Follows the store for one controller.
pub struct Follower {
    store: Store,
    cursor: Option<u64>,
    resync: Duration,
    next_resync: tokio::time::Instant,
    revisions: tokio::sync::watch::Receiver<u64>,
}

impl Follower {
    pub fn new(store: Store, resync: Duration) -> Self {
        let revisions = store.subscribe();
        Self {
            store,
            cursor: None,
            resync,
            next_resync: tokio::time::Instant::now() + resync,
            revisions,
        }
    }

    pub async fn next(&mut self) -> Work {
        loop {
            let now = tokio::time::Instant::now();
            let Some(cursor) = self.cursor.filter(|_| now < self.next_resync) else {
                let snap = self.store.snapshot();
                self.cursor = Some(snap.revision);
                self.next_resync = now + self.resync;
                return Work::Resync(snap);
            };
            // Snapshot first: it is at least as new as the events read after it.
            let snap = self.store.snapshot();
            match self.store.events_after(cursor) {
                Err(_) => self.cursor = None,
                Ok(events) if !events.is_empty() => {
                    let last = events.last().map(|e| e.revision).unwrap_or(cursor);
                    self.cursor = Some(last);
                    let snap = if snap.revision >= last {
                        snap
                    } else {
                        self.store.snapshot()
                    };
                    return Work::Events(events, snap);
                }
                Ok(_) => {
                    tokio::select! {
                        _ = self.revisions.changed() => {}
                        _ = tokio::time::sleep_until(self.next_resync) => {}
                    }
                }
            }
        }
    }
}

/// Starts every controller; they run until the runtime shuts down or the
/// returned tasks are aborted (a replica that stops leading). The route
/// controller runs only with a VPC provider (`vpc` mode).
pub fn spawn_all(
    store: &Store,
    config: &ControllerConfig,
    vpc: Option<Arc<dyn crate::vpc::VpcProvider>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(nodes::run(
            store.clone(),
            config.clone(),
            events::recorder(store, events::NODE_CONTROLLER),
        )),
        tokio::spawn(scheduler::run(
            store.clone(),
            config.clone(),
            events::recorder(store, events::SCHEDULER),
        )),
        tokio::spawn(endpoints::run(store.clone(), config.clone())),
        tokio::spawn(deployments::run(
            store.clone(),
            config.clone(),
            events::recorder(store, events::DEPLOYMENT_CONTROLLER),
        )),
        tokio::spawn(events::run_ttl(store.clone(), config.event_ttl)),
    ];
    if let Some(p) = vpc {
        tasks.push(tokio::spawn(routes::run(store.clone(), config.clone(), p)));
    }
    tasks
}
