//! Importing images from an OCI image layout (a directory with `oci-layout`,
//! `index.json` and `blobs/`) or from a tar archive of one (`skopeo copy
//! … oci-archive:`, `podman save --format oci-archive`). Blobs go through the
//! same digest checks as pulled ones.

use std::{fs, path::Path};

use super::{
    ImageError, ImageInfo, ImageStore,
    manifest::{Descriptor, Document, Index},
    reference,
};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

impl ImageStore {
    /// Imports every image of the layout at `dir` whose manifest is listed
    /// in its index.json. `name` (a full reference) names a layout holding
    /// one image; otherwise each manifest's `io.containerd.image.name`
    /// annotation, or its `org.opencontainers.image.ref.name` when that is a
    /// full reference, names it.
    pub async fn import_layout(
        &self,
        dir: &Path,
        name: Option<&str>,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let what = dir.display().to_string();
        let invalid = |detail: String| ImageError::Invalid {
            image: what.clone(),
            detail,
        };
        let layout = fs::read_to_string(dir.join("oci-layout"))
            .map_err(|e| invalid(format!("not an OCI image layout (oci-layout: {e})")))?;
        if !layout.contains("imageLayoutVersion") {
            return Err(invalid("oci-layout has no imageLayoutVersion".into()));
        }
        let index: Index = serde_json::from_slice(
            &fs::read(dir.join("index.json")).map_err(|e| invalid(format!("index.json: {e}")))?,
        )
        .map_err(|e| invalid(format!("index.json: {e}")))?;
        if name.is_some() && index.manifests.len() != 1 {
            return Err(invalid(format!(
                "a name was given but the layout holds {} images",
                index.manifests.len()
            )));
        }
        let mut out = Vec::new();
        for d in &index.manifests {
            let image_name = match name {
                Some(n) => reference::normalise(n)?,
                None => {
                    let ann = d.annotations.clone().unwrap_or_default();
                    let n = ann
                        .get(CONTAINERD_NAME)
                        .or_else(|| ann.get(REF_NAME).filter(|r| r.contains('/')))
                        .ok_or_else(|| {
                            invalid(format!(
                                "manifest {} has no full image name; give one",
                                d.digest
                            ))
                        })?;
                    reference::normalise(n)?
                }
            };
            out.push(self.import_one(dir, &image_name, d).await?);
        }
        Ok(out)
    }

    /// Imports a tar archive of an OCI image layout.
    pub async fn import_archive(
        &self,
        archive: &Path,
        name: Option<&str>,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let tmp = self.tmp_path("archive");
        fs::create_dir(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
        let (a, t) = (archive.to_path_buf(), tmp.clone());
        let unpacked = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut ar = tar::Archive::new(fs::File::open(&a)?);
            ar.set_preserve_ownerships(false);
            ar.unpack(&t)
        })
        .await
        .expect("archive task");
        let result = match unpacked {
            Ok(()) => self.import_layout(&tmp, name).await,
            Err(e) => Err(ImageError::Invalid {
                image: archive.display().to_string(),
                detail: format!("reading archive: {e}"),
            }),
        };
        let _ = fs::remove_dir_all(&tmp);
        result
    }

    async fn import_one(
        &self,
        dir: &Path,
        name: &str,
        d: &Descriptor,
    ) -> Result<ImageInfo, ImageError> {
        let blob = |digest: &str| -> Result<std::path::PathBuf, ImageError> {
            let hex = super::digest_hex(digest).ok_or_else(|| ImageError::Invalid {
                image: name.into(),
                detail: format!("{digest:?} is not a sha256 digest"),
            })?;
            Ok(dir.join("blobs/sha256").join(hex))
        };
        let bytes = fs::read(blob(&d.digest)?).map_err(|e| ImageError::Invalid {
            image: name.into(),
            detail: format!("manifest {}: {e}", d.digest),
        })?;
        let mut digest = d.digest.clone();
        let mut bytes = bytes;
        let mut doc =
            Document::parse(&d.media_type, &bytes).map_err(|detail| ImageError::Invalid {
                image: name.into(),
                detail,
            })?;
        if let Document::Index(idx) = &doc {
            let p = idx.for_host().ok_or_else(|| ImageError::NoPlatform {
                image: name.into(),
                arch: super::manifest::host_arch().into(),
            })?;
            digest = p.digest.clone();
            bytes = fs::read(blob(&digest)?).map_err(|e| ImageError::Invalid {
                image: name.into(),
                detail: format!("manifest {digest}: {e}"),
            })?;
            doc = Document::parse(&p.media_type, &bytes).map_err(|detail| ImageError::Invalid {
                image: name.into(),
                detail,
            })?;
        }
        let Document::Manifest(manifest) = doc else {
            return Err(ImageError::Invalid {
                image: name.into(),
                detail: "an index inside an index".into(),
            });
        };
        let _guard = self.lock().await;
        for (what, desc) in std::iter::once(("config".to_string(), &manifest.config)).chain(
            manifest
                .layers
                .iter()
                .map(|l| (format!("layer {}", l.digest), l)),
        ) {
            if self.has_blob(&desc.digest) {
                continue;
            }
            let src = blob(&desc.digest)?;
            let tmp = self.tmp_path("import");
            fs::copy(&src, &tmp).map_err(|e| ImageError::Invalid {
                image: name.into(),
                detail: format!("{what}: {}: {e}", src.display()),
            })?;
            self.commit_blob(name, &what, &tmp, &desc.digest)?;
        }
        self.put_blob(name, "manifest", &bytes, &digest)?;
        self.finish(name, name, &digest, &manifest).await
    }
}
