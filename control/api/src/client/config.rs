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
    #[error("TLS: {message}")]
    Identity { message: String },
    #[error("{path}: neither a token file nor a client certificate (certFile and keyFile)")]
    NoCredential { path: PathBuf },
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
    /// File holding the bearer token; relative paths are relative to this
    /// file. Empty: none (a node authenticates with its certificate).
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub token_file: PathBuf,
    /// CA certificate (PEM) that signed the server's certificate, for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) to present (mTLS), with `keyFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

fn path_is_empty(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

/// Everything a [`super::Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: String,
    pub token: String,
    /// PEM bytes of the CA to trust for https.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate to present (mTLS); the token may then be empty.
    pub identity: Option<super::Identity>,
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
        let ca_file = file.ca_file.map(|c| base.join(c));
        let identity = match (&file.cert_file, &file.key_file) {
            (Some(cert), Some(key)) => Some(super::Identity::from_pem(
                &read(&base.join(cert))?,
                &read(&base.join(key))?,
            )?),
            _ => None,
        };
        if file.token_file.as_os_str().is_empty() {
            let Some(identity) = identity else {
                return Err(ConfigError::NoCredential {
                    path: path.to_path_buf(),
                });
            };
            check_servers(&file.server)?;
            return Ok(Self {
                server: file.server,
                token: String::new(),
                ca_pem: ca_file.map(|c| read(&c)).transpose()?,
                identity: Some(identity),
            });
        }
        let token_file = base.join(&file.token_file);
        let mut config = Self::from_parts(&file.server, &token_file, ca_file.as_deref())?;
        config.identity = identity;
        Ok(config)
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
        check_servers(server)?;
        Ok(Self {
            server: server.to_string(),
            token,
            ca_pem,
            identity: None,
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
        let ca_certs: Vec<Vec<u8>> = roots_der(self.ca_pem.as_deref().unwrap_or_default());
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build();
        match webpki {
            Ok(inner) => {
                let b = builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki { inner, ca_certs }));
                Ok(match &self.identity {
                    Some(id) => b.with_client_cert_resolver(id.resolver()),
                    None => b.with_no_client_auth(),
                })
            }
            // No CA given: nothing to pin, nothing to trust.
            Err(_) => {
                let b = builder.with_root_certificates(rustls::RootCertStore::empty());
                Ok(match &self.identity {
                    Some(id) => b.with_client_cert_resolver(id.resolver()),
                    None => b.with_no_client_auth(),
                })
            }
        }
    }
}

fn check_servers(server: &str) -> Result<(), ConfigError> {
    for one in server.split(',').map(str::trim) {
        if !one.starts_with("http://") && !one.starts_with("https://") {
            return Err(ConfigError::Scheme {
                server: one.to_string(),
            });
        }
    }
    Ok(())
}

/// The DER of every certificate in a PEM bundle (unparseable ones left out:
/// `tls_config` has refused them already).
fn roots_der(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// WebPKI verification, plus what Go's crypto/x509 (and so kubectl)
/// accepts and WebPKI refuses (`CaUsedAsEndEntity`): a server presenting
/// exactly a certificate of the CA file, alone, e.g. a self-signed
/// certificate with `CA:TRUE` used as its own CA. Its name must still
/// match the server's.
#[derive(Debug)]
struct PinnedOrWebPki {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    ca_certs: Vec<Vec<u8>>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(e) => {
                let pinned = intermediates.is_empty()
                    && self
                        .ca_certs
                        .iter()
                        .any(|c| c.as_slice() == end_entity.as_ref());
                if !pinned {
                    return Err(e);
                }
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
