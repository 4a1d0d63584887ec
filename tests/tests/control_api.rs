//! keel-control's API against the real binary: CRUD, selectors, conflicts,
//! validation, authentication, watch (including resume after a restart and
//! expiry), persistence, the status subresource and TLS. The tests of what
//! the store decides run twice: on redb (`redb::…`) and on a real etcd
//! (`etcd::…`, keel-control with `--store etcd` in the etcd's namespace).

use std::time::Duration;

use keel_api::{
    EventType, Pod, Service,
    client::{Client, ClientConfig, ClientError, ListParams},
};
use keel_tests::{etcd::EtcdCluster, process::ControlProcess};

/// keel-control's flags: the store's, then the test's own.
fn args<'a>(store: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    store
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

/// Runs each named test (an `async fn(store: &[String])`) on redb (no store
/// flags) and on a fresh single-member etcd.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&[]).await
                }
            )*
        }
        mod etcd {
            $(
                #[test]
                fn $name() {
                    let etcd = super::EtcdCluster::single();
                    let store = vec![
                        "--store".to_string(),
                        "etcd".to_string(),
                        "--etcd-endpoints".to_string(),
                        etcd.endpoints(),
                    ];
                    etcd.block_on(|| super::$name(&store));
                }
            )*
        }
    };
}

on_both_stores!(
    crud_selectors_and_conflicts,
    bad_input_is_refused_naming_the_field_and_changes_nothing,
    watch_streams_changes_and_resumes_after_restart,
    watch_from_compacted_history_says_relist,
    status_is_a_separate_subresource,
    secrets_are_sealed_at_rest_and_read_back_after_restart,
);

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
    .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}
    }))
    .unwrap()
}

fn api_code(e: ClientError) -> (u16, keel_api::Status) {
    match e {
        ClientError::Api(s) => (s.code, *s),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn crud_selectors_and_conflicts(store: &[String]) {
    let control = ControlProcess::start(&args(store, &[]));
    let c = control.client();
    for (n, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        c.create(&pod(n, app)).await.unwrap();
    }
    let web = c
        .list::<Pod>("default", &ListParams::labels("app=web"))
        .await
        .unwrap();
    assert_eq!(
        web.items
            .iter()
            .map(|p| p.metadata.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let not_web = c
        .list::<Pod>("", &ListParams::labels("app notin (web)"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 1);
    assert!(
        c.list::<Pod>("other", &ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let a: Pod = c.get("default", "a").await.unwrap();
    let (code, s) = api_code(c.create(&pod("a", "web")).await.unwrap_err());
    assert_eq!((code, s.reason.as_str()), (409, "AlreadyExists"));

    // Optimistic concurrency: an update from a stale read is refused.
    let mut first = a.clone();
    first.metadata.labels.insert("v".into(), "1".into());
    c.update(&first).await.unwrap();
    let mut stale = a.clone();
    stale.metadata.labels.insert("v".into(), "2".into());
    let (code, s) = api_code(c.update(&stale).await.unwrap_err());
    assert_eq!(code, 409, "{s:?}");
    assert!(s.message.contains("modified"), "{}", s.message);

    c.delete::<Pod>("default", "a").await.unwrap();
    assert!(
        c.get::<Pod>("default", "a")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.delete::<Pod>("default", "a")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

async fn bad_input_is_refused_naming_the_field_and_changes_nothing(store: &[String]) {
    let control = ControlProcess::start(&args(store, &[]));
    let c = control.client();
    let mut bad = pod("bad", "web");
    bad.spec.containers[0].ports[0].container_port = 70000;
    let (code, s) = api_code(c.create(&bad).await.unwrap_err());
    assert_eq!(code, 422);
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.containers[0].ports[0].containerPort");
    assert!(causes[0].message.contains("70000"));

    let raw = br#"{"metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","imagePolicy":"Always"}]}}"#;
    let err = c
        .request_raw(
            keel_api::client::HttpMethod::POST,
            "/api/v1/namespaces/default/pods",
            Some(raw.to_vec()),
        )
        .await
        .unwrap_err();
    let (code, s) = api_code(err);
    assert_eq!(code, 400);
    assert!(
        s.message.contains("spec.containers[0]") && s.message.contains("imagePolicy"),
        "{}",
        s.message
    );

    let other_ns = br#"{"metadata":{"name":"x","namespace":"prod"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let (code, s) = api_code(
        c.request_raw(
            keel_api::client::HttpMethod::POST,
            "/api/v1/namespaces/default/pods",
            Some(other_ns.to_vec()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 400);
    assert!(s.message.contains("metadata.namespace"), "{}", s.message);

    let ep = br#"{"metadata":{"name":"web"},"subsets":[]}"#;
    let (code, _) = api_code(
        c.request_raw(
            keel_api::client::HttpMethod::POST,
            "/api/v1/namespaces/default/endpoints",
            Some(ep.to_vec()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 403, "users may not write endpoints");

    let mut dup = service("web");
    dup.spec.ports.push(dup.spec.ports[0].clone());
    let (code, s) = api_code(c.create(&dup).await.unwrap_err());
    assert_eq!(code, 422);
    assert_eq!(
        s.details
            .unwrap()
            .causes
            .iter()
            .filter(|c| c.field.starts_with("spec.ports[1]"))
            .count(),
        2
    );

    assert!(
        c.list::<Pod>("", &ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Nothing but the default/kubernetes Service keel-control keeps itself.
    assert!(
        c.list::<Service>("", &ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|s| s.metadata.name == "kubernetes")
    );
    let (code, _) = api_code(
        c.list::<Pod>("", &ListParams::labels("a in b"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    let (code, _) = api_code(
        c.list::<Pod>("", &ListParams::fields("spec.image=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let control = ControlProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let c = Client::new(
        &ClientConfig::from_parts(&control.url(), &wrong, Some(&control.ca_path())).unwrap(),
    )
    .unwrap();
    let (code, s) = api_code(c.list::<Pod>("", &ListParams::default()).await.unwrap_err());
    assert_eq!((code, s.reason.as_str()), (401, "Unauthorized"));
    let (code, _) = api_code(c.create(&pod("x", "y")).await.unwrap_err());
    assert_eq!(code, 401);
    // The token file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(control.data_dir().join("token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        control
            .client()
            .list::<Pod>("", &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

async fn watch_streams_changes_and_resumes_after_restart(store: &[String]) {
    let mut control = ControlProcess::start(&args(store, &[]));
    let c = control.client();
    let list = c
        .list::<Pod>("default", &ListParams::default())
        .await
        .unwrap();
    let mut w = c
        .watch::<Pod>(
            "default",
            &ListParams::default(),
            &list.metadata.resource_version,
        )
        .await
        .unwrap();
    c.create(&pod("a", "web")).await.unwrap();
    let mut a: Pod = c.get("default", "a").await.unwrap();
    a.metadata.labels.insert("v".into(), "2".into());
    // Unconditional: the scheduler writes this pod's status meanwhile.
    a.metadata.resource_version.clear();
    c.update(&a).await.unwrap();
    c.delete::<Pod>("default", "a").await.unwrap();
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if e.type_ == EventType::Bookmark {
            continue;
        }
        assert_eq!(e.object.metadata.name, "a");
        seen.push((e.type_, e.object.metadata.labels.get("v").cloned()));
        if e.type_ == EventType::Deleted {
            break;
        }
    }
    assert_eq!(seen.first(), Some(&(EventType::Added, None)));
    assert!(
        seen.contains(&(EventType::Modified, Some("2".into()))),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&(EventType::Deleted, Some("2".into()))));
    // Remember where we are; changes land while the server restarts.
    let rv = c
        .list::<Pod>("default", &ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    c.create(&pod("before-restart", "web")).await.unwrap();
    let svc: Service = c.create(&service("web")).await.unwrap();
    control.restart();
    let c = control.client();
    c.create(&pod("after-restart", "web")).await.unwrap();
    let mut w = c
        .watch::<Pod>("default", &ListParams::default(), &rv)
        .await
        .unwrap();
    let mut names = Vec::new();
    while names.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if e.type_ == EventType::Added {
            names.push(e.object.metadata.name.clone());
        }
    }
    assert_eq!(
        names,
        ["before-restart", "after-restart"],
        "resumed from the old resourceVersion, nothing missed"
    );
    // Everything persisted, allocations included.
    let again: Service = c.get("default", "web").await.unwrap();
    assert_eq!(
        (
            again.metadata.uid,
            again.spec.cluster_ip,
            again.spec.ports[0].node_port
        ),
        (
            svc.metadata.uid,
            svc.spec.cluster_ip,
            svc.spec.ports[0].node_port
        )
    );
}

async fn watch_from_compacted_history_says_relist(store: &[String]) {
    let control = ControlProcess::start(&args(store, &["--watch-history", "5"]));
    let c = control.client();
    for i in 0..20 {
        c.create(&pod(&format!("p{i}"), "web")).await.unwrap();
    }
    let err = c
        .watch::<Pod>("default", &ListParams::default(), "1")
        .await
        .err()
        .expect("too old");
    let (code, s) = api_code(err);
    assert_eq!((code, s.reason.as_str()), (410, "Expired"));
    assert!(s.message.contains("relist"), "{}", s.message);
    // From a recent version it works; with "0" it starts with every object.
    let mut w = c
        .watch::<Pod>("default", &ListParams::labels("app=web"), "0")
        .await
        .unwrap();
    let mut added = 0;
    while added < 20 {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.type_, EventType::Added);
        added += 1;
    }
}

async fn status_is_a_separate_subresource(store: &[String]) {
    let control = ControlProcess::start(&args(store, &[]));
    let c = control.client();
    let created: Pod = c.create(&pod("a", "web")).await.unwrap();
    let mut st = created.clone();
    st.metadata.resource_version.clear();
    st.status.pod_ip = "10.244.1.9".into();
    st.metadata.labels.insert("ignored".into(), "yes".into());
    let after: Pod = c.update_status(&st).await.unwrap();
    assert_eq!(after.status.pod_ip, "10.244.1.9");
    assert!(
        !after.metadata.labels.contains_key("ignored"),
        "a status write changes only status"
    );
    let mut spec = after.clone();
    spec.metadata.resource_version.clear();
    spec.status = Default::default();
    spec.metadata.labels.insert("tier".into(), "front".into());
    let after: Pod = c.update(&spec).await.unwrap();
    assert_eq!(
        after.status.pod_ip, "10.244.1.9",
        "a spec write keeps the status"
    );
    assert_eq!(after.metadata.labels["tier"], "front");
}

#[tokio::test]
async fn serves_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let control = ControlProcess::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(control.client_config_path()).unwrap()).unwrap();
    assert!(config["server"].as_str().unwrap().starts_with("https://"));
    let c = control.client();
    c.create(&pod("a", "web")).await.unwrap();
    assert_eq!(
        c.list::<Pod>("", &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // Plain HTTP to the TLS port gets nowhere.
    let plain = Client::new(
        &ClientConfig::from_parts(
            &control.url().replace("https://", "http://"),
            &control.data_dir().join("token"),
            None,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(plain.list::<Pod>("", &ListParams::default()).await.is_err());
    // A client that does not trust the certificate is refused.
    let untrusting = Client::new(
        &ClientConfig::from_parts(&control.url(), &control.data_dir().join("token"), None).unwrap(),
    )
    .unwrap();
    assert!(
        untrusting
            .list::<Pod>("", &ListParams::default())
            .await
            .unwrap_err()
            .is_unreachable()
    );
}

#[tokio::test]
async fn tls_with_the_cluster_ca_is_the_default_and_plain_http_is_explicit() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut control = ControlProcess::start(&[]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(control.client_config_path()).unwrap()).unwrap();
    assert!(config["server"].as_str().unwrap().starts_with("https://"));
    assert_eq!(
        config["caFile"].as_str().unwrap(),
        control.ca_path().to_str().unwrap(),
        "client.json trusts the cluster CA"
    );
    let pki = control.data_dir().join("pki");
    assert_eq!(mode(control.data_dir()), 0o700);
    assert_eq!(mode(&pki), 0o700);
    assert_eq!(mode(&pki.join("ca.key")), 0o600);
    assert_eq!(mode(&pki.join("serving.key")), 0o600);
    let c = control.client();
    c.create(&pod("a", "web")).await.unwrap();
    // The join discovery endpoint answers without credentials, with the CA.
    let info = keel_api::client::cluster_info_unverified(&control.url())
        .await
        .unwrap();
    assert_eq!(
        info.ca_pem,
        std::fs::read_to_string(control.ca_path()).unwrap()
    );
    // A restart reuses the CA and the serving certificate.
    let (ca, serving) = (
        std::fs::read(control.ca_path()).unwrap(),
        std::fs::read(pki.join("serving.crt")).unwrap(),
    );
    control.restart();
    assert_eq!(std::fs::read(control.ca_path()).unwrap(), ca);
    assert_eq!(std::fs::read(pki.join("serving.crt")).unwrap(), serving);
    control.client().get::<Pod>("default", "a").await.unwrap();

    // Plain HTTP only when asked for.
    let plain = ControlProcess::start(&["--insecure-http"]);
    assert!(plain.url().starts_with("http://"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plain.client_config_path()).unwrap()).unwrap();
    assert!(config["server"].as_str().unwrap().starts_with("http://"));
    assert!(config.get("caFile").is_none());
    plain.client().create(&pod("a", "web")).await.unwrap();
}

/// A Secret's value is nowhere in the store in the clear (nor base64 of
/// it): not in the redb file, not in etcd's value for its key; keel-control
/// restarted on the same data (and key file) reads it back.
async fn secrets_are_sealed_at_rest_and_read_back_after_restart(store: &[String]) {
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;
    let mut control = ControlProcess::start(&args(store, &[]));
    let c = control.client();
    let value = format!("pl41n-{}", std::process::id());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
    let secret: keel_api::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "namespace": "default"},
        "stringData": {"password": value}
    }))
    .unwrap();
    c.create(&secret).await.unwrap();
    let key = control.data_dir().join("encryption.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    if store.is_empty() {
        control.stop();
        let raw = std::fs::read(control.data_dir().join("state.redb")).unwrap();
        assert!(
            contains(&raw, "k8s:enc:xchacha20poly1305:v1:"),
            "no sealed value in the file"
        );
        assert!(
            !contains(&raw, &value),
            "the redb file holds the Secret in the clear"
        );
        assert!(
            !contains(&raw, &b64),
            "the redb file holds the Secret's base64"
        );
        control.start_again();
    } else {
        let cfg = keel_control::store::etcd::EtcdConfig::new(vec![store[3].clone()]);
        let etcd = keel_control::store::etcd::connect(&cfg).await.unwrap();
        let resp = etcd
            .kv_client()
            .get("/keel/registry/secrets/default/db", None)
            .await
            .unwrap();
        let raw = resp
            .kvs()
            .first()
            .expect("the Secret's key in etcd")
            .value();
        assert!(
            raw.starts_with(b"k8s:enc:xchacha20poly1305:v1:"),
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert!(!contains(raw, &value), "etcd holds the Secret in the clear");
        assert!(!contains(raw, &b64), "etcd holds the Secret's base64");
        control.restart();
    }
    let c = control.client();
    let back: keel_api::Secret = c.get("default", "db").await.unwrap();
    assert_eq!(back.data.get("password"), Some(&b64));
}

/// One hostile client's behaviour.
#[derive(Clone, Copy)]
enum Hostile {
    /// Connects and sends nothing (a TLS handshake that never starts).
    Silent,
    /// Starts a TLS record announcing a ClientHello, then stalls.
    HalfHello,
    /// Finishes the handshake, then sends a request's headers a byte a second.
    SlowHeaders,
}

/// Keeps one hostile connection open from `from` until `stop`, opening a
/// new one each time keel-control closes it. Returns how many it opened.
async fn hostile(
    from: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
    how: Hostile,
    tls: std::sync::Arc<rustls::ClientConfig>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut opened = 0;
    while !*stop.borrow() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        let Ok(mut tcp) = socket.connect(to).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened += 1;
        let mut stop = stop.clone();
        let hold = async {
            let mut buf = [0u8; 64];
            match how {
                Hostile::Silent => {
                    let _ = tcp.read(&mut buf).await;
                }
                Hostile::HalfHello => {
                    // Handshake record, TLS 1.0, 512 bytes announced; 3 sent.
                    let _ = tcp
                        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
                        .await;
                    let _ = tcp.read(&mut buf).await;
                }
                Hostile::SlowHeaders => {
                    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                    let Ok(mut s) = tokio_rustls::TlsConnector::from(tls.clone())
                        .connect(name, tcp)
                        .await
                    else {
                        return;
                    };
                    for b in b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nX-Slow: " {
                        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let _ = s.read(&mut buf).await;
                }
            }
        };
        tokio::select! {
            _ = hold => {}
            _ = stop.changed() => {}
        }
    }
    opened
}

/// 2,000 hostile connections from four addresses (silent, half a TLS
/// hello, headers a byte a second), renewed as keel-control cuts them,
/// while a legitimate client keeps working: every one of its requests, each
/// on a new connection, succeeds (latency printed, not asserted), and the
/// log stays short. keel-control starts with the open-file soft limit at
/// 1024, as a service manager leaves it; it raises the limit itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_stop_legitimate_requests() {
    let control = ControlProcess::start_with(
        &["--client-read-timeout", "4s"],
        keel_tests::process::ControlOptions {
            nofile_soft: Some(1024),
            ..Default::default()
        },
    );
    let to: std::net::SocketAddr = format!("127.0.0.1:{}", control.port).parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(control.ca_path()).unwrap();
    for c in <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
        &ca_pem,
    ) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let log_before = control.log().lines().count();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut flood = Vec::new();
    for host in 2..=5u8 {
        let from = std::net::Ipv4Addr::new(127, 0, 0, host);
        for i in 0..500 {
            let how = match i % 3 {
                0 => Hostile::Silent,
                1 => Hostile::HalfHello,
                _ => Hostile::SlowHeaders,
            };
            flood.push(tokio::spawn(hostile(
                from,
                to,
                how,
                tls.clone(),
                stop.clone(),
            )));
        }
    }
    // Let the flood build up, then work as a client would.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The legitimate client on a thread and runtime of its own, so its
    // latency is keel-control's, not this test's flood tasks'.
    let config = control.client_config_path();
    let (mut latencies, failures) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            for i in 0..60 {
                let c = Client::new(&ClientConfig::load(&config).unwrap()).unwrap();
                let started = std::time::Instant::now();
                let result = if i % 4 == 0 {
                    c.create(&pod(&format!("legit-{i}"), "web")).await.map(drop)
                } else {
                    c.list::<Pod>("default", &ListParams::default())
                        .await
                        .map(drop)
                };
                match result {
                    Ok(()) => latencies.push(started.elapsed()),
                    Err(e) => failures.push(format!("request {i}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (latencies, failures)
        })
    })
    .await
    .unwrap();
    stop_tx.send(true).unwrap();
    let mut opened = 0;
    for f in flood {
        opened += f.await.unwrap();
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let log = control.log();
    let lines = log.lines().count() - log_before;
    println!(
        "flood: {opened} hostile connections opened (2000 held at a time); {} legitimate requests, p50 {:?}, p99 {:?}, max {:?}; {lines} log lines",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap(),
    );
    assert!(
        failures.is_empty(),
        "legitimate requests failed: {failures:#?}"
    );
    assert!(opened >= 2000, "the flood opened only {opened} connections");
    // One line per legitimate request, a few warnings; not one per hostile
    // connection.
    assert!(lines < 400, "{lines} log lines during the flood:\n{log}");
}

/// A tmpfs this test mounts on a unique temporary directory (keel's
/// "keel-t" prefix); unmounted and removed on drop, success or failure.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keel-t-tmpfs-")
            .tempdir()
            .unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={mib}m,mode=0700").as_str()),
        )
        .expect("mounting a tmpfs (needs root)");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// keel-control's data on a 24 MiB tmpfs that fills up: writes get 507
/// naming the full disk (not 500 "Previous I/O error"), /readyz says so
/// while /healthz stays ok, deletes still work, and once space is freed
/// writes work again, with no restart.
#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_takes_deletes_and_recovers() {
    use keel_api::client::HttpMethod;
    let disk = Tmpfs::mount(24);
    let data = disk.0.path().join("data");
    // What an operator will delete to make room.
    let filler = disk.0.path().join("filler");
    std::fs::write(&filler, vec![1u8; 6 << 20]).unwrap();
    let control = ControlProcess::start_with(
        &["--disk-reserve-mib", "2"],
        keel_tests::process::ControlOptions {
            data_dir: Some(data),
            ..Default::default()
        },
    );
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
        assert!(created < 200, "24 MiB never filled");
        match c.create(&cm(created)).await {
            Ok(_) => created += 1,
            Err(e) => break api_code(e),
        }
    };
    println!("disk full after {created} ConfigMaps of 256 KiB: {refusal:?}");
    assert_eq!(refusal.0, 507, "{refusal:?}");
    assert_eq!(refusal.1.reason, "InsufficientStorage");
    assert!(
        refusal
            .1
            .message
            .contains("keel-control's store has no space left (the disk holding its file is full"),
        "{}",
        refusal.1.message
    );
    assert!(created >= 5, "only {created} writes before the disk filled");
    // Not ready, still live; the next write gets the same clear answer.
    assert!(
        c.request_raw(HttpMethod::GET, "/readyz", None)
            .await
            .is_err()
    );
    c.request_raw(HttpMethod::GET, "/healthz", None)
        .await
        .unwrap();
    let again = api_code(c.create(&cm(1000)).await.unwrap_err());
    assert_eq!(again.0, 507);
    // Deletes are taken while the disk is full.
    for i in 0..3 {
        c.delete::<keel_api::ConfigMap>("default", &format!("cm-{i}"))
            .await
            .unwrap();
    }
    // The operator frees space: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    c.create(&cm(2000)).await.unwrap();
    let ready = c
        .request_raw(HttpMethod::GET, "/readyz", None)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&ready).contains("[+]store ok"));
    assert_eq!(
        c.list::<keel_api::ConfigMap>("default", &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        created - 3 + 1
    );
}

/// keel-control killed with SIGKILL three times while eight clients create
/// objects as fast as it takes them: after each restart every create it
/// acknowledged is there (redb commits before it answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_under_concurrent_writers() {
    use std::{
        collections::BTreeSet,
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
    };
    let mut control = ControlProcess::start(&[]);
    let mut acked: BTreeSet<String> = BTreeSet::new();
    for round in 0..3u64 {
        let c = control.client();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (c, stop) = (c.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut ok = Vec::new();
                    // Bounded: at most 2,000 creates per writer and round.
                    for i in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let name = format!("r{round}-w{w}-{i}");
                        let cm: keel_api::ConfigMap = serde_json::from_value(serde_json::json!({
                            "metadata": {"name": name, "namespace": "default"},
                            "data": {"round": round.to_string()},
                        }))
                        .unwrap();
                        match c.create(&cm).await {
                            Ok(_) => ok.push(name),
                            // The server died under this request: not acknowledged.
                            Err(_) => break,
                        }
                    }
                    ok
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1_000 + 300 * round)).await;
        control.kill();
        stop.store(true, Ordering::Relaxed);
        let before = acked.len();
        for w in writers {
            acked.extend(w.await.unwrap());
        }
        assert!(
            acked.len() > before,
            "round {round}: no write was acknowledged"
        );
        control.start_again();
        let have: BTreeSet<String> = control
            .client()
            .list::<keel_api::ConfigMap>("default", &ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.metadata.name)
            .collect();
        let lost: Vec<&String> = acked.difference(&have).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged creates lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
    eprintln!(
        "{} creates acknowledged across 3 SIGKILLs, none lost",
        acked.len()
    );
}
