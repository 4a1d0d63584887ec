//! `IntOrString`: a field that takes a number or a string, as Kubernetes'
//! `intstr`: a port by number or by the name of a container port
//! (`targetPort`, probes), a count or a percentage (`maxSurge`).

use serde::{Deserialize, Serialize};

/// A number, or a string the field gives a meaning to (a port name, `25%`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}
