//! Keeping the agent in step with keel-control: register the Node and
//! heartbeat, and mirror the objects the node needs (its pods, all
//! services, endpoints and nodes) into a local view that survives restarts
//! and control-service outages.
//!
//! - [`informer`]: list + watch per kind, with the disk cache ([`cache`]).
//! - [`view`]: the immutable [`View`] the informers publish, and the
//!   [`Changes`] each step brings, which reconcilers subscribe to.
//! - [`register`]: the Node object and its heartbeat.

pub mod cache;
pub mod informer;
pub mod register;
pub mod view;

use std::{path::PathBuf, sync::Arc};

use keel_api::{
    Endpoints, Node, Pod, Service,
    client::{Client, ListParams},
};
use tokio::sync::mpsc;

pub use self::view::{Changes, View, Views};
use self::{
    cache::DiskCache,
    informer::Informer,
    view::{Update, apply},
};

/// One informer's update, tagged by kind, on the way to the view.
enum Step {
    Pods(Update<Pod>),
    Services(Update<Service>),
    Endpoints(Update<Endpoints>),
    Nodes(Update<Node>),
}

/// Updates folded into one published view at most: a burst larger than
/// this is published in several steps, so subscribers start early.
const MAX_STEP: usize = 4096;

/// Starts the informers and returns the view, published as changes arrive.
pub fn start(client: Client, node_name: String, cache_dir: PathBuf) -> Views {
    let cache = Arc::new(DiskCache::new(cache_dir));
    let views = Views::default();
    let (tx, mut rx) = mpsc::channel::<Step>(MAX_STEP);
    let pods = ListParams::fields(format!("spec.nodeName={node_name}"));
    tokio::spawn(
        Informer::<Pod, Step> {
            client: client.clone(),
            namespace: String::new(),
            params: pods,
            name: "pods",
            cache: cache.clone(),
            updates: tx.clone(),
            wrap: Step::Pods,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Service, Step> {
            client: client.clone(),
            namespace: String::new(),
            params: ListParams::default(),
            name: "services",
            cache: cache.clone(),
            updates: tx.clone(),
            wrap: Step::Services,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Endpoints, Step> {
            client: client.clone(),
            namespace: String::new(),
            params: ListParams::default(),
            name: "endpoints",
            cache: cache.clone(),
            updates: tx.clone(),
            wrap: Step::Endpoints,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Node, Step> {
            client,
            namespace: String::new(),
            params: ListParams::default(),
            name: "nodes",
            cache,
            updates: tx,
            wrap: Step::Nodes,
        }
        .run(),
    );
    let out = views.clone();
    tokio::spawn(async move {
        let mut view = View::default();
        // Per kind: listed at all, and listed from keel-control.
        let mut listed = [false; 4];
        let mut fresh = [false; 4];
        while let Some(first) = rx.recv().await {
            let mut changes = Changes::default();
            let mut note = |i: usize, replace: bool, cached: bool| {
                listed[i] |= replace || cached;
                fresh[i] |= replace;
            };
            let mut absorb = |s: Step| match s {
                Step::Pods(u) => {
                    note(
                        0,
                        matches!(u, Update::Replace(_)),
                        matches!(u, Update::Cached(_)),
                    );
                    apply(&mut view.pods, u, &mut changes.pods)
                }
                Step::Services(u) => {
                    note(
                        1,
                        matches!(u, Update::Replace(_)),
                        matches!(u, Update::Cached(_)),
                    );
                    apply(&mut view.services, u, &mut changes.services)
                }
                Step::Endpoints(u) => {
                    note(
                        2,
                        matches!(u, Update::Replace(_)),
                        matches!(u, Update::Cached(_)),
                    );
                    apply(&mut view.endpoints, u, &mut changes.endpoints)
                }
                Step::Nodes(u) => {
                    note(
                        3,
                        matches!(u, Update::Replace(_)),
                        matches!(u, Update::Cached(_)),
                    );
                    apply(&mut view.nodes, u, &mut changes.nodes)
                }
            };
            absorb(first);
            // Whatever else already arrived joins this step.
            for _ in 1..MAX_STEP {
                match rx.try_recv() {
                    Ok(s) => absorb(s),
                    Err(_) => break,
                }
            }
            view.node = view.nodes.get(&node_name).cloned();
            let synced = listed.iter().all(|l| *l);
            changes.synced = synced && !view.synced;
            view.synced = synced;
            let is_fresh = fresh.iter().all(|f| *f);
            changes.fresh = is_fresh && !view.fresh;
            view.fresh = is_fresh;
            out.publish(view.clone(), &changes);
        }
    });
    views
}
