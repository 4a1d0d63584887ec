//! The DNS server: UDP and TCP on the cluster DNS address. Every question
//! is answered from the view current when it arrives ([`Zone::answer`]),
//! so an answer follows a change as soon as the informers publish it; what
//! is not a cluster name goes to the [`Forwarder`]. An ExternalName's CNAME
//! is followed once through the upstreams, as CoreDNS does, so stub
//! resolvers that do not chase CNAMEs (musl's, busybox's) get addresses.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{RData, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, UdpSocket},
    sync::Semaphore,
};

use super::{
    forward::Forwarder,
    wire::{Cacheable, WireCache},
    zone::{Answer, Zone},
};
use crate::sync::view::Views;

/// The largest UDP answer without EDNS (RFC 1035 §4.2.1).
const PLAIN_UDP: usize = 512;
/// What keel offers and accepts with EDNS (the DNS Flag Day 2020 size).
const EDNS_UDP: u16 = 1232;
/// TCP connections served at once, and how long an idle one is kept.
const TCP_CONNECTIONS: usize = 256;
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Queries answered, by kind (for the agent's status).
#[derive(Debug, Default)]
pub struct Stats {
    pub cluster: AtomicU64,
    pub nxdomain: AtomicU64,
    pub forwarded: AtomicU64,
    pub failed: AtomicU64,
    /// Answered from the wire cache (not counted above again).
    pub kept: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> serde_json::Value {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "cluster": l(&self.cluster),
            "nxdomain": l(&self.nxdomain),
            "forwarded": l(&self.forwarded),
            "failed": l(&self.failed),
            "kept": l(&self.kept),
        })
    }
}

/// What answers a query: the zone over the current view, the forwarder.
pub struct Resolver {
    pub zone: Zone,
    pub views: Views,
    pub forwarder: Forwarder,
    pub stats: Stats,
    /// Whole answers by request, served without parsing (UDP).
    pub wire: WireCache,
}

impl Resolver {
    pub fn new(zone: Zone, views: &Views, forwarder: Forwarder) -> Self {
        Self {
            zone,
            views: views.clone(),
            forwarder,
            stats: Stats::default(),
            wire: WireCache::new(super::WIRE_ENTRIES),
        }
    }

    /// Writes the kept answer to `req` into `out`, if there is one.
    pub fn cached(&self, req: &[u8], out: &mut Vec<u8>) -> bool {
        let hit = self
            .wire
            .answer(req, std::time::Instant::now(), self.views.generation(), out);
        if hit {
            self.stats.kept.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// The response to the wire-format request `req`; None for garbage too
    /// short to carry an id. `udp`: the answer must fit a datagram.
    pub async fn handle(&self, req: &[u8], udp: bool) -> Option<Vec<u8>> {
        Some(self.respond(req, udp).await?.0)
    }

    /// A UDP question: from the wire cache when it holds the answer
    /// (written to `out`), else answered, and the answer kept as it allows.
    pub async fn handle_udp(&self, req: &[u8], out: &mut Vec<u8>) -> bool {
        if self.cached(req, out) {
            return true;
        }
        let generation = self.views.generation();
        let Some((answer, how)) = self.respond(req, true).await else {
            return false;
        };
        self.wire
            .store(req, &answer, how, generation, std::time::Instant::now());
        *out = answer;
        true
    }

    /// [`Self::handle`], and how long its answer may be kept.
    async fn respond(&self, req: &[u8], udp: bool) -> Option<(Vec<u8>, Cacheable)> {
        let request = match Message::from_vec(req) {
            Ok(m) => m,
            Err(_) => {
                let id = u16::from_be_bytes([*req.first()?, *req.get(1)?]);
                let m = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
                return Some((m.to_vec().ok()?, Cacheable::No));
            }
        };
        let mut resp = Message::new();
        resp.set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_recursion_desired(request.recursion_desired())
            .set_recursion_available(true)
            .add_queries(request.queries().iter().cloned());
        let limit = match request.extensions() {
            Some(e) => {
                let mut edns = Edns::new();
                edns.set_max_payload(EDNS_UDP);
                resp.set_edns(edns);
                usize::from(e.max_payload().clamp(PLAIN_UDP as u16, EDNS_UDP))
            }
            None => PLAIN_UDP,
        };
        let how =
            if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
                resp.set_response_code(ResponseCode::NotImp);
                Cacheable::No
            } else if request.queries().len() != 1 {
                resp.set_response_code(ResponseCode::FormErr);
                Cacheable::No
            } else {
                self.answer(&request.queries()[0], &mut resp).await
            };
        let bytes = resp.to_vec().ok()?;
        if udp && bytes.len() > limit {
            // The client asks again over TCP.
            let mut t = resp.truncate();
            t.set_truncated(true);
            return Some((t.to_vec().ok()?, Cacheable::No));
        }
        Some((bytes, how))
    }

    async fn answer(&self, q: &Query, resp: &mut Message) -> Cacheable {
        let view = self.views.current();
        match self.zone.answer(&view, q.name(), q.query_type()) {
            Answer::Records {
                answers,
                additionals,
            } => {
                self.stats.cluster.fetch_add(1, Ordering::Relaxed);
                resp.set_authoritative(true);
                let chase = match answers.as_slice() {
                    [r] if q.query_type() != RecordType::CNAME => match r.data() {
                        RData::CNAME(c) => Some(c.0.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                if answers.is_empty() {
                    resp.add_name_server(self.zone.soa());
                }
                resp.add_answers(answers);
                resp.add_additionals(additionals);
                match chase {
                    Some(target) => {
                        let mut tq = q.clone();
                        tq.set_name(target);
                        if let Ok(m) = self.forwarder.resolve(&tq).await {
                            resp.add_answers(m.answers());
                        }
                        Cacheable::No
                    }
                    None => Cacheable::View,
                }
            }
            Answer::NxDomain => {
                self.stats.nxdomain.fetch_add(1, Ordering::Relaxed);
                resp.set_authoritative(true)
                    .set_response_code(ResponseCode::NXDomain)
                    .add_name_server(self.zone.soa());
                Cacheable::View
            }
            Answer::Forward => match self.forwarder.resolve(q).await {
                Ok(m) => {
                    self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                    resp.set_response_code(m.response_code());
                    resp.add_answers(m.answers());
                    resp.add_name_servers(m.name_servers());
                    resp.add_additionals(m.additionals());
                    match m.life() {
                        Some(life) => Cacheable::Upstream { life },
                        None => Cacheable::No,
                    }
                }
                Err(e) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(name = %q.name(), error = %e, "dns: forwarding failed");
                    resp.set_response_code(ResponseCode::ServFail);
                    Cacheable::No
                }
            },
        }
    }
}

/// Serves `resolver` on the bound sockets until the task is dropped.
pub async fn serve_on(resolver: Arc<Resolver>, udp: UdpSocket, tcp: TcpListener) {
    let t = tokio::spawn(serve_tcp(resolver.clone(), tcp));
    let stop = Stop::default();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let spawned = udp.into_std().and_then(|sock| {
        let (r, flag, rt) = (resolver, stop.0.clone(), tokio::runtime::Handle::current());
        std::thread::Builder::new()
            .name("keel-dns-udp".into())
            .spawn(move || {
                let _ = done_tx.send(serve_udp(r, sock, rt, flag));
            })
    });
    let failed = match spawned {
        Ok(_) => done.await.unwrap_or(Ok(())),
        Err(e) => Err(e),
    };
    if let Err(e) = failed {
        tracing::error!(error = %e, "cluster DNS: UDP socket failed");
    }
    t.abort();
}

/// Tells the UDP thread to end when the serving task is dropped.
#[derive(Default)]
struct Stop(Arc<AtomicBool>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How often the UDP thread looks at its stop flag while no query comes.
const UDP_STOP_POLL: Duration = Duration::from_millis(200);

/// The UDP loop, on its own thread with a blocking socket as dnsmasq's
/// is: a kept answer costs one `recvfrom` and one `sendto`, with no task,
/// wake-up or hand-off between runtime workers; a question not kept is
/// answered on the runtime and its answer sent from there.
fn serve_udp(
    resolver: Arc<Resolver>,
    sock: std::net::UdpSocket,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(UDP_STOP_POLL))?;
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(usize::from(EDNS_UDP));
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                        // ICMP errors of earlier replies surface here.
                        | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if resolver.cached(&buf[..n], &mut out) {
            let _ = sock.send_to(&out, peer);
            continue;
        }
        let req = buf[..n].to_vec();
        let (r, s) = (resolver.clone(), sock.clone());
        rt.spawn(async move {
            let mut out = Vec::new();
            if r.handle_udp(&req, &mut out).await {
                // A datagram socket's send does not wait for the peer.
                let _ = s.send_to(&out, peer);
            }
        });
    }
    Ok(())
}

async fn serve_tcp(resolver: Arc<Resolver>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(TCP_CONNECTIONS));
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: too many at once
        };
        let r = resolver.clone();
        tokio::spawn(async move {
            let _permit = permit;
            loop {
                let mut len = [0u8; 2];
                match tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut len)).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
                let mut req = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if !matches!(
                    tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut req)).await,
                    Ok(Ok(_))
                ) {
                    return;
                }
                let Some(out) = r.handle(&req, false).await else {
                    return;
                };
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                if conn.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
