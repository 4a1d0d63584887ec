//! Who may do what (Kubernetes' Node authorizer and NodeRestriction
//! admission, in one table).
//!
//! - [`request`]: what a request asks for (verb, resource, subresource,
//!   namespace, name), read from its method and path as Kubernetes'
//!   RequestInfo resolver does.
//! - [`NODE_RULES`]: what a node credential (`system:node:<name>` in group
//!   `system:nodes`) may do. A rule names verbs, resources, subresources and
//!   a [`Scope`] (any object, the node's own Node, the pods bound to it,
//!   the ConfigMaps and Secrets those pods use). To let nodes read
//!   something new, add a row; a scope that needs a new fact adds a
//!   [`Scope`] variant and a method on [`Facts`].
//! - [`authorize`]: the decision, pure; [`Facts`] answers the questions a
//!   scope asks about the store.
//!
//! The admin (the bearer token) may do everything.

pub mod request;

use self::request::{RequestInfo, Verb};

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// The bearer token: people and keelctl.
    Admin,
    /// A node's client certificate.
    Node(String),
    /// A certificate of the cluster CA naming someone else.
    Other(String),
}

impl User {
    pub fn name(&self) -> String {
        match self {
            User::Admin => "admin".into(),
            User::Node(n) => keel_api::pki::node_user(n),
            User::Other(u) => u.clone(),
        }
    }
}

/// Which objects a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every object of the resource.
    Any,
    /// The Node named after the node itself.
    OwnNode,
    /// Pods whose `spec.nodeName` is the node.
    PodsBoundToNode,
    /// ConfigMaps and Secrets a pod bound to the node references (env,
    /// envFrom, volumes, imagePullSecrets), by name: a get, or a list/watch
    /// whose field selector is `metadata.name=NAME` (what the agent's
    /// per-object watch sends, as the kubelet's does).
    ReferencedByPodsOnNode,
}

/// One row: these verbs on these resources (and subresources).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub verbs: &'static [Verb],
    pub resources: &'static [&'static str],
    /// `None`: the object itself; `Some("status")`: its status.
    pub subresources: &'static [Option<&'static str>],
    pub scope: Scope,
}

const READ: &[Verb] = &[Verb::Get, Verb::List, Verb::Watch];
const WRITE: &[Verb] = &[Verb::Get, Verb::Update, Verb::Patch];

/// What a node may do: read what the agent mirrors (agent/src/sync), write
/// its own Node and the status of the pods bound to it, record Events.
pub const NODE_RULES: &[Rule] = &[
    Rule {
        verbs: READ,
        resources: &[
            "nodes",
            "pods",
            "services",
            "endpoints",
            "endpointslices",
            "namespaces",
        ],
        subresources: &[None],
        scope: Scope::Any,
    },
    Rule {
        verbs: READ,
        resources: &["configmaps", "secrets"],
        subresources: &[None],
        scope: Scope::ReferencedByPodsOnNode,
    },
    Rule {
        verbs: &[Verb::Create],
        resources: &["nodes"],
        subresources: &[None],
        scope: Scope::OwnNode,
    },
    Rule {
        verbs: WRITE,
        resources: &["nodes"],
        subresources: &[None, Some("status")],
        scope: Scope::OwnNode,
    },
    Rule {
        verbs: WRITE,
        resources: &["pods"],
        subresources: &[Some("status")],
        scope: Scope::PodsBoundToNode,
    },
    // Events about its pods and itself. Kubernetes' `system:node` role
    // grants exactly this (create, update, patch on events) without looking
    // at `involvedObject`: the authorizer decides before the body is read,
    // and an Event changes nothing but what people read.
    Rule {
        verbs: &[Verb::Create, Verb::Update, Verb::Patch],
        resources: &["events"],
        subresources: &[None],
        scope: Scope::Any,
    },
];

/// What a scope needs to know about the store.
pub trait Facts {
    /// `spec.nodeName` of pod `namespace/name`, if it exists.
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String>;
    /// Whether a pod bound to `node` references `resource`
    /// (`configmaps`/`secrets`) `namespace/name`.
    fn referenced_by_node(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool;
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The reason, Kubernetes' wording: `nodes "b" is forbidden: User … cannot …`.
    Deny(String),
}

fn in_scope(scope: Scope, node: &str, req: &RequestInfo, facts: &dyn Facts) -> Result<(), String> {
    match scope {
        Scope::Any => Ok(()),
        Scope::OwnNode => match req.name.as_deref() {
            Some(n) if n == node => Ok(()),
            Some(_) => Err(format!("node {node:?} may only change its own Node")),
            None => Err(format!(
                "node {node:?} may only change its own Node, by name"
            )),
        },
        Scope::PodsBoundToNode => {
            let (Some(ns), Some(name)) = (req.namespace.as_deref(), req.name.as_deref()) else {
                return Err(format!(
                    "node {node:?} may only change pods bound to it, by name"
                ));
            };
            match facts.pod_node(ns, name) {
                Some(n) if n == node => Ok(()),
                Some(n) if n.is_empty() => Err(format!(
                    "node {node:?} may only change pods bound to it; pod {ns}/{name} is not scheduled"
                )),
                Some(n) => Err(format!(
                    "node {node:?} may only change pods bound to it; pod {ns}/{name} is bound to {n:?}"
                )),
                None => Err(format!(
                    "node {node:?} may only change pods bound to it; pod {ns}/{name} does not exist"
                )),
            }
        }
        Scope::ReferencedByPodsOnNode => {
            let resource = req.resource.as_deref().unwrap_or_default();
            let (Some(ns), Some(name)) = (req.namespace.as_deref(), req.name.as_deref()) else {
                return Err(format!(
                    "node {node:?} may only read {resource} its pods use, by name (or with fieldSelector=metadata.name=NAME)"
                ));
            };
            if facts.referenced_by_node(node, resource, ns, name) {
                Ok(())
            } else {
                Err(format!(
                    "no pod bound to node {node:?} references {resource} {ns}/{name}"
                ))
            }
        }
    }
}

/// May `user` do `req`?
pub fn authorize(user: &User, req: &RequestInfo, facts: &dyn Facts) -> Decision {
    let node = match user {
        User::Admin => return Decision::Allow,
        User::Node(n) => n.as_str(),
        User::Other(_) => {
            return Decision::Deny(req.forbidden(
                &user.name(),
                "only the admin credential and node credentials are authorized",
            ));
        }
    };
    let Some(resource) = req.resource.as_deref() else {
        // Discovery, /version, /openapi: readable by every authenticated
        // user (Kubernetes' system:discovery); /metrics is the admin's.
        return if req.verb == Verb::Get && req.path != "/metrics" {
            Decision::Allow
        } else {
            Decision::Deny(req.forbidden(&user.name(), "nodes may only read discovery paths"))
        };
    };
    let sub = req.subresource.as_deref();
    let mut why = None;
    for rule in NODE_RULES {
        if !rule.verbs.contains(&req.verb)
            || !rule.resources.contains(&resource)
            || !rule.subresources.contains(&sub)
        {
            continue;
        }
        match in_scope(rule.scope, node, req, facts) {
            Ok(()) => return Decision::Allow,
            Err(e) => why = Some(e),
        }
    }
    let why =
        why.unwrap_or_else(|| format!("no rule lets a node {} {}", req.verb, req.resource_path()));
    Decision::Deny(req.forbidden(&user.name(), &why))
}

#[cfg(test)]
mod tests;
