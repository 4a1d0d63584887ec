use super::*;

#[test]
fn digest_hex_accepts_only_sha256_hex() {
    let d = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(digest_hex(&d), Some(&d[7..]));
    assert_eq!(digest_hex("sha256:../../etc"), None);
    assert_eq!(digest_hex(&format!("sha512:{}", "ab".repeat(32))), None);
    assert_eq!(digest_hex(&format!("sha256:{}", "AB".repeat(32))), None);
}

#[test]
fn the_store_is_roots_alone() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("images");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    ImageStore::open(&root).unwrap();
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store (and the layers in it) is 0700");
}
