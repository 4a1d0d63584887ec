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
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_in_the_documented_shape() {
        let req = Request::new(
            vec![Route {
                destination: "10.244.1.0/24".parse().unwrap(),
                next_hop: "172.30.0.11".parse().unwrap(),
                node: "node-1".into(),
            }],
            None,
        );
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "vpc.keel.dev/v1",
                "desired": [{"destination": "10.244.1.0/24", "nextHop": "172.30.0.11", "node": "node-1"}],
                "current": null,
            })
        );
        assert_eq!(Request::parse(json.to_string().as_bytes()).unwrap(), req);
    }

    #[test]
    fn requests_of_another_version_or_with_twice_the_same_route_are_refused() {
        let err =
            Request::parse(br#"{"apiVersion": "vpc.keel.dev/v2", "desired": [], "current": null}"#)
                .unwrap_err();
        assert!(matches!(err, ContractError::Version { .. }), "{err}");
        let twice = br#"{"apiVersion": "vpc.keel.dev/v1", "current": null, "desired": [
            {"destination": "10.244.1.0/24", "nextHop": "172.30.0.11"},
            {"destination": "10.244.1.0/24", "nextHop": "172.30.0.12"}]}"#;
        assert_eq!(
            Request::parse(twice).unwrap_err().to_string(),
            "desired: 10.244.1.0/24 is listed twice"
        );
    }

    #[test]
    fn a_response_with_failures_parses_and_answers_what_it_holds() {
        let r = Response::parse(
            br#"{"routes": [{"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"}],
                 "failed": [{"destination": "10.244.1.0/24", "reason": "RouteLimitExceeded",
                             "message": "route table rtb-1 holds 50 of 50 routes"}]}"#,
        )
        .unwrap();
        assert!(r.holds(
            "10.244.0.0/24".parse().unwrap(),
            "172.30.0.11".parse().unwrap()
        ));
        assert!(!r.holds(
            "10.244.0.0/24".parse().unwrap(),
            "172.30.0.12".parse().unwrap()
        ));
        assert_eq!(r.failed[0].reason, "RouteLimitExceeded");
        // `failed` may be left out.
        assert!(
            Response::parse(br#"{"routes": []}"#)
                .unwrap()
                .failed
                .is_empty()
        );
    }

    #[test]
    fn a_broken_response_names_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "."),
            (b"{\"routes\": []} trailing", "."),
            (br#"{"routes": [{"destination": "10.244.0.0", "nextHop": "172.30.0.11"}]}"#, "routes[0].destination"),
            (br#"{"routes": [], "failed": [{"destination": "10.244.0.0/24"}]}"#, "failed[0]"),
            (br#"{"routes": [], "extra": 1}"#, "extra"),
            (br#"{"routes": [], "failed": [{"destination": "10.244.0.0/24", "reason": "quota exceeded"}]}"#, "failed[0].reason"),
            (br#"{"routes": [{"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"},
                             {"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"}]}"#, "routes"),
        ];
        for (input, field) in cases {
            let err = Response::parse(input).unwrap_err().to_string();
            assert!(
                err.starts_with(field),
                "{}: {err} should name {field}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn condition_reasons_follow_kubernetes_syntax() {
        for ok in ["RouteLimitExceeded", "A", "Quota_1", "x:y,z"] {
            assert!(is_reason(ok), "{ok}");
        }
        for bad in [
            "",
            "1Route",
            "Route limit",
            "Route-",
            "Route:",
            &"a".repeat(1025),
        ] {
            assert!(!is_reason(bad), "{bad}");
        }
    }
}
