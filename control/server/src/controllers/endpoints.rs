//! The endpoints controller: for every Service with a selector, an
//! Endpoints object of the same name listing the selected pods that have an
//! IP — Ready ones under `addresses`, others under `notReadyAddresses` — with
//! each service port's targetPort resolved per pod (named ports included).
//! Recomputed for the services a pod or service event touches.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use keel_api::{
    Endpoints, Kind, ObjectMeta, Pod, Resource, Service,
    endpoints::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference},
};

use futures_util::StreamExt;

use super::{ControllerConfig, Follower, Work};
use crate::store::{Obj, Precondition, State, Store, StoreError};

/// The Endpoints a service should have given the pods its selector picks. Pure.
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Endpoints {
    // Group addresses by their resolved port list, as Kubernetes does.
    let mut groups: BTreeMap<Vec<EndpointPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    // As Kubernetes' ShouldPodBeInEndpoints: publishNotReadyAddresses
    // lists every pod with an IP as ready, terminating ones included.
    let publish = svc.spec.publish_not_ready_addresses;
    for pod in pods {
        // A deleted pod waiting for its finalizers is no endpoint, as in
        // Kubernetes' Endpoints.
        if pod.status.pod_ip.is_empty()
            || !pod.is_active()
            || (pod.metadata.is_terminating() && !publish)
        {
            continue;
        }
        let mut ports = Vec::new();
        for sp in &svc.spec.ports {
            if let Some(port) = pod.resolve_port(&sp.target(), sp.protocol) {
                ports.push(EndpointPort {
                    name: sp.name.clone(),
                    port,
                    protocol: sp.protocol,
                });
            }
        }
        // A Service with ports lists only pods that expose one; a headless
        // Service without ports (DNS only) lists every selected pod.
        if ports.is_empty() && !svc.spec.ports.is_empty() {
            continue;
        }
        ports.sort();
        // As Kubernetes' endpoints controller: the hostname is published
        // when the pod's subdomain names this Service.
        let hostname = if !pod.spec.hostname.is_empty() && pod.spec.subdomain == svc.metadata.name {
            pod.spec.hostname.clone()
        } else {
            String::new()
        };
        let addr = EndpointAddress {
            ip: pod.status.pod_ip.clone(),
            hostname,
            node_name: pod.spec.node_name.clone(),
            target_ref: Some(ObjectReference {
                kind: "Pod".into(),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
        };
        let (ready, not_ready) = groups.entry(ports).or_default();
        if publish || pod.is_ready() {
            ready.push(addr)
        } else {
            not_ready.push(addr)
        }
    }
    let subsets = groups
        .into_iter()
        .map(|(ports, (mut addresses, mut not_ready_addresses))| {
            addresses.sort();
            not_ready_addresses.sort();
            EndpointSubset {
                addresses,
                not_ready_addresses,
                ports,
            }
        })
        .collect();
    Endpoints {
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            labels: svc.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        subsets,
    }
}

/// Which pods each service last listed and, the other way round, which
/// services each pod was listed in: both directions indexed, so one
/// service's sync costs its own pods, not every pod of the cluster.
#[derive(Debug, Default)]
struct Membership {
    of_pod: HashMap<String, BTreeSet<String>>,
    of_service: HashMap<String, BTreeSet<String>>,
}

impl Membership {
    fn services_of(&self, pod: &str) -> impl Iterator<Item = &String> {
        self.of_pod.get(pod).into_iter().flatten()
    }

    /// Records `pods` as the members of `service` (none: forgets it).
    fn set(&mut self, service: &str, pods: Vec<String>) {
        for old in self.of_service.remove(service).into_iter().flatten() {
            if let Some(set) = self.of_pod.get_mut(&old) {
                set.remove(service);
                if set.is_empty() {
                    self.of_pod.remove(&old);
                }
            }
        }
        if pods.is_empty() {
            return;
        }
        for p in &pods {
            self.of_pod
                .entry(p.clone())
                .or_default()
                .insert(service.to_string());
        }
        self.of_service
            .insert(service.to_string(), pods.into_iter().collect());
    }
}

pub async fn run(store: Store, cfg: ControllerConfig) {
    let mut follower = Follower::new(store.clone(), cfg.resync);
    // Which services each pod was last listed in, to update them when the
    // pod stops matching or goes away.
    let mut member_of = Membership::default();
    loop {
        let (state, dirty): (Arc<State>, BTreeSet<String>) = match follower.next().await {
            Work::Resync(state) => {
                let mut all: BTreeSet<String> = state.services.keys().cloned().collect();
                // Endpoints whose service is gone.
                all.extend(
                    state
                        .endpoints
                        .keys()
                        .filter(|k| !state.services.contains_key(*k))
                        .cloned(),
                );
                (state, all)
            }
            Work::Events(events, state) => {
                let mut dirty = BTreeSet::new();
                for e in &events {
                    match &e.obj {
                        Obj::Service(s) => {
                            dirty.insert(s.key());
                        }
                        Obj::Pod(p) => {
                            let key = p.key();
                            dirty.extend(member_of.services_of(&key).cloned());
                            if let Some(now) = state.pods.get(&key) {
                                dirty.extend(state.services_selecting(now).iter().map(|s| s.key()));
                            }
                        }
                        Obj::Endpoints(ep) if !state.services.contains_key(&ep.key()) => {
                            dirty.insert(ep.key());
                        }
                        _ => {}
                    }
                }
                (state, dirty)
            }
        };
        // Plan every dirty service first, then write concurrently: the
        // store commits concurrent writes together (one fsync per group),
        // so a burst of pod changes does not queue one commit per Endpoints.
        let writes: Vec<Write> = dirty
            .iter()
            .filter_map(|key| plan(&state, key, &mut member_of))
            .collect();
        let store = &store;
        futures_util::stream::iter(writes)
            .for_each_concurrent(WRITE_CONCURRENCY, |w| async move {
                if let Err(e) = write(store, &w).await {
                    tracing::debug!(service = %w.key(), error = %e, "endpoints write refused; will retry");
                }
            })
            .await;
    }
}

/// At most this many Endpoints writes in flight.
const WRITE_CONCURRENCY: usize = 64;

/// One store write that makes a service's Endpoints right.
enum Write {
    Delete(Endpoints),
    Update(Endpoints),
    Create(Endpoints),
}

impl Write {
    fn key(&self) -> String {
        match self {
            Write::Delete(e) | Write::Update(e) | Write::Create(e) => e.key(),
        }
    }
}

/// What makes the Endpoints for one service key match the desired state
/// (nothing when they already do); records the service's members.
fn plan(state: &State, key: &str, member_of: &mut Membership) -> Option<Write> {
    let current = state.endpoints.get(key).cloned();
    let Some(svc) = state
        .services
        .get(key)
        .filter(|s| !s.spec.selector.is_empty())
    else {
        // No service (or no selector: endpoints are not managed): remove ours.
        member_of.set(key, Vec::new());
        return current
            .filter(|_| !state.services.contains_key(key))
            .map(|ep| Write::Delete((*ep).clone()));
    };
    let pods = state.pods_selected(&svc.metadata.namespace, &svc.spec.selector);
    member_of.set(key, pods.iter().map(|p| p.key()).collect());
    let want = desired(svc, &pods);
    match current {
        Some(cur) if cur.subsets == want.subsets && cur.metadata.labels == want.metadata.labels => {
            None
        }
        Some(cur) => {
            let mut next = want;
            next.metadata.resource_version = cur.metadata.resource_version.clone();
            Some(Write::Update(next))
        }
        None => Some(Write::Create(want)),
    }
}

async fn write(store: &Store, w: &Write) -> Result<(), StoreError> {
    match w {
        Write::Delete(ep) => {
            let pre = Precondition {
                uid: Some(ep.metadata.uid.clone()),
                resource_version: None,
            };
            match store
                .delete(
                    Kind::Endpoints,
                    &ep.metadata.namespace,
                    &ep.metadata.name,
                    pre,
                )
                .await
            {
                Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Write::Update(next) => store.update(next.clone()).await.map(drop),
        Write::Create(want) => match store.create(want.clone()).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests;
