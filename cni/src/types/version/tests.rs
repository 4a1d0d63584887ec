use super::*;

#[test]
fn parse_and_capabilities() {
    for v in CniVersion::ALL {
        assert_eq!(v.as_str().parse::<CniVersion>(), Ok(v));
    }
    assert!("0.2.0".parse::<CniVersion>().is_err());
    assert!("1.1".parse::<CniVersion>().is_err());
    assert!(!CniVersion::V0_3_1.allows_check());
    assert!(CniVersion::V0_4_0.allows_check());
    assert!(!CniVersion::V1_0_0.allows_gc_and_status());
    assert!(CniVersion::V1_1_0.allows_gc_and_status());
}
