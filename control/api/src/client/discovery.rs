//! Discovery for a joining node (kubeadm's token discovery): fetch the
//! cluster CA from keel-control's unauthenticated `cluster-info` endpoint
//! over a TLS connection whose certificate is not checked yet, then check
//! the CA against the hash the operator pinned. Only the CA is taken from
//! this connection, and only once its hash matches; everything after it
//! verifies the server against that CA.

use std::{sync::Arc, time::Duration};

use hyper::Method;
use hyper_util::{client::legacy::Client as HyperClient, rt::TokioExecutor};

use super::{Client, ClientError, connect};
use crate::pki::{CLUSTER_INFO_PATH, ClusterInfo};

/// The CA keel-control at `server` serves; the caller must check it
/// against the pinned hash before trusting it.
pub async fn cluster_info_unverified(server: &str) -> Result<ClusterInfo, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Protocol {
            path: CLUSTER_INFO_PATH.into(),
            message: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(connect::Connector::new(None));
    let client = Client {
        http: HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector),
        servers: std::iter::once(Arc::from(server.trim_end_matches('/'))).collect(),
        current: Default::default(),
        auth: "".into(),
    };
    let bytes = client
        .request_raw(Method::GET, CLUSTER_INFO_PATH, None)
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
        path: CLUSTER_INFO_PATH.into(),
        message: e.to_string(),
    })
}

/// Accepts any server certificate: only for fetching the CA that is then
/// checked against a pinned hash.
#[derive(Debug)]
struct Unverified;

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
