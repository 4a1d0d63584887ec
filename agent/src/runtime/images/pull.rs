//! Pulling from OCI/Docker registries with `oci-client`: HTTPS by default,
//! plain HTTP for registries the node config marks insecure; anonymous,
//! basic or bearer credentials. The manifest, config and every layer are
//! checked against their digests (by oci-client while streaming, and again
//! by the store before a blob gets its final name), and each layer's
//! uncompressed content against the config's diff IDs.

use std::collections::BTreeMap;

use keel_api::pod::PullPolicy;
use oci_client::{
    Client, Reference,
    client::{ClientConfig, ClientProtocol},
    errors::OciDistributionError,
    manifest::OciDescriptor,
};

use super::{
    ImageError, ImageInfo, ImageStore,
    manifest::{ACCEPTED, Descriptor, Document, Manifest, host_arch},
    reference,
    store::sha256_bytes,
};

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A ready bearer token.
    Bearer(String),
}

impl RegistryAuth {
    fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            RegistryAuth::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            RegistryAuth::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
            RegistryAuth::Bearer(t) => oci_client::secrets::RegistryAuth::Bearer(t.clone()),
        }
    }
}

/// How this node talks to registries.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry host; anonymous elsewhere.
    pub auth: BTreeMap<String, RegistryAuth>,
    /// Mirrors by registry host (`registry.example` → `10.0.0.5:5000`):
    /// images named after the registry are fetched from the mirror and
    /// keep their name (containerd's `hosts.toml` mirrors).
    pub mirrors: BTreeMap<String, String>,
    /// `--registry-credentials`: the node's docker `config.json`, read at
    /// each pull, used for a registry `auth` (the pod's pull Secrets) has
    /// no entry for.
    pub credentials_file: Option<std::path::PathBuf>,
}

impl PullOptions {
    fn client(&self) -> Client {
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.insecure_registries.clone()),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            // Indexes are resolved here, so a missing platform is our error.
            platform_resolver: None,
            ..Default::default()
        })
    }

    /// Where `r` is fetched from: its mirror if one is configured for its
    /// registry (by digest when it has one), else `r` itself.
    pub fn endpoint(&self, r: &Reference) -> Reference {
        let Some(mirror) = self
            .mirrors
            .get(r.registry())
            .or_else(|| self.mirrors.get(r.resolve_registry()))
        else {
            return r.clone();
        };
        let repo = r.repository().to_string();
        match (r.digest(), r.tag()) {
            (Some(d), _) => Reference::with_digest(mirror.clone(), repo, d.to_string()),
            (None, t) => {
                Reference::with_tag(mirror.clone(), repo, t.unwrap_or("latest").to_string())
            }
        }
    }

    /// The credentials for the registry actually contacted (`r` is the
    /// mirror when there is one, as containerd's hosts are): the pod's pull
    /// Secrets first, then the node's credentials file, else anonymous.
    fn auth_for(&self, r: &Reference) -> oci_client::secrets::RegistryAuth {
        let pick = |m: &BTreeMap<String, RegistryAuth>| {
            m.get(r.resolve_registry())
                .or_else(|| m.get(r.registry()))
                .map(RegistryAuth::to_oci)
        };
        if let Some(a) = pick(&self.auth) {
            return a;
        }
        if let Some(path) = &self.credentials_file {
            match super::credentials::from_node_file(path) {
                Ok(node) => {
                    if let Some(a) = pick(&node) {
                        return a;
                    }
                }
                Err(e) => tracing::warn!("ignoring the node's registry credentials: {e}"),
            }
        }
        oci_client::secrets::RegistryAuth::Anonymous
    }
}

/// Installs rustls' ring provider as the process default (reqwest is built
/// without a provider of its own). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn registry_err(image: &str, e: OciDistributionError) -> ImageError {
    match e {
        OciDistributionError::ImageManifestNotFoundError(d) => ImageError::NotFound {
            image: image.into(),
            detail: d,
        },
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| format!("{:?}", e.code).contains("Unknown")) =>
        {
            ImageError::NotFound {
                image: image.into(),
                detail: e.to_string(),
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => ImageError::NotFound {
            image: image.into(),
            detail: e.to_string(),
        },
        OciDistributionError::DigestError(d) => ImageError::DigestMismatch {
            image: image.into(),
            what: "blob".into(),
            expected: String::new(),
            actual: d.to_string(),
        },
        other => ImageError::Registry {
            image: image.into(),
            detail: other.to_string(),
        },
    }
}

impl ImageStore {
    /// Makes `image` present as `policy` asks and returns it: `Never` only
    /// looks locally, `IfNotPresent` pulls when missing, `Always` asks the
    /// registry for the current manifest (and fetches only blobs it lacks).
    pub async fn ensure(
        &self,
        image: &str,
        policy: PullPolicy,
        opts: &PullOptions,
    ) -> Result<ImageInfo, ImageError> {
        let name = reference::normalise(image)?;
        match policy {
            PullPolicy::Never => self.get(&name).ok_or(ImageError::NeverPull {
                image: image.into(),
            }),
            PullPolicy::IfNotPresent => match self.get(&name) {
                Some(info) => Ok(info),
                None => self.pull(image, opts).await,
            },
            PullPolicy::Always => self.pull(image, opts).await,
        }
    }

    /// Pulls `image` from its registry into the store (timed for
    /// `/metrics`).
    pub async fn pull(&self, image: &str, opts: &PullOptions) -> Result<ImageInfo, ImageError> {
        let started = std::time::Instant::now();
        let r = self.pull_untimed(image, opts).await;
        crate::health::ops::image_pulled(&r, started.elapsed());
        r
    }

    async fn pull_untimed(&self, image: &str, opts: &PullOptions) -> Result<ImageInfo, ImageError> {
        install_crypto_provider();
        let r = reference::parse(image)?;
        let name = r.whole();
        let client = opts.client();
        // Fetch from the mirror, if any; check and store by the name.
        let net = opts.endpoint(&r);
        let auth = opts.auth_for(&net);
        let (mut bytes, mut digest) = client
            .pull_manifest_raw(&net, &auth, ACCEPTED)
            .await
            .map_err(|e| registry_err(image, e))?;
        if let Some(want) = r.digest()
            && sha256_bytes(&bytes) != want
        {
            return Err(ImageError::DigestMismatch {
                image: image.into(),
                what: "manifest".into(),
                expected: want.into(),
                actual: sha256_bytes(&bytes),
            });
        }
        let mut doc = Document::parse("", &bytes).map_err(|detail| ImageError::Invalid {
            image: image.into(),
            detail,
        })?;
        if let Document::Index(index) = &doc {
            let d = index.for_host().ok_or_else(|| ImageError::NoPlatform {
                image: image.into(),
                arch: host_arch().into(),
            })?;
            let by_digest = net.clone_with_digest(d.digest.clone());
            let (b, dg) = client
                .pull_manifest_raw(&by_digest, &auth, ACCEPTED)
                .await
                .map_err(|e| registry_err(image, e))?;
            if dg != d.digest || sha256_bytes(&b) != d.digest {
                return Err(ImageError::DigestMismatch {
                    image: image.into(),
                    what: "platform manifest".into(),
                    expected: d.digest.clone(),
                    actual: sha256_bytes(&b),
                });
            }
            (bytes, digest) = (b, dg);
            doc = Document::parse("", &bytes).map_err(|detail| ImageError::Invalid {
                image: image.into(),
                detail,
            })?;
        }
        let Document::Manifest(manifest) = doc else {
            return Err(ImageError::Invalid {
                image: image.into(),
                detail: "an index inside an index".into(),
            });
        };
        if sha256_bytes(&bytes) != digest {
            return Err(ImageError::DigestMismatch {
                image: image.into(),
                what: "manifest".into(),
                expected: digest,
                actual: sha256_bytes(&bytes),
            });
        }

        let _guard = self.lock().await;
        for (what, d) in std::iter::once(("config".to_string(), &manifest.config)).chain(
            manifest
                .layers
                .iter()
                .map(|l| (format!("layer {}", l.digest), l)),
        ) {
            if self.has_blob(&d.digest) {
                continue;
            }
            self.fetch_blob(&client, &net, image, &what, d).await?;
        }
        self.put_blob(image, "manifest", &bytes, &digest)?;
        self.finish(image, &name, &digest, &manifest).await
    }

    async fn fetch_blob(
        &self,
        client: &Client,
        r: &Reference,
        image: &str,
        what: &str,
        d: &Descriptor,
    ) -> Result<(), ImageError> {
        let tmp = self.tmp_path("pull");
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| ImageError::io(&tmp, e))?;
        let desc = OciDescriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            ..Default::default()
        };
        if let Err(e) = client.pull_blob(r, &desc, file).await {
            let _ = std::fs::remove_file(&tmp);
            return Err(match e {
                OciDistributionError::DigestError(err) => ImageError::DigestMismatch {
                    image: image.into(),
                    what: what.into(),
                    expected: d.digest.clone(),
                    actual: err.to_string(),
                },
                e => registry_err(image, e),
            });
        }
        self.commit_blob(image, what, &tmp, &d.digest)?;
        Ok(())
    }

    /// Unpacks the layers (off the async threads) and records the reference.
    pub(crate) async fn finish(
        &self,
        image: &str,
        name: &str,
        digest: &str,
        manifest: &Manifest,
    ) -> Result<ImageInfo, ImageError> {
        let store = self.clone();
        let (n, m) = (name.to_string(), manifest.clone());
        tokio::task::spawn_blocking(move || store.unpack_all(&n, &m))
            .await
            .map_err(|e| ImageError::Invalid {
                image: image.into(),
                detail: format!("unpack task: {e}"),
            })??;
        let media_type = if manifest.media_type.is_empty() {
            super::manifest::OCI_MANIFEST
        } else {
            &manifest.media_type
        };
        self.set_ref(name, digest, media_type)?;
        self.info(name, digest, media_type)
    }
}

#[cfg(test)]
mod tests;
