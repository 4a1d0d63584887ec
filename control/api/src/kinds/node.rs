//! `Node`: a machine running keel-agent. The agent registers it and posts
//! its status (heartbeats); the control service assigns its pod CIDR.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    primitives::{
        Quantity,
        validate::{self, Errors, FieldError},
    },
    resource::{ObjectMeta, Resource, Time},
};

/// A Node: a machine that runs pods, registered by its keel-agent when it joins
/// and kept up to date by it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The node's pod address range and whether it takes new pods.
    #[serde(default)]
    pub spec: NodeSpec,
    /// What the node's agent last reported: addresses, conditions, capacity and
    /// system information.
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// Assigned by keel-control from the cluster CIDR; stable for the life of the Node.
    #[serde(default, rename = "podCIDR", skip_serializing_if = "String::is_empty")]
    pub pod_cidr: String,
    #[serde(default)]
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<NodeCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeSystemInfo>,
    /// The agent's HTTPS port keel-control proxies logs and exec to (the
    /// kubelet's `kubeletEndpoint`, 10250 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_endpoints: Option<NodeDaemonEndpoints>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDaemonEndpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_endpoint: Option<DaemonEndpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonEndpoint {
    #[serde(rename = "Port")]
    pub port: u16,
}

impl Node {
    /// `host:port` of the node's agent HTTPS port: its InternalIP (else
    /// its first address) and the advertised kubelet endpoint port.
    pub fn agent_endpoint(&self) -> Option<String> {
        let port = self
            .status
            .daemon_endpoints
            .as_ref()?
            .kubelet_endpoint
            .as_ref()?
            .port;
        if port == 0 {
            return None;
        }
        let addr = self
            .status
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .or_else(|| self.status.addresses.first())?;
        Some(match addr.address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            _ => format!("{}:{port}", addr.address),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAddress {
    /// InternalIP, ExternalIP or Hostname.
    #[serde(rename = "type")]
    pub type_: String,
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSystemInfo {
    #[serde(default)]
    pub kernel_version: String,
    #[serde(default)]
    pub os_image: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub operating_system: String,
    #[serde(default)]
    pub container_runtime_version: String,
    /// The agent's version (Kubernetes calls it kubeletVersion).
    #[serde(default)]
    pub kubelet_version: String,
}

impl Node {
    pub fn condition(&self, type_: &str) -> Option<&NodeCondition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the Ready condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    /// The first InternalIP address.
    pub fn internal_ip(&self) -> Option<&str> {
        self.status
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.as_str())
    }

    /// Sets a condition, keeping lastTransitionTime when the status is unchanged.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
        heartbeat: Option<Time>,
    ) {
        let now = Time::now();
        match self.status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(now);
                }
                c.status = status.to_string();
                c.reason = reason.to_string();
                c.message = message.to_string();
                if heartbeat.is_some() {
                    c.last_heartbeat_time = heartbeat;
                }
            }
            None => self.status.conditions.push(NodeCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                last_heartbeat_time: heartbeat,
                last_transition_time: Some(now),
                reason: reason.to_string(),
                message: message.to_string(),
            }),
        }
    }
}

impl Resource for Node {
    const KIND: &'static str = "Node";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "nodes";
    const NAMESPACED: bool = false;

    crate::resource::resource_common!();

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        if !self.metadata.name.is_empty() {
            errs.check(
                "metadata.name",
                validate::dns1123_subdomain(&self.metadata.name),
            );
        }
        if !self.spec.pod_cidr.is_empty() && self.spec.pod_cidr.parse::<ipnet::Ipv4Net>().is_err() {
            errs.add(
                "spec.podCIDR",
                format!("{:?} is not an IPv4 CIDR", self.spec.pod_cidr),
            );
        }
        for (i, a) in self.status.addresses.iter().enumerate() {
            if !matches!(a.type_.as_str(), "InternalIP" | "ExternalIP" | "Hostname") {
                errs.add(
                    format!("status.addresses[{i}].type"),
                    format!("{:?} is not InternalIP, ExternalIP or Hostname", a.type_),
                );
            } else if a.type_ != "Hostname" && a.address.parse::<std::net::IpAddr>().is_err() {
                errs.add(
                    format!("status.addresses[{i}].address"),
                    format!("{:?} is not an IP address", a.address),
                );
            }
        }
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        if !old.spec.pod_cidr.is_empty() && self.spec.pod_cidr != old.spec.pod_cidr {
            errs.add(
                "spec.podCIDR",
                format!("is immutable once assigned (was {})", old.spec.pod_cidr),
            );
        }
        errs.0
    }
}
