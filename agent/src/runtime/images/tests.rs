use super::*;

#[test]
fn digest_hex_accepts_only_sha256_hex() {
    let d = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(digest_hex(&d), Some(&d[7..]));
    assert_eq!(digest_hex("sha256:../../etc"), None);
    assert_eq!(digest_hex(&format!("sha512:{}", "ab".repeat(32))), None);
    assert_eq!(digest_hex(&format!("sha256:{}", "AB".repeat(32))), None);
}
