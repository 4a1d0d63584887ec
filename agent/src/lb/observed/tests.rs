use keel_ebpf_common::lb::{Backend, ServiceKey, ServiceValue};

use super::*;
use crate::lb::testutil::fe;

#[test]
fn reads_headers_slots_backends_and_counts_live_references() {
    let vip = fe("10.96.0.10:80/TCP");
    let (ip, port) = (vip.ip_be(), vip.port_be());
    let header = ServiceValue {
        id: 5,
        rev: 2,
        count: 2,
        flags: 1,
        ..Default::default()
    };
    let services = vec![
        (ServiceKey::header(ip, port, 6), header),
        (ServiceKey::slot(ip, port, 6, 2, 1), ServiceValue::slot(10)),
        (ServiceKey::slot(ip, port, 6, 2, 2), ServiceValue::slot(11)),
        // Garbage in the other revision: not a live reference.
        (ServiceKey::slot(ip, port, 6, 1, 1), ServiceValue::slot(12)),
        // A protocol keel never writes.
        (ServiceKey::slot(ip, port, 1, 0, 0), ServiceValue::default()),
    ];
    let backend = |last: u8| Backend {
        addr: u32::from_ne_bytes([10, 244, 0, last]),
        port: 8080u16.to_be(),
        proto: 6,
        flags: 0,
    };
    let backends = vec![
        (10, backend(1)),
        (11, backend(2)),
        (12, backend(3)),
        (13, backend(1)),
    ];
    let o = Observed::from_entries(services, backends, vec![]);
    let inst = &o.frontends[&vip];
    assert_eq!(inst.live(), vec![Some(10), Some(11)]);
    assert_eq!(o.refs(10), 1);
    assert_eq!(o.refs(12), 0);
    assert_eq!(o.foreign.len(), 1);
    assert_eq!(o.ids[&5], vip);
    assert_eq!(o.next_frontend_id, 6);
    assert_eq!(o.next_backend_id, 14);
    // Two ids for one address: the lowest is the one to use.
    assert_eq!(o.backend_ids[&fe("10.244.0.1:8080/TCP")], 10);
    let mut o = o;
    o.del_backend(10);
    assert_eq!(o.backend_ids[&fe("10.244.0.1:8080/TCP")], 13);
}
