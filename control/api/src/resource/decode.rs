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

/// Decodes one typed object from a JSON value, reporting the field path on error.
pub fn decode<R: Resource>(value: serde_json::Value) -> Result<R, FieldDecodeError> {
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
