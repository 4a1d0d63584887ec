//! Typed decoding that names the offending field: serde's own errors say
//! what is wrong but not where, which is useless on a 40-line manifest.

use super::object::Resource;

/// A document that does not fit a kind's schema. The message carries the
/// path of the offending field, e.g. `spec.containers[0]: unknown field `imag``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {path}: {message}")]
pub struct FieldDecodeError {
    pub kind: &'static str,
    /// `(root)` when the document itself has the wrong shape.
    pub path: String,
    pub message: String,
}

/// Metadata fields Kubernetes' servers write and `kubectl get -o yaml`
/// exports, which keel keeps no record of: `selfLink` (Kubernetes ignores it
/// too since 1.20) and `managedFields` (keel-control's server-side apply
/// keeps each manager's configuration in an annotation instead; it warns
/// when a request carries them). They are dropped on decoding, so an
/// exported manifest applies.
const DROPPED_META: [&str; 2] = ["selfLink", "managedFields"];

/// Decodes one typed object from a JSON value, reporting the field path on error.
pub fn decode<R: Resource>(mut value: serde_json::Value) -> Result<R, FieldDecodeError> {
    if let Some(meta) = value
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        for field in DROPPED_META {
            meta.remove(field);
        }
    }
    serde_path_to_error::deserialize::<_, R>(value).map_err(|e| {
        let path = e.path().to_string();
        FieldDecodeError {
            kind: R::KIND,
            path: if path == "." {
                "(root)".to_string()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::AnyObject;

    /// What keelctl reads from a manifest exported from a real cluster.
    #[test]
    fn exported_self_link_and_managed_fields_are_dropped() {
        let v = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default",
                "selfLink": "/api/v1/namespaces/default/services/web",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        let obj = AnyObject::from_value(v).unwrap();
        assert_eq!(obj.meta().name, "web");
        let back = obj.to_json_value();
        assert!(back["metadata"].get("selfLink").is_none(), "{back}");
        assert!(back["metadata"].get("managedFields").is_none(), "{back}");
        // Other unknown metadata fields are still refused, by path.
        let bad = serde_json::json!({"kind": "Service",
            "metadata": {"name": "web", "selfLinks": "x"}});
        let e = AnyObject::from_value(bad).unwrap_err().to_string();
        assert!(e.contains("metadata") && e.contains("selfLinks"), "{e}");
    }
}
