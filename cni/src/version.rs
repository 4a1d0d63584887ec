//! VERSION: the spec versions keel-cni speaks.

use serde_json::{Value, json};

use crate::types::CniVersion;

pub fn version_info() -> Value {
    json!({
        "cniVersion": CniVersion::LATEST.as_str(),
        "supportedVersions": CniVersion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
    })
}
