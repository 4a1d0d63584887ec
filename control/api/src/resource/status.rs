//! `Status`: the body every failed request returns, as Kubernetes does, with
//! the fields at fault when the object was invalid.

use serde::{Deserialize, Serialize};

use crate::primitives::FieldError;

/// The error body every failed request returns, as Kubernetes does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    /// "Failure" or "Success".
    pub status: String,
    pub message: String,
    /// NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Unauthorized,
    /// Forbidden, Expired, InternalError, MethodNotAllowed.
    pub reason: String,
    pub code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<FieldError>,
    /// When the client may retry (Kubernetes' `retryAfterSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

impl Status {
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Status".into(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            code,
            details: None,
        }
    }

    pub fn success(message: impl Into<String>) -> Self {
        Self {
            status: "Success".into(),
            reason: String::new(),
            code: 200,
            ..Self::failure(200, "", message)
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
