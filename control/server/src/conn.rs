//! Serving connections so that abuse cannot stop the service: a cap on
//! connections with a per-address share (one host cannot take every slot),
//! a deadline for the TLS handshake and for each request's headers
//! (hyper's timer), back-off on accept errors (EMFILE must not spin the
//! loop), warnings rate-limited (a flood must not flood the log), and the
//! open-file soft limit raised to the hard one at start.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;

use crate::pki::peer::PeerCert;

/// `--max-connections`, `--max-connections-per-ip`, `--client-read-timeout`.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connections served at once; past it new ones are closed at accept.
    pub max: usize,
    /// Connections one client address may hold.
    pub per_ip: usize,
    /// Time for the TLS handshake, and then for each request's headers.
    pub read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max: 4096,
            per_ip: 512,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts open connections, in all and by address.
#[derive(Debug)]
pub struct Gate {
    limits: ConnLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    PerIp,
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    pub fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let mut open = self.open.lock().expect("gate lock");
        if open.0 >= self.limits.max {
            return Err(Refused::Full);
        }
        let mine = open.1.entry(ip).or_default();
        if *mine >= self.limits.per_ip {
            return Err(Refused::PerIp);
        }
        *mine += 1;
        open.0 += 1;
        Ok(Permit {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().expect("gate lock").0
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().expect("gate lock");
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// At most one line per `every`; the ones held back are counted into the
/// next.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl RateLimited {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held: 0,
        }
    }

    /// Whether to log now, and how many were held back before this one.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// The next wait after an accept error: 5 ms doubling to 1 s.
pub fn next_backoff(previous: Duration) -> Duration {
    (previous * 2).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// Raises the open-file soft limit to the hard limit (each connection is
/// a descriptor; the usual 1024 would refuse clients long before the
/// connection cap). Returns the limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Accepts connections (TLS when `tls` is given) until `shutdown`
/// resolves, each served by hyper within `limits`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let read_timeout = limits.read_timeout;
    let gate = Gate::new(limits);
    let mut accept_log = RateLimited::new(Duration::from_secs(10));
    let mut refused_log = RateLimited::new(Duration::from_secs(10));
    let mut backoff = Duration::ZERO;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    // Out of descriptors (EMFILE) or memory: the client stays
                    // in the backlog; trying again at once would spin.
                    backoff = next_backoff(backoff);
                    if let Some(held) = accept_log.allow(Instant::now()) {
                        tracing::warn!(error = %e, retry_in = ?backoff, suppressed = held, "accept failed; backing off");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => return,
                    }
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let permit = match gate.admit(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                if let Some(held) = refused_log.allow(Instant::now()) {
                    tracing::warn!(%peer, reason = ?why, open = gate.open(), suppressed = held, "connection refused: too many connections");
                }
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(read_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(t)) => t,
                        Ok(Err(e)) => {
                            tracing::trace!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::trace!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| PeerCert::parse(c.as_ref()));
                    serve_one(tls, peer, identity, app, read_timeout).await;
                }
                None => serve_one(tcp, peer, None, app, read_timeout).await,
            }
        });
    }
}

async fn serve_one<I>(
    io: I,
    peer: SocketAddr,
    identity: Option<PeerCert>,
    app: Router,
    read_timeout: Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            if let Some(id) = &identity {
                req.extensions_mut().insert(id.clone());
            }
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, req).await }
        });
    let mut conn = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper enforces no header timeout at all.
    conn.timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    // Upgrades: exec's WebSocket.
    if let Err(e) = conn
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await
    {
        tracing::trace!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests;
