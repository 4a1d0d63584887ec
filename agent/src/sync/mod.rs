//! Keeping the agent in step with keel-control: register the Node and
//! heartbeat, and mirror the objects the node needs (its pods, all
//! services, endpoints and nodes) into a local view that survives restarts
//! and control-service outages.

pub mod cache;
pub mod informer;
pub mod register;

use std::{collections::BTreeMap, sync::Arc};

use keel_api::{Endpoints, Node, Pod, Service};

/// What the node's reconcilers work from: the latest known desired state.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// This node's own object (pod CIDR, conditions).
    pub node: Option<Arc<Node>>,
    /// Every node (peers, for networking).
    pub nodes: BTreeMap<String, Arc<Node>>,
    /// Pods bound to this node.
    pub pods: BTreeMap<String, Arc<Pod>>,
    pub services: BTreeMap<String, Arc<Service>>,
    pub endpoints: BTreeMap<String, Arc<Endpoints>>,
    /// False until every informer has listed once (from the server or the
    /// disk cache): reconcilers must not delete what they do not see yet.
    pub synced: bool,
}

impl View {
    /// The node's pod CIDR, once assigned.
    pub fn pod_cidr(&self) -> Option<ipnet::Ipv4Net> {
        self.node
            .as_ref()
            .and_then(|n| n.spec.pod_cidr.parse().ok())
    }
}

use std::path::PathBuf;

use keel_api::{
    Resource,
    client::{Client, ListParams},
};
use tokio::sync::{mpsc, watch};

use self::{
    cache::DiskCache,
    informer::{Informer, Update},
};

fn apply<R: Resource>(map: &mut BTreeMap<String, Arc<R>>, update: Update<R>) {
    match update {
        Update::Replace(all) => *map = all,
        Update::Upsert(o) => {
            map.insert(o.key(), o);
        }
        Update::Delete(k) => {
            map.remove(&k);
        }
    }
}

/// Starts the informers and returns the view, updated as changes arrive.
pub fn start(client: Client, node_name: String, cache_dir: PathBuf) -> watch::Receiver<View> {
    let cache = Arc::new(DiskCache::new(cache_dir));
    let (view_tx, view_rx) = watch::channel(View::default());
    let (pods_tx, mut pods_rx) = mpsc::channel(1024);
    let (svc_tx, mut svc_rx) = mpsc::channel(1024);
    let (ep_tx, mut ep_rx) = mpsc::channel(1024);
    let (node_tx, mut node_rx) = mpsc::channel(1024);
    let pods = ListParams::fields(format!("spec.nodeName={node_name}"));
    tokio::spawn(
        Informer::<Pod> {
            client: client.clone(),
            namespace: String::new(),
            params: pods,
            name: "pods",
            cache: cache.clone(),
            updates: pods_tx,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Service> {
            client: client.clone(),
            namespace: String::new(),
            params: ListParams::default(),
            name: "services",
            cache: cache.clone(),
            updates: svc_tx,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Endpoints> {
            client: client.clone(),
            namespace: String::new(),
            params: ListParams::default(),
            name: "endpoints",
            cache: cache.clone(),
            updates: ep_tx,
        }
        .run(),
    );
    tokio::spawn(
        Informer::<Node> {
            client,
            namespace: String::new(),
            params: ListParams::default(),
            name: "nodes",
            cache,
            updates: node_tx,
        }
        .run(),
    );
    tokio::spawn(async move {
        let mut view = View::default();
        let mut listed = [false; 4];
        loop {
            tokio::select! {
                Some(u) = pods_rx.recv() => { listed[0] |= matches!(u, Update::Replace(_)); apply(&mut view.pods, u) }
                Some(u) = svc_rx.recv() => { listed[1] |= matches!(u, Update::Replace(_)); apply(&mut view.services, u) }
                Some(u) = ep_rx.recv() => { listed[2] |= matches!(u, Update::Replace(_)); apply(&mut view.endpoints, u) }
                Some(u) = node_rx.recv() => { listed[3] |= matches!(u, Update::Replace(_)); apply(&mut view.nodes, u) }
                else => return,
            }
            view.node = view.nodes.get(&node_name).cloned();
            view.synced = listed.iter().all(|l| *l);
            if view_tx.send(view.clone()).is_err() {
                return;
            }
        }
    });
    view_rx
}
