//! The agent's picture of the desired state, and who hears of a change.
//!
//! A [`View`] is immutable and cheap to clone (persistent maps: a clone
//! shares everything, a change copies a path), so readers take the current
//! one without waiting for or copying anything. Each step of the informers
//! — one event or a burst of them, or a relist — publishes a new View
//! together with the [`Changes`]: the keys whose object is new, gone or a
//! different version. Reconcilers subscribe with a function that maps those
//! keys to their own (a Service key to the load balancer, a pod key to that
//! pod's worker, any Node to node networking) and triggers only those.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use imbl::OrdMap;
use keel_api::{Endpoints, Node, Pod, Resource, Service};
use tokio::sync::watch;

/// Objects of one kind by key (`namespace/name`, or `name` for Nodes).
pub type Objects<R> = OrdMap<String, Arc<R>>;

/// What the node's reconcilers work from: the latest known desired state.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// This node's own object (pod CIDR, conditions).
    pub node: Option<Arc<Node>>,
    /// Every node (peers, for networking).
    pub nodes: Objects<Node>,
    /// Pods bound to this node.
    pub pods: Objects<Pod>,
    pub services: Objects<Service>,
    pub endpoints: Objects<Endpoints>,
    /// False until every informer has listed once (from the server or the
    /// disk cache): reconcilers must not delete what they do not see yet.
    pub synced: bool,
    /// Every informer has listed from keel-control since the agent started
    /// (not only from its disk cache, which may be some events behind):
    /// what nothing in the view explains any more can be removed.
    pub fresh: bool,
}

impl View {
    /// The node's pod CIDR, once assigned.
    pub fn pod_cidr(&self) -> Option<ipnet::Ipv4Net> {
        self.node
            .as_ref()
            .and_then(|n| n.spec.pod_cidr.parse().ok())
    }
}

/// The keys a step of the informers changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub nodes: BTreeSet<String>,
    pub pods: BTreeSet<String>,
    pub services: BTreeSet<String>,
    pub endpoints: BTreeSet<String>,
    /// The view became synced in this step.
    pub synced: bool,
    /// The view became fresh in this step.
    pub fresh: bool,
}

impl Changes {
    /// Every key of `view`, as if it had all just arrived (what a new
    /// subscriber is told first).
    pub fn everything(view: &View) -> Self {
        Self {
            nodes: view.nodes.keys().cloned().collect(),
            pods: view.pods.keys().cloned().collect(),
            services: view.services.keys().cloned().collect(),
            endpoints: view.endpoints.keys().cloned().collect(),
            synced: view.synced,
            fresh: view.fresh,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.pods.is_empty()
            && self.services.is_empty()
            && self.endpoints.is_empty()
            && !self.synced
            && !self.fresh
    }
}

/// A change an informer reports.
#[derive(Debug, Clone)]
pub enum Update<R> {
    /// The whole set, as keel-control listed it.
    Replace(Vec<Arc<R>>),
    /// The whole set as the disk cache had it (keel-control unreachable at
    /// start): enough to keep serving, not to remove anything by.
    Cached(Vec<Arc<R>>),
    Upsert(Arc<R>),
    Delete(String),
}

impl<R> Update<R> {
    /// (a list from keel-control, a list from the disk cache).
    pub fn listing(&self) -> (bool, bool) {
        (
            matches!(self, Update::Replace(_)),
            matches!(self, Update::Cached(_)),
        )
    }
}

/// Applies `update` to `map`, adding the keys whose object changed to
/// `changed`. A relist keeps the objects whose resourceVersion did not
/// change (so they stay shared, and nobody hears of them).
pub fn apply<R: Resource>(map: &mut Objects<R>, update: Update<R>, changed: &mut BTreeSet<String>) {
    match update {
        Update::Replace(all) | Update::Cached(all) => {
            let mut next = OrdMap::new();
            for o in all {
                let key = o.key();
                match map.get(&key) {
                    Some(old) if same_version(old, &o) => {
                        next.insert(key, old.clone());
                    }
                    _ => {
                        changed.insert(key.clone());
                        next.insert(key, o);
                    }
                }
            }
            for key in map.keys() {
                if !next.contains_key(key) {
                    changed.insert(key.clone());
                }
            }
            *map = next;
        }
        Update::Upsert(o) => {
            let key = o.key();
            if map.get(&key).is_none_or(|old| !same_version(old, &o)) {
                changed.insert(key.clone());
                map.insert(key, o);
            }
        }
        Update::Delete(key) => {
            if map.remove(&key).is_some() {
                changed.insert(key);
            }
        }
    }
}

/// Two copies of one object at the same version (an empty version is
/// never the same: objects made up by tests have none).
fn same_version<R: Resource>(a: &Arc<R>, b: &Arc<R>) -> bool {
    Arc::ptr_eq(a, b)
        || (!a.meta().resource_version.is_empty()
            && a.meta().resource_version == b.meta().resource_version
            && a.meta().uid == b.meta().uid)
}

type Subscriber = Box<dyn Fn(&View, &Changes) + Send + Sync>;

struct Hub {
    current: watch::Sender<View>,
    /// Views published so far, counted after each is in place: an answer
    /// computed from the view read after this count is from that view or a
    /// later one.
    published: AtomicU64,
    /// Held while publishing, so a subscriber added meanwhile hears of the
    /// view exactly once: first as [`Changes::everything`], then the changes.
    subscribers: Mutex<Vec<Subscriber>>,
}

/// The current view, and a way to hear of its changes. Cheap to clone.
#[derive(Clone)]
pub struct Views {
    hub: Arc<Hub>,
}

impl Default for Views {
    fn default() -> Self {
        Self::new(View::default())
    }
}

impl Views {
    pub fn new(view: View) -> Self {
        Self {
            hub: Arc::new(Hub {
                current: watch::channel(view).0,
                published: AtomicU64::new(0),
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The latest view (a cheap clone).
    pub fn current(&self) -> View {
        self.hub.current.borrow().clone()
    }

    /// How many views were published: read it *before* [`Self::current`],
    /// and whatever is derived from that view is out of date once it moves.
    pub fn generation(&self) -> u64 {
        self.hub.published.load(Ordering::Acquire)
    }

    /// Calls `f` with the current view and [`Changes::everything`] at once,
    /// then with every later change. `f` runs on the informers' task: it
    /// must only note what to do (trigger a reconciler), never do it.
    pub fn subscribe(&self, f: impl Fn(&View, &Changes) + Send + Sync + 'static) {
        let mut subs = self
            .hub
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = self.current();
        f(&now, &Changes::everything(&now));
        subs.push(Box::new(f));
    }

    /// A receiver that wakes on every published view (for waiting in tests
    /// and tools; reconcilers use [`Views::subscribe`]).
    pub fn watch(&self) -> watch::Receiver<View> {
        self.hub.current.subscribe()
    }

    /// Publishes `view` and tells every subscriber what changed.
    pub fn publish(&self, view: View, changes: &Changes) {
        let subs = self
            .hub
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.hub.current.send_replace(view.clone());
        self.hub.published.fetch_add(1, Ordering::AcqRel);
        if changes.is_empty() {
            return;
        }
        for s in subs.iter() {
            s(&view, changes);
        }
    }
}

#[cfg(test)]
mod tests;
