use super::*;

#[test]
fn built_packets_have_valid_checksums() {
    for p in [
        Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN),
        Pkt::udp("10.0.0.9", 40000, "10.0.0.1", 30053, b"hello"),
        Pkt::udp("10.0.0.9", 40000, "10.0.0.1", 30053, b"odd"),
    ] {
        verify_checksums(&p.bytes()).unwrap();
    }
    let p = Pkt::tcp("10.0.0.9", 40000, "10.0.0.1", 30080, SYN);
    verify_checksums(&icmp_port_unreachable(&p)).unwrap();
    let mut bad = p.bytes();
    bad[40] ^= 1;
    assert!(verify_checksums(&bad).is_err());
}

/// A known packet from the wild (RFC 1071's example words).
#[test]
fn checksum_matches_rfc1071_example() {
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(checksum(&data), !0xddf2);
}
