use std::os::unix::fs::PermissionsExt;

use super::*;

fn ring(dir: &Path) -> KeyRing {
    KeyRing::load_or_create(&dir.join("encryption.key"), true).unwrap()
}

#[test]
fn a_sealed_value_round_trips_and_hides_the_plaintext() {
    let t = tempfile::tempdir().unwrap();
    let r = ring(t.path());
    let plain = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;
    let sealed = r.seal("Secret/default/db", plain);
    assert!(sealed.starts_with(b"k8s:enc:xchacha20poly1305:v1:k"));
    assert!(!sealed.windows(8).any(|w| w == b"aHVudGVy"));
    let again = r.seal("Secret/default/db", plain);
    assert_ne!(sealed, again, "every write takes a fresh nonce");
    let opened = r
        .open("Secret default/db", "Secret/default/db", &sealed)
        .unwrap();
    assert_eq!(&*opened, plain);
}

#[test]
fn the_generated_key_file_is_0600_and_read_again() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("encryption.key");
    let a = KeyRing::load_or_create(&path, true).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let b = KeyRing::load_or_create(&path, true).unwrap();
    assert_eq!(a.names(), b.names());
    let sealed = a.seal("x", b"v");
    assert_eq!(&*b.open("x", "x", &sealed).unwrap(), b"v");
}

#[test]
fn a_named_key_file_that_is_missing_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("shared.key");
    let e = KeyRing::load_or_create(&path, false).unwrap_err();
    assert!(e.to_string().contains("shared.key"), "{e}");
    assert!(!path.exists());
}

#[test]
fn plaintext_written_before_encryption_is_read_as_it_is() {
    let t = tempfile::tempdir().unwrap();
    let r = ring(t.path());
    let old = br#"{"kind":"Secret"}"#;
    assert_eq!(
        &*r.open("Secret default/old", "Secret/default/old", old)
            .unwrap(),
        old
    );
    assert_eq!(&*reveal(None, "w", "a", old).unwrap(), old);
}

#[test]
fn a_tampered_value_is_an_error_naming_the_object() {
    let t = tempfile::tempdir().unwrap();
    let r = ring(t.path());
    let mut sealed = r.seal("Secret/default/db", b"secret value");
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    let e = r
        .open("Secret default/db", "Secret/default/db", &sealed)
        .unwrap_err();
    assert!(matches!(e, EnvelopeError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("Secret default/db"), "{e}");
    // Truncated.
    let e = r
        .open("Secret default/db", "Secret/default/db", &sealed[..40])
        .unwrap_err();
    assert!(e.to_string().contains("Secret default/db"), "{e}");
}

#[test]
fn a_value_moved_to_another_name_does_not_open() {
    let t = tempfile::tempdir().unwrap();
    let r = ring(t.path());
    let sealed = r.seal("Secret/default/db", b"secret value");
    let e = r
        .open("Secret default/other", "Secret/default/other", &sealed)
        .unwrap_err();
    assert!(matches!(e, EnvelopeError::Open { .. }), "{e:?}");
}

#[test]
fn a_wrong_key_file_names_the_missing_key() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ra, rb) = (ring(a.path()), ring(b.path()));
    let sealed = ra.seal("Secret/ns/s", b"v");
    let e = rb.open("Secret ns/s", "Secret/ns/s", &sealed).unwrap_err();
    match &e {
        EnvelopeError::UnknownKey { name, have, .. } => {
            assert_eq!(name, ra.names()[0]);
            assert_eq!(have, rb.names()[0]);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("Secret ns/s"), "{e}");
    let e = reveal(None, "Secret ns/s", "Secret/ns/s", &sealed).unwrap_err();
    assert_eq!(
        e,
        EnvelopeError::NoKey {
            what: "Secret ns/s".into()
        }
    );
}

#[test]
fn the_first_key_seals_and_every_key_opens() {
    let t = tempfile::tempdir().unwrap();
    let old = ring(t.path());
    let sealed_old = old.seal("a", b"old");
    let b64 = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let text = std::fs::read_to_string(t.path().join("encryption.key")).unwrap();
    let rotated = format!("new {}\n{text}", b64(7));
    let r = KeyRing::parse(Path::new("/k"), &rotated).unwrap();
    assert_eq!(r.names()[0], "new");
    assert_eq!(&*r.open("a", "a", &sealed_old).unwrap(), b"old");
    assert!(
        r.seal("a", b"x")
            .starts_with(b"k8s:enc:xchacha20poly1305:v1:new:")
    );
}

#[test]
fn bad_key_files_are_refused_with_the_line() {
    let p = Path::new("/etc/keel/k");
    let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    for (text, want) in [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("k1\n", "line 1: expected"),
        (&format!("k:1 {b64}\n") as &str, "line 1: key name \"k:1\""),
        ("k1 !!!\n", "not base64"),
        ("k1 AAAA\n", "3 bytes"),
        (
            &format!("a {b64}\na {b64}\n"),
            "line 2: key name \"a\" appears twice",
        ),
    ] {
        let e = KeyRing::parse(p, text).unwrap_err().to_string();
        assert!(
            e.contains(want) && e.contains("/etc/keel/k"),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn another_provider_is_named() {
    let t = tempfile::tempdir().unwrap();
    let r = ring(t.path());
    let e = r
        .open(
            "Secret a/b",
            "Secret/a/b",
            b"k8s:enc:aesgcm:v1:key1:xxxxxxxx",
        )
        .unwrap_err();
    assert!(e.to_string().contains("\"aesgcm\""), "{e}");
}
