//! Names outside the cluster: asked of the node's upstream resolvers (UDP,
//! again over TCP when the answer was truncated; the next upstream when
//! one fails or is silent) and remembered in a bounded cache.
//!
//! The cache keeps a successful answer for its smallest TTL, at most
//! [`MAX_POSITIVE_TTL`], and a negative one (NXDOMAIN, NODATA) for at most
//! [`MAX_NEGATIVE_TTL`], as NodeLocal DNSCache's defaults do; a server
//! failure is not kept. When full it drops the entries that expired, then
//! the oldest.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, Name, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

use super::DnsError;

pub const MAX_POSITIVE_TTL: u32 = 30;
pub const MAX_NEGATIVE_TTL: u32 = 5;
/// How long one upstream gets to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

type Key = (Name, RecordType, DNSClass);

struct Entry {
    msg: Message,
    stored: Instant,
    expires: Instant,
}

/// A bounded TTL cache of upstream answers.
pub struct Cache {
    capacity: usize,
    map: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn key(q: &Query) -> Key {
        (q.name().to_lowercase(), q.query_type(), q.query_class())
    }

    /// The cached answer to `q` at `now`, its TTLs lowered by its age.
    pub fn get(&mut self, q: &Query, now: Instant) -> Option<Message> {
        let key = Self::key(q);
        let e = self.map.get(&key)?;
        if now >= e.expires {
            self.map.remove(&key);
            return None;
        }
        let age = now.duration_since(e.stored).as_secs() as u32;
        let mut msg = e.msg.clone();
        for r in msg.answers_mut().iter_mut() {
            let t = r.ttl().saturating_sub(age);
            r.set_ttl(t);
        }
        for r in msg.name_servers_mut().iter_mut() {
            let t = r.ttl().saturating_sub(age);
            r.set_ttl(t);
        }
        Some(msg)
    }

    /// Keeps `msg` (the answer to `q`) for as long as its TTLs allow.
    pub fn put(&mut self, q: &Query, msg: &Message, now: Instant) {
        let ttl = match cache_ttl(msg) {
            Some(t) if t > 0 => t,
            _ => return,
        };
        let key = Self::key(q);
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.map.retain(|_, e| e.expires > now);
            self.order.retain(|k| self.map.contains_key(k));
            while self.map.len() >= self.capacity {
                match self.order.pop_front() {
                    Some(k) => {
                        self.map.remove(&k);
                    }
                    None => break,
                }
            }
        }
        if self
            .map
            .insert(
                key.clone(),
                Entry {
                    msg: msg.clone(),
                    stored: now,
                    expires: now + Duration::from_secs(u64::from(ttl)),
                },
            )
            .is_none()
        {
            self.order.push_back(key);
        }
    }
}

/// How long an upstream answer may be kept; None: not at all.
pub fn cache_ttl(msg: &Message) -> Option<u32> {
    match msg.response_code() {
        ResponseCode::NoError if !msg.answers().is_empty() => msg
            .answers()
            .iter()
            .map(|r| r.ttl())
            .min()
            .map(|t| t.min(MAX_POSITIVE_TTL)),
        ResponseCode::NoError | ResponseCode::NXDomain => {
            let soa = msg
                .name_servers()
                .iter()
                .find(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.ttl())
                .unwrap_or(MAX_NEGATIVE_TTL);
            Some(soa.min(MAX_NEGATIVE_TTL))
        }
        _ => None,
    }
}

/// The upstream resolvers and the cache in front of them.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<Cache>,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, capacity: usize) -> Self {
        Self {
            upstreams,
            cache: Mutex::new(Cache::new(capacity)),
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The answer to `q` (records, response code, authority), from the
    /// cache or the first upstream that answers.
    pub async fn resolve(&self, q: &Query) -> Result<Message, DnsError> {
        if let Some(m) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(q, Instant::now())
        {
            return Ok(m);
        }
        let mut last = DnsError::NoUpstream;
        for up in &self.upstreams {
            match ask(*up, q).await {
                Ok(m) if m.response_code() == ResponseCode::ServFail => {
                    last = DnsError::Upstream {
                        upstream: *up,
                        message: "SERVFAIL".into(),
                    };
                }
                Ok(m) => {
                    self.cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .put(q, &m, Instant::now());
                    return Ok(m);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// One question to one upstream: UDP, then TCP if the answer was truncated.
async fn ask(upstream: SocketAddr, q: &Query) -> Result<Message, DnsError> {
    let err = |message: String| DnsError::Upstream { upstream, message };
    let id: u16 = rand::random();
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(q.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    let bytes = m.to_vec().map_err(|e| err(e.to_string()))?;
    let bind: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| err(e.to_string()))?;
    sock.connect(upstream)
        .await
        .map_err(|e| err(e.to_string()))?;
    sock.send(&bytes).await.map_err(|e| err(e.to_string()))?;
    let mut buf = vec![0u8; 4096];
    let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        loop {
            let n = sock.recv(&mut buf).await?;
            // Anything but the answer to this question (a late answer to
            // another, a spoof) is ignored.
            if let Ok(r) = Message::from_vec(&buf[..n])
                && r.id() == id
                && r.queries().first() == Some(q)
            {
                return Ok::<_, std::io::Error>(r);
            }
        }
    })
    .await
    .map_err(|_| err("no answer over UDP".into()))?
    .map_err(|e| err(e.to_string()))?;
    if !reply.truncated() {
        return Ok(reply);
    }
    tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        let mut s = TcpStream::connect(upstream).await?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).await?;
        Message::from_vec(&body)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    })
    .await
    .map_err(|_| err("no answer over TCP".into()))?
    .map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests;
