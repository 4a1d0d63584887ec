//! The agent's HTTPS port for keel-control (the kubelet's 10250): the
//! runtime's logs and exec routes, served with a certificate for the
//! node's name and address signed by the cluster CA, to keel-control's own
//! client certificate (`CN=keel-control, O=keel:control`) and no one else.
//!
//! The serving certificate: a key made here and a CSR sent with the node's
//! credential to keel-control (`NODE_SERVING_CERTIFICATES_PATH`), renewed
//! like the node's client certificate (a third of its life left).

use std::{sync::Arc, time::SystemTime};

use anyhow::Context;
use axum::Router;
use hyper_util::rt::TokioIo;
use keel_api::{
    client::{Client, HttpMethod, Identity},
    pki::{
        CONTROL_CLIENT_GROUP, CONTROL_CLIENT_USER, NODE_SERVING_CERTIFICATES_PATH, NODES_GROUP,
        NodeCertificate, NodeServingCertificateRequest, Validity, node_user,
    },
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Whether a verified client certificate's subject is keel-control's.
pub fn is_control(user: &str, groups: &[String]) -> bool {
    user == CONTROL_CLIENT_USER && groups.iter().any(|g| g == CONTROL_CLIENT_GROUP)
}

/// A new key and keel-control's signature on it for `node`'s `addresses`
/// (PEMs: certificate, key, CA).
pub async fn request(
    client: &Client,
    node: &str,
    addresses: &[String],
) -> anyhow::Result<(String, String, String)> {
    let key = rcgen::KeyPair::generate().context("generating the serving key")?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, node_user(node));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, NODES_GROUP);
    let csr_pem = params
        .serialize_request(&key)
        .context("building the serving certificate request")?
        .pem()
        .context("encoding the serving certificate request")?;
    let body = serde_json::to_vec(&NodeServingCertificateRequest {
        node_name: node.into(),
        csr_pem,
        addresses: addresses.to_vec(),
    })?;
    let bytes = client
        .request_raw(HttpMethod::POST, NODE_SERVING_CERTIFICATES_PATH, Some(body))
        .await
        .with_context(|| format!("asking keel-control for node {node}'s serving certificate"))?;
    let signed: NodeCertificate = serde_json::from_slice(&bytes)
        .context("keel-control's answer to the serving certificate request")?;
    Ok((signed.cert_pem, key.serialize_pem(), signed.ca_pem))
}

/// Presents `serving` and requires a client certificate of `ca_pem`.
pub fn acceptor(serving: Identity, ca_pem: &str) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.context("parsing the cluster CA")?)
            .context("the cluster CA")?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client certificate verifier")?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(serving));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections for ever; a connection whose client
/// certificate is not keel-control's is closed after the handshake.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "node port: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "node port: TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let subject = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| keel_api::pki::subject(c.as_ref()));
            match subject {
                Some((user, groups)) if is_control(&user, &groups) => {}
                other => {
                    tracing::info!(%peer, client = ?other.map(|s| s.0), "node port: refused a client that is not keel-control");
                    return;
                }
            }
            let service = hyper::service::service_fn(
                move |req: axum::http::Request<hyper::body::Incoming>| {
                    let mut app = app.clone();
                    async move { tower_service::Service::call(&mut app, req).await }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new();
            if let Err(e) = conn
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await
            {
                tracing::debug!(%peer, error = %e, "node port: connection ended with an error");
            }
        });
    }
}

/// Gets the serving certificate (retrying while keel-control cannot be
/// reached: a node starts and keeps its pods without it), then serves
/// `app` on `listener` and keeps the certificate renewed.
pub async fn start(
    client: Client,
    node: String,
    addresses: Vec<String>,
    listener: TcpListener,
    app: Router,
) {
    let mut wait = std::time::Duration::from_secs(1);
    let (serving, acceptor) = loop {
        let got = async {
            let (cert, key, ca) = request(&client, &node, &addresses).await?;
            let serving = Identity::from_pem(cert.as_bytes(), key.as_bytes())?;
            let acceptor = acceptor(serving.clone(), &ca)?;
            anyhow::Ok((serving, acceptor))
        }
        .await;
        match got {
            Ok(x) => break x,
            Err(e) => {
                tracing::warn!(node, error = %format!("{e:#}"), retry_s = wait.as_secs(), "node port: no serving certificate yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
        }
    };
    tracing::info!(node, addr = ?listener.local_addr().ok(), "node port for keel-control (logs, exec)");
    tokio::spawn(renew_periodically(client, serving, node, addresses));
    serve(listener, acceptor, app).await
}

/// Renews the serving certificate in `serving` when a third of its life
/// is left, as the node's client certificate is.
pub async fn renew_periodically(
    client: Client,
    serving: Identity,
    node: String,
    addresses: Vec<String>,
) {
    loop {
        let wait = match Validity::of(&serving.cert_der()) {
            Ok(v) => v
                .until_renewal(SystemTime::now())
                .min(std::time::Duration::from_secs(3600)),
            Err(e) => {
                tracing::warn!(error = %e, "reading the serving certificate; not renewing it");
                return;
            }
        };
        tokio::time::sleep(wait).await;
        let due = Validity::of(&serving.cert_der())
            .map(|v| v.renewal_due(SystemTime::now()))
            .unwrap_or(false);
        if !due {
            continue;
        }
        let renewed = async {
            let (cert, key, _) = request(&client, &node, &addresses).await?;
            serving.replace(cert.as_bytes(), key.as_bytes())?;
            anyhow::Ok(())
        }
        .await;
        match renewed {
            Ok(()) => tracing::info!(node, "node serving certificate renewed"),
            Err(e) => {
                tracing::warn!(node, error = %format!("{e:#}"), "renewing the serving certificate");
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keel_control_s_subject_is_accepted() {
        assert!(is_control("keel-control", &["keel:control".into()]));
        assert!(!is_control("keel-control", &[]));
        assert!(!is_control("system:node:n1", &["system:nodes".into()]));
        assert!(!is_control("admin", &["keel:control".into()]));
    }
}
