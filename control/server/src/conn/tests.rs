use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use super::*;

#[test]
fn the_gate_caps_connections_in_all_and_per_address() {
    let gate = Gate::new(ConnLimits {
        max: 3,
        per_ip: 2,
        read_timeout: Duration::from_secs(1),
    });
    let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let a1 = gate.admit(a).unwrap();
    let _a2 = gate.admit(a).unwrap();
    assert_eq!(gate.admit(a).unwrap_err(), Refused::PerIp);
    let b1 = gate.admit(b).unwrap();
    assert_eq!(gate.admit(b).unwrap_err(), Refused::Full);
    drop(b1);
    assert_eq!(gate.open(), 2);
    drop(a1);
    let _a3 = gate.admit(a).unwrap();
    let _b2 = gate.admit(b).unwrap();
    assert_eq!(gate.open(), 3);
}

#[test]
fn warnings_are_rate_limited_and_count_what_was_held() {
    let mut log = RateLimited::new(Duration::from_secs(10));
    let t = Instant::now();
    assert_eq!(log.allow(t), Some(0));
    for i in 1..1000 {
        assert_eq!(log.allow(t + Duration::from_millis(i)), None);
    }
    assert_eq!(log.allow(t + Duration::from_secs(10)), Some(999));
}

#[test]
fn accept_back_off_grows_to_a_second() {
    let mut b = Duration::ZERO;
    let mut seen = Vec::new();
    for _ in 0..12 {
        b = next_backoff(b);
        seen.push(b);
    }
    assert_eq!(seen[0], Duration::from_millis(5));
    assert_eq!(seen[1], Duration::from_millis(10));
    assert_eq!(*seen.last().unwrap(), Duration::from_secs(1));
}
