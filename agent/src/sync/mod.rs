//! Keeping the agent in step with keel-control: register the Node and
//! heartbeat, and mirror the objects the node needs (its pods, all
//! services, endpoints and nodes) into a local view that survives restarts
//! and control-service outages.
//!
//! - [`informer`]: list + watch per kind, with the disk cache ([`cache`]).
//! - [`view`]: the immutable [`View`] the informers publish, and the
//!   [`Changes`] each step brings, which reconcilers subscribe to.
//! - [`register`]: the Node object and its heartbeat.
//! - [`refs`]: the ConfigMaps and Secrets the node's pods reference, one
//!   watch per object.

pub mod cache;
pub mod informer;
pub mod persist;
pub mod refs;
pub mod register;
pub mod trim;
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

/// One informer's update, tagged by kind, with the resourceVersion it
/// brings that informer to, on the way to the view.
enum Step {
    Pods(Update<Pod>, String),
    Services(Update<Service>, String),
    Endpoints(Update<Endpoints>, String),
    Nodes(Update<Node>, String),
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
            trim: trim::nothing,
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
            trim: trim::service,
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
            trim: trim::endpoints,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Node, Step> {
            client,
            namespace: String::new(),
            params: ListParams::default(),
            name: "nodes",
            cache: cache.clone(),
            updates: tx,
            wrap: Step::Nodes,
            trim: trim::nothing,
        }
        .run(),
    );
    let out = views.clone();
    let persist = (
        persist::spawn::<Pod>(cache.clone(), "pods"),
        persist::spawn::<Service>(cache.clone(), "services"),
        persist::spawn::<Endpoints>(cache.clone(), "endpoints"),
        persist::spawn::<Node>(cache, "nodes"),
    );
    tokio::spawn(async move {
        let mut view = View::default();
        let mut rvs: [String; 4] = Default::default();
        // Per kind: listed at all, and listed from keel-control.
        let mut listed = [false; 4];
        let mut fresh = [false; 4];
        while let Some(first) = rx.recv().await {
            let mut changes = Changes::default();
            // Kinds this step brought anything for: saved even when nothing
            // in the view changed (an empty first list, a newer
            // resourceVersion), so a restarted agent finds every kind.
            let mut touched = [false; 4];
            let mut note = |i: usize, replace: bool, cached: bool| {
                listed[i] |= replace || cached;
                fresh[i] |= replace;
                touched[i] = true;
            };
            let mut absorb = |s: Step| match s {
                Step::Pods(u, rv) => {
                    let (r, c) = u.listing();
                    note(0, r, c);
                    rvs[0] = rv;
                    apply(&mut view.pods, u, &mut changes.pods)
                }
                Step::Services(u, rv) => {
                    let (r, c) = u.listing();
                    note(1, r, c);
                    rvs[1] = rv;
                    apply(&mut view.services, u, &mut changes.services)
                }
                Step::Endpoints(u, rv) => {
                    let (r, c) = u.listing();
                    note(2, r, c);
                    rvs[2] = rv;
                    apply(&mut view.endpoints, u, &mut changes.endpoints)
                }
                Step::Nodes(u, rv) => {
                    let (r, c) = u.listing();
                    note(3, r, c);
                    rvs[3] = rv;
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
            // What changed goes to disk too (from the view's own copies).
            if touched[0] {
                persist
                    .0
                    .send_replace(Some((view.pods.clone(), rvs[0].clone())));
            }
            if touched[1] {
                persist
                    .1
                    .send_replace(Some((view.services.clone(), rvs[1].clone())));
            }
            if touched[2] {
                persist
                    .2
                    .send_replace(Some((view.endpoints.clone(), rvs[2].clone())));
            }
            if touched[3] {
                persist
                    .3
                    .send_replace(Some((view.nodes.clone(), rvs[3].clone())));
            }
            out.publish(view.clone(), &changes);
        }
    });
    views
}
