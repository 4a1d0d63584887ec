//! Names outside the cluster: asked of the node's upstream resolvers (UDP,
//! again over TCP when the answer was truncated; the next upstream when
//! one fails or is silent) and remembered in a bounded cache.
//!
//! The cache keeps a successful answer for its smallest TTL, at most
//! [`MAX_POSITIVE_TTL`], and a negative one (NXDOMAIN, NODATA) for at most
//! [`MAX_NEGATIVE_TTL`], as NodeLocal DNSCache's defaults do; a server
//! failure is not kept. When full it drops the entries that expired, then
//! the oldest.
//!
//! Two things keep the upstream off the path of a question: a name asked
//! for in the last tenth of its cached life is fetched again in the
//! background while the cached answer is served (CoreDNS' `prefetch`), so
//! a name in use never expires; and identical questions that miss at the
//! same time share one upstream query.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Record, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    sync::oneshot,
};

use super::DnsError;

pub const MAX_POSITIVE_TTL: u32 = 30;
pub const MAX_NEGATIVE_TTL: u32 = 5;
/// How long one upstream gets to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// A question as the cache keys it: the name in lower-case ASCII, type
/// and class. (hickory's `Name` hashes case-insensitively by lower-casing
/// every label into a new allocation on each hash.)
type Key = (Box<str>, u16, u16);

fn key(q: &Query) -> Key {
    let mut name = q.name().to_ascii();
    name.make_ascii_lowercase();
    (
        name.into_boxed_str(),
        u16::from(q.query_type()),
        u16::from(q.query_class()),
    )
}

struct Entry {
    msg: Arc<Message>,
    stored: Instant,
    expires: Instant,
    /// The life it was given, in seconds.
    ttl: u32,
    /// A background refresh was handed out.
    refreshing: bool,
}

/// A cached answer.
pub struct Hit {
    pub msg: Arc<Message>,
    /// Seconds since it was stored.
    pub age: u32,
    /// Whether the caller should fetch it again in the background (handed
    /// out once per entry).
    pub refresh: bool,
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

    /// The cached answer to `q` at `now`; `refresh` once less than a
    /// tenth of its life is left.
    pub fn get(&mut self, q: &Query, now: Instant) -> Option<Hit> {
        let k = key(q);
        let e = self.map.get_mut(&k)?;
        if now >= e.expires {
            self.map.remove(&k);
            return None;
        }
        let left = e.expires - now;
        let refresh = !e.refreshing && left * 10 < Duration::from_secs(u64::from(e.ttl));
        e.refreshing |= refresh;
        Some(Hit {
            msg: e.msg.clone(),
            age: now.duration_since(e.stored).as_secs() as u32,
            refresh,
        })
    }

    /// Keeps `msg` (the answer to `q`) for as long as its TTLs allow.
    pub fn put(&mut self, q: &Query, msg: Arc<Message>, now: Instant) {
        let ttl = match cache_ttl(&msg) {
            Some(t) if t > 0 => t,
            _ => return,
        };
        let k = key(q);
        if self.map.len() >= self.capacity && !self.map.contains_key(&k) {
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
        let entry = Entry {
            msg,
            stored: now,
            expires: now + Duration::from_secs(u64::from(ttl)),
            ttl,
            refreshing: false,
        };
        if self.map.insert(k.clone(), entry).is_none() {
            self.order.push_back(k);
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

/// An upstream answer as served: shared with the cache, its records' TTLs
/// lowered by its age as they are copied out.
pub struct Reply {
    msg: Arc<Message>,
    age: u32,
}

impl Reply {
    pub fn response_code(&self) -> ResponseCode {
        self.msg.response_code()
    }

    fn aged<'a>(&self, records: &'a [Record]) -> impl Iterator<Item = Record> + 'a {
        let age = self.age;
        records.iter().map(move |r| {
            let mut r = r.clone();
            r.set_ttl(r.ttl().saturating_sub(age));
            r
        })
    }

    pub fn answers(&self) -> impl Iterator<Item = Record> + '_ {
        self.aged(self.msg.answers())
    }

    pub fn name_servers(&self) -> impl Iterator<Item = Record> + '_ {
        self.aged(self.msg.name_servers())
    }

    /// How much longer the forwarder's cache keeps this answer, in seconds;
    /// None when it does not keep it.
    pub fn life(&self) -> Option<u32> {
        cache_ttl(&self.msg)
            .map(|t| t.saturating_sub(self.age))
            .filter(|t| *t > 0)
    }

    /// The additional records, without the upstream's EDNS OPT.
    pub fn additionals(&self) -> impl Iterator<Item = Record> + '_ {
        self.aged(self.msg.additionals())
            .filter(|r| r.record_type() != RecordType::OPT)
    }
}

type Waiters = Vec<oneshot::Sender<Result<Arc<Message>, String>>>;

struct Inner {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<Cache>,
    /// Questions being asked upstream, with who else waits for them.
    pending: Mutex<HashMap<Key, Waiters>>,
}

/// The upstream resolvers and the cache in front of them (cheap to clone).
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

/// Removes a question from `pending` when its asker is done or dropped
/// (a dropped asker's waiters then get an error, not silence).
struct Asking<'a> {
    inner: &'a Inner,
    key: Option<Key>,
}

impl Asking<'_> {
    fn finish(mut self) -> Waiters {
        let key = self.key.take().expect("finished once");
        lock(&self.inner.pending).remove(&key).unwrap_or_default()
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            lock(&self.inner.pending).remove(&k);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                upstreams,
                cache: Mutex::new(Cache::new(capacity)),
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.inner.upstreams
    }

    pub fn cached(&self) -> usize {
        lock(&self.inner.cache).len()
    }

    /// The answer to `q` (records, response code, authority), from the
    /// cache or the first upstream that answers.
    pub async fn resolve(&self, q: &Query) -> Result<Reply, DnsError> {
        let hit = lock(&self.inner.cache).get(q, Instant::now());
        if let Some(hit) = hit {
            if hit.refresh {
                let (me, q) = (self.clone(), q.clone());
                tokio::spawn(async move {
                    if let Err(e) = me.fetch(&q).await {
                        tracing::debug!(name = %q.name(), error = %e, "dns: prefetch failed");
                    }
                });
            }
            return Ok(Reply {
                msg: hit.msg,
                age: hit.age,
            });
        }
        let msg = self.fetch(q).await?;
        Ok(Reply { msg, age: 0 })
    }

    /// Asks the upstreams (or joins the same question already asked) and
    /// caches the answer.
    async fn fetch(&self, q: &Query) -> Result<Arc<Message>, DnsError> {
        let k = key(q);
        let joined = {
            let mut pending = lock(&self.inner.pending);
            match pending.get_mut(&k) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    pending.insert(k.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = joined {
            return match rx.await {
                Ok(Ok(m)) => Ok(m),
                Ok(Err(message)) => Err(DnsError::Shared(message)),
                Err(_) => Err(DnsError::Shared(
                    "the identical query it waited for was cancelled".into(),
                )),
            };
        }
        let asking = Asking {
            inner: &self.inner,
            key: Some(k),
        };
        let result = self.ask_upstreams(q).await;
        if let Ok(m) = &result {
            lock(&self.inner.cache).put(q, m.clone(), Instant::now());
        }
        for w in asking.finish() {
            let _ = w.send(match &result {
                Ok(m) => Ok(m.clone()),
                Err(e) => Err(e.to_string()),
            });
        }
        result
    }

    async fn ask_upstreams(&self, q: &Query) -> Result<Arc<Message>, DnsError> {
        let mut last = DnsError::NoUpstream;
        for up in &self.inner.upstreams {
            match ask(*up, q).await {
                Ok(m) if m.response_code() == ResponseCode::ServFail => {
                    last = DnsError::Upstream {
                        upstream: *up,
                        message: "SERVFAIL".into(),
                    };
                }
                Ok(m) => return Ok(Arc::new(m)),
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
