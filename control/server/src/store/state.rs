//! The desired state at one revision: every object by kind, plus the
//! indexes controllers need. Built from persistent maps (imbl), so a
//! snapshot is an O(1) clone and readers never block the writer.

use std::{net::Ipv4Addr, sync::Arc};

use imbl::{OrdMap, OrdSet};
use ipnet::Ipv4Net;
use keel_api::{
    AnyObject, ConfigMap, Deployment, Endpoints, Event, Kind, Node, ObjectMeta, Pod, Resource,
    Secret, Selector, Service,
};

/// A stored object: the typed value behind an `Arc`, cheap to clone.
#[derive(Debug, Clone)]
pub enum Obj {
    Node(Arc<Node>),
    Pod(Arc<Pod>),
    Service(Arc<Service>),
    Endpoints(Arc<Endpoints>),
    Deployment(Arc<Deployment>),
    ConfigMap(Arc<ConfigMap>),
    Secret(Arc<Secret>),
    Event(Arc<Event>),
}

macro_rules! with_obj {
    ($obj:expr, $o:ident => $body:expr) => {
        match $obj {
            Obj::Node($o) => $body,
            Obj::Pod($o) => $body,
            Obj::Service($o) => $body,
            Obj::Endpoints($o) => $body,
            Obj::Deployment($o) => $body,
            Obj::ConfigMap($o) => $body,
            Obj::Secret($o) => $body,
            Obj::Event($o) => $body,
        }
    };
}

impl Obj {
    pub fn kind(&self) -> Kind {
        match self {
            Obj::Node(_) => Kind::Node,
            Obj::Pod(_) => Kind::Pod,
            Obj::Service(_) => Kind::Service,
            Obj::Endpoints(_) => Kind::Endpoints,
            Obj::Deployment(_) => Kind::Deployment,
            Obj::ConfigMap(_) => Kind::ConfigMap,
            Obj::Secret(_) => Kind::Secret,
            Obj::Event(_) => Kind::Event,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        with_obj!(self, o => o.meta())
    }

    pub fn key(&self) -> String {
        with_obj!(self, o => o.key())
    }

    pub fn to_json(&self) -> Vec<u8> {
        with_obj!(self, o => serde_json::to_vec(&**o).expect("API objects serialize"))
    }

    pub fn to_value(&self) -> serde_json::Value {
        with_obj!(self, o => serde_json::to_value(&**o).expect("API objects serialize"))
    }

    pub fn to_any(&self) -> AnyObject {
        match self {
            Obj::Node(o) => AnyObject::Node((**o).clone()),
            Obj::Pod(o) => AnyObject::Pod((**o).clone()),
            Obj::Service(o) => AnyObject::Service((**o).clone()),
            Obj::Endpoints(o) => AnyObject::Endpoints((**o).clone()),
            Obj::Deployment(o) => AnyObject::Deployment((**o).clone()),
            Obj::ConfigMap(o) => AnyObject::ConfigMap((**o).clone()),
            Obj::Secret(o) => AnyObject::Secret((**o).clone()),
            Obj::Event(o) => AnyObject::Event((**o).clone()),
        }
    }

    pub fn from_any(any: AnyObject) -> Self {
        match any {
            AnyObject::Node(o) => Obj::Node(Arc::new(o)),
            AnyObject::Pod(o) => Obj::Pod(Arc::new(o)),
            AnyObject::Service(o) => Obj::Service(Arc::new(o)),
            AnyObject::Endpoints(o) => Obj::Endpoints(Arc::new(o)),
            AnyObject::Deployment(o) => Obj::Deployment(Arc::new(o)),
            AnyObject::ConfigMap(o) => Obj::ConfigMap(Arc::new(o)),
            AnyObject::Secret(o) => Obj::Secret(Arc::new(o)),
            AnyObject::Event(o) => Obj::Event(Arc::new(o)),
        }
    }

    /// A copy with `metadata.resourceVersion` set to `rv`.
    pub fn with_resource_version(&self, rv: &str) -> Self {
        with_obj!(self, o => {
            let mut c = (**o).clone();
            c.meta_mut().resource_version = rv.to_string();
            Obj::from_any(c.into())
        })
    }

    /// A copy with `f` applied to its metadata.
    pub fn with_meta(&self, f: impl FnOnce(&mut keel_api::ObjectMeta)) -> Self {
        with_obj!(self, o => {
            let mut c = (**o).clone();
            f(c.meta_mut());
            Obj::from_any(c.into())
        })
    }

    /// A field-selector field's value.
    pub fn field(&self, path: &str) -> Option<String> {
        with_obj!(self, o => o.field(path))
    }
}

/// Kinds kept in [`State`], with their map.
pub trait Stored: Resource {
    fn map(s: &State) -> &OrdMap<String, Arc<Self>>;
    fn wrap(o: Arc<Self>) -> Obj;
    fn unwrap(o: &Obj) -> Option<&Arc<Self>>;
}

macro_rules! stored {
    ($ty:ident, $field:ident) => {
        impl Stored for $ty {
            fn map(s: &State) -> &OrdMap<String, Arc<Self>> {
                &s.$field
            }
            fn wrap(o: Arc<Self>) -> Obj {
                Obj::$ty(o)
            }
            fn unwrap(o: &Obj) -> Option<&Arc<Self>> {
                match o {
                    Obj::$ty(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}
stored!(Node, nodes);
stored!(Pod, pods);
stored!(Service, services);
stored!(Endpoints, endpoints);
stored!(Deployment, deployments);
stored!(ConfigMap, config_maps);
stored!(Secret, secrets);
stored!(Event, events);

/// (namespace, label key, label value) → keys of objects carrying it.
type LabelIndex = OrdMap<(String, String, String), OrdSet<String>>;

/// Everything at one revision. Keys are `namespace/name`, or `name` for nodes.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub revision: u64,
    pub nodes: OrdMap<String, Arc<Node>>,
    pub pods: OrdMap<String, Arc<Pod>>,
    pub services: OrdMap<String, Arc<Service>>,
    pub endpoints: OrdMap<String, Arc<Endpoints>>,
    pub deployments: OrdMap<String, Arc<Deployment>>,
    pub config_maps: OrdMap<String, Arc<ConfigMap>>,
    pub secrets: OrdMap<String, Arc<Secret>>,
    pub events: OrdMap<String, Arc<Event>>,
    /// Pods by `spec.nodeName` ("" for unscheduled).
    pub pods_by_node: OrdMap<String, OrdSet<String>>,
    /// Pods by the uid of their controller (a Deployment).
    pub pods_by_owner: OrdMap<String, OrdSet<String>>,
    /// Pods by each of their labels.
    pub pods_by_label: LabelIndex,
    /// Services by the first pair of their selector (enough to find candidates).
    pub services_by_selector: LabelIndex,
    /// Allocations, rebuilt from the objects on load.
    pub pod_cidrs: OrdMap<Ipv4Net, String>,
    pub cluster_ips: OrdMap<Ipv4Addr, String>,
    pub node_ports: OrdMap<u16, String>,
    /// Objects the namespace quota counts, by namespace (`limits::counted`).
    pub objects_by_namespace: OrdMap<String, usize>,
}

fn index_add(ix: &mut OrdMap<String, OrdSet<String>>, k: &str, v: &str) {
    ix.entry(k.to_string()).or_default().insert(v.to_string());
}

fn index_del(ix: &mut OrdMap<String, OrdSet<String>>, k: &str, v: &str) {
    if let Some(set) = ix.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            ix.remove(k);
        }
    }
}

fn label_add(ix: &mut LabelIndex, ns: &str, k: &str, v: &str, key: &str) {
    ix.entry((ns.to_string(), k.to_string(), v.to_string()))
        .or_default()
        .insert(key.to_string());
}

fn label_del(ix: &mut LabelIndex, ns: &str, k: &str, v: &str, key: &str) {
    let ik = (ns.to_string(), k.to_string(), v.to_string());
    if let Some(set) = ix.get_mut(&ik) {
        set.remove(key);
        if set.is_empty() {
            ix.remove(&ik);
        }
    }
}

impl State {
    pub fn get(&self, kind: Kind, key: &str) -> Option<Obj> {
        match kind {
            Kind::Node => self.nodes.get(key).cloned().map(Obj::Node),
            Kind::Pod => self.pods.get(key).cloned().map(Obj::Pod),
            Kind::Service => self.services.get(key).cloned().map(Obj::Service),
            Kind::Endpoints => self.endpoints.get(key).cloned().map(Obj::Endpoints),
            Kind::Deployment => self.deployments.get(key).cloned().map(Obj::Deployment),
            Kind::ConfigMap => self.config_maps.get(key).cloned().map(Obj::ConfigMap),
            Kind::Secret => self.secrets.get(key).cloned().map(Obj::Secret),
            Kind::Event => self.events.get(key).cloned().map(Obj::Event),
        }
    }

    /// Every object of a kind in key order, optionally in one namespace.
    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Obj> {
        fn pick<R: Stored>(s: &State, ns: &str) -> Vec<Obj> {
            let map = R::map(s);
            if ns.is_empty() || !R::NAMESPACED {
                map.values().cloned().map(R::wrap).collect()
            } else {
                let start = format!("{ns}/");
                map.range(start.clone()..)
                    .take_while(|(k, _)| k.starts_with(&start))
                    .map(|(_, v)| R::wrap(v.clone()))
                    .collect()
            }
        }
        match kind {
            Kind::Node => pick::<Node>(self, namespace),
            Kind::Pod => pick::<Pod>(self, namespace),
            Kind::Service => pick::<Service>(self, namespace),
            Kind::Endpoints => pick::<Endpoints>(self, namespace),
            Kind::Deployment => pick::<Deployment>(self, namespace),
            Kind::ConfigMap => pick::<ConfigMap>(self, namespace),
            Kind::Secret => pick::<Secret>(self, namespace),
            Kind::Event => pick::<Event>(self, namespace),
        }
    }

    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Node => self.nodes.len(),
            Kind::Pod => self.pods.len(),
            Kind::Service => self.services.len(),
            Kind::Endpoints => self.endpoints.len(),
            Kind::Deployment => self.deployments.len(),
            Kind::ConfigMap => self.config_maps.len(),
            Kind::Secret => self.secrets.len(),
            Kind::Event => self.events.len(),
        }
    }

    /// Inserts or replaces an object, keeping indexes and allocations.
    pub fn put(&mut self, obj: Obj) {
        let key = obj.key();
        if let Some(old) = self.get(obj.kind(), &key) {
            self.unindex(&old);
        }
        self.index(&obj);
        match obj {
            Obj::Node(o) => {
                self.nodes.insert(key, o);
            }
            Obj::Pod(o) => {
                self.pods.insert(key, o);
            }
            Obj::Service(o) => {
                self.services.insert(key, o);
            }
            Obj::Endpoints(o) => {
                self.endpoints.insert(key, o);
            }
            Obj::Deployment(o) => {
                self.deployments.insert(key, o);
            }
            Obj::ConfigMap(o) => {
                self.config_maps.insert(key, o);
            }
            Obj::Secret(o) => {
                self.secrets.insert(key, o);
            }
            Obj::Event(o) => {
                self.events.insert(key, o);
            }
        }
    }

    pub fn remove(&mut self, kind: Kind, key: &str) -> Option<Obj> {
        let old = self.get(kind, key)?;
        self.unindex(&old);
        match kind {
            Kind::Node => drop(self.nodes.remove(key)),
            Kind::Pod => drop(self.pods.remove(key)),
            Kind::Service => drop(self.services.remove(key)),
            Kind::Endpoints => drop(self.endpoints.remove(key)),
            Kind::Deployment => drop(self.deployments.remove(key)),
            Kind::ConfigMap => drop(self.config_maps.remove(key)),
            Kind::Secret => drop(self.secrets.remove(key)),
            Kind::Event => drop(self.events.remove(key)),
        }
        Some(old)
    }

    /// How many objects the namespace quota counts in `namespace`.
    pub fn objects_in(&self, namespace: &str) -> usize {
        self.objects_by_namespace
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }

    fn index(&mut self, obj: &Obj) {
        if super::limits::counted(obj.kind()) {
            *self
                .objects_by_namespace
                .entry(obj.meta().namespace.clone())
                .or_default() += 1;
        }
        match obj {
            Obj::Pod(p) => {
                let key = obj.key();
                index_add(&mut self.pods_by_node, &p.spec.node_name, &key);
                if let Some(uid) = p.metadata.controller_uid() {
                    index_add(&mut self.pods_by_owner, uid, &key);
                }
                for (k, v) in &p.metadata.labels {
                    label_add(&mut self.pods_by_label, &p.metadata.namespace, k, v, &key);
                }
            }
            Obj::Service(s) => {
                if let Some((k, v)) = s.spec.selector.iter().next() {
                    label_add(
                        &mut self.services_by_selector,
                        &s.metadata.namespace,
                        k,
                        v,
                        &obj.key(),
                    );
                }
                if let Ok(ip) = s.spec.cluster_ip.parse() {
                    self.cluster_ips.insert(ip, obj.key());
                }
                for p in &s.spec.ports {
                    if let Some(np) = p.node_port.and_then(|n| u16::try_from(n).ok()) {
                        self.node_ports.insert(np, obj.key());
                    }
                }
            }
            Obj::Node(n) => {
                if let Ok(cidr) = n.spec.pod_cidr.parse() {
                    self.pod_cidrs.insert(cidr, obj.key());
                }
            }
            _ => {}
        }
    }

    fn unindex(&mut self, obj: &Obj) {
        if super::limits::counted(obj.kind()) {
            let ns = &obj.meta().namespace;
            match self.objects_by_namespace.get(ns).copied() {
                Some(n) if n > 1 => drop(self.objects_by_namespace.insert(ns.clone(), n - 1)),
                _ => drop(self.objects_by_namespace.remove(ns)),
            }
        }
        match obj {
            Obj::Pod(p) => {
                let key = obj.key();
                index_del(&mut self.pods_by_node, &p.spec.node_name, &key);
                if let Some(uid) = p.metadata.controller_uid() {
                    index_del(&mut self.pods_by_owner, uid, &key);
                }
                for (k, v) in &p.metadata.labels {
                    label_del(&mut self.pods_by_label, &p.metadata.namespace, k, v, &key);
                }
            }
            Obj::Service(s) => {
                if let Some((k, v)) = s.spec.selector.iter().next() {
                    label_del(
                        &mut self.services_by_selector,
                        &s.metadata.namespace,
                        k,
                        v,
                        &obj.key(),
                    );
                }
                if let Ok(ip) = s.spec.cluster_ip.parse::<Ipv4Addr>()
                    && self.cluster_ips.get(&ip).is_some_and(|k| *k == obj.key())
                {
                    self.cluster_ips.remove(&ip);
                }
                for p in &s.spec.ports {
                    if let Some(np) = p.node_port.and_then(|n| u16::try_from(n).ok())
                        && self.node_ports.get(&np).is_some_and(|k| *k == obj.key())
                    {
                        self.node_ports.remove(&np);
                    }
                }
            }
            Obj::Node(n) => {
                if let Ok(cidr) = n.spec.pod_cidr.parse::<Ipv4Net>()
                    && self.pod_cidrs.get(&cidr).is_some_and(|k| *k == obj.key())
                {
                    self.pod_cidrs.remove(&cidr);
                }
            }
            _ => {}
        }
    }

    /// Pods on a node ("" = unscheduled).
    pub fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods_by_node
            .get(node)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| self.pods.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pods controlled by the object with this uid.
    pub fn pods_owned_by(&self, uid: &str) -> Vec<Arc<Pod>> {
        self.pods_by_owner
            .get(uid)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| self.pods.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pods in a namespace matching an equality selector (a Service's).
    pub fn pods_selected(
        &self,
        namespace: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Arc<Pod>> {
        let Some((k, v)) = selector.iter().next() else {
            return Vec::new();
        };
        let sel = Selector::from_map(selector);
        self.pods_by_label
            .get(&(namespace.to_string(), k.clone(), v.clone()))
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| self.pods.get(key).cloned())
                    .filter(|p| sel.matches(&p.metadata.labels))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Services in the pod's namespace whose selector matches its labels.
    pub fn services_selecting(&self, pod: &Pod) -> Vec<Arc<Service>> {
        let ns = &pod.metadata.namespace;
        let mut keys = OrdSet::new();
        for (k, v) in &pod.metadata.labels {
            if let Some(set) = self
                .services_by_selector
                .get(&(ns.clone(), k.clone(), v.clone()))
            {
                keys = keys.union(set.clone());
            }
        }
        keys.iter()
            .filter_map(|k| self.services.get(k).cloned())
            .filter(|s| Selector::from_map(&s.spec.selector).matches(&pod.metadata.labels))
            .collect()
    }
}
