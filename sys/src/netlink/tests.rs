use super::*;

#[test]
fn mac_round_trip() {
    let mac = [0x0a, 0x58, 0x0a, 0x01, 0x00, 0xff];
    assert_eq!(format_mac(&mac), "0a:58:0a:01:00:ff");
    assert_eq!(parse_mac("0A:58:0a:01:00:ff"), Some(mac));
    assert_eq!(parse_mac("0a:58:0a:01:00"), None);
    assert_eq!(parse_mac("0a:58:0a:01:00:ff:00"), None);
    assert_eq!(parse_mac("zz:58:0a:01:00:ff"), None);
}
