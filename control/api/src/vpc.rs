//! The contract of keel-control's `exec` VPC provider
//! (control/server/src/vpc/EXEC.md): the [`Request`] keel-control writes to
//! the provider command's stdin and the [`Response`] it reads back from its
//! stdout. keel-control and the lab's router program share these types; a
//! provider in any other language needs only the JSON.
//!
//! Both sides validate what they read and name the field that is wrong,
//! so a broken script is reported as such instead of being half-believed.

use std::{collections::BTreeSet, net::Ipv4Addr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The version of this contract, in every request.
pub const API_VERSION: &str = "vpc.keel.dev/v1";

/// A route keel owns in the VPC route table: a node's pod CIDR via the
/// node's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    pub destination: Ipv4Net,
    pub next_hop: Ipv4Addr,
    /// The Node the route leads to, in requests (a provider may tag the
    /// route with it); providers may leave it out of their answers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// What keel-control asks of the provider command (its stdin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub api_version: String,
    /// Every route keel wants in the table, sorted by destination. Routes
    /// of keel's not listed here are to be withdrawn.
    pub desired: Vec<Route>,
    /// keel's routes as the command reported them after its last
    /// successful run (its [`Response::routes`]); `null` when keel-control
    /// has no such report yet (it just started). A provider that cannot
    /// tell keel's routes from others by itself knows them from this.
    pub current: Option<Vec<Route>>,
}

/// What the command answers on stdout when it exits 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Response {
    /// keel's routes the table holds now (the next request's `current`).
    pub routes: Vec<Route>,
    /// Desired routes it could not program, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failure>,
}

/// A desired route the provider could not program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Failure {
    pub destination: Ipv4Net,
    /// Why, machine-readable, as a Kubernetes condition reason: e.g.
    /// `RouteLimitExceeded`. It becomes the reason of the Node's condition.
    pub reason: String,
    /// Why, for people (the cloud API's own message).
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{path}: {source}")]
    Json {
        /// Where in the document (`failed[0].reason`), `.` for the whole.
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("apiVersion: {found:?} is not {API_VERSION:?}")]
    Version { found: String },
    #[error(
        "{field}: {reason:?} is not a condition reason (a letter, then letters, digits, '_', ',' or ':'; at most {MAX_REASON} characters)"
    )]
    Reason { field: String, reason: String },
    #[error("{field}: {destination} is listed twice")]
    Duplicate {
        field: &'static str,
        destination: Ipv4Net,
    },
}

/// Kubernetes' limit on a condition reason's length.
const MAX_REASON: usize = 1024;

/// Kubernetes' condition reason syntax: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
fn is_reason(s: &str) -> bool {
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':');
    s.len() <= MAX_REASON
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(ok_inner)
        && s.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ContractError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| ContractError::Json {
        path: e.path().to_string(),
        source: e.into_inner(),
    })?;
    de.end().map_err(|source| ContractError::Json {
        path: ".".into(),
        source,
    })?;
    Ok(value)
}

fn unique<'a>(
    field: &'static str,
    destinations: impl Iterator<Item = &'a Ipv4Net>,
) -> Result<(), ContractError> {
    let mut seen = BTreeSet::new();
    for d in destinations {
        if !seen.insert(*d) {
            return Err(ContractError::Duplicate {
                field,
                destination: *d,
            });
        }
    }
    Ok(())
}

impl Request {
    pub fn new(desired: Vec<Route>, current: Option<Vec<Route>>) -> Self {
        Self {
            api_version: API_VERSION.into(),
            desired,
            current,
        }
    }

    /// Reads and checks a request (what a provider does with its stdin).
    pub fn parse(bytes: &[u8]) -> Result<Self, ContractError> {
        let r: Self = decode(bytes)?;
        if r.api_version != API_VERSION {
            return Err(ContractError::Version {
                found: r.api_version,
            });
        }
        unique("desired", r.desired.iter().map(|r| &r.destination))?;
        Ok(r)
    }
}

impl Response {
    /// Reads and checks an answer (what keel-control does with stdout).
    pub fn parse(bytes: &[u8]) -> Result<Self, ContractError> {
        let r: Self = decode(bytes)?;
        unique("routes", r.routes.iter().map(|r| &r.destination))?;
        unique("failed", r.failed.iter().map(|f| &f.destination))?;
        for (i, f) in r.failed.iter().enumerate() {
            if !is_reason(&f.reason) {
                return Err(ContractError::Reason {
                    field: format!("failed[{i}].reason"),
                    reason: f.reason.clone(),
                });
            }
        }
        Ok(r)
    }

    /// Whether the table holds `destination` via `next_hop`.
    pub fn holds(&self, destination: Ipv4Net, next_hop: Ipv4Addr) -> bool {
        self.routes
            .iter()
            .any(|r| r.destination == destination && r.next_hop == next_hop)
    }
}

#[cfg(test)]
mod tests;
