//! The agent's DNS server and forwarder for real, inside a test namespace
//! (loopback only): `keel_agent::dns::start` puts the cluster DNS address
//! on its device and serves it over UDP and TCP; a name outside the
//! cluster goes to a fake upstream that truncates over UDP, so the
//! forwarder asks again over TCP, and a second ask is answered from the
//! cache; a silent upstream is passed over for the next.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType, rdata::A},
};
use keel_agent::{
    dns::{self, DnsOptions, forward::Forwarder, podfiles::ResolvConf},
    sync::view::{View, Views},
};
use keel_tests::{netns::TestNetns, require_root};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
};

const UPSTREAM: &str = "127.0.0.2:53";
const SILENT: &str = "127.0.0.3:53";
const BIG: usize = 100;

#[derive(Default)]
struct Counts {
    udp: AtomicU32,
    tcp: AtomicU32,
}

fn big_answer(req: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(req.id())
        .set_message_type(MessageType::Response)
        .add_queries(req.queries().iter().cloned());
    let name = req.queries()[0].name().clone();
    for i in 0..BIG {
        m.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, i as u8))),
        ));
    }
    m
}

/// Answers every UDP query truncated and every TCP query in full.
async fn fake_upstream(counts: Arc<Counts>) {
    let udp = UdpSocket::bind(UPSTREAM).await.unwrap();
    let tcp = TcpListener::bind(UPSTREAM).await.unwrap();
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = tcp.accept().await.unwrap();
            c.tcp.fetch_add(1, Ordering::SeqCst);
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut req = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut req).await.unwrap();
            let out = big_answer(&Message::from_vec(&req).unwrap())
                .to_vec()
                .unwrap();
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend(out);
            s.write_all(&framed).await.unwrap();
        }
    });
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
        counts.udp.fetch_add(1, Ordering::SeqCst);
        let req = Message::from_vec(&buf[..n]).unwrap();
        let mut t = Message::new();
        t.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_truncated(true)
            .add_queries(req.queries().iter().cloned());
        udp.send_to(&t.to_vec().unwrap(), peer).await.unwrap();
    }
}

fn query(name: &str) -> Query {
    Query::query(Name::from_ascii(name).unwrap(), RecordType::A)
}

#[test]
fn forwarder_falls_back_to_tcp_caches_and_skips_a_silent_upstream() {
    require_root();
    let ns = TestNetns::new("dnsfw").unwrap();
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let counts = Arc::new(Counts::default());
                tokio::spawn(fake_upstream(counts.clone()));
                // Bound, never answering.
                let _silent = UdpSocket::bind(SILENT).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                let up: SocketAddr = UPSTREAM.parse().unwrap();
                let f = Forwarder::new(vec![SILENT.parse().unwrap(), up], 16);
                let m = f.resolve(&query("big.example.")).await.unwrap();
                assert_eq!(m.answers().count(), BIG);
                assert_eq!(
                    (
                        counts.udp.load(Ordering::SeqCst),
                        counts.tcp.load(Ordering::SeqCst)
                    ),
                    (1, 1),
                    "truncated over UDP, asked again over TCP"
                );
                let m = f.resolve(&query("BIG.example.")).await.unwrap();
                assert_eq!(m.answers().count(), BIG);
                assert_eq!(
                    counts.udp.load(Ordering::SeqCst),
                    1,
                    "the second from the cache"
                );
                assert_eq!(f.cached(), 1);
            })
    });
}

#[test]
fn server_serves_cluster_and_forwarded_names_on_its_address() {
    require_root();
    let ns = TestNetns::new("dnssrv").unwrap();
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let counts = Arc::new(Counts::default());
                tokio::spawn(fake_upstream(counts.clone()));
                let mut view = View::default();
                view.services.insert(
                    "default/web".into(),
                    Arc::new(
                        serde_json::from_value(serde_json::json!({
                            "metadata": {"name": "web", "namespace": "default"},
                            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}
                        }))
                        .unwrap(),
                    ),
                );
                let running = dns::start(
                    DnsOptions {
                        addr: dns::DEFAULT_CLUSTER_DNS,
                        domain: "cluster.local".into(),
                        host: ResolvConf::parse("nameserver 127.0.0.2\n"),
                    },
                    &Views::new(view),
                )
                .await
                .expect("cluster DNS starts");
                let server = SocketAddr::from((dns::DEFAULT_CLUSTER_DNS, 53));
                let ask_udp = |name: &'static str| async move {
                    let s = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                    let mut m = Message::new();
                    m.set_id(7).add_query(query(name));
                    s.send_to(&m.to_vec().unwrap(), server).await.unwrap();
                    let mut buf = vec![0u8; 4096];
                    let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf))
                        .await
                        .expect("an answer")
                        .unwrap();
                    Message::from_vec(&buf[..n]).unwrap()
                };
                let m = ask_udp("web.default.svc.cluster.local.").await;
                assert_eq!(m.response_code(), ResponseCode::NoError);
                assert_eq!(
                    m.answers()[0].data(),
                    &RData::A(A(Ipv4Addr::new(10, 96, 0, 10)))
                );
                // Forwarded: too big for a plain UDP answer, so truncated…
                let m = ask_udp("big.example.").await;
                assert!(m.truncated());
                // …and whole over TCP.
                let mut s = TcpStream::connect(server).await.unwrap();
                let mut req = Message::new();
                req.set_id(8).add_query(query("big.example."));
                let bytes = req.to_vec().unwrap();
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend(bytes);
                s.write_all(&framed).await.unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await.unwrap();
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut body).await.unwrap();
                let m = Message::from_vec(&body).unwrap();
                assert_eq!((m.id(), m.answers().len()), (8, BIG));
                let st = running.resolver.stats.snapshot();
                assert_eq!(st["cluster"], 1, "{st}");
                assert_eq!(st["forwarded"], 2, "{st}");
            })
    });
}

const SLOW: &str = "127.0.0.4:53";
/// What the slow upstream gives its answers, and how long it takes.
const SLOW_TTL: u32 = 5;
const SLOW_DELAY: Duration = Duration::from_millis(300);

/// Answers every UDP query after [`SLOW_DELAY`], with TTL [`SLOW_TTL`],
/// counting them.
async fn slow_upstream(count: Arc<AtomicU32>) {
    let udp = Arc::new(UdpSocket::bind(SLOW).await.unwrap());
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
        count.fetch_add(1, Ordering::SeqCst);
        let req = Message::from_vec(&buf[..n]).unwrap();
        let udp = udp.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SLOW_DELAY).await;
            let mut m = Message::new();
            m.set_id(req.id())
                .set_message_type(MessageType::Response)
                .add_queries(req.queries().iter().cloned());
            m.add_answer(Record::from_rdata(
                req.queries()[0].name().clone(),
                SLOW_TTL,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
            ));
            udp.send_to(&m.to_vec().unwrap(), peer).await.unwrap();
        });
    }
}

#[test]
fn identical_questions_share_one_upstream_query_and_names_in_use_are_refreshed_before_expiry() {
    require_root();
    let ns = TestNetns::new("dnspre").unwrap();
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let count = Arc::new(AtomicU32::new(0));
                tokio::spawn(slow_upstream(count.clone()));
                tokio::time::sleep(Duration::from_millis(50)).await;
                let f = Forwarder::new(vec![SLOW.parse().unwrap()], 16);
                let ttl = |m: &dns::forward::Reply| m.answers().next().unwrap().ttl();

                // Ten identical questions at once: one upstream query.
                let asks = (0..10).map(|_| {
                    let f = f.clone();
                    tokio::spawn(async move { f.resolve(&query("same.example.")).await })
                });
                let answers = futures_util::future::join_all(asks).await;
                let t0 = std::time::Instant::now();
                for a in answers {
                    assert_eq!(ttl(&a.unwrap().unwrap()), SLOW_TTL);
                }
                assert_eq!(count.load(Ordering::SeqCst), 1, "one query upstream");

                // Asked in the last tenth of its life: answered from the
                // cache (TTL aged) and fetched again in the background.
                tokio::time::sleep_until((t0 + Duration::from_millis(4_600)).into()).await;
                let m = f.resolve(&query("same.example.")).await.unwrap();
                assert!(
                    t0.elapsed() < Duration::from_secs(u64::from(SLOW_TTL)),
                    "the machine slept past the entry's life; the test cannot tell"
                );
                assert_eq!(ttl(&m), SLOW_TTL - 4, "from the cache, aged");
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while count.load(Ordering::SeqCst) < 2 {
                    assert!(std::time::Instant::now() < deadline, "no prefetch");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Past the first answer's life the name is still cached,
                // from the prefetch: no miss, no new query.
                tokio::time::sleep_until((t0 + Duration::from_millis(5_300)).into()).await;
                let m = f.resolve(&query("same.example.")).await.unwrap();
                assert!(ttl(&m) >= SLOW_TTL - 1, "the refreshed entry");
                assert_eq!(count.load(Ordering::SeqCst), 2);
            })
    });
}
