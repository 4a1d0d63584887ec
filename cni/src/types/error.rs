//! The CNI error object printed on stdout, and the spec's well-known error
//! codes (CNI spec 1.1, "Error": 1-99 reserved, 100+ for plugins).

use serde_json::{Value, json};

/// Error codes. 1-7, 11, 50 and 51 are the spec's; 100 and up are keel's.
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (the runtime need not clean up).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN: u32 = 11;
    /// STATUS: the plugin is not available (cannot ADD).
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing attachments may be disrupted.
    pub const NOT_AVAILABLE_DISRUPTED: u32 = 51;
    /// keel: every address of the pod subnet is reserved.
    pub const IPAM_EXHAUSTED: u32 = 100;
    /// keel: CHECK found the attachment different from `prevResult`.
    pub const CHECK_MISMATCH: u32 = 101;
    /// keel: a host-side link with the attachment's name belongs to
    /// something else.
    pub const CONFLICT: u32 = 102;
}

/// A CNI error: `code`, `msg` and optional `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The JSON object the spec puts on stdout.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }

    /// Reads another plugin's error object (a delegated IPAM plugin's).
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            code: u32::try_from(v.get("code")?.as_u64()?).ok()?,
            msg: v
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            details: v
                .get("details")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}
