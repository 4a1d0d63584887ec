//! The certificate the TLS acceptor presents: issued by the cluster CA and
//! kept in `<data-dir>/pki/serving.{crt,key}`, re-issued when its SANs
//! change or less than a third of its lifetime remains ([`decide`], checked
//! at start and every [`CHECK_INTERVAL`]); the acceptor reads it through a
//! [`ServingCert`] handle, so a new one is presented without a restart.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use keel_api::pki::Validity;
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{ClusterCa, PkiError, SERVING_LIFETIME};

/// How often the serving certificate is checked for renewal.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Why the serving certificate is (re)issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reissue {
    /// None yet, or unreadable.
    Missing,
    /// The names or addresses it must cover changed.
    SansChanged,
    /// Less than a third of its lifetime remains.
    RenewalDue,
    /// Another CA signed it (the replicas' shared CA replaced this one's).
    OtherCa,
}

/// Whether the certificate (`existing`: its SANs and validity, and whether
/// the current CA signed it) must be re-issued to cover `want` at `now`.
pub fn decide(
    existing: Option<(Vec<String>, Validity, bool)>,
    want: &[String],
    now: SystemTime,
) -> Option<Reissue> {
    let Some((sans, validity, ours)) = existing else {
        return Some(Reissue::Missing);
    };
    if !ours {
        Some(Reissue::OtherCa)
    } else if sans != want {
        Some(Reissue::SansChanged)
    } else if validity.renewal_due(now) {
        Some(Reissue::RenewalDue)
    } else {
        None
    }
}

/// The serving certificate and key files.
#[derive(Debug, Clone)]
pub struct ServingFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServingFiles {
    pub fn in_dir(pki: &Path) -> Self {
        Self {
            cert: pki.join("serving.crt"),
            key: pki.join("serving.key"),
        }
    }
}

fn issued_by(cert_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(cert_der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Makes sure `files` hold a certificate for `want` signed by `ca`,
/// issuing one when [`decide`] says so; returns what was done.
pub fn ensure(
    ca: &ClusterCa,
    files: &ServingFiles,
    want: &[String],
    now: SystemTime,
) -> Result<Option<Reissue>, PkiError> {
    let existing = std::fs::read(&files.cert)
        .ok()
        .filter(|_| files.key.exists())
        .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok())
        .and_then(|der| {
            let sans = super::sans::of_cert(der.as_ref())?;
            let validity = Validity::of(der.as_ref()).ok()?;
            Some((sans, validity, issued_by(der.as_ref(), &ca.cert_der)))
        });
    let reason = decide(existing, want, now);
    if reason.is_some() {
        let (cert, key) = ca.issue_serving(want, SERVING_LIFETIME, now)?;
        super::write(&files.key, key.as_bytes(), 0o600)?;
        super::write(&files.cert, cert.as_bytes(), 0o644)?;
    }
    Ok(reason)
}

/// What the acceptor presents; [`ServingCert::reload`] swaps it.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

fn load(files: &ServingFiles) -> anyhow::Result<Arc<CertifiedKey>> {
    use anyhow::Context;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {}", files.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading TLS key {}", files.key.display()))?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .with_context(|| format!("TLS key {}", files.key.display()))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match().with_context(|| {
        format!(
            "TLS certificate {} and key {} do not match",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(ck))
}

impl ServingCert {
    pub fn load(files: &ServingFiles) -> anyhow::Result<Self> {
        Ok(Self {
            current: RwLock::new(load(files)?),
        })
    }

    /// Presents the certificate in `files` from the next handshake on.
    pub fn reload(&self, files: &ServingFiles) -> anyhow::Result<()> {
        let new = load(files)?;
        *self.current.write().expect("serving cert lock") = new;
        Ok(())
    }

    /// The certificate presented now (DER).
    pub fn cert_der(&self) -> Vec<u8> {
        self.current.read().expect("serving cert lock").cert[0]
            .as_ref()
            .to_vec()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("serving cert lock").clone())
    }
}

/// Every [`CHECK_INTERVAL`]: re-issue the certificate when [`decide`] says
/// so and have `serving` present it.
pub async fn renew_periodically(
    ca: Arc<ClusterCa>,
    files: ServingFiles,
    want: Vec<String>,
    serving: Arc<ServingCert>,
) {
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        match ensure(&ca, &files, &want, SystemTime::now()) {
            Ok(None) => {}
            Ok(Some(reason)) => match serving.reload(&files) {
                Ok(()) => tracing::info!(?reason, "serving certificate re-issued"),
                Err(e) => tracing::warn!(error = %e, "loading the re-issued serving certificate"),
            },
            Err(e) => tracing::warn!(error = %e, "re-issuing the serving certificate"),
        }
    }
}
