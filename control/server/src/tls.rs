//! Serving over TLS with rustls: the certificate comes from a resolver the
//! serving-certificate renewal can swap (`pki::serving`), client
//! certificates are optional and, when given, verified against the cluster
//! CA; the identity a verified one names rides on every request of its
//! connection as a `PeerCert` extension.

use std::{path::Path, sync::Arc};

use anyhow::Context;
use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::pki::peer::PeerCert;

/// An acceptor presenting `cert` and accepting (optionally) client
/// certificates signed by `client_ca_pem`.
pub fn acceptor(
    cert: Arc<dyn ResolvesServerCert>,
    client_ca_pem: Option<&[u8]>,
) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match client_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(c.context("parsing the client CA")?)
                    .context("the client CA")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(cert);
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads a certificate and key given by flags (`--tls-cert/--tls-key`).
pub fn fixed_cert(cert: &Path, key: &Path) -> anyhow::Result<Arc<dyn ResolvesServerCert>> {
    let files = crate::pki::serving::ServingFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    Ok(Arc::new(crate::pki::serving::ServingCert::load(&files)?))
}

/// Accepts TLS connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| PeerCert::parse(c.as_ref()));
            let service = hyper::service::service_fn(
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    if let Some(id) = &identity {
                        req.extensions_mut().insert(id.clone());
                    }
                    let mut app = app.clone();
                    async move { tower_service::Service::call(&mut app, req).await }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new();
            if let Err(e) = conn.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
