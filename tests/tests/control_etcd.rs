//! keel-control on etcd: the test etcd itself (one member and three, removed
//! by PID with their namespace), then keel-control's store and API against a
//! real etcd.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use std::collections::BTreeSet;

use keel_api::{
    Endpoints, EventType, Kind, Node, Service,
    client::{Client, ClientConfig, ListParams},
};
use keel_control::store::{
    Obj, Store, StoreConfig, StoreError,
    etcd::{EtcdConfig, EtcdTls},
    leader::Elector,
};
use keel_tests::{
    etcd::{EtcdCluster, ServerTls},
    process::{ControlProcess, wait_for, wait_until},
};

/// etcd's `/health` over plain HTTP/1.0 from inside the namespace.
fn healthy(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn test_etcd_starts_one_or_three_members_and_cleans_up() {
    let (pid, ns) = {
        let one = EtcdCluster::single();
        let ep = one.endpoint(0);
        one.run(|| {
            wait_for("a healthy member", Duration::from_secs(10), || {
                healthy(&ep).then_some(())
            })
        });
        (one.pid(0).unwrap(), one.netns().name().to_string())
    };
    assert!(!alive(pid), "etcd {pid} still runs after drop");
    assert!(
        !std::path::Path::new(&format!("/run/netns/{ns}")).exists(),
        "namespace {ns} left behind"
    );

    let mut three = EtcdCluster::start(3);
    let pids: Vec<u32> = (0..3).map(|i| three.pid(i).unwrap()).collect();
    for i in 0..3 {
        let ep = three.endpoint(i);
        three.run(|| {
            wait_for("every member healthy", Duration::from_secs(20), || {
                healthy(&ep).then_some(())
            })
        });
    }
    // A killed member's peers keep a quorum and stay healthy; it rejoins.
    three.kill(1);
    assert!(!alive(pids[1]));
    let ep0 = three.endpoint(0);
    three.run(|| {
        wait_for("quorum of two", Duration::from_secs(20), || {
            healthy(&ep0).then_some(())
        })
    });
    three.restart(1);
    let ep1 = three.endpoint(1);
    three.run(|| {
        wait_for("the member rejoined", Duration::from_secs(20), || {
            healthy(&ep1).then_some(())
        })
    });
    drop(three);
    for p in pids {
        assert!(!alive(p), "etcd {p} still runs after drop");
    }
}

fn service(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}
    }))
    .unwrap()
}

fn node(name: &str) -> Node {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
}

async fn replica(endpoints: &str) -> Store {
    Store::open_etcd(
        EtcdConfig::new(endpoints.split(',').map(String::from).collect()),
        StoreConfig::default(),
    )
    .await
    .expect("store on etcd")
}

/// Two replicas on one etcd allocate concurrently: every cluster IP, node
/// port and pod CIDR is handed out once, both replicas converge on the same
/// objects at the same resourceVersions (etcd's mod revisions), and a write
/// from a stale read on one replica is refused after the other changed it.
#[test]
fn two_replicas_allocate_without_conflict_and_converge() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let a = replica(&endpoints).await;
        let b = replica(&endpoints).await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                s.create(service(&format!("s{i}"))).await
            }));
            let s = if i % 2 == 0 { b.clone() } else { a.clone() };
            tasks.push(tokio::spawn(async move {
                s.create(node(&format!("n{i}"))).await
            }));
        }
        let (mut ips, mut ports, mut cidrs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Obj::Service(s) => {
                    assert!(
                        ips.insert(s.spec.cluster_ip.clone()),
                        "cluster IP handed out twice"
                    );
                    assert!(
                        ports.insert(s.spec.ports[0].node_port.unwrap()),
                        "node port handed out twice"
                    );
                }
                Obj::Node(n) => assert!(
                    cidrs.insert(n.spec.pod_cidr.clone()),
                    "pod CIDR handed out twice"
                ),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((ips.len(), ports.len(), cidrs.len()), (40, 40, 40));

        // Both replicas see the same objects at the same revisions.
        let target = a.revision().max(b.revision());
        for s in [&a, &b] {
            let mut rx = s.subscribe();
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| *r >= target))
                .await
                .expect("replica caught up")
                .unwrap();
        }
        let (sa, sb) = (a.snapshot(), b.snapshot());
        let rvs = |st: &keel_control::store::State| {
            st.list(Kind::Service, "")
                .iter()
                .map(|o| (o.key(), o.meta().resource_version.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(rvs(&sa), rvs(&sb));
        assert_eq!(sa.services.len(), 40);

        // Optimistic concurrency across replicas.
        let Some(Obj::Service(s0)) = sa.get(Kind::Service, "default/s0") else {
            panic!("s0 missing")
        };
        let mut first = (*s0).clone();
        first.metadata.labels.insert("v".into(), "1".into());
        a.update(first).await.unwrap();
        let mut stale = (*s0).clone();
        stale.metadata.labels.insert("v".into(), "2".into());
        let err = b.update(stale).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");

        // A third replica started now reads everything, and its watch
        // history reaches back to the first write.
        let c = replica(&endpoints).await;
        assert_eq!(rvs(&c.snapshot()), rvs(&a.snapshot()));
        let first_rv = sa
            .list(Kind::Service, "")
            .iter()
            .chain(sa.list(Kind::Node, "").iter())
            .map(|o| o.meta().revision())
            .min()
            .unwrap();
        let events = c.events_after(first_rv - 1).expect("history from etcd");
        assert_eq!(events.len(), 81, "80 creates and one update");
    });
}

/// etcd compacts to the revision seen one interval earlier; a replica
/// started after that cannot serve a watch from before it (410 Expired,
/// relist) but serves one from after it.
#[test]
fn compaction_is_periodic_and_older_watches_expire() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let mut cfg = EtcdConfig::new(vec![endpoints.clone()]);
        cfg.compact_interval = Duration::from_millis(500);
        let a = Store::open_etcd(cfg, StoreConfig::default()).await.unwrap();
        let first = a.create(node("n0")).await.unwrap().meta().revision();
        for i in 1..5 {
            a.create(node(&format!("n{i}"))).await.unwrap();
        }
        // Compaction reaches `first` within two intervals.
        let b = wait_until("etcd compacted", Duration::from_secs(10), || async {
            let b = replica(&endpoints).await;
            b.events_after(first).is_err().then_some(b)
        })
        .await;
        assert_eq!(b.snapshot().nodes.len(), 5, "compaction keeps the objects");
        let expired = b.events_after(first).unwrap_err();
        assert!(expired.oldest > first, "{expired:?}");
        assert!(b.events_after(expired.oldest - 1).is_ok());
    });
}

/// Client certificates to etcd: with the CA and a client certificate the
/// store works; without a client certificate etcd refuses it.
#[test]
fn tls_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, file: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let (c, k) = (
            dir.path().join(format!("{file}.pem")),
            dir.path().join(format!("{file}-key.pem")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()], "server");
    let (client_cert, client_key) = leaf(vec!["keel-control".into()], "client");
    let etcd = EtcdCluster::start_tls(
        1,
        ServerTls {
            cert: server_cert,
            key: server_key,
            client_ca: ca.clone(),
        },
    );
    let endpoint = etcd.endpoint(0);
    assert!(endpoint.starts_with("https://"));
    etcd.block_on(|| async {
        let mut cfg = EtcdConfig::new(vec![endpoint.clone()]);
        cfg.tls = Some(EtcdTls {
            ca: ca.clone(),
            cert: Some(client_cert),
            key: Some(client_key),
        });
        let store = Store::open_etcd(cfg.clone(), StoreConfig::default())
            .await
            .expect("store over TLS");
        store.create(node("n1")).await.unwrap();
        assert_eq!(store.snapshot().nodes.len(), 1);

        cfg.tls = Some(EtcdTls {
            ca,
            cert: None,
            key: None,
        });
        let err = tokio::time::timeout(
            Duration::from_secs(20),
            Store::open_etcd(cfg, StoreConfig::default()),
        )
        .await
        .expect("refused in time")
        .err()
        .expect("no client certificate: refused");
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
    });
}

/// Leader election for the controllers: one replica leads, a second waits;
/// when the leader stops renewing (its keeper ends, as in a crash) the second
/// takes over within the lease TTL, and a write fenced by the old leadership
/// is refused by etcd.
#[test]
fn one_leader_at_a_time_and_fenced_writes() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let cfg = EtcdConfig::new(vec![endpoints.clone()]);
        let store = replica(&endpoints).await;
        let ttl = Duration::from_secs(2);
        let a = Elector::new(keel_control::store::etcd::connect(&cfg).await.unwrap(), &cfg, "a", ttl);
        let b = Elector::new(keel_control::store::etcd::connect(&cfg).await.unwrap(), &cfg, "b", ttl);
        let la = a.acquire().await.unwrap();
        let contender = tokio::spawn(async move { b.acquire().await.map(|l| (l, Instant::now())) });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!contender.is_finished(), "a second leader while the first renews");

        let fenced = store.fenced(la.fence.clone());
        fenced.create(node("by-a")).await.expect("the leader writes");

        let crashed = Instant::now();
        drop(la);
        let (lb, took_over) = tokio::time::timeout(Duration::from_secs(10), contender)
            .await
            .expect("a new leader within the TTL")
            .unwrap()
            .unwrap();
        let failover = took_over - crashed;
        eprintln!("failover after the leader stopped renewing: {failover:?} (ttl {ttl:?})");
        assert!(failover <= ttl + Duration::from_secs(2), "{failover:?}");

        let err = fenced.create(node("late-from-a")).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { message, .. } if message.contains("no longer leads")),
            "{err}"
        );
        store
            .fenced(lb.fence.clone())
            .create(node("by-b"))
            .await
            .expect("the new leader writes");
        assert!(store.snapshot().get(Kind::Node, "late-from-a").is_none());
    });
}

/// Two keel-control processes on one etcd: both serve, the controllers run
/// on the one that leads; after it is killed with SIGKILL the other takes
/// the controllers over within the lease TTL (an Endpoints object derived
/// for a Service created after the kill shows they run).
#[test]
fn controllers_fail_over_to_another_replica() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let key = etcd.encryption_key_file();
        let flags = [
            "--store",
            "etcd",
            "--etcd-endpoints",
            endpoints.as_str(),
            "--leader-lease-ttl",
            "3s",
            "--encryption-key-file",
            key.as_str(),
        ];
        let mut replicas = [ControlProcess::start(&flags), ControlProcess::start(&flags)];
        let leading = |r: &ControlProcess| r.log().contains("leading the controllers");
        let leader = wait_until("a leader", Duration::from_secs(20), || {
            let l = replicas.iter().position(leading);
            async move { l }
        })
        .await;
        let other = 1 - leader;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!leading(&replicas[other]), "two leaders");

        // Both replicas serve; what one writes the other reads.
        let c_leader = replicas[leader].client();
        c_leader.create(&service("before")).await.unwrap();
        let c = replicas[other].client();
        wait_until("endpoints from the leader", Duration::from_secs(10), || {
            let c = c.clone();
            async move { c.get::<Endpoints>("default", "before").await.ok() }
        })
        .await;

        // default/kubernetes lists every live replica (each renews its
        // lease), as Kubernetes' lease endpoint reconciler does.
        let port_of = |r: &ControlProcess| -> u16 {
            r.url()
                .rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .parse()
                .unwrap()
        };
        let api_ports = |c: Client| async move {
            let e = c.get::<Endpoints>("default", "kubernetes").await.ok()?;
            let mut ports: Vec<u16> = e
                .subsets
                .iter()
                .flat_map(|s| s.ports.iter().map(|p| p.port))
                .collect();
            ports.sort();
            Some(ports)
        };
        let mut both = vec![port_of(&replicas[0]), port_of(&replicas[1])];
        both.sort();
        wait_until(
            "both replicas in default/kubernetes",
            Duration::from_secs(20),
            || {
                let (c, both) = (c.clone(), both.clone());
                async move { api_ports(c).await.filter(|p| *p == both) }
            },
        )
        .await;
        let survivor = port_of(&replicas[other]);

        let killed = Instant::now();
        replicas[leader].kill();
        c.create(&service("after")).await.unwrap();
        wait_until(
            "endpoints after the failover",
            Duration::from_secs(15),
            || {
                let c = c.clone();
                async move { c.get::<Endpoints>("default", "after").await.ok() }
            },
        )
        .await;
        let took = killed.elapsed();
        eprintln!("controllers resumed {took:?} after SIGKILL of the leader (lease TTL 3s)");
        assert!(took < Duration::from_secs(3 + 3), "{took:?}");
        assert!(leading(&replicas[other]));
        // The killed replica leaves default/kubernetes once its lease expires.
        wait_until(
            "the killed replica out of default/kubernetes",
            Duration::from_secs(30),
            || {
                let c = c.clone();
                async move { api_ports(c).await.filter(|p| *p == [survivor]) }
            },
        )
        .await;
        eprintln!(
            "default/kubernetes lost the killed replica {:?} after its SIGKILL",
            killed.elapsed()
        );
    });
}

/// A client given both replicas' URLs keeps working when the one it uses
/// is killed, and a watch resumed on the other replica from the last
/// resourceVersion misses nothing (the replicas share the token through
/// etcd, and each fills its watch history from etcd's).
#[test]
fn clients_fail_over_and_watches_resume_on_another_replica() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let key = etcd.encryption_key_file();
        let flags = [
            "--store",
            "etcd",
            "--etcd-endpoints",
            endpoints.as_str(),
            "--encryption-key-file",
            key.as_str(),
        ];
        let mut first = ControlProcess::start(&flags);
        let second = ControlProcess::start(&flags);
        assert_eq!(first.token(), second.token(), "one token for every replica");
        let both = format!("{},{}", first.url(), second.url());
        let c = Client::new(
            &ClientConfig::from_parts(
                &both,
                &first.data_dir().join("token"),
                Some(&first.ca_path()),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.server(), first.url());
        c.create(&service("a")).await.unwrap();
        let rv = c
            .list::<Service>("default", &ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version;

        first.kill();
        // A write that may have reached the killed replica (sent on a
        // kept-alive connection it closed) is not resent by the client: the
        // caller retries, as with kube-apiserver, and a 409 means it landed.
        let mut landed = false;
        for _ in 0..3 {
            match c.create(&service("b")).await {
                Ok(_) => landed = true,
                Err(keel_api::client::ClientError::Api(s)) if s.code == 409 => landed = true,
                Err(keel_api::client::ClientError::Unreachable { .. }) => continue,
                Err(e) => panic!("written through the other replica: {e:?}"),
            }
            break;
        }
        assert!(landed, "written through the other replica within 3 tries");
        assert_eq!(c.server(), second.url());
        let mut w = c
            .watch::<Service>("default", &ListParams::default(), &rv)
            .await
            .expect("resumed from the old resourceVersion");
        let e = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let e = w.next().await.unwrap().unwrap();
                if e.type_ != EventType::Bookmark {
                    return e;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(
            (e.type_, e.object.metadata.name.as_str()),
            (EventType::Added, "b")
        );
    });
}

/// A store on a 3-member etcd keeps taking writes while a member is killed
/// (SIGKILL) and after it rejoins; every acknowledged write is there.
#[test]
fn writes_continue_when_an_etcd_member_dies() {
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoints();
    let rt = etcd.runtime();
    let ep = endpoints.clone();
    let store = rt
        .block_on(rt.spawn(async move { replica(&ep).await }))
        .unwrap();
    let write = |from: usize, to: usize| {
        let store = store.clone();
        rt.block_on(rt.spawn(async move {
            // A client as Kubernetes' retry: etcd answers "timed out" while
            // it elects a new leader (not acknowledged: the write may or may
            // not have landed; a retry finding it there is its
            // acknowledgement).
            let started = Instant::now();
            let mut refused = 0;
            for i in from..to {
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut retried = false;
                loop {
                    match tokio::time::timeout(
                        Duration::from_secs(15),
                        store.create(node(&format!("n{i}"))),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("write {i} hung"))
                    {
                        Ok(_) => break,
                        Err(StoreError::AlreadyExists { .. }) if retried => break,
                        // 504/503: etcd did not confirm it, or it was
                        // not sent.
                        Err(
                            e @ (StoreError::Backend(_)
                            | StoreError::Timeout(_)
                            | StoreError::Unavailable(_)),
                        ) if Instant::now() < deadline => {
                            refused += 1;
                            retried = true;
                            eprintln!("write {i} refused, retrying: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("write {i}: {e}"),
                    }
                }
            }
            (started.elapsed(), refused)
        }))
        .unwrap()
    };
    write(0, 20);
    // Kill each member in turn: the client's connection may be to it.
    for m in 0..3 {
        etcd.kill(m);
        let (took, refused) = write(20 + m * 20, 40 + m * 20);
        eprintln!("20 writes with member {m} down: {took:?}, {refused} refused and retried");
        etcd.restart(m);
    }
    write(80, 100);
    let ep = endpoints.clone();
    let fresh = rt
        .block_on(rt.spawn(async move { replica(&ep).await }))
        .unwrap();
    assert_eq!(
        fresh.snapshot().nodes.len(),
        100,
        "an acknowledged write is missing"
    );
    assert_eq!(store.snapshot().nodes.len(), 100);
    drop((store, fresh));
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// A replica that starts while an etcd member is down (killed, not yet
/// back) opens its store and takes every write at once. etcd-client's
/// balancer picks members at random and keeps sending calls to a dead one
/// (about a third of them, each failing), so keel-control's clients pass
/// over a member that refuses connections and use it again once it takes
/// them: not one call fails, with the member down, back, and then the only
/// one left.
#[test]
fn a_replica_starts_and_writes_while_an_etcd_member_is_down() {
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoints();
    let wait_healthy = |etcd: &EtcdCluster, m: usize| {
        let ep = etcd.endpoint(m);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !etcd.run(|| healthy(&ep)) {
            assert!(
                Instant::now() < deadline,
                "etcd member {m} without a leader"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    etcd.kill(1);
    wait_healthy(&etcd, 0);
    wait_healthy(&etcd, 2);
    let rt = etcd.runtime();
    let cfg = EtcdConfig::new(endpoints.split(',').map(String::from).collect());
    let client = rt
        .block_on(rt.spawn(async move { keel_control::store::etcd::connect_steered(&cfg).await }))
        .unwrap()
        .expect("a client on etcd");
    // Serializable reads: each member answers them alone, leader or not.
    let reads = |n: usize| {
        let mut kv = client.kv_client();
        rt.block_on(rt.spawn(async move {
            let opts = etcd_client::GetOptions::new().with_serializable();
            let mut failed = 0;
            for _ in 0..n {
                if kv.get("/keel/health", Some(opts.clone())).await.is_err() {
                    failed += 1;
                }
            }
            failed
        }))
        .unwrap()
    };
    assert_eq!(reads(200), 0, "calls went to the dead member 1");

    let ep = endpoints.clone();
    let store = rt
        .block_on(rt.spawn(async move { replica(&ep).await }))
        .unwrap();
    let write = |from: usize, to: usize| {
        let store = store.clone();
        rt.block_on(rt.spawn(async move {
            for i in from..to {
                if let Err(e) = store.create(node(&format!("n{i}"))).await {
                    panic!("write {i} refused: {e}");
                }
            }
        }))
        .unwrap()
    };
    write(0, 60);
    etcd.restart(1);
    write(60, 120);
    let ep = endpoints.clone();
    let other = rt
        .block_on(rt.spawn(async move { replica(&ep).await }))
        .unwrap();
    assert_eq!(other.snapshot().nodes.len(), 120);
    assert_eq!(store.snapshot().nodes.len(), 120);
    drop((store, other));

    // Member 1 is back in use: with the other two gone it answers alone.
    std::thread::sleep(Duration::from_secs(1));
    etcd.kill(0);
    etcd.kill(2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        reads(200),
        0,
        "calls went to dead members 0 and 2, or member 1 was not used again"
    );
    drop(client);
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// Failover of the controllers, measured: three keel-control replicas
/// (lease TTL 2 s); 20 times the leading one is SIGKILLed, and the time until
/// the controllers act again (an Endpoints object derived for a Service
/// created right after the kill) is recorded, then the replica is started
/// again. Prints p50/p99; every failover stays within the TTL plus 3 s.
#[test]
fn controller_failover_over_20_kills() {
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let key = etcd.encryption_key_file();
        let flags = [
            "--store",
            "etcd",
            "--etcd-endpoints",
            endpoints.as_str(),
            "--leader-lease-ttl",
            "2s",
            "--encryption-key-file",
            key.as_str(),
        ];
        let mut replicas: Vec<ControlProcess> =
            (0..3).map(|_| ControlProcess::start(&flags)).collect();
        let all = replicas
            .iter()
            .map(|r| r.url())
            .collect::<Vec<_>>()
            .join(",");
        let c = Client::new(
            &ClientConfig::from_parts(
                &all,
                &replicas[0].data_dir().join("token"),
                Some(&replicas[0].ca_path()),
            )
            .unwrap(),
        )
        .unwrap();
        let leads = |r: &ControlProcess| r.log().matches("leading the controllers").count();
        let mut seen: Vec<usize> = vec![0; 3];
        let mut leader = wait_until("a leader", Duration::from_secs(20), || {
            let l = replicas.iter().position(|r| leads(r) > 0);
            async move { l }
        })
        .await;
        seen[leader] = 1;
        let mut times = Vec::new();
        for k in 0..20 {
            let killed = Instant::now();
            replicas[leader].kill();
            let name = format!("k{k}");
            // A create already sent to the killed replica fails; the
            // client's to retry (as with kube-apiserver).
            let mut tries = 0;
            while let Err(e) = c.create(&service(&name)).await {
                // It may have landed before the replica died.
                if e.is_conflict() {
                    break;
                }
                tries += 1;
                assert!(tries < 10, "create {name} after the kill: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            wait_until(
                "controllers on another replica",
                Duration::from_secs(15),
                || {
                    let c = c.clone();
                    let name = name.clone();
                    async move { c.get::<Endpoints>("default", &name).await.ok() }
                },
            )
            .await;
            times.push(killed.elapsed());
            let next = (0..3)
                .find(|&i| i != leader && leads(&replicas[i]) > seen[i])
                .expect("a new leader logged it leads");
            seen[next] = leads(&replicas[next]);
            replicas[leader].start_again();
            seen[leader] = leads(&replicas[leader]);
            leader = next;
        }
        times.sort();
        let p =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        eprintln!(
            "controller failover over {} kills: p50 {:?}, p99 {:?}, max {:?} (lease TTL 2s)",
            times.len(),
            p(0.5),
            p(0.99),
            times.last().unwrap()
        );
        assert!(*times.last().unwrap() < Duration::from_secs(5), "{times:?}");
    });
}

/// A leader cut off from etcd (here: its only member killed) stops leading
/// on its own before its lease can have expired at etcd, so another replica
/// can only start after this one stopped.
#[test]
fn a_leader_cut_off_from_etcd_steps_down_before_its_lease_expires() {
    let mut etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let rt = etcd.runtime();
    let ttl = Duration::from_secs(3);
    let mut leadership = rt
        .block_on(rt.spawn(async move {
            let cfg = EtcdConfig::new(vec![endpoints]);
            let client = keel_control::store::etcd::connect(&cfg).await.unwrap();
            Elector::new(client, &cfg, "cut-off", ttl)
                .acquire()
                .await
                .unwrap()
        }))
        .unwrap();
    // Let at least one keep-alive be answered.
    std::thread::sleep(Duration::from_millis(1500));
    let cut = Instant::now();
    etcd.kill(0);
    let stepped_down = rt
        .block_on(rt.spawn(async move {
            tokio::time::timeout(Duration::from_secs(10), leadership.wait_lost())
                .await
                .expect("stepped down");
            Instant::now()
        }))
        .unwrap();
    let after = stepped_down - cut;
    eprintln!("stepped down {after:?} after losing etcd (lease TTL {ttl:?})");
    assert!(after < ttl, "{after:?}: the lease may have expired first");
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// Replicas on one etcd must hold the same key: a replica whose key file
/// cannot open what the others seal refuses to start (naming the flag), as
/// does one without a key once Secrets are sealed; nothing is overwritten,
/// and a replica with the right key reads the Secret.
#[test]
fn a_replica_with_another_key_refuses_to_start() {
    use keel_control::store::envelope::KeyRing;
    let etcd = EtcdCluster::single();
    let endpoints = etcd.endpoints();
    let shared = std::path::PathBuf::from(etcd.encryption_key_file());
    etcd.block_on(|| async {
        let other = tempfile::tempdir().unwrap();
        let config = |ring: KeyRing| StoreConfig {
            encryption: Some(std::sync::Arc::new(ring)),
            ..StoreConfig::default()
        };
        let cfg = || EtcdConfig::new(vec![endpoints.clone()]);
        let a = Store::open_etcd(
            cfg(),
            config(KeyRing::load_or_create(&shared, false).unwrap()),
        )
        .await
        .unwrap();
        let secret: keel_api::Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "default"},
            "stringData": {"password": "v"}
        }))
        .unwrap();
        a.create(secret).await.unwrap();
        let wrong = KeyRing::load_or_create(&other.path().join("k"), true).unwrap();
        let Err(e) = Store::open_etcd(cfg(), config(wrong)).await else {
            panic!("a replica with another key started");
        };
        assert!(e.to_string().contains("--encryption-key-file"), "{e}");
        let Err(e) = Store::open_etcd(cfg(), StoreConfig::default()).await else {
            panic!("a replica without a key started");
        };
        assert!(e.to_string().contains("Secret default/db"), "{e}");
        let b = Store::open_etcd(
            cfg(),
            config(KeyRing::load_or_create(&shared, false).unwrap()),
        )
        .await
        .unwrap();
        assert!(b.snapshot().get(Kind::Secret, "default/db").is_some());
    });
}

/// etcd's space quota reached (its NOSPACE alarm) is keel-control's full
/// disk: writes get 507 naming it, `/readyz` fails while `/healthz` stays
/// ok, deletes are still taken, and once the operator has compacted,
/// defragmented and disarmed etcd, writes work again with no restart.
#[test]
fn etcd_nospace_alarm_refuses_writes_fails_readyz_and_recovers_when_disarmed() {
    use etcd_client::{AlarmAction, AlarmOptions, AlarmType, CompactionOptions};
    use keel_api::client::{ClientError, HttpMethod};
    let etcd = EtcdCluster::start_args(1, &["--quota-backend-bytes", &(8u64 << 20).to_string()]);
    let endpoints = etcd.endpoints();
    etcd.block_on(|| async {
        let key = etcd.encryption_key_file();
        let control = ControlProcess::start(&[
            "--store",
            "etcd",
            "--etcd-endpoints",
            endpoints.as_str(),
            "--encryption-key-file",
            key.as_str(),
        ]);
        let c = control.client();
        let cm = |i: usize| -> keel_api::ConfigMap {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("cm-{i}"), "namespace": "default"},
                "data": {"blob": "z".repeat(256 << 10)}
            }))
            .unwrap()
        };
        let mut created = 0;
        let refusal = loop {
            assert!(created < 100, "an 8 MiB etcd quota never filled");
            match c.create(&cm(created)).await {
                Ok(_) => created += 1,
                Err(ClientError::Api(s)) => break *s,
                Err(e) => panic!("expected an API error, got {e}"),
            }
        };
        println!("etcd's quota reached after {created} ConfigMaps of 256 KiB: {refusal:?}");
        assert_eq!(refusal.code, 507, "{refusal:?}");
        assert_eq!(refusal.reason, "InsufficientStorage");
        assert!(
            refusal.message.contains("database space exceeded")
                && refusal.message.contains("etcd's space quota is reached")
                && !refusal.message.contains("disk"),
            "{}",
            refusal.message
        );
        let readyz = c.request_raw(HttpMethod::GET, "/readyz", None).await;
        let Err(ClientError::Api(s)) = readyz else {
            panic!("/readyz did not fail while etcd's quota is reached: {readyz:?}");
        };
        assert!(s.message.contains("NOSPACE"), "{}", s.message);
        c.request_raw(HttpMethod::GET, "/healthz", None)
            .await
            .unwrap();
        // Another write: the same clear answer.
        assert_eq!(
            c.create(&cm(1000)).await.map(drop).map_err(|e| match e {
                ClientError::Api(s) => s.code,
                other => panic!("{other}"),
            }),
            Err(507)
        );
        // Deletes are taken while the alarm is raised.
        for i in 0..created {
            c.delete::<keel_api::ConfigMap>("default", &format!("cm-{i}"))
                .await
                .unwrap();
        }
        // The operator's recovery, as etcd's maintenance guide has it.
        let mut etcd_client = etcd_client::Client::connect([endpoints.as_str()], None)
            .await
            .unwrap();
        let revision = etcd_client
            .get("x", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        etcd_client
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        etcd_client.defragment().await.unwrap();
        let raised = etcd_client
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await
            .unwrap();
        assert!(
            raised
                .alarms()
                .iter()
                .any(|a| a.alarm() == AlarmType::Nospace),
            "no NOSPACE alarm raised"
        );
        for a in raised.alarms() {
            let mut member = AlarmOptions::new();
            member.with_member(a.member_id());
            etcd_client
                .alarm(AlarmAction::Deactivate, a.alarm(), Some(member))
                .await
                .unwrap();
        }
        // Ready again without a restart, and writes are taken.
        let ready = wait_until("/readyz ok again", Duration::from_secs(15), || {
            let c = c.clone();
            async move { c.request_raw(HttpMethod::GET, "/readyz", None).await.ok() }
        })
        .await;
        assert!(String::from_utf8_lossy(&ready).contains("[+]store ok"));
        c.create(&cm(2000)).await.unwrap();
        assert!(
            control.log().contains("NOSPACE alarm cleared"),
            "{}",
            control.log()
        );
    });
}
