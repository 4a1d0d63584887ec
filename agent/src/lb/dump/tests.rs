use keel_ebpf_common::lb::{
    AffinityKey, AffinityValue, Backend, MaglevKey, STATS_LEN, SVC_F_SOCK, ServiceKey,
    ServiceValue, Stat,
};

use super::*;
use crate::lb::testutil::fe;

#[test]
fn golden_dump() {
    let web = fe("10.96.0.10:80/TCP");
    let np = fe("10.0.0.1:30080/TCP");
    let header = |id, count| ServiceValue {
        id,
        rev: 1,
        count,
        flags: SVC_F_SOCK,
        ..Default::default()
    };
    let mut stats = vec![0u64; STATS_LEN as usize];
    stats[Stat::SockXlate as usize] = 7;
    stats[Stat::SockNoBackend as usize] = 2;
    let s = Snapshot {
        // Deliberately out of order.
        services: vec![
            (
                ServiceKey::slot(web.ip_be(), web.port_be(), 6, 1, 1),
                ServiceValue::slot(4),
            ),
            (
                ServiceKey::header(web.ip_be(), web.port_be(), 6),
                header(2, 1),
            ),
            (
                ServiceKey::header(np.ip_be(), np.port_be(), 6),
                header(1, 0),
            ),
        ],
        backends: vec![(
            4,
            Backend {
                addr: u32::from_ne_bytes([10, 244, 1, 5]),
                port: 8080u16.to_be(),
                proto: 6,
                flags: 1,
            },
        )],
        maglev: vec![
            MaglevKey {
                id: 1,
                rev: 1,
                _pad: 0,
                chunk: 1,
            },
            MaglevKey {
                id: 1,
                rev: 1,
                _pad: 0,
                chunk: 0,
            },
        ],
        affinity: vec![(
            AffinityKey {
                client: 77,
                id: 2,
                kind: 1,
            },
            AffinityValue {
                last_used_ns: 1_000_000_000,
                backend_id: 4,
                rev: 1,
                _pad: 0,
                slot: 1,
            },
        )],
        ct: vec![],
        sock_revnat: 3,
        stats,
        truncated: 0,
    };
    let names = [(web, "default/web".to_string())].into();
    let got = render(&s, &names, 13_500_000_000);
    let want = "\
SVC 10.0.0.1:30080/TCP slot=0 id=1 rev=1 count=0 flags=sock
SVC 10.96.0.10:80/TCP slot=0 id=2 rev=1 count=1 flags=sock (default/web)
SVC 10.96.0.10:80/TCP slot=1 rev=1 backend=4
BE 4 10.244.1.5:8080/TCP local
MAGLEV id=1 rev=1 chunks=2
AFFINITY id=2 netns=77 backend=4 age=12s
SOCK-REVNAT entries=3
COUNTERS sock_xlate=7 sock_revnat=0 tc_new_flow=0 tc_tracked=0 unsupported=0
DROPS sock_no_backend=2 tc_no_backend=0 no_local_backend=0 slot_missing=0 backend_missing=0 snat_exhausted=0 ct_insert=0 fib=0 ttl=0 rewrite=0
";
    assert_eq!(got, want);
}
