//! Where the server is and how to authenticate: a small JSON file that
//! keel-control writes next to its token (`client.json`), or flags.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

/// Where keel-control keeps its data (and the client config) by default.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/keel/control";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: token file is empty")]
    EmptyToken { path: PathBuf },
    #[error("server: {server:?} must start with http:// or https://")]
    Scheme { server: String },
    #[error("TLS: CA file: {source}")]
    CaPem {
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS: CA file: {source}")]
    CaCert {
        #[source]
        source: rustls::Error,
    },
    #[error("TLS: {source}")]
    Tls {
        #[source]
        source: rustls::Error,
    },
}

/// The on-disk form (`client.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConfigFile {
    /// `http://10.0.0.1:6443` or `https://…`; several replicas
    /// comma-separated (`https://a:6443,https://b:6443`), tried in turn.
    pub server: String,
    /// File holding the bearer token; relative paths are relative to this file.
    pub token_file: PathBuf,
    /// CA certificate (PEM) that signed the server's certificate, for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Everything a [`super::Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: String,
    pub token: String,
    /// PEM bytes of the CA to trust for https.
    pub ca_pem: Option<Vec<u8>>,
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl ClientConfig {
    /// Reads a `client.json`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = read(path)?;
        let file: ClientConfigFile =
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let token_file = base.join(&file.token_file);
        let ca_file = file.ca_file.map(|c| base.join(c));
        Self::from_parts(&file.server, &token_file, ca_file.as_deref())
    }

    /// From a server URL, a token file and an optional CA file.
    pub fn from_parts(
        server: &str,
        token_file: &Path,
        ca_file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let token = String::from_utf8_lossy(&read(token_file)?)
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(ConfigError::EmptyToken {
                path: token_file.to_path_buf(),
            });
        }
        let ca_pem = ca_file.map(read).transpose()?;
        for one in server.split(',').map(str::trim) {
            if !one.starts_with("http://") && !one.starts_with("https://") {
                return Err(ConfigError::Scheme {
                    server: one.to_string(),
                });
            }
        }
        Ok(Self {
            server: server.to_string(),
            token,
            ca_pem,
        })
    }

    /// Each server URL (`server` may list several replicas, comma-separated).
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.server
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn tls_config(&self) -> Result<rustls::ClientConfig, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| ConfigError::Tls { source })?;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = &self.ca_pem {
            use rustls_pki_types::{CertificateDer, pem::PemObject};
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|source| ConfigError::CaPem { source })?;
                roots
                    .add(cert)
                    .map_err(|source| ConfigError::CaCert { source })?;
            }
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

#[cfg(test)]
mod tests;
