//! The ConfigMaps and Secrets this node's pods use, and nothing else: the
//! agent's memory and its load on keel-control grow with what its pods
//! reference, not with the cluster (the kubelet's watch-based
//! ConfigMap/Secret managers do the same). The pods reconciler says which
//! objects each pod references ([`Refs::set_pod`]); each referenced object
//! gets one watch of its own (a list + watch with
//! `fieldSelector=metadata.name=NAME` in its namespace), started with its
//! first user and stopped with its last. A change pokes the pods that use
//! it. Secrets stay in memory only: nothing here is written to disk, and
//! nothing logs a value.
//!
//! [`Refs`] is also the [`Sources`] the container environment reads
//! (with the Services of the view).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use keel_api::{
    ConfigMap, EventType, Pod, Resource, Secret, Service,
    client::{Client, ListParams},
};
use tokio::task::JoinHandle;

use super::Views;
use crate::{
    reconcile::backoff::{self, Retry},
    runtime::container::env::{Fetched, Sources},
};

pub use keel_api::kinds::pod::RefKind;

/// A referenced object: kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjRef {
    pub kind: RefKind,
    pub namespace: String,
    pub name: String,
}

/// Every ConfigMap and Secret `pod` references: env, envFrom, volumes
/// (projected sources too) and imagePullSecrets.
pub fn references(pod: &Pod) -> BTreeSet<ObjRef> {
    pod.spec
        .references()
        .into_iter()
        .map(|(kind, name)| ObjRef {
            kind,
            namespace: pod.metadata.namespace.clone(),
            name,
        })
        .collect()
}

/// A fetched object.
#[derive(Debug, Clone)]
enum Obj {
    ConfigMap(Arc<ConfigMap>),
    Secret(Arc<Secret>),
}

/// Called with the keys of the pods that use an object that changed.
pub type Notify = Box<dyn Fn(BTreeSet<String>) + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// What keel-control said of each watched object (absent: not yet).
    objects: BTreeMap<ObjRef, Option<Obj>>,
    /// Pod keys using each object.
    users: BTreeMap<ObjRef, BTreeSet<String>>,
    /// Objects each pod uses.
    by_pod: BTreeMap<String, BTreeSet<ObjRef>>,
    watches: BTreeMap<ObjRef, JoinHandle<()>>,
}

/// The referenced-object store (see the module doc).
pub struct Refs {
    client: Option<Client>,
    views: Views,
    rt: tokio::runtime::Handle,
    inner: Mutex<Inner>,
    notify: Mutex<Option<Notify>>,
}

impl Refs {
    /// A store fetching with `client` (None: nothing is ever fetched, every
    /// reference is missing), spawning its watches on the current runtime.
    pub fn new(client: Option<Client>, views: Views) -> Arc<Self> {
        Arc::new(Self {
            client,
            views,
            rt: tokio::runtime::Handle::current(),
            inner: Mutex::new(Inner::default()),
            notify: Mutex::new(None),
        })
    }

    /// Who hears of changes (the pods reconciler).
    pub fn on_change(&self, f: Notify) {
        *self.notify.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what `pod_key` references (empty: the pod is gone): starts the
    /// watches of objects it is the first to use, stops those nobody uses
    /// any more.
    pub fn set_pod(self: &Arc<Self>, pod_key: &str, refs: BTreeSet<ObjRef>) {
        let mut inner = self.inner();
        let old = if refs.is_empty() {
            inner.by_pod.remove(pod_key).unwrap_or_default()
        } else {
            inner
                .by_pod
                .insert(pod_key.to_string(), refs.clone())
                .unwrap_or_default()
        };
        if old == refs {
            return;
        }
        for r in old.difference(&refs) {
            let unused = match inner.users.get_mut(r) {
                Some(u) => {
                    u.remove(pod_key);
                    u.is_empty()
                }
                None => true,
            };
            if unused {
                inner.users.remove(r);
                inner.objects.remove(r);
                if let Some(t) = inner.watches.remove(r) {
                    t.abort();
                }
            }
        }
        for r in refs.difference(&old) {
            inner
                .users
                .entry(r.clone())
                .or_default()
                .insert(pod_key.to_string());
            if !inner.watches.contains_key(r) {
                let task = self.rt.spawn(self.clone().watch(r.clone()));
                inner.watches.insert(r.clone(), task);
            }
        }
    }

    /// How many objects are watched (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.inner().watches.len()
    }

    /// Records what keel-control said of `r` and pokes its users.
    fn put(&self, r: &ObjRef, obj: Option<Obj>) {
        let users = {
            let mut inner = self.inner();
            if !inner.users.contains_key(r) {
                return;
            }
            inner.objects.insert(r.clone(), obj);
            inner.users.get(r).cloned().unwrap_or_default()
        };
        if let Some(f) = &*self.notify.lock().unwrap_or_else(|e| e.into_inner()) {
            f(users);
        }
    }

    async fn watch(self: Arc<Self>, r: ObjRef) {
        match r.kind {
            RefKind::ConfigMap => self.watch_kind::<ConfigMap>(r, Obj::ConfigMap).await,
            RefKind::Secret => self.watch_kind::<Secret>(r, Obj::Secret).await,
        }
    }

    /// List + watch of one object until aborted.
    async fn watch_kind<R: Resource>(self: Arc<Self>, r: ObjRef, wrap: fn(Arc<R>) -> Obj) {
        let Some(client) = self.client.clone() else {
            self.put(&r, None);
            return;
        };
        let params = ListParams::fields(format!("metadata.name={}", r.name));
        let mut retry = Retry::new(backoff::CONTROL);
        let mut rv = String::new();
        loop {
            if rv.is_empty() {
                match client.list::<R>(&r.namespace, &params).await {
                    Ok(list) => {
                        rv = list.metadata.resource_version;
                        let obj = list.items.into_iter().next().map(|o| wrap(Arc::new(o)));
                        self.put(&r, obj);
                    }
                    Err(e) => {
                        let delay = retry.next_delay();
                        tracing::warn!(kind = R::KIND, namespace = %r.namespace, name = %r.name, error = %e, retry_in = ?delay, "fetching a referenced object");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
            let mut stream = match client.watch::<R>(&r.namespace, &params, &rv).await {
                Ok(s) => s,
                Err(e) => {
                    if e.is_expired() {
                        rv.clear();
                    }
                    let delay = retry.next_delay();
                    tracing::debug!(kind = R::KIND, name = %r.name, error = %e, "watching a referenced object");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            retry.reset();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else {
                    // Expired or broken: list again (one object, cheap).
                    rv.clear();
                    break;
                };
                rv = ev.object.meta().resource_version.clone();
                match ev.type_ {
                    EventType::Added | EventType::Modified => {
                        self.put(&r, Some(wrap(Arc::new(ev.object))));
                    }
                    EventType::Deleted => self.put(&r, None),
                    EventType::Bookmark | EventType::Error => {}
                }
            }
        }
    }

    fn lookup(&self, kind: RefKind, namespace: &str, name: &str) -> Fetched<Obj> {
        let r = ObjRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match self.inner().objects.get(&r) {
            Some(Some(o)) => Fetched::Found(o.clone()),
            Some(None) => Fetched::Missing,
            None => Fetched::Pending,
        }
    }
}

impl Sources for Refs {
    fn config_map(&self, namespace: &str, name: &str) -> Fetched<Arc<ConfigMap>> {
        match self.lookup(RefKind::ConfigMap, namespace, name) {
            Fetched::Found(Obj::ConfigMap(c)) => Fetched::Found(c),
            Fetched::Found(_) | Fetched::Missing => Fetched::Missing,
            Fetched::Pending => Fetched::Pending,
        }
    }

    fn secret(&self, namespace: &str, name: &str) -> Fetched<Arc<Secret>> {
        match self.lookup(RefKind::Secret, namespace, name) {
            Fetched::Found(Obj::Secret(s)) => Fetched::Found(s),
            Fetched::Found(_) | Fetched::Missing => Fetched::Missing,
            Fetched::Pending => Fetched::Pending,
        }
    }

    fn services(&self, namespace: &str) -> Vec<Arc<Service>> {
        let v = self.views.current();
        let start = format!("{namespace}/");
        v.services
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .map(|(_, s)| s.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
