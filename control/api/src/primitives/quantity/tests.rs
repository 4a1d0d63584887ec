use super::*;

#[test]
fn parses_kubernetes_forms() {
    let cases = [
        ("500m", 500),
        ("2", 2000),
        ("0.5", 500),
        ("1.5", 1500),
        ("128Mi", 128 * 1024 * 1024 * 1000),
        ("1G", 1_000_000_000_000),
        ("1k", 1_000_000),
        ("1e3", 1_000_000),
        ("100n", 1),
        ("0", 0),
    ];
    for (text, want) in cases {
        assert_eq!(milli(text), Ok(want), "{text}");
    }
    assert_eq!(Quantity::parse("64Mi").unwrap().value(), 64 << 20);
    assert_eq!(Quantity::parse("250m").unwrap().milli(), 250);
}

#[test]
fn rejects_garbage() {
    for bad in ["", "abc", "1.2.3", "-1", "5Q", "1e99", "."] {
        assert!(Quantity::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn yaml_numbers_are_quantities() {
    let q: Quantity = serde_json::from_str("2").unwrap();
    assert_eq!(q.milli(), 2000);
    let q: Quantity = serde_json::from_str("0.25").unwrap();
    assert_eq!(q.milli(), 250);
}

#[test]
fn a_huge_number_with_a_fraction_is_too_large_not_wrapped() {
    // Found by the quantity fuzz target: the integer part times 10^digits
    // of the fraction overflowed u128 (a panic in debug builds, a wrapped
    // and wrong value in release ones).
    let err = Quantity::parse("37777777712222227012222228443578.10777777Mi").unwrap_err();
    assert_eq!(err.reason, "number too large");
    let err = Quantity::parse(&format!("{}.123456789", "9".repeat(38))).unwrap_err();
    assert_eq!(err.reason, "number too large");
}
