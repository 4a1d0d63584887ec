//! What keel-control, the agent and keelctl share about identity and trust
//! (issue 11, "Join and identity"): the bootstrap token's syntax and
//! expiry, the CA hash a joining node pins (kubeadm's
//! `--discovery-token-ca-cert-hash`), a certificate's validity and when to
//! renew it, the node user names, and the wire forms of the join endpoints.
//!
//! Nothing here does I/O; keel-control's `pki`/`bootstrap` modules and the
//! agent's `join` module do.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The group every node credential carries (Kubernetes' `system:nodes`).
pub const NODES_GROUP: &str = "system:nodes";
/// A node's user name is this prefix and its name (`system:node:<name>`).
pub const NODE_USER_PREFIX: &str = "system:node:";

/// Unauthenticated: the cluster CA (kubeadm's cluster-info ConfigMap).
pub const CLUSTER_INFO_PATH: &str = "/keel/v1/cluster-info";
/// Admin: list (GET) and create (POST) bootstrap tokens; `/ID` deletes.
pub const BOOTSTRAP_TOKENS_PATH: &str = "/keel/v1/bootstrap-tokens";
/// A bootstrap token or a node's current certificate: sign a node CSR.
pub const NODE_CERTIFICATES_PATH: &str = "/keel/v1/node-certificates";
/// A node's current certificate: sign the serving CSR of its agent's HTTPS
/// port (Kubernetes' `kubernetes.io/kubelet-serving` signer).
pub const NODE_SERVING_CERTIFICATES_PATH: &str = "/keel/v1/node-serving-certificates";
/// The user of keel-control's own client certificate, the only client a
/// node's agent port accepts (Kubernetes' apiserver-kubelet-client).
pub const CONTROL_CLIENT_USER: &str = "keel-control";
/// The group of keel-control's client certificate.
pub const CONTROL_CLIENT_GROUP: &str = "keel:control";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error(
        "bootstrap token {given:?}: expected ID.SECRET, a 6-character ID and a 16-character secret of a-z and 0-9 (e.g. abcdef.0123456789abcdef)"
    )]
    TokenSyntax { given: String },
    #[error(
        "CA hash {given:?}: expected sha256:<64 hex digits> (the SHA-256 of the CA's SubjectPublicKeyInfo)"
    )]
    HashSyntax { given: String },
    #[error("certificate: {reason}")]
    Certificate { reason: String },
}

/// A bootstrap token, `ID.SECRET` as kubeadm's (`[a-z0-9]{6}.[a-z0-9]{16}`).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        write!(f, "BootstrapToken({}.<secret>)", self.id)
    }
}

fn token_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl BootstrapToken {
    pub const ID_LEN: usize = 6;
    pub const SECRET_LEN: usize = 16;

    pub fn parse(s: &str) -> Result<Self, PkiError> {
        let err = || PkiError::TokenSyntax {
            // Only the ID part: the whole string may be a real secret.
            given: s.split('.').next().unwrap_or_default().to_string() + ".…",
        };
        let (id, secret) = s.trim().split_once('.').ok_or_else(err)?;
        if !token_part(id, Self::ID_LEN) || !token_part(secret, Self::SECRET_LEN) {
            return Err(err());
        }
        Ok(Self {
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// Whether `id` is a well-formed token ID.
    pub fn valid_id(id: &str) -> bool {
        token_part(id, Self::ID_LEN)
    }

    /// A new random token from `random` bytes (one byte per character).
    pub fn from_random(random: &[u8; 22]) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let pick = |b: &u8| ALPHABET[usize::from(*b) % ALPHABET.len()] as char;
        Self {
            id: random[..6].iter().map(pick).collect(),
            secret: random[6..].iter().map(pick).collect(),
        }
    }

    pub fn to_token_string(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

/// `sha256:<hex>` of a certificate's DER-encoded SubjectPublicKeyInfo, the
/// form kubeadm prints and pins.
pub fn ca_hash(cert_der: &[u8]) -> Result<String, PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::Certificate {
            reason: format!("not a DER X.509 certificate: {e}"),
        })?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(spki))))
}

/// Checks the syntax of a `--ca-hash` and returns it in lower case.
pub fn parse_ca_hash(s: &str) -> Result<String, PkiError> {
    let err = || PkiError::HashSyntax { given: s.into() };
    let hex_part = s.trim().strip_prefix("sha256:").ok_or_else(err)?;
    if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err());
    }
    Ok(format!("sha256:{}", hex_part.to_ascii_lowercase()))
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    pub fn of(cert_der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::Certificate {
                reason: format!("not a DER X.509 certificate: {e}"),
            })?;
        let at = |t: x509_parser::time::ASN1Time| {
            let secs = t.timestamp();
            if secs >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
            } else {
                SystemTime::UNIX_EPOCH
            }
        };
        Ok(Self {
            not_before: at(cert.validity().not_before),
            not_after: at(cert.validity().not_after),
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// Renew when less than a third of the lifetime remains (or it has
    /// expired, or it is not valid yet by a clock that went back).
    pub fn renewal_due(&self, now: SystemTime) -> bool {
        match self.not_after.duration_since(now) {
            Ok(left) => left < self.lifetime() / 3 || now < self.not_before,
            Err(_) => true,
        }
    }

    /// How long from `now` until renewal is due (zero when it is).
    pub fn until_renewal(&self, now: SystemTime) -> Duration {
        let due = self.not_after - self.lifetime() / 3;
        due.duration_since(now).unwrap_or_default()
    }
}

/// `system:node:<name>`.
pub fn node_user(name: &str) -> String {
    format!("{NODE_USER_PREFIX}{name}")
}

/// The node name in `system:node:<name>`, if it is one.
pub fn node_of_user(user: &str) -> Option<&str> {
    user.strip_prefix(NODE_USER_PREFIX)
        .filter(|n| !n.is_empty())
}

/// `GET /keel/v1/cluster-info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
}

/// `POST /keel/v1/bootstrap-tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// Lifetime in seconds (default 24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A bootstrap token as listed (never with its secret), or as created
/// (with `token` and what a node needs to join).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Unix seconds.
    pub expires: u64,
    /// `ID.SECRET`: only in the answer to a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `sha256:…` of the cluster CA: only in the answer to a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_hash: Option<String>,
}

/// `GET /keel/v1/bootstrap-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
}

/// `POST /keel/v1/node-certificates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeCertificateRequest {
    pub node_name: String,
    /// PKCS#10 certificate signing request (PEM) for the node's own key.
    pub csr_pem: String,
}

/// `POST /keel/v1/node-serving-certificates`: a serving certificate for
/// the node's name and these addresses (IPs or DNS names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeServingCertificateRequest {
    pub node_name: String,
    pub csr_pem: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// The answer: the node's certificate and the CA that signed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCertificate {
    pub cert_pem: String,
    pub ca_pem: String,
}

/// The subject of a DER certificate as Kubernetes' x509 authenticator
/// reads it: the CN (user) and the O values (groups).
pub fn subject(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let s = cert.subject();
    let user = s.iter_common_name().next()?.as_str().ok()?.to_string();
    let groups = s
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((user, groups))
}

#[cfg(test)]
mod tests;
