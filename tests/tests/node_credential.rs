//! A node's credential against a real keel-control: `keel_agent::join`
//! stores it (key 0600), and the agent's renewal replaces it before it
//! expires (a 9 s lifetime here: renewal is due two thirds in), the new
//! certificate presented on the next connection and written to disk.

use std::time::Duration;

use keel_api::{
    Node,
    client::{Client, ClientConfig, HttpMethod, ListParams},
    pki::{BOOTSTRAP_TOKENS_PATH, TokenInfo, Validity},
};
use keel_tests::process::ControlProcess;

#[tokio::test]
async fn a_joined_node_renews_its_certificate_before_it_expires() {
    let control = ControlProcess::start(&["--node-cert-lifetime", "9s"]);
    let admin = control.client();
    let created = admin
        .request_raw(
            HttpMethod::POST,
            BOOTSTRAP_TOKENS_PATH,
            Some(b"{}".to_vec()),
        )
        .await
        .unwrap();
    let info: TokenInfo = serde_json::from_slice(&created).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("keel-t-cred-")
        .tempdir()
        .unwrap();
    let path = keel_agent::join::join(
        &control.url(),
        info.token.as_deref().unwrap(),
        info.ca_hash.as_deref().unwrap(),
        "renewer",
        dir.path(),
    )
    .await
    .unwrap();
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
