//! Bootstrap tokens as stored (the secret only as its SHA-256) and the
//! checks a presented token goes through: pure, unit-tested.

use std::time::{Duration, SystemTime};

use keel_api::pki::{BootstrapToken, TokenInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Default lifetime of a token (kubeadm's: 24 h).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a token may live.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);
/// A description is for people; this much is plenty.
pub const MAX_DESCRIPTION: usize = 256;

/// One token as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    #[serde(default)]
    pub description: String,
    /// Unix seconds.
    pub expires: u64,
}

/// Why a presented bootstrap token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "bootstrap token {id}: no such token (deleted, expired and collected, or never created)"
    )]
    Unknown { id: String },
    #[error("bootstrap token {id}: wrong secret")]
    WrongSecret { id: String },
    #[error("bootstrap token {id}: expired at {at}")]
    Expired { id: String, at: String },
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TokenRecord {
    pub fn new(token: &BootstrapToken, description: &str, ttl: Duration, now: SystemTime) -> Self {
        Self {
            id: token.id.clone(),
            secret_sha256: sha256_hex(&token.secret),
            description: description.into(),
            expires: unix(now + ttl),
        }
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        unix(now) >= self.expires
    }

    /// Whether `token` (already matched by ID) may be used at `now`.
    pub fn check(&self, token: &BootstrapToken, now: SystemTime) -> Result<(), Refusal> {
        if !constant_time_eq(
            sha256_hex(&token.secret).as_bytes(),
            self.secret_sha256.as_bytes(),
        ) {
            return Err(Refusal::WrongSecret {
                id: self.id.clone(),
            });
        }
        if self.expired(now) {
            return Err(Refusal::Expired {
                id: self.id.clone(),
                at: rfc3339(self.expires),
            });
        }
        Ok(())
    }

    /// As `keelctl token list` shows it: never the secret.
    pub fn info(&self) -> TokenInfo {
        TokenInfo {
            id: self.id.clone(),
            description: self.description.clone(),
            expires: self.expires,
            token: None,
            ca_hash: None,
        }
    }
}

/// Checks a create request's TTL and description.
pub fn validate_request(ttl_seconds: Option<u64>, description: &str) -> Result<Duration, String> {
    let ttl = ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
    if ttl.is_zero() {
        return Err("ttlSeconds: must be at least 1".into());
    }
    if ttl > MAX_TTL {
        return Err(format!(
            "ttlSeconds: {} is longer than the maximum {} (a year)",
            ttl.as_secs(),
            MAX_TTL.as_secs()
        ));
    }
    if description.len() > MAX_DESCRIPTION {
        return Err(format!(
            "description: {} bytes, at most {MAX_DESCRIPTION}",
            description.len()
        ));
    }
    if description.chars().any(char::is_control) {
        return Err("description: control characters are not allowed".into());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> BootstrapToken {
        BootstrapToken::parse(s).unwrap()
    }

    #[test]
    fn a_token_is_accepted_until_it_expires() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = tok("abcdef.0123456789abcdef");
        let r = TokenRecord::new(&t, "rack 4", Duration::from_secs(60), now);
        assert!(!r.secret_sha256.contains("0123456789abcdef"));
        assert_eq!(r.check(&t, now), Ok(()));
        assert_eq!(r.check(&t, now + Duration::from_secs(59)), Ok(()));
        let err = r.check(&t, now + Duration::from_secs(60)).unwrap_err();
        assert!(matches!(err, Refusal::Expired { .. }), "{err}");
        assert!(err.to_string().contains("1970-01-12T13:47:40Z"), "{err}");
        assert!(r.expired(now + Duration::from_secs(60)));
    }

    #[test]
    fn a_wrong_secret_is_refused_even_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let r = TokenRecord::new(&tok("abcdef.0123456789abcdef"), "", DEFAULT_TTL, now);
        let err = r.check(&tok("abcdef.0123456789abcdee"), now).unwrap_err();
        assert_eq!(
            err,
            Refusal::WrongSecret {
                id: "abcdef".into()
            }
        );
    }

    #[test]
    fn listing_never_shows_the_secret() {
        let r = TokenRecord::new(
            &tok("abcdef.0123456789abcdef"),
            "d",
            DEFAULT_TTL,
            SystemTime::UNIX_EPOCH,
        );
        let json = serde_json::to_string(&r.info()).unwrap();
        assert!(!json.contains("0123456789abcdef") && !json.contains(&r.secret_sha256));
    }

    #[test]
    fn requests_are_validated() {
        assert_eq!(validate_request(None, ""), Ok(DEFAULT_TTL));
        assert_eq!(validate_request(Some(5), "x"), Ok(Duration::from_secs(5)));
        assert!(
            validate_request(Some(0), "")
                .unwrap_err()
                .contains("ttlSeconds")
        );
        assert!(validate_request(Some(MAX_TTL.as_secs() + 1), "").is_err());
        assert!(
            validate_request(None, &"x".repeat(300))
                .unwrap_err()
                .contains("description")
        );
        assert!(validate_request(None, "a\nb").is_err());
    }
}
