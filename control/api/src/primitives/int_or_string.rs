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

/// As Kubernetes' schema has it (kubectl shows the type as
/// `<IntOrString>`), not as the untagged enum would derive it.
impl schemars::JsonSchema for IntOrString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrString".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number, or a string the field gives a meaning to (a port name, a percentage such as `25%`).",
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        })
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}
