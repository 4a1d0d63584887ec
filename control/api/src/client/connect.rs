//! How the client opens TCP connections: normally with hyper's
//! `HttpConnector`; when the config names a network namespace (a lab's
//! control namespace), each socket is created by a short-lived thread that
//! entered that namespace, so a process in another namespace — keelctl on
//! the host, a test — can talk to a server that is only reachable there,
//! without connecting the two namespaces.

use std::{
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    os::fd::AsFd,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper::Uri;
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};
use nix::sched::{CloneFlags, setns};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    netns: Option<Arc<PathBuf>>,
}

impl Connector {
    pub fn new(netns: Option<PathBuf>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            http,
            netns: netns.map(Arc::new),
        }
    }
}

fn connect_in(netns: &std::path::Path, addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .join()
        .map_err(|_| io::Error::other("connecting thread panicked"))?
    })
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let Some(netns) = self.netns.clone() else {
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
            let stream = tokio::task::spawn_blocking(move || -> io::Result<std::net::TcpStream> {
                let addr = (host.as_str(), port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
                    })?;
                let s = connect_in(&netns, addr)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .await??;
            Ok(TokioIo::new(tokio::net::TcpStream::from_std(stream)?))
        })
    }
}
