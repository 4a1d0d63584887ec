//! keel-control's certificates: the cluster CA created at first start
//! (`<data-dir>/pki/ca.{crt,key}`, the key 0600), the serving certificate
//! it signs (SANs in [`sans`], re-issued when they change or when less than
//! a third of its lifetime remains), and the node client certificates it
//! signs from a CSR ([`ClusterCa::sign_node`]).
//!
//! - [`sans`]: which names and addresses the serving certificate covers (pure).
//! - [`serving`]: the certificate the TLS acceptor presents, replaceable while
//!   it runs, and the periodic renewal.
//! - [`peer`]: who a verified client certificate names (user, groups, when
//!   it was issued).

pub mod peer;
pub mod sans;
pub mod serving;

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// How long the CA is valid (kubeadm: 10 years).
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long a serving certificate is valid (kubeadm: 1 year).
pub const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{what}: {source}")]
    Rcgen {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("certificate signing request for node {node}: {reason}")]
    Csr { node: String, reason: String },
    #[error("{0}")]
    Api(#[from] keel_api::pki::PkiError),
}

fn rc(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError::Rcgen { what, source }
}

/// `<data-dir>/pki`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

/// Writes `path` atomically with `mode` (a key is never readable by others,
/// not even for a moment).
pub fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    keel_sys::fs::write_atomic(path, data, mode).map_err(|e| PkiError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The cluster CA: its certificate (which clients trust and nodes pin by
/// hash) and the issuer that signs with its key.
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

/// 16 bytes: the issuance time in nanoseconds (big endian, top bit clear so
/// the serial stays positive) and 8 random bytes. Revocation compares the
/// first half with the time a node was deleted ([`peer::PeerCert`]).
fn serial(now: SystemTime) -> SerialNumber {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
        & (u64::MAX >> 1);
    let mut bytes = nanos.to_be_bytes().to_vec();
    bytes.extend(rand::random::<[u8; 8]>());
    SerialNumber::from_slice(&bytes)
}

/// How far before `now` a certificate of `lifetime` starts: a minute, or a
/// tenth of a short lifetime.
fn backdate(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(60))
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// What every certificate the CA issues carries: valid `lifetime` from
/// `now`, started a little back (a node whose clock is slightly behind
/// still accepts it; a tenth of the lifetime at most, so the renewal point,
/// two thirds in, stays ahead), a serial revocation can read, and the CA's
/// key identifier.
fn stamp(params: &mut CertificateParams, lifetime: Duration, now: SystemTime) {
    params.not_before = offset(now - backdate(lifetime));
    params.not_after = offset(now + lifetime);
    params.serial_number = Some(serial(now));
    params.use_authority_key_identifier_extension = true;
}

impl ClusterCa {
    /// A new CA (ECDSA P-256), valid for [`CA_LIFETIME`].
    pub fn generate(now: SystemTime) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(rc("generating the CA key"))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "keel-cluster-ca");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "keel");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = offset(now - Duration::from_secs(60));
        params.not_after = offset(now + CA_LIFETIME);
        params.serial_number = Some(serial(now));
        let cert = params
            .self_signed(&key)
            .map_err(rc("self-signing the CA"))?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(rc("the CA key"))?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.as_ref().to_vec())
            .map_err(|e| {
                PkiError::Api(keel_api::pki::PkiError::Certificate {
                    reason: format!("the CA certificate: {e}"),
                })
            })?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(rc("the CA certificate"))?;
        Ok(Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            cert_der: der,
            issuer,
        })
    }

    /// Reads `<pki>/ca.{crt,key}`, or creates them (the directory 0700,
    /// the key 0600).
    pub fn load_or_create(pki: &Path, now: SystemTime) -> Result<Self, PkiError> {
        let (cert, key) = (pki.join("ca.crt"), pki.join("ca.key"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        match (
            std::fs::read_to_string(&cert),
            std::fs::read_to_string(&key),
        ) {
            (Ok(c), Ok(k)) => return Self::from_pem(&c, &k),
            (Err(e), _) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&cert)(e)),
            (_, Err(e)) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&key)(e)),
            _ => {}
        }
        crate::store::redb::private_dir(pki).map_err(io(pki))?;
        let ca = Self::generate(now)?;
        ca.store(pki)?;
        Ok(ca)
    }

    /// Writes `<pki>/ca.{crt,key}` (the key 0600).
    pub fn store(&self, pki: &Path) -> Result<(), PkiError> {
        write(&pki.join("ca.key"), self.key_pem.as_bytes(), 0o600)?;
        write(&pki.join("ca.crt"), self.cert_pem.as_bytes(), 0o644)
    }

    /// `sha256:…` of the CA's SubjectPublicKeyInfo, as nodes pin it.
    pub fn hash(&self) -> String {
        keel_api::pki::ca_hash(&self.cert_der).expect("the CA certificate was parsed at load")
    }

    /// A serving certificate for `sans` and its key (PEM), valid `lifetime`.
    pub fn issue_serving(
        &self,
        sans: &[String],
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate().map_err(rc("generating the serving key"))?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(rc("serving certificate SANs"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "keel-control");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        stamp(&mut params, lifetime, now);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rc("signing the serving certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a node's CSR: only its public key is taken; the subject is
    /// `CN=system:node:<node>, O=system:nodes`, client auth only, valid
    /// `lifetime` from `now`.
    pub fn sign_node(
        &self,
        csr_pem: &str,
        node: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<String, PkiError> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = Vec::<SanType>::new();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign_node_csr(csr_pem, node, params, "certificate", lifetime, now)
    }

    /// Signs the serving CSR of a node's agent port: only its public key
    /// is taken; subject `CN=system:node:<node>, O=system:nodes`, SANs the
    /// node's name and `addresses` (IPs or DNS names), server auth only
    /// (Kubernetes' kubelet-serving certificates).
    pub fn sign_node_serving(
        &self,
        csr_pem: &str,
        node: &str,
        addresses: &[String],
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<String, PkiError> {
        let mut names = vec![node.to_string()];
        names.extend(addresses.iter().filter(|a| *a != node).cloned());
        let mut params = CertificateParams::new(names).map_err(|e| PkiError::Csr {
            node: node.into(),
            reason: format!("addresses: {e}"),
        })?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_node_csr(csr_pem, node, params, "serving certificate", lifetime, now)
    }

    /// Signs `csr_pem` with `params` (its SANs and usages): only the CSR's
    /// public key is taken; the subject is `CN=system:node:<node>,
    /// O=system:nodes`.
    fn sign_node_csr(
        &self,
        csr_pem: &str,
        node: &str,
        mut params: CertificateParams,
        what: &str,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<String, PkiError> {
        let csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| PkiError::Csr {
                node: node.into(),
                reason: format!("not a valid PKCS#10 request in PEM: {e}"),
            })?;
        params
            .distinguished_name
            .push(DnType::CommonName, keel_api::pki::node_user(node));
        params
            .distinguished_name
            .push(DnType::OrganizationName, keel_api::pki::NODES_GROUP);
        stamp(&mut params, lifetime, now);
        let signed = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = signed
            .signed_by(&self.issuer)
            .map_err(rc(format!("signing node {node}'s {what}")))?;
        Ok(cert.pem())
    }

    /// keel-control's own client certificate and key (PEM), with which it
    /// dials nodes' agent ports: `CN=keel-control, O=keel:control`, client
    /// auth only.
    pub fn issue_control_client(
        &self,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate().map_err(rc("generating keel-control's client key"))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, keel_api::pki::CONTROL_CLIENT_USER);
        params.distinguished_name.push(
            DnType::OrganizationName,
            keel_api::pki::CONTROL_CLIENT_GROUP,
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        stamp(&mut params, lifetime, now);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rc("signing keel-control's client certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

#[cfg(test)]
mod tests;

/// On etcd every replica serves with the same CA: the first to start
/// stores its own (certificate and key, under `<prefix>/pki/ca`), the
/// others take that one.
pub async fn shared_ca(
    cfg: &crate::store::etcd::EtcdConfig,
    candidate: ClusterCa,
) -> anyhow::Result<ClusterCa> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
    let mut kv = crate::store::etcd::connect(cfg).await?.kv_client();
    let key = format!("{}/pki/ca", cfg.prefix);
    let value = serde_json::to_vec(&(&candidate.cert_pem, &candidate.key_pem))?;
    let resp = kv
        .txn(
            Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), value, None)])
                .or_else([TxnOp::get(key.clone(), None)]),
        )
        .await?;
    if resp.succeeded() {
        return Ok(candidate);
    }
    for r in resp.op_responses() {
        if let TxnOpResponse::Get(g) = r
            && let Some(kv) = g.kvs().first()
        {
            let (cert, key): (String, String) = serde_json::from_slice(kv.value())?;
            return Ok(ClusterCa::from_pem(&cert, &key)?);
        }
    }
    anyhow::bail!("etcd key {key}: present but unreadable")
}
