use std::{format, string::ToString, vec::Vec};

use super::*;

fn be_ip(a: [u8; 4]) -> u32 {
    u32::from_ne_bytes(a)
}

fn be_port(p: u16) -> u16 {
    p.to_be()
}

#[test]
fn dump_lines() {
    let vip = be_ip([10, 96, 0, 10]);
    let header = ServiceKey::header(vip, be_port(80), IPPROTO_TCP);
    let hv = ServiceValue {
        id: 3,
        rev: 1,
        count: 3,
        flags: SVC_F_SOCK | SVC_F_AFFINITY,
        affinity_timeout: 10800,
        ..Default::default()
    };
    let cases: Vec<(std::string::String, &str)> = vec![
        (
            ServiceEntry(&header, &hv).to_string(),
            "SVC 10.96.0.10:80/TCP slot=0 id=3 rev=1 count=3 flags=sock,affinity affinity=10800s",
        ),
        (
            ServiceEntry(
                &ServiceKey::slot(vip, be_port(80), IPPROTO_UDP, 2, 1),
                &ServiceValue::slot(7),
            )
            .to_string(),
            "SVC 10.96.0.10:80/UDP slot=1 rev=2 backend=7",
        ),
        (
            ServiceEntry(
                &ServiceKey::header(be_ip([10, 0, 0, 1]), be_port(30080), IPPROTO_TCP),
                &ServiceValue {
                    id: 4,
                    rev: 2,
                    count: 0,
                    flags: SVC_F_TC | SVC_F_SOCK | SVC_F_NODEPORT,
                    maglev_m: 16381,
                    ..Default::default()
                },
            )
            .to_string(),
            "SVC 10.0.0.1:30080/TCP slot=0 id=4 rev=2 count=0 flags=sock,tc,nodeport maglev=16381",
        ),
        (
            BackendEntry(
                7,
                &Backend {
                    addr: be_ip([10, 244, 1, 5]),
                    port: be_port(8080),
                    proto: IPPROTO_TCP,
                    flags: BACKEND_F_LOCAL,
                },
            )
            .to_string(),
            "BE 7 10.244.1.5:8080/TCP local",
        ),
        (
            CtEntry(
                &CtKey {
                    saddr: be_ip([10, 0, 0, 9]),
                    daddr: be_ip([10, 0, 0, 1]),
                    sport: be_port(40000),
                    dport: be_port(30080),
                    proto: IPPROTO_TCP,
                    dir: CT_ORIGINAL,
                    _pad: 0,
                },
                &CtValue {
                    saddr: be_ip([10, 0, 0, 1]),
                    daddr: be_ip([10, 244, 2, 5]),
                    sport: be_port(61000),
                    dport: be_port(8080),
                    backend_id: 7,
                    id: 3,
                },
            )
            .to_string(),
            "CT TCP 10.0.0.9:40000 -> 10.0.0.1:30080 orig => 10.0.0.1:61000 -> 10.244.2.5:8080 backend=7 id=3",
        ),
        (
            AffinityEntry(
                &AffinityKey {
                    client: be_ip([10, 0, 0, 9]) as u64,
                    id: 3,
                    kind: AFFINITY_CLIENT_IP,
                },
                &AffinityValue {
                    backend_id: 7,
                    ..Default::default()
                },
                12,
            )
            .to_string(),
            "AFFINITY id=3 client=10.0.0.9 backend=7 age=12s",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn maglev_sizes_are_prime_and_leave_room() {
    let is_prime = |n: u32| {
        n > 1
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    };
    for m in MAGLEV_SIZES {
        assert!(is_prime(m), "{m} is not prime");
        assert!((m as usize).div_ceil(MAGLEV_CHUNK) <= u16::MAX as usize);
    }
    for n in 1..=262 {
        let m = maglev_size(n);
        assert!(m as usize >= 1000 * n, "n={n} m={m}");
        if let Some(s) = MAGLEV_SIZES.iter().filter(|&&s| s < m).max() {
            assert!((*s as usize) < 1000 * n, "n={n}: {s} would do");
        }
    }
    for n in 1..=2621 {
        assert!(maglev_size(n) as usize > 100 * n, "n={n}");
    }
    assert_eq!(maglev_size(0), 16381);
    assert_eq!(maglev_size(16), 16381);
    assert_eq!(maglev_size(17), 32749);
    assert_eq!(maglev_size(100_000), 262_139);
}

#[test]
fn flow_hash_spreads_and_depends_on_every_field() {
    let base = (
        be_ip([10, 0, 0, 9]),
        be_ip([10, 0, 0, 1]),
        40000u16,
        30080u16,
        6u8,
    );
    let h = flow_hash(base.0, base.1, base.2, base.3, base.4);
    assert_eq!(h, flow_hash(base.0, base.1, base.2, base.3, base.4));
    assert_ne!(h, flow_hash(base.0 ^ 1, base.1, base.2, base.3, base.4));
    assert_ne!(h, flow_hash(base.0, base.1 ^ 1, base.2, base.3, base.4));
    assert_ne!(h, flow_hash(base.0, base.1, base.2 ^ 1, base.3, base.4));
    assert_ne!(h, flow_hash(base.0, base.1, base.2, base.3 ^ 1, base.4));
    assert_ne!(h, flow_hash(base.0, base.1, base.2, base.3, 17));
    // Consecutive source ports land evenly over 10 buckets (±20%).
    let mut buckets = [0u32; 10];
    for sport in 0..10_000u16 {
        buckets[(flow_hash(base.0, base.1, sport.to_be(), base.3, 6) % 10) as usize] += 1;
    }
    for b in buckets {
        assert!((800..=1200).contains(&b), "{buckets:?}");
    }
    let mut buckets = [0u32; 10];
    for cookie in 4096..14_096u64 {
        buckets[(cookie_hash(cookie) % 10) as usize] += 1;
    }
    for b in buckets {
        assert!((800..=1200).contains(&b), "{buckets:?}");
    }
}

#[test]
fn stats_names_cover_every_index() {
    assert_eq!(STATS.len(), STATS_LEN as usize);
    assert_eq!(Stat::Unsupported as u32, STATS_LEN - 1);
    assert_eq!(
        STATS[Stat::SockNoBackend as usize],
        ("sock_no_backend", true)
    );
    let names: Vec<_> = STATS.iter().map(|s| s.0).collect();
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), names.len());
}

#[test]
fn map_names_fit_the_kernel() {
    for name in MAPS {
        assert!(
            name.len() < 16,
            "{name} is longer than BPF_OBJ_NAME_LEN - 1"
        );
    }
    for name in [
        CONNECT4_PROG,
        SENDMSG4_PROG,
        RECVMSG4_PROG,
        GETPEERNAME4_PROG,
        TC_INGRESS_PROG,
        TC_EGRESS_PROG,
    ] {
        assert!(
            name.len() < 16,
            "{name} is longer than BPF_OBJ_NAME_LEN - 1"
        );
    }
    let _ = format!("{}", Proto(1));
}
