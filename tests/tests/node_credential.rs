//! A node's credential against a real keel-control: `keel_agent::join`
//! stores it (key 0600), and the agent's renewal replaces it before it
//! expires (a 9 s lifetime here: renewal is due two thirds in), the new
//! certificate presented on the next connection and written to disk.

use std::time::Duration;

use keel_api::{
    Node,
    client::{Client, ClientConfig, HttpMethod, ListParams},
    pki::{BOOTSTRAP_TOKENS_PATH, Validity},
};
use keel_tests::process::ControlProcess;

#[tokio::test]
async fn a_joined_node_renews_its_certificate_before_it_expires() {
    let control = ControlProcess::start(&["--node-cert-lifetime", "9s"]);
    let dir = tempfile::Builder::new()
        .prefix("keel-t-cred-")
        .tempdir()
        .unwrap();
    let path = control.join_node("renewer", dir.path()).await;
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("credential/node.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = ClientConfig::load(&path).unwrap();
    let identity = config.identity.clone().unwrap();
    let client = Client::new(&config).unwrap();
    client
        .list::<Node>("", &ListParams::default())
        .await
        .expect("the joined credential works");
    let first = identity.cert_der();
    let v = Validity::of(&first).unwrap();
    assert!(v.lifetime() < Duration::from_secs(11), "{v:?}");

    let renewal = tokio::spawn(keel_agent::join::renew_periodically(
        client.clone(),
        identity.clone(),
        "renewer".into(),
        dir.path().to_path_buf(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while identity.cert_der() == first {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no renewal within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = identity.cert_der();
    let on_disk = std::fs::read(dir.path().join("credential/node.pem")).unwrap();
    let on_disk: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(&on_disk).unwrap();
    assert_eq!(on_disk.as_ref(), second.as_slice(), "written to disk");
    assert!(Validity::of(&second).unwrap().not_after > v.not_after);
    // Past the first certificate's expiry, a fresh client with the stored
    // credential still gets in.
    tokio::time::sleep(
        v.not_after
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
            + Duration::from_secs(1),
    )
    .await;
    let fresh = Client::new(&ClientConfig::load(&path).unwrap()).unwrap();
    fresh
        .list::<Node>("", &ListParams::default())
        .await
        .expect("the renewed credential works");
    renewal.abort();
}

/// Two replicas on etcd: one CA, a token created on one joins through the
/// other, and a Node deleted on one revokes its credential on the other.
#[test]
fn replicas_on_etcd_share_the_ca_tokens_and_revocations() {
    let etcd = keel_tests::etcd::EtcdCluster::single();
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
        let a = ControlProcess::start(&flags);
        let b = ControlProcess::start(&flags);
        assert_eq!(
            std::fs::read(a.ca_path()).unwrap(),
            std::fs::read(b.ca_path()).unwrap(),
            "one cluster CA"
        );
        b.client()
            .list::<Node>("", &ListParams::default())
            .await
            .expect("b serves with a certificate of the shared CA");
        let info = a.create_token().await;
        let listed = b
            .client()
            .request_raw(HttpMethod::GET, BOOTSTRAP_TOKENS_PATH, None)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&listed).contains(&info.id));
        let dir = tempfile::Builder::new()
            .prefix("keel-t-cred-")
            .tempdir()
            .unwrap();
        let path = keel_agent::join::join(
            &b.url(),
            info.token.as_deref().unwrap(),
            info.ca_hash.as_deref().unwrap(),
            "etcd-node",
            dir.path(),
        )
        .await
        .expect("a token made on one replica joins through another");
        let on = |url: String| {
            let mut config = ClientConfig::load(&path).unwrap();
            config.server = url;
            Client::new(&config).unwrap()
        };
        let (via_a, via_b) = (on(a.url()), on(b.url()));
        let node: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "etcd-node"}})).unwrap();
        via_a
            .create(&node)
            .await
            .expect("a node creates its own Node");
        via_b
            .list::<Node>("", &ListParams::default())
            .await
            .unwrap();
        a.client().delete::<Node>("", "etcd-node").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match via_b.list::<Node>("", &ListParams::default()).await {
                Err(keel_api::client::ClientError::Api(s)) if s.code == 401 => {
                    assert!(s.message.contains("revoked"), "{}", s.message);
                    break;
                }
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "b still accepts the revoked credential: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
}
