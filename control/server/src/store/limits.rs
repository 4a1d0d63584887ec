//! Bounds on what one object can make keel-control hold: replicas of a
//! Deployment (which its controller turns into pods), ports of a Service
//! (each may allocate a node port and is programmed on every node), and
//! objects per namespace (a quota counting what controllers create, too).
//! Kubernetes has no hard cap on replicas or ports; keel-control's are
//! flags (`--max-replicas`, `--max-service-ports`,
//! `--max-objects-per-namespace`) so an operator can lift them.

use keel_api::{Deployment, FieldError, Kind, Service};

/// The bounds; `0` lifts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_replicas: u64,
    pub max_service_ports: usize,
    pub max_objects_per_namespace: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_replicas: 10_000,
            max_service_ports: 256,
            max_objects_per_namespace: 50_000,
        }
    }
}

/// Kinds the namespace quota counts: what users and controllers create.
/// Endpoints follow their Service one for one; Events are bounded by
/// `--event-ttl` and must stay writable so a refusal can be reported.
pub fn counted(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Pod | Kind::Service | Kind::Deployment | Kind::ConfigMap | Kind::Secret
    )
}

fn too_many(
    field: &str,
    n: impl std::fmt::Display,
    max: impl std::fmt::Display,
    flag: &str,
) -> FieldError {
    FieldError {
        field: field.into(),
        message: format!("Too many: {n}: must have at most {max} (keel-control {flag})"),
    }
}

/// What a kind's bounds say about one object.
pub trait Bounded {
    fn check_limits(&self, _limits: &Limits) -> Vec<FieldError> {
        Vec::new()
    }
}

impl Bounded for Deployment {
    fn check_limits(&self, limits: &Limits) -> Vec<FieldError> {
        let replicas = self.spec.replicas.unwrap_or(1);
        if limits.max_replicas > 0 && replicas > 0 && replicas as u64 > limits.max_replicas {
            return vec![FieldError {
                field: "spec.replicas".into(),
                message: format!(
                    "Invalid value: {replicas}: must be no more than {} (keel-control --max-replicas)",
                    limits.max_replicas
                ),
            }];
        }
        Vec::new()
    }
}

impl Bounded for Service {
    fn check_limits(&self, limits: &Limits) -> Vec<FieldError> {
        let n = self.spec.ports.len();
        if limits.max_service_ports > 0 && n > limits.max_service_ports {
            return vec![too_many(
                "spec.ports",
                n,
                limits.max_service_ports,
                "--max-service-ports",
            )];
        }
        Vec::new()
    }
}

impl Bounded for keel_api::Node {}
impl Bounded for keel_api::Pod {}
impl Bounded for keel_api::Endpoints {}
impl Bounded for keel_api::ConfigMap {}
impl Bounded for keel_api::Secret {}
impl Bounded for keel_api::Event {}

/// The refusal of a create that would take `namespace` past its quota
/// (Kubernetes' ResourceQuota answers 403 "exceeded quota").
pub fn quota_message(namespace: &str, used: usize, max: usize) -> String {
    format!(
        "exceeded quota: namespace {namespace:?} holds {used} objects, the most keel-control allows (--max-objects-per-namespace {max})"
    )
}
