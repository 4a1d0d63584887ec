//! A client certificate the client presents (mTLS), replaceable while the
//! client runs: a node renews its certificate and every new connection
//! presents the new one, without rebuilding the client.

use std::sync::{Arc, RwLock};

use rustls::{
    client::ResolvesClientCert,
    sign::{CertifiedKey, SigningKey},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::ConfigError;

/// The certificate and key a client presents. Cheap to clone; clones share
/// the credential, so [`Identity::replace`] reaches every client using it.
#[derive(Clone)]
pub struct Identity(Arc<RwLock<Arc<CertifiedKey>>>);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(<client certificate>)")
    }
}

fn certified(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, ConfigError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| ConfigError::Identity {
        message: format!("{what}: {e}"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("client certificate", &e))?;
    if certs.is_empty() {
        return Err(bad("client certificate", &"no certificate in the PEM"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("client key", &e))?;
    let key: Arc<dyn SigningKey> =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| bad("client key", &e))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match()
        .map_err(|e| bad("client certificate and key", &e))?;
    Ok(Arc::new(ck))
}

impl Identity {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ConfigError> {
        Ok(Self(Arc::new(RwLock::new(certified(cert_pem, key_pem)?))))
    }

    /// Presents this certificate and key from the next connection on.
    pub fn replace(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), ConfigError> {
        let new = certified(cert_pem, key_pem)?;
        *self.0.write().expect("identity lock") = new;
        Ok(())
    }

    /// The certificate presented now (DER).
    pub fn cert_der(&self) -> Vec<u8> {
        self.0.read().expect("identity lock").cert[0]
            .as_ref()
            .to_vec()
    }

    pub(crate) fn resolver(&self) -> Arc<dyn ResolvesClientCert> {
        Arc::new(Resolver(self.clone()))
    }
}

#[derive(Debug)]
struct Resolver(Identity);

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.0.read().expect("identity lock").clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The same replaceable certificate presented by a server (a node's agent
/// port renews its serving certificate this way).
impl rustls::server::ResolvesServerCert for Identity {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("identity lock").clone())
    }
}
