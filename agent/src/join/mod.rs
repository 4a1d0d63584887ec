//! The node's credential: joining the cluster with a bootstrap token
//! (`keel-agent join`), keeping the credential under the data directory,
//! and renewing it.
//!
//! Join, as kubeadm's token discovery and TLS bootstrapping in one step:
//! 1. fetch the cluster CA from keel-control's unauthenticated cluster
//!    info, and refuse it unless its hash is the pinned `--ca-hash`;
//! 2. generate the node's key here (it never leaves the node) and send a
//!    CSR for it, authenticated by the bootstrap token, to keel-control,
//!    verified against that CA;
//! 3. keep the signed certificate, the key (0600) and the CA in
//!    `<data-dir>/credential/` (`node.pem`: certificate and key, 0600;
//!    `ca.crt`), with a `client.json` naming them; every
//!    later start uses it, with no token.
//!
//! Renewal: when less than a third of the certificate's lifetime is left,
//! a new key and CSR, authenticated by the current certificate.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context;
use keel_api::{
    client::{Client, ClientConfig, ClientConfigFile, ClientError, HttpMethod, Identity},
    pki::{
        BootstrapToken, NODE_CERTIFICATES_PATH, NODES_GROUP, NodeCertificate,
        NodeCertificateRequest, Validity, ca_hash, node_user, parse_ca_hash,
    },
};
use rustls_pki_types::{CertificateDer, pem::PemObject};

/// `<data-dir>/credential`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("credential")
}

/// The stored credential's client config, if the node has joined.
pub fn stored(data_dir: &Path) -> Option<PathBuf> {
    let p = dir(data_dir).join("client.json");
    p.exists().then_some(p)
}

fn pem_der(pem: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .with_context(|| format!("{what}: not a PEM certificate"))?;
    Ok(der.as_ref().to_vec())
}

/// A new key and a CSR for `system:node:<node>` (PEMs).
fn key_and_csr(node: &str) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generating the node key")?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, node_user(node));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, NODES_GROUP);
    let csr = params
        .serialize_request(&key)
        .context("building the certificate signing request")?
        .pem()
        .context("encoding the certificate signing request")?;
    Ok((key.serialize_pem(), csr))
}

async fn request_cert(
    client: &Client,
    node: &str,
    csr_pem: String,
) -> Result<NodeCertificate, ClientError> {
    let body = serde_json::to_vec(&NodeCertificateRequest {
        node_name: node.into(),
        csr_pem,
    })
    .expect("request serializes");
    let bytes = client
        .request_raw(HttpMethod::POST, NODE_CERTIFICATES_PATH, Some(body))
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
        path: NODE_CERTIFICATES_PATH.into(),
        message: e.to_string(),
    })
}

fn write(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    keel_sys::fs::write_atomic(path, data, mode)
        .with_context(|| format!("writing {}", path.display()))
}

/// `node.pem`: the certificate and its key in one file (0600), so a
/// renewal replaces both at once (one atomic rename).
fn node_pem(cert_pem: &str, key_pem: &str) -> String {
    format!("{}\n{}", cert_pem.trim_end(), key_pem)
}

/// Writes the credential and its client.json.
fn store(
    data_dir: &Path,
    server: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<PathBuf> {
    let d = dir(data_dir);
    crate::private::private_dir(&d).with_context(|| format!("creating {} (0700)", d.display()))?;
    write(&d.join("ca.crt"), ca_pem.as_bytes(), 0o600)?;
    write(
        &d.join("node.pem"),
        node_pem(cert_pem, key_pem).as_bytes(),
        0o600,
    )?;
    let file = ClientConfigFile {
        server: server.into(),
        token_file: PathBuf::new(),
        ca_file: Some("ca.crt".into()),
        cert_file: Some("node.pem".into()),
        key_file: Some("node.pem".into()),
    };
    let path = d.join("client.json");
    write(&path, &serde_json::to_vec_pretty(&file)?, 0o600)?;
    Ok(path)
}

/// Joins: returns the stored credential's client.json.
pub async fn join(
    server: &str,
    token: &str,
    ca_hash_pin: &str,
    node: &str,
    data_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let token = BootstrapToken::parse(token).context("--token")?;
    let pin = parse_ca_hash(ca_hash_pin).context("--ca-hash")?;
    let first = server
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .context("--server: no URL")?;
    anyhow::ensure!(
        first.starts_with("https://"),
        "--server {first}: joining needs https:// (the CA is pinned by hash)"
    );
    let info = keel_api::client::cluster_info_unverified(first)
        .await
        .with_context(|| format!("fetching the cluster CA from {first}"))?;
    let got = ca_hash(&pem_der(&info.ca_pem, "the cluster CA")?)?;
    anyhow::ensure!(
        got == pin,
        "the cluster CA served by {first} has hash {got}, not the pinned {pin}: refusing to join (wrong --ca-hash, or not the keel-control you meant)"
    );
    let (key_pem, csr) = key_and_csr(node)?;
    let client = Client::new(&ClientConfig {
        server: server.into(),
        token: token.to_token_string(),
        ca_pem: Some(info.ca_pem.clone().into_bytes()),
        identity: None,
    })?;
    let signed = request_cert(&client, node, csr)
        .await
        .map_err(|e| match e {
            ClientError::Api(s) => anyhow::anyhow!(
                "keel-control refused to join node {node} ({}): {}",
                s.reason,
                s.message
            ),
            other => anyhow::Error::from(other).context(format!("joining node {node}")),
        })?;
    let path = store(data_dir, server, &info.ca_pem, &signed.cert_pem, &key_pem)?;
    tracing::info!(node, server, credential = %path.display(), "joined: node credential stored");
    Ok(path)
}

/// The longest the renewal loop sleeps before looking again.
const RECHECK: Duration = Duration::from_secs(3600);
/// After a failed renewal, try again this soon.
const RETRY: Duration = Duration::from_secs(30);

/// Renews the credential in `data_dir` when [`Validity::renewal_due`],
/// presenting the new one through `identity` from then on.
pub async fn renew_periodically(
    client: Client,
    identity: Identity,
    node: String,
    data_dir: PathBuf,
) {
    loop {
        let wait = match Validity::of(&identity.cert_der()) {
            Ok(v) => v.until_renewal(SystemTime::now()).min(RECHECK),
            Err(e) => {
                tracing::warn!(error = %e, "reading the node certificate; not renewing it");
                return;
            }
        };
        tokio::time::sleep(wait).await;
        let due = Validity::of(&identity.cert_der())
            .map(|v| v.renewal_due(SystemTime::now()))
            .unwrap_or(false);
        if !due {
            continue;
        }
        match renew(&client, &identity, &node, &data_dir).await {
            Ok(()) => tracing::info!(node, "node certificate renewed"),
            Err(e) => {
                tracing::warn!(node, error = %format!("{e:#}"), "renewing the node certificate");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn renew(
    client: &Client,
    identity: &Identity,
    node: &str,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let (key_pem, csr) = key_and_csr(node)?;
    let signed = request_cert(client, node, csr).await?;
    identity.replace(signed.cert_pem.as_bytes(), key_pem.as_bytes())?;
    write(
        &dir(data_dir).join("node.pem"),
        node_pem(&signed.cert_pem, &key_pem).as_bytes(),
        0o600,
    )
}
