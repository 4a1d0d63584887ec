//! Images: a content-addressed store of blobs (manifests, configs,
//! compressed layers) and unpacked layers, filled by pulling from OCI/Docker
//! registries or by importing OCI image layouts and archives. Every blob is
//! checked against its digest before it enters the store, and every layer's
//! uncompressed content against the config's `diff_ids`.
//!
//! On disk, under the store's root:
//!
//! ```text
//! blobs/sha256/<hex>     manifests, configs, compressed layers
//! layers/<hex>/          one unpacked layer per diff ID (overlay lowerdir)
//! refs.json              image reference -> manifest digest
//! ```

pub mod config;
pub mod credentials;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;

pub use config::{ImageConfig, RunConfig};
pub use pull::{PullOptions, RegistryAuth};
pub use store::{ImageInfo, ImageStore};

/// Errors of the image store, each naming the image and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {image:?}: not a valid image reference: {reason}")]
    InvalidReference { image: String, reason: String },
    #[error("image {image}: not present on the node and imagePullPolicy is Never")]
    NeverPull { image: String },
    #[error("image {image}: not found in the registry ({detail})")]
    NotFound { image: String, detail: String },
    #[error("image {image}: pulling: {detail}")]
    Registry { image: String, detail: String },
    #[error("image {image}: digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        image: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("image {image}: {detail}")]
    Invalid { image: String, detail: String },
    #[error("image {image}: no manifest for linux/{arch} in the image index")]
    NoPlatform { image: String, arch: String },
    #[error("image {image}: unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        image: String,
        what: String,
        media_type: String,
    },
    #[error("image store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image store {0}")]
    Write(#[from] keel_sys::fs::WriteError),
}

impl ImageError {
    /// The Kubernetes waiting reason this error shows as on a container.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::InvalidReference { .. } => "InvalidImageName",
            ImageError::NeverPull { .. } => "ErrImageNeverPull",
            _ => "ErrImagePull",
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// `sha256:<hex>` → `<hex>`, refusing anything else (a digest names a file
/// in the store, so it must not smuggle in a path).
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

#[cfg(test)]
mod tests;
