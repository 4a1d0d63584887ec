//! Secrets at rest: what the store persists for a Secret (the object and
//! its watch events) is sealed with XChaCha20-Poly1305 under a key held in
//! a key file, as kube-apiserver's EncryptionConfiguration does with its
//! `aesgcm`/`secretbox` providers. Memory (state, history, watches) stays
//! plaintext; only the bytes handed to redb or etcd are sealed.
//!
//! - A sealed value is `k8s:enc:xchacha20poly1305:v1:<key name>:` followed by
//!   a random 24-byte nonce and the ciphertext with its tag. The random
//!   nonce is safe at XChaCha's nonce size (no counter to keep).
//! - The additional authenticated data is the object's identity
//!   (`Secret/<namespace>/<name>`; `event/<revision>` for a watch event), so a
//!   sealed value copied under another name does not open (kube-apiserver
//!   authenticates the etcd key the same way).
//! - A value without the `k8s:enc:` prefix is plaintext written before
//!   encryption was turned on: it is read as it is and sealed on its next
//!   write.
//! - The key file holds one key per line, `NAME BASE64(32 bytes)`; the first
//!   seals, every one opens (so a key can be rotated in by putting the new
//!   one first). keel-control generates `<data-dir>/encryption.key` (0600) on
//!   first start; `--encryption-key-file` names a file to share between
//!   etcd replicas instead, which must then exist.

use std::{
    borrow::Cow,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use base64::Engine;
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use rand::RngCore;
use sha2::Digest;

/// Every enveloped value starts with this (kube-apiserver's marker).
const ENVELOPE: &[u8] = b"k8s:enc:";
/// keel's provider and version after [`ENVELOPE`].
const PROVIDER: &str = "xchacha20poly1305:v1:";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("encryption key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error(
        "{what}: sealed with key {name:?}, which {path} does not hold (it holds {have}); restore the key file that sealed it"
    )]
    UnknownKey {
        what: String,
        name: String,
        path: String,
        have: String,
    },
    #[error(
        "{what}: does not open with key {name:?} from {path} (a different key under the same name, or the stored value was altered)"
    )]
    Open {
        what: String,
        name: String,
        path: String,
    },
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
    #[error("{what}: stored encrypted, but keel-control runs without an encryption key")]
    NoKey { what: String },
}

struct Key {
    name: String,
    cipher: XChaCha20Poly1305,
}

/// The keys from one key file: the first seals, all open.
pub struct KeyRing {
    path: PathBuf,
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeyRing {
    // Names only: the key bytes never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .field("keys", &self.names())
            .finish()
    }
}

/// Whether a stored value is enveloped (sealed by some provider).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(ENVELOPE)
}

/// Opens a stored value when a key ring is configured; plaintext passes
/// through; a sealed value without a ring is an error naming `what`.
pub fn reveal<'a>(
    ring: Option<&KeyRing>,
    what: &str,
    aad: &str,
    stored: &'a [u8],
) -> Result<Cow<'a, [u8]>, EnvelopeError> {
    match ring {
        Some(r) => r.open(what, aad, stored),
        None if is_sealed(stored) => Err(EnvelopeError::NoKey { what: what.into() }),
        None => Ok(Cow::Borrowed(stored)),
    }
}

impl KeyRing {
    /// Reads `path`; when it does not exist and `create` is set, writes a
    /// fresh random key to it first (0600, never replacing a file).
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, EnvelopeError> {
        let kf = |message: String| EnvelopeError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; KEY_LEN];
                rand::rng().fill_bytes(&mut key);
                let text = format!(
                    "# keel-control: keys that seal Secrets at rest (XChaCha20-Poly1305).\n\
                     # NAME BASE64-KEY per line; the first seals, all open. Keep a copy:\n\
                     # without it the stored Secrets cannot be read.\n{} {}\n",
                    fingerprint(&key),
                    base64::engine::general_purpose::STANDARD.encode(key)
                );
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| kf(format!("creating: {e}")))?;
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| kf(format!("writing: {e}")))?;
                Self::parse(path, &text)
            }
            Err(e) => Err(kf(format!("reading: {e}"))),
        }
    }

    /// Parses a key file's text (`NAME BASE64` lines, `#` comments).
    pub fn parse(path: &Path, text: &str) -> Result<Self, EnvelopeError> {
        let kf = |line: usize, message: String| EnvelopeError::KeyFile {
            path: path.display().to_string(),
            message: format!("line {line}: {message}"),
        };
        let mut keys: Vec<Key> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(b64), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(kf(i + 1, "expected `NAME BASE64-KEY`".into()));
            };
            if name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(kf(
                    i + 1,
                    format!(
                        "key name {name:?}: at most 64 letters, digits, '-', '_' or '.' (no ':')"
                    ),
                ));
            }
            if keys.iter().any(|k| k.name == name) {
                return Err(kf(i + 1, format!("key name {name:?} appears twice")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| kf(i + 1, format!("key {name:?}: not base64: {e}")))?;
            if bytes.len() != KEY_LEN {
                return Err(kf(
                    i + 1,
                    format!(
                        "key {name:?}: {} bytes, XChaCha20-Poly1305 needs {KEY_LEN}",
                        bytes.len()
                    ),
                ));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|e| kf(i + 1, format!("key {name:?}: {e}")))?;
            keys.push(Key {
                name: name.to_string(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(EnvelopeError::KeyFile {
                path: path.display().to_string(),
                message: "holds no key".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            keys,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.name.as_str()).collect()
    }

    /// Seals `plaintext` with the first key, bound to `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        let mut out = Vec::with_capacity(
            ENVELOPE.len() + PROVIDER.len() + key.name.len() + 1 + NONCE_LEN + ct.len(),
        );
        out.extend_from_slice(ENVELOPE);
        out.extend_from_slice(PROVIDER.as_bytes());
        out.extend_from_slice(key.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a stored value (plaintext without the envelope passes
    /// through); `what` names the object in errors.
    pub fn open<'a>(
        &self,
        what: &str,
        aad: &str,
        stored: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, EnvelopeError> {
        let Some(rest) = stored.strip_prefix(ENVELOPE) else {
            return Ok(Cow::Borrowed(stored));
        };
        let malformed = |message: String| EnvelopeError::Malformed {
            what: what.into(),
            message,
        };
        let Some(rest) = rest.strip_prefix(PROVIDER.as_bytes()) else {
            let provider: String = String::from_utf8_lossy(&rest[..rest.len().min(40)])
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            return Err(malformed(format!(
                "sealed by provider {provider:?}, keel opens only xchacha20poly1305 v1"
            )));
        };
        let Some(colon) = rest.iter().take(65).position(|b| *b == b':') else {
            return Err(malformed("sealed value without a key name".into()));
        };
        let name = String::from_utf8_lossy(&rest[..colon]).into_owned();
        let body = &rest[colon + 1..];
        let Some(key) = self.keys.iter().find(|k| k.name == name) else {
            return Err(EnvelopeError::UnknownKey {
                what: what.into(),
                name,
                path: self.path.display().to_string(),
                have: self.names().join(", "),
            });
        };
        if body.len() < NONCE_LEN + 16 {
            return Err(malformed(format!(
                "sealed value of {} bytes is too short",
                body.len()
            )));
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Cow::Owned)
            .map_err(|_| EnvelopeError::Open {
                what: what.into(),
                name,
                path: self.path.display().to_string(),
            })
    }
}

/// A generated key's name: `k` and the first 8 hex digits of its SHA-256
/// (distinct keys get distinct names, so a wrong key file is named as such).
fn fingerprint(key: &[u8]) -> String {
    let d = sha2::Sha256::digest(key);
    format!("k{}", hex::encode(&d[..4]))
}

#[cfg(test)]
mod tests;
