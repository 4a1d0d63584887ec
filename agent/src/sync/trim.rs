//! What the agent keeps of each object it watches. The view holds every
//! Service and Endpoints of the cluster, so whatever of them the agent never
//! reads is dropped as the object arrives (client-go's informer transform,
//! which kube-proxy-like watchers use to the same end): a Service's selector
//! alone is a B-tree node of about half a kilobyte, over 5 MB at 10,000
//! Services. The disk cache holds the trimmed objects too.
//!
//! Kept: everything the load balancer, the pod workers and (cluster DNS,
//! env) need — names, uids, resource versions, Service specs but the
//! selector, Endpoints subsets. Whoever starts reading a dropped field
//! moves it out of here.

use keel_api::{Endpoints, Service};

/// Pods and Nodes are few per agent (its own pods, the cluster's nodes):
/// kept whole.
pub fn nothing<R>(_: &mut R) {}

/// A Service without its selector (keel-control's endpoints controller
/// applies it; the agent reads Endpoints), labels and annotations.
pub fn service(s: &mut Service) {
    s.spec.selector.clear();
    meta(&mut s.metadata);
}

/// Endpoints without labels and annotations.
pub fn endpoints(e: &mut Endpoints) {
    meta(&mut e.metadata);
}

fn meta(m: &mut keel_api::ObjectMeta) {
    m.labels.clear();
    m.annotations.clear();
}

#[cfg(test)]
mod tests;
