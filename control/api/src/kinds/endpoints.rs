//! `Endpoints`: the ready (and not-ready) pod addresses behind a Service,
//! derived by keel-control's endpoints controller; never written by users.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    primitives::{
        Protocol,
        validate::{Errors, FieldError},
    },
    resource::{ObjectMeta, Resource},
};

/// Endpoints: the addresses and ports that serve a Service, written by keel-
/// control's endpoints controller from the pods the Service selects (read-only
/// for users).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Groups of addresses that share one set of ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<EndpointSubset>,
}

/// Addresses that all expose the same ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSubset {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready_addresses: Vec<EndpointAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointAddress {
    pub ip: String,
    /// The pod's `hostname` when its `subdomain` names this Service (cluster
    /// DNS answers `hostname.SERVICE.NS.svc.<domain>` with `ip`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

/// Kubernetes' `ObjectReference`: an Endpoints address's pod, an Event's
/// involved object.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// A part of the object (`spec.containers{web}`), as the kubelet names
    /// the container an event is about.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

impl Endpoints {
    /// Ready backends as (ip, port) for the service port named `port_name`.
    pub fn ready_backends(&self, port_name: &str, protocol: Protocol) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        for s in &self.subsets {
            if let Some(p) = s
                .ports
                .iter()
                .find(|p| p.name == port_name && p.protocol == protocol)
            {
                out.extend(s.addresses.iter().map(|a| (a.ip.clone(), p.port)));
            }
        }
        out.sort();
        out
    }
}

impl Resource for Endpoints {
    const KIND: &'static str = "Endpoints";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "endpoints";
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn spec_eq(&self, other: &Self) -> bool {
        self.subsets == other.subsets
    }
    fn copy_status(&mut self, _from: &Self) {}
    fn set_type_meta(&mut self) {
        self.api_version = "v1".into();
        self.kind = "Endpoints".into();
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        for (i, s) in self.subsets.iter().enumerate() {
            for (j, a) in s.addresses.iter().chain(&s.not_ready_addresses).enumerate() {
                if a.ip.parse::<std::net::IpAddr>().is_err() {
                    errs.add(
                        format!("subsets[{i}].addresses[{j}].ip"),
                        format!("{:?} is not an IP address", a.ip),
                    );
                }
            }
        }
        errs.0
    }
}
