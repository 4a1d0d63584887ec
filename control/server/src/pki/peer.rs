//! Who a client certificate names. The TLS acceptor has verified it
//! against the cluster CA; this reads its subject (CN: the user, O: the
//! groups, as Kubernetes' x509 authenticator) and when keel-control issued
//! it (the first 8 bytes of the serial, see `ClusterCa`), which revocation
//! compares with the time the node was deleted.

use std::time::{Duration, SystemTime};

/// A verified client certificate's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    pub user: String,
    pub groups: Vec<String>,
    /// When keel-control signed it (from its serial number).
    pub issued: SystemTime,
}

impl PeerCert {
    /// Reads the DER certificate; `None` when it names no user.
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()?
            .as_str()
            .ok()?
            .to_string();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        let serial = cert.raw_serial();
        // A leading zero byte keeps a DER integer positive; ours never needs one.
        let serial = serial.strip_prefix(&[0]).unwrap_or(serial);
        let nanos = serial
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Some(Self {
            user,
            groups,
            issued: SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
        })
    }
}
