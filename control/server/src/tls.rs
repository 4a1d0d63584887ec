//! Serving over TLS with rustls: the certificate comes from a resolver the
//! serving-certificate renewal can swap (`pki::serving`), client
//! certificates are optional and, when given, verified against the cluster
//! CA; the identity a verified one names rides on every request of its
//! connection as a `PeerCert` extension.

use std::{path::Path, sync::Arc};

use anyhow::Context;
use axum::Router;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// Accepts TLS connections until `shutdown` resolves (with the default
/// connection limits; see `conn`).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    crate::conn::serve(
        listener,
        Some(acceptor),
        app,
        crate::conn::ConnLimits::default(),
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    //! The acceptor over a real loopback socket: a re-issued serving
    //! certificate is presented from the next handshake on, and a client
    //! certificate of the cluster CA reaches handlers as a `PeerCert`.

    use std::time::{Duration, SystemTime};

    use axum::{Extension, routing};
    use rustls_pki_types::{PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::pki::peer::PeerCert;
    use crate::pki::{
        ClusterCa,
        serving::{ServingCert, ServingFiles, ensure},
    };

    fn client_config(
        ca: &ClusterCa,
        identity: Option<(String, String)>,
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der.clone()))
            .unwrap();
        let b = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        Arc::new(match identity {
            Some((cert, key)) => b
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        })
    }

    /// One GET / over a new connection: the server's certificate and the body.
    async fn fetch(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<(Vec<u8>, String)> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await?;
        let served = tls.get_ref().1.peer_certificates().unwrap()[0]
            .as_ref()
            .to_vec();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = String::new();
        tls.read_to_string(&mut out).await?;
        Ok((served, out))
    }

    fn node_cert(ca: &ClusterCa, node: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let cert = ca
            .sign_node(&csr, node, Duration::from_secs(3600), SystemTime::now())
            .unwrap();
        (cert, key.serialize_pem())
    }

    #[tokio::test]
    async fn a_reissued_certificate_is_served_and_client_certificates_reach_handlers() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let ca = ClusterCa::generate(now).unwrap();
        let files = ServingFiles::in_dir(dir.path());
        let sans = vec!["127.0.0.1".to_string()];
        ensure(&ca, &files, &sans, now).unwrap();
        let serving = Arc::new(ServingCert::load(&files).unwrap());
        let acceptor = acceptor(serving.clone(), Some(ca.cert_pem.as_bytes())).unwrap();
        let app = Router::new().route(
            "/",
            routing::get(|peer: Option<Extension<PeerCert>>| async move {
                peer.map_or("anonymous".to_string(), |Extension(p)| p.user)
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, acceptor, app, async {
            let _ = stopped.await;
        }));

        let (first, body) = fetch(addr, client_config(&ca, None)).await.unwrap();
        assert!(body.ends_with("anonymous"), "{body}");
        assert_eq!(first, serving.cert_der());
        let (_, body) = fetch(addr, client_config(&ca, Some(node_cert(&ca, "n1"))))
            .await
            .unwrap();
        assert!(body.ends_with("system:node:n1"), "{body}");
        // A client certificate of another CA is refused at the handshake.
        let other = ClusterCa::generate(now).unwrap();
        assert!(
            fetch(addr, client_config(&ca, Some(node_cert(&other, "n1"))))
                .await
                .is_err()
        );

        // Re-issued (new SANs) and reloaded: the next connection sees it.
        let more = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        assert!(ensure(&ca, &files, &more, now).unwrap().is_some());
        serving.reload(&files).unwrap();
        let (second, _) = fetch(addr, client_config(&ca, None)).await.unwrap();
        assert_ne!(second, first);
        assert_eq!(second, serving.cert_der());
        let _ = stop.send(());
        server.await.unwrap();
    }
}
