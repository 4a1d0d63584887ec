//! The crate's error: every module's error, and the CNI error code each
//! one maps to.

use keel_sys::netlink::NetlinkError;

use crate::{
    attach::AttachError,
    ipam::IpamError,
    types::{CniError, code, config::ConfigError, env::EnvError, result::ResultError},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    PrevResult(#[from] ResultError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("cniVersion: {version} does not support {command} ({since} or later does)")]
    VersionTooOld {
        version: String,
        command: &'static str,
        since: &'static str,
    },
    #[error("{field}: required for {command}")]
    MissingForCommand {
        field: &'static str,
        command: &'static str,
    },
    #[error("CHECK found {} mismatch(es): {}", .0.len(), .0.join("; "))]
    Check(Vec<String>),
    #[error("STATUS: {0}")]
    NotAvailable(String),
}

impl From<NetlinkError> for Error {
    fn from(e: NetlinkError) -> Self {
        Error::Attach(AttachError::Netlink(e))
    }
}

impl Error {
    pub fn code(&self) -> u32 {
        match self {
            Error::Env(e) => e.code(),
            Error::Config(e) => e.code(),
            Error::PrevResult(e) => e.code(),
            Error::Ipam(e) => e.code(),
            Error::Attach(e) => e.code(),
            Error::VersionTooOld { .. } => code::INCOMPATIBLE_VERSION,
            Error::MissingForCommand { .. } => code::INVALID_CONFIG,
            Error::Check(_) => code::CHECK_MISMATCH,
            Error::NotAvailable(_) => code::NOT_AVAILABLE,
        }
    }

    pub fn to_cni(&self) -> CniError {
        let mut e = CniError::new(self.code(), self.to_string());
        if let Error::Check(items) = self {
            e = e.details(items.join("\n"));
        } else if let Some(source) =
            std::error::Error::source(self).and_then(std::error::Error::source)
        {
            e = e.details(source.to_string());
        }
        e
    }
}
