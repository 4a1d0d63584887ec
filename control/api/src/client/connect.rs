//! How the client opens TCP connections: hyper's `HttpConnector` from this
//! process, or a [`Connect`] function the caller hands in for a server this
//! process cannot reach by itself (the lab's opens its sockets inside the
//! lab's control namespace). The client knows nothing of what the function
//! does; it only resolves the address and wraps the stream.

use std::{
    fmt,
    future::Future,
    io,
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper::Uri;
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long opening a connection may take, with either connector.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a blocking TCP connection to an address the client resolved; run
/// on a blocking thread. It should give up after [`CONNECT_TIMEOUT`].
pub type Connect = Arc<dyn Fn(SocketAddr) -> io::Result<TcpStream> + Send + Sync>;

#[derive(Clone)]
pub(super) struct Connector {
    http: HttpConnector,
    custom: Option<Connect>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("custom", &self.custom.is_some())
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(super) fn new(custom: Option<Connect>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Self { http, custom }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let Some(connect) = self.custom.clone() else {
            let fut = tower_service::Service::<Uri>::call(&mut self.http, uri);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        };
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or("URI has no host")?
                .trim_matches(['[', ']'])
                .to_string();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let stream = tokio::task::spawn_blocking(move || -> io::Result<TcpStream> {
                let addr = (host.as_str(), port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
                    })?;
                let s = connect(addr)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .await??;
            Ok(TokioIo::new(tokio::net::TcpStream::from_std(stream)?))
        })
    }
}
