//! `ClientError`: why a request to keel-control failed, told apart the way
//! callers act on it (not found, conflict, expired watch, unreachable).

use super::config::ConfigError;
use crate::resource::Status;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error Status (404, 409, 422, 401, 410…).
    #[error("{} ({})", .0.message, .0.reason)]
    Api(Box<Status>),
    #[error("cannot reach keel-control at {server}: {message}")]
    Unreachable { server: String, message: String },
    #[error("request to {path} timed out after {secs} s")]
    Timeout { path: String, secs: u64 },
    #[error("unexpected answer from keel-control for {path}: {message}")]
    Protocol { path: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ClientError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api(s) => Some(s.code),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
    /// The watch's resourceVersion was compacted away: relist.
    pub fn is_expired(&self) -> bool {
        self.code() == Some(410)
    }
    /// The server has not reached the resourceVersion asked for (504
    /// "Too large resource version"); as for 410, relist from the latest.
    pub fn is_too_large_resource_version(&self) -> bool {
        matches!(self, ClientError::Api(s)
            if s.code == 504 && s.message.contains("Too large resource version"))
    }
    /// The server could not be reached (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Timeout { .. }
        )
    }
}
