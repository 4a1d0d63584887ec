//! The content-addressed store: blobs by digest, unpacked layers by diff ID,
//! and the table of references. Writes go to a temporary name and are
//! renamed into place, so a crash never leaves a half-written blob or layer
//! under its final name.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::Arc,
};

use keel_sys::fs::{persist, write_atomic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    ImageError,
    config::ImageConfig,
    digest_hex,
    manifest::{Document, Manifest, layer_compression},
    unpack,
};

/// What the runtime needs of a present image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The normalised reference (`registry/repo:tag`).
    pub reference: String,
    /// `sha256:` of the manifest: the image ID reported as `imageID`.
    pub manifest_digest: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
}

/// One entry of refs.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefEntry {
    pub manifest: String,
    /// Media type the manifest was stored with.
    #[serde(default)]
    pub media_type: String,
}

/// The on-disk image store. Cheap to clone; writers take an internal lock,
/// so concurrent pulls of the same image do the work once.
#[derive(Clone)]
pub struct ImageStore {
    root: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl ImageStore {
    /// Opens (creating) a store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ImageError> {
        let root = root.into();
        crate::private::private_dir(&root).map_err(|e| ImageError::io(&root, e))?;
        for d in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| ImageError::io(&p, e))?;
        }
        // Leftovers of a crash mid-write.
        let tmp = root.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = fs::remove_dir_all(e.path()).or_else(|_| fs::remove_file(e.path()));
            }
        }
        Ok(Self {
            root,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).map(|h| self.root.join("blobs/sha256").join(h))
    }

    pub fn layer_path(&self, diff_id: &str) -> Option<PathBuf> {
        digest_hex(diff_id).map(|h| self.root.join("layers").join(h))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_some_and(|p| p.is_file())
    }

    /// A fresh path under tmp/ for a write in progress.
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{what}-{}", rand::random::<u64>()))
    }

    /// Where blob `digest` goes, refusing a digest that is not sha256.
    fn blob_dest(&self, image: &str, what: &str, digest: &str) -> Result<PathBuf, ImageError> {
        self.blob_path(digest).ok_or_else(|| ImageError::Invalid {
            image: image.into(),
            detail: format!("{what}: {digest:?} is not a sha256 digest"),
        })
    }

    /// Moves a finished temporary file into the blob store after checking
    /// that its content hashes to `digest`.
    pub(crate) fn commit_blob(
        &self,
        image: &str,
        what: &str,
        tmp: &Path,
        digest: &str,
    ) -> Result<PathBuf, ImageError> {
        let dest = self.blob_dest(image, what, digest)?;
        let actual = sha256_file(tmp).map_err(|e| ImageError::io(tmp, e))?;
        if actual != digest {
            let _ = fs::remove_file(tmp);
            return Err(mismatch(image, what, digest, actual));
        }
        persist(tmp, &dest)?;
        Ok(dest)
    }

    /// Writes bytes as a blob after checking their digest.
    pub(crate) fn put_blob(
        &self,
        image: &str,
        what: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<PathBuf, ImageError> {
        let dest = self.blob_dest(image, what, digest)?;
        let actual = sha256_bytes(bytes);
        if actual != digest {
            return Err(mismatch(image, what, digest, actual));
        }
        write_atomic(&dest, bytes, 0o644)?;
        Ok(dest)
    }

    pub fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        fs::read(self.blob_path(digest)?).ok()
    }

    pub fn refs(&self) -> BTreeMap<String, RefEntry> {
        fs::read(self.root.join("refs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub(crate) fn write_refs(&self, refs: &BTreeMap<String, RefEntry>) -> Result<(), ImageError> {
        let body = serde_json::to_vec_pretty(refs).expect("refs serialise");
        Ok(write_atomic(&self.root.join("refs.json"), &body, 0o644)?)
    }

    /// Records `reference` → manifest.
    pub(crate) fn set_ref(
        &self,
        reference: &str,
        manifest: &str,
        media_type: &str,
    ) -> Result<(), ImageError> {
        let mut refs = self.refs();
        refs.insert(
            reference.to_string(),
            RefEntry {
                manifest: manifest.to_string(),
                media_type: media_type.to_string(),
            },
        );
        self.write_refs(&refs)
    }

    /// The image stored under a normalised reference, if complete.
    pub fn get(&self, reference: &str) -> Option<ImageInfo> {
        let entry = self.refs().get(reference)?.clone();
        self.info(reference, &entry.manifest, &entry.media_type)
            .ok()
    }

    /// Reads a stored image manifest and config and checks that every layer
    /// is unpacked.
    pub fn info(
        &self,
        reference: &str,
        manifest_digest: &str,
        media_type: &str,
    ) -> Result<ImageInfo, ImageError> {
        let invalid = |detail: String| ImageError::Invalid {
            image: reference.into(),
            detail,
        };
        let bytes = self
            .read_blob(manifest_digest)
            .ok_or_else(|| invalid(format!("manifest {manifest_digest} is not in the store")))?;
        let manifest = match Document::parse(media_type, &bytes).map_err(invalid)? {
            Document::Manifest(m) => m,
            Document::Index(_) => return Err(invalid("stored manifest is an index".into())),
        };
        let config = self.config(reference, &manifest)?;
        let mut layers = Vec::new();
        for diff in &config.rootfs.diff_ids {
            let p = self
                .layer_path(diff)
                .filter(|p| p.is_dir())
                .ok_or_else(|| invalid(format!("layer {diff} is not unpacked")))?;
            layers.push(p);
        }
        Ok(ImageInfo {
            reference: reference.into(),
            manifest_digest: manifest_digest.into(),
            config,
            layers,
        })
    }

    pub(crate) fn config(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<ImageConfig, ImageError> {
        let bytes = self
            .read_blob(&manifest.config.digest)
            .ok_or_else(|| ImageError::Invalid {
                image: reference.into(),
                detail: format!("config {} is not in the store", manifest.config.digest),
            })?;
        let config: ImageConfig =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Invalid {
                image: reference.into(),
                detail: format!("image config {}: {e}", manifest.config.digest),
            })?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Invalid {
                image: reference.into(),
                detail: format!(
                    "manifest has {} layers but the config lists {} diff IDs",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(config)
    }

    /// Unpacks every layer of a manifest whose blobs are all in the store,
    /// checking each layer's diff ID against the config. Blocking: call it
    /// from `spawn_blocking`.
    pub fn unpack_all(&self, reference: &str, manifest: &Manifest) -> Result<(), ImageError> {
        let config = self.config(reference, manifest)?;
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let dest = self
                .layer_path(diff_id)
                .ok_or_else(|| ImageError::Invalid {
                    image: reference.into(),
                    detail: format!("diff ID {diff_id:?} is not a sha256 digest"),
                })?;
            if dest.is_dir() {
                continue;
            }
            let compression = layer_compression(&layer.media_type).ok_or_else(|| {
                ImageError::UnsupportedMediaType {
                    image: reference.into(),
                    what: format!("layer {}", layer.digest),
                    media_type: layer.media_type.clone(),
                }
            })?;
            let blob = self
                .blob_path(&layer.digest)
                .filter(|p| p.is_file())
                .ok_or_else(|| ImageError::Invalid {
                    image: reference.into(),
                    detail: format!("layer {} is not in the store", layer.digest),
                })?;
            let tmp = self.tmp_path("layer");
            fs::create_dir(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
            let actual = match unpack::unpack_layer(&blob, compression, &tmp) {
                Ok(d) => d,
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(ImageError::Invalid {
                        image: reference.into(),
                        detail: format!("unpacking layer {}: {e}", layer.digest),
                    });
                }
            };
            if &actual != diff_id {
                let _ = fs::remove_dir_all(&tmp);
                return Err(ImageError::DigestMismatch {
                    image: reference.into(),
                    what: format!("uncompressed layer {}", layer.digest),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            fs::rename(&tmp, &dest).map_err(|e| ImageError::io(&dest, e))?;
        }
        Ok(())
    }
}

fn mismatch(image: &str, what: &str, expected: &str, actual: String) -> ImageError {
    ImageError::DigestMismatch {
        image: image.into(),
        what: what.into(),
        expected: expected.into(),
        actual,
    }
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
