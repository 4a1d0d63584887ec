//! Token syntax, the CA hash kubeadm pins, and when to renew.

use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn tokens_parse_as_kubeadm_writes_them() {
    let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
    assert_eq!(
        (t.id.as_str(), t.secret.as_str()),
        ("abcdef", "0123456789abcdef")
    );
    assert_eq!(t.to_token_string(), "abcdef.0123456789abcdef");
    for bad in [
        "",
        "abcdef",
        "abcdef.",
        "abcde.0123456789abcdef",
        "abcdefg.0123456789abcdef",
        "ABCDEF.0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdef0",
        "abc-ef.0123456789abcdef",
        "abcdef:0123456789abcdef",
    ] {
        let err = BootstrapToken::parse(bad).unwrap_err();
        assert!(matches!(err, PkiError::TokenSyntax { .. }), "{bad}: {err}");
    }
    // The error never repeats a secret.
    let err = BootstrapToken::parse("abcdef.0123456789ABCDEF").unwrap_err();
    assert!(!err.to_string().contains("0123456789ABCDEF"), "{err}");
    assert!(format!("{t:?}").contains("abcdef") && !format!("{t:?}").contains("0123456789"));
}

#[test]
fn random_tokens_are_well_formed() {
    let t = BootstrapToken::from_random(&[255; 22]);
    assert!(BootstrapToken::parse(&t.to_token_string()).is_ok(), "{t:?}");
    let t = BootstrapToken::from_random(&core::array::from_fn(|i| i as u8 * 11));
    assert!(BootstrapToken::parse(&t.to_token_string()).is_ok(), "{t:?}");
    assert!(BootstrapToken::valid_id(&t.id));
    assert!(!BootstrapToken::valid_id("abc"));
}

#[test]
fn the_ca_hash_is_sha256_of_the_subject_public_key_info() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ca".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let want = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(
            rcgen::PublicKeyData::subject_public_key_info(&key)
        ))
    );
    assert_eq!(ca_hash(cert.der()).unwrap(), want);
    // Another key, another hash.
    let other = rcgen::KeyPair::generate().unwrap();
    let cert2 = rcgen::CertificateParams::new(vec!["ca".into()])
        .unwrap()
        .self_signed(&other)
        .unwrap();
    assert_ne!(ca_hash(cert2.der()).unwrap(), want);
    assert!(matches!(
        ca_hash(b"nope"),
        Err(PkiError::Certificate { .. })
    ));
}

#[test]
fn ca_hashes_are_checked_and_lower_cased() {
    let hex64 = "AB".repeat(32);
    assert_eq!(
        parse_ca_hash(&format!("sha256:{hex64}")).unwrap(),
        format!("sha256:{}", "ab".repeat(32))
    );
    for bad in [
        String::new(),
        "ab".repeat(32),
        format!("sha1:{}", "ab".repeat(32)),
        format!("sha256:{}", "ab".repeat(31)),
        format!("sha256:{}zz", "ab".repeat(31)),
    ] {
        assert!(
            matches!(parse_ca_hash(&bad), Err(PkiError::HashSyntax { .. })),
            "{bad}"
        );
    }
}

#[test]
fn renewal_is_due_in_the_last_third_of_the_lifetime() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let v = Validity {
        not_before: t0,
        not_after: t0 + Duration::from_secs(300),
    };
    assert_eq!(v.lifetime(), Duration::from_secs(300));
    let at = |s: u64| t0 + Duration::from_secs(s);
    assert!(!v.renewal_due(at(0)));
    assert!(!v.renewal_due(at(199)));
    assert!(!v.renewal_due(at(200)), "exactly a third left");
    assert!(v.renewal_due(at(201)));
    assert!(v.renewal_due(at(300)));
    assert!(v.renewal_due(at(400)), "expired");
    assert!(v.renewal_due(t0 - Duration::from_secs(5)), "not valid yet");
    assert_eq!(v.until_renewal(at(50)), Duration::from_secs(150));
    assert_eq!(v.until_renewal(at(250)), Duration::ZERO);
}

#[test]
fn validity_is_read_from_the_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["n".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2030, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let v = Validity::of(cert.der()).unwrap();
    assert_eq!(v.lifetime(), Duration::from_secs(365 * 86_400));
    assert_eq!(
        v.not_before
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_893_456_000
    );
}

#[test]
fn node_users_name_the_node() {
    assert_eq!(node_user("n1"), "system:node:n1");
    assert_eq!(node_of_user("system:node:n1"), Some("n1"));
    assert_eq!(node_of_user("system:node:"), None);
    assert_eq!(node_of_user("admin"), None);
}
