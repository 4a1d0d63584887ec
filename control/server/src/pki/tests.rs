//! The CA, the serving certificate's SANs and renewal, node certificates.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, SystemTime},
};

use keel_api::pki::Validity;

use super::{
    ClusterCa,
    peer::PeerCert,
    sans::{SanInputs, sans, url_host},
    serving::{Reissue, ServingFiles, decide, ensure},
};

fn inputs(listen: &str) -> SanInputs {
    SanInputs {
        listen: listen.parse().unwrap(),
        local_addrs: vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ],
        hostname: Some("CP-1".into()),
        advertise_host: Some("api.example.com".into()),
        service_ip: Ipv4Addr::new(10, 96, 0, 1),
        cluster_domain: "cluster.local".into(),
    }
}

#[test]
fn sans_cover_listen_host_advertise_and_the_kubernetes_service() {
    let got = sans(&inputs("192.168.1.10:6443"));
    for want in [
        "localhost",
        "127.0.0.1",
        "192.168.1.10",
        "cp-1",
        "api.example.com",
        "10.96.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(got.iter().any(|s| s == want), "{want} missing from {got:?}");
    }
    assert!(
        !got.iter().any(|s| s == "10.0.0.5"),
        "a specific listen address: only it"
    );
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(got, sorted, "sorted, no duplicates");
}

#[test]
fn an_unspecified_listen_address_covers_every_local_address() {
    let got = sans(&inputs("0.0.0.0:6443"));
    assert!(got.iter().any(|s| s == "10.0.0.5"), "{got:?}");
    assert!(!got.iter().any(|s| s == "0.0.0.0"), "{got:?}");
}

#[test]
fn url_hosts() {
    assert_eq!(url_host("https://a.b:6443/x").as_deref(), Some("a.b"));
    assert_eq!(url_host("https://10.0.0.1").as_deref(), Some("10.0.0.1"));
    assert_eq!(
        url_host("https://[fd00::1]:6443").as_deref(),
        Some("fd00::1")
    );
    assert_eq!(url_host("https://").as_deref(), None);
}

#[test]
fn the_serving_certificate_is_reissued_when_sans_change_or_renewal_is_due() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    let v = Validity {
        not_before: t0,
        not_after: t0 + Duration::from_secs(300),
    };
    let want = vec!["a".to_string(), "b".to_string()];
    assert_eq!(decide(None, &want, t0), Some(Reissue::Missing));
    assert_eq!(decide(Some((want.clone(), v, true)), &want, t0), None);
    assert_eq!(
        decide(Some((vec!["a".into()], v, true)), &want, t0),
        Some(Reissue::SansChanged)
    );
    assert_eq!(
        decide(
            Some((want.clone(), v, true)),
            &want,
            t0 + Duration::from_secs(250)
        ),
        Some(Reissue::RenewalDue)
    );
    assert_eq!(
        decide(Some((want.clone(), v, false)), &want, t0),
        Some(Reissue::OtherCa)
    );
}

#[test]
fn ca_and_serving_certificate_are_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let now = SystemTime::now();
    let ca = ClusterCa::load_or_create(&pki, now).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pki), 0o700);
    assert_eq!(mode(&pki.join("ca.key")), 0o600);
    let again = ClusterCa::load_or_create(&pki, now).unwrap();
    assert_eq!(ca.cert_pem, again.cert_pem, "the CA is reused");
    assert_eq!(ca.hash(), keel_api::pki::ca_hash(&ca.cert_der).unwrap());

    let files = ServingFiles::in_dir(&pki);
    let want = sans(&inputs("127.0.0.1:6443"));
    assert_eq!(
        ensure(&ca, &files, &want, now).unwrap(),
        Some(Reissue::Missing)
    );
    assert_eq!(mode(&files.key), 0o600);
    let first = std::fs::read(&files.cert).unwrap();
    assert_eq!(ensure(&again, &files, &want, now).unwrap(), None, "reused");
    assert_eq!(std::fs::read(&files.cert).unwrap(), first);
    let mut more = want.clone();
    more.push("extra.example".into());
    more.sort();
    assert_eq!(
        ensure(&ca, &files, &more, now).unwrap(),
        Some(Reissue::SansChanged)
    );
    // Eleven months on, less than a third of the year is left.
    let later = now + Duration::from_secs(300 * 86_400);
    assert_eq!(
        ensure(&ca, &files, &more, later).unwrap(),
        Some(Reissue::RenewalDue)
    );
    // Another CA: re-issued by the new one.
    let other = ClusterCa::generate(now).unwrap();
    assert_eq!(
        ensure(&other, &files, &more, later).unwrap(),
        Some(Reissue::OtherCa)
    );
}

#[test]
fn node_certificates_name_the_node_whatever_the_csr_asks() {
    let ca = ClusterCa::generate(SystemTime::now()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["evil".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let now = SystemTime::now();
    let pem = ca
        .sign_node(&csr, "node-1", Duration::from_secs(3600), now)
        .unwrap();
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let peer = PeerCert::parse(der.as_ref()).unwrap();
    assert_eq!(peer.user, "system:node:node-1");
    assert_eq!(peer.groups, ["system:nodes"]);
    let skew = peer
        .issued
        .duration_since(now)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_millis(1),
        "issued {:?} vs {now:?}",
        peer.issued
    );
    let v = Validity::of(der.as_ref()).unwrap();
    assert_eq!(v.lifetime(), Duration::from_secs(3660));
    // A short lifetime is backdated by a tenth, so renewal is still ahead.
    let short = ca
        .sign_node(&csr, "node-1", Duration::from_secs(30), now)
        .unwrap();
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(short.as_bytes()).unwrap();
    let v = Validity::of(der.as_ref()).unwrap();
    assert_eq!(v.lifetime(), Duration::from_secs(33));
    assert!(!v.renewal_due(now), "not due when issued");
    // The node's own key is in it.
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    assert_eq!(
        cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );
    assert!(
        ca.sign_node("garbage", "n", Duration::from_secs(1), now)
            .is_err()
    );
    let _ = SocketAddr::from(([127, 0, 0, 1], 1));
}

#[test]
fn node_serving_certificates_name_the_node_and_its_addresses_for_server_auth() {
    let ca = ClusterCa::generate(SystemTime::now()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["evil".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keel-control");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let now = SystemTime::now();
    let pem = ca
        .sign_node_serving(
            &csr,
            "node-1",
            &["10.0.0.7".into(), "node-1".into()],
            Duration::from_secs(3600),
            now,
        )
        .unwrap();
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let peer = PeerCert::parse(der.as_ref()).unwrap();
    assert_eq!(peer.user, "system:node:node-1");
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert_eq!(sans.len(), 2, "{sans:?}");
    assert!(sans.iter().any(|s| s == "DNSName(node-1)"), "{sans:?}");
    assert!(
        sans.iter().any(|s| s == "IPAddress(0a:00:00:07)"),
        "{sans:?}"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
}

#[test]
fn keel_control_s_client_certificate_is_its_own_identity() {
    let ca = ClusterCa::generate(SystemTime::now()).unwrap();
    let (pem, key) = ca
        .issue_control_client(Duration::from_secs(3600), SystemTime::now())
        .unwrap();
    assert!(key.contains("PRIVATE KEY"));
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let peer = PeerCert::parse(der.as_ref()).unwrap();
    assert_eq!(peer.user, keel_api::pki::CONTROL_CLIENT_USER);
    assert_eq!(peer.groups, [keel_api::pki::CONTROL_CLIENT_GROUP]);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
}
