//! `Service`: a stable virtual IP (and node ports) in front of the pods its
//! selector picks.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    primitives::{
        IntOrString, Protocol,
        validate::{self, Errors, FieldError},
    },
    resource::{ObjectMeta, Resource},
};

/// The default NodePort range, as Kubernetes has it.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// A Service: a stable virtual IP (and node ports) in front of the pods its
/// selector picks, balanced by keel-agent's eBPF programs on every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// How the Service is addressed and which pods serve it.
    #[serde(default)]
    pub spec: ServiceSpec,
    /// The Service's status (keel writes nothing here yet).
    #[serde(default)]
    pub status: ServiceStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// How the Service is exposed: `ClusterIP` (a virtual IP inside the
    /// cluster, the default), `NodePort` (also a port on every node) or
    /// `ExternalName` (a DNS alias).
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// The labels of the pods that serve it; their addresses become the
    /// Service's endpoints. Without a selector, the endpoints are the user's
    /// own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The ports the Service exposes, each forwarded to a port of the selected
    /// pods.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Allocated from the service CIDR when empty.
    #[serde(
        default,
        rename = "clusterIP",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_ip: String,
    /// Addresses routed to the nodes that also accept the Service's ports,
    /// balanced like the cluster IP.
    #[serde(default, rename = "externalIPs", skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<String>,
    /// `ClientIP` sends every connection from one client address to the same
    /// backend (for `sessionAffinityConfig.clientIP.timeoutSeconds`); `None`
    /// (the default) balances each connection.
    #[serde(default)]
    pub session_affinity: SessionAffinity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    /// For node ports and external IPs: `Cluster` (the default) forwards to any
    /// backend, `Local` only to backends on the receiving node, keeping the
    /// client's address.
    #[serde(default)]
    pub external_traffic_policy: TrafficPolicy,
    /// `Local`: a ClusterIP connection from a node goes only to that node's
    /// own endpoints (none: refused). Unset means `Cluster`; kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<TrafficPolicy>,
    /// Lists every selected pod with an IP as an endpoint, ready or not
    /// (for peers that must find each other before they are ready).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_not_ready_addresses: bool,
    /// For `type: ExternalName`: the name cluster DNS answers with (a CNAME).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_name: String,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: ServiceSpecFields,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    /// No address and no load balancing: cluster DNS answers the Service's
    /// name with a CNAME to `spec.externalName`.
    ExternalName,
}

/// The `clusterIP` of a headless Service: no virtual IP, cluster DNS
/// answers with the ready pods' addresses.
pub const CLUSTER_IP_NONE: &str = "None";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SessionAffinity {
    #[default]
    None,
    #[serde(rename = "ClientIP")]
    ClientIp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TrafficPolicy {
    /// Any node forwards to any backend (SNAT so replies come back).
    #[default]
    Cluster,
    /// Only backends on the receiving node; the client's address is kept.
    Local,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionAffinityConfig {
    #[serde(default, rename = "clientIP", skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<ClientIpConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientIpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
}

/// Kubernetes' default ClientIP affinity timeout: 3 hours.
pub const DEFAULT_AFFINITY_TIMEOUT: i64 = 10_800;

/// One port a Service exposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port's name, required when the Service has several ports; Endpoints
    /// carry it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP` (the default) or `UDP`.
    #[serde(default)]
    pub protocol: Protocol,
    /// The port the Service listens on, on its cluster IP and external IPs.
    pub port: i64,
    /// Defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// Allocated from 30000-32767 for NodePort services when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i64>,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: ServicePortFields,
}

impl ServicePort {
    pub fn target(&self) -> IntOrString {
        self.target_port
            .clone()
            .unwrap_or(IntOrString::Int(self.port))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Kubernetes' fields keel keeps without acting on them
    /// (`kubectl expose` sends `loadBalancer: {}`).
    #[serde(flatten)]
    pub preserved: ServiceStatusFields,
}

crate::preserved_fields!(
    /// `spec` fields of a Service keel keeps without acting on them.
    ServiceSpecFields,
    "a Service's spec",
    [
        "clusterIPs",
        "ipFamilies",
        "ipFamilyPolicy",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "loadBalancerClass",
        "allocateLoadBalancerNodePorts",
        "healthCheckNodePort",
        "trafficDistribution",
    ]
);

crate::preserved_fields!(
    /// Service port fields keel keeps without acting on them.
    ServicePortFields,
    "a Service port",
    ["appProtocol"]
);

crate::preserved_fields!(
    /// `status` fields of a Service keel keeps without acting on them.
    ServiceStatusFields,
    "a Service's status",
    ["loadBalancer", "conditions"]
);

impl Service {
    /// `clusterIP: None`: DNS answers with the pods, nothing is balanced.
    pub fn is_headless(&self) -> bool {
        self.spec.cluster_ip == CLUSTER_IP_NONE
    }

    /// Whether keel-control allocates a cluster IP for it.
    pub fn wants_cluster_ip(&self) -> bool {
        !self.is_headless() && self.spec.type_ != ServiceType::ExternalName
    }

    /// The ClientIP affinity timeout in seconds, if affinity is on.
    pub fn affinity_timeout(&self) -> Option<i64> {
        (self.spec.session_affinity == SessionAffinity::ClientIp).then(|| {
            self.spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        })
    }
}

impl Resource for Service {
    const KIND: &'static str = "Service";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "services";
    const NAMESPACED: bool = true;

    crate::resource::resource_common!();

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        if !self.metadata.name.is_empty() {
            errs.check(
                "metadata.name",
                validate::dns1035_label(&self.metadata.name),
            );
        }
        let spec = &self.spec;
        for (k, v) in &spec.selector {
            errs.check(format!("spec.selector[{k}]"), validate::label_key(k));
            errs.check(format!("spec.selector[{k}]"), validate::label_value(v));
        }
        // Headless and ExternalName Services may have no ports (DNS only).
        if spec.ports.is_empty() && self.wants_cluster_ip() {
            errs.add("spec.ports", "at least one port is required");
        }
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (i, p) in spec.ports.iter().enumerate() {
            let at = format!("spec.ports[{i}]");
            errs.check(format!("{at}.port"), validate::port(p.port));
            if spec.ports.len() > 1 && p.name.is_empty() {
                errs.add(
                    format!("{at}.name"),
                    "required when the service has more than one port",
                );
            }
            if !p.name.is_empty() {
                errs.check(format!("{at}.name"), validate::dns1123_label(&p.name));
                if !names.insert(p.name.as_str()) {
                    errs.add(
                        format!("{at}.name"),
                        format!("duplicate port name {:?}", p.name),
                    );
                }
            }
            if !seen.insert((p.port, p.protocol)) {
                errs.add(
                    at.clone(),
                    format!("duplicate port {}/{}", p.port, p.protocol),
                );
            }
            match &p.target_port {
                Some(IntOrString::Int(n)) => {
                    errs.check(format!("{at}.targetPort"), validate::port(*n))
                }
                Some(IntOrString::String(s)) => {
                    errs.check(format!("{at}.targetPort"), validate::iana_svc_name(s))
                }
                None => {}
            }
            if let Some(np) = p.node_port {
                if spec.type_ != ServiceType::NodePort {
                    errs.add(
                        format!("{at}.nodePort"),
                        "may only be set when type is NodePort",
                    );
                } else if !u16::try_from(np).is_ok_and(|n| NODE_PORT_RANGE.contains(&n)) {
                    errs.add(
                        format!("{at}.nodePort"),
                        format!(
                            "{np} is out of range {}-{}",
                            NODE_PORT_RANGE.start(),
                            NODE_PORT_RANGE.end()
                        ),
                    );
                }
            }
        }
        if spec.type_ == ServiceType::ExternalName {
            if spec.external_name.is_empty() {
                errs.add("spec.externalName", "required when type is ExternalName");
            } else {
                let name = spec
                    .external_name
                    .strip_suffix('.')
                    .unwrap_or(&spec.external_name);
                errs.check("spec.externalName", validate::dns1123_subdomain(name));
            }
            if !spec.cluster_ip.is_empty() {
                errs.add("spec.clusterIP", "must be empty for ExternalName services");
            }
        } else if !spec.external_name.is_empty() {
            errs.add(
                "spec.externalName",
                "may only be set when type is ExternalName",
            );
        }
        if self.is_headless() {
            if spec.type_ != ServiceType::ClusterIP {
                errs.add(
                    "spec.clusterIP",
                    format!("may not be set to 'None' for {:?} services", spec.type_),
                );
            }
        } else if spec.type_ != ServiceType::ExternalName
            && !spec.cluster_ip.is_empty()
            && spec.cluster_ip.parse::<std::net::Ipv4Addr>().is_err()
        {
            errs.add(
                "spec.clusterIP",
                format!("{:?} is not an IPv4 address", spec.cluster_ip),
            );
        }
        for (i, ip) in spec.external_ips.iter().enumerate() {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                errs.add(
                    format!("spec.externalIPs[{i}]"),
                    format!("{ip:?} is not an IPv4 address"),
                );
            }
        }
        if let Some(cfg) = &spec.session_affinity_config {
            if spec.session_affinity != SessionAffinity::ClientIp {
                errs.add(
                    "spec.sessionAffinityConfig",
                    "may only be set when sessionAffinity is ClientIP",
                );
            }
            if let Some(t) = cfg.client_ip.as_ref().and_then(|c| c.timeout_seconds)
                && !(1..=86_400).contains(&t)
            {
                errs.add(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    format!("{t} is out of range 1-86400"),
                );
            }
        }
        if spec.external_traffic_policy == TrafficPolicy::Local
            && spec.type_ != ServiceType::NodePort
        {
            errs.add(
                "spec.externalTrafficPolicy",
                "Local may only be set when type is NodePort",
            );
        }
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        if !old.spec.cluster_ip.is_empty() && self.spec.cluster_ip != old.spec.cluster_ip {
            errs.add(
                "spec.clusterIP",
                format!("is immutable (was {})", old.spec.cluster_ip),
            );
        }
        errs.0
    }
}
