use std::{net::Ipv4Addr, sync::Arc};

use hickory_proto::rr::Name;
use keel_api::{
    Endpoints, Service,
    endpoints::{EndpointAddress, EndpointSubset},
    meta::ObjectMeta,
    service::{ServiceSpec, ServiceType},
};

use super::*;
use crate::sync::view::{Changes, View};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: "default".into(),
        name: name.into(),
        ..Default::default()
    }
}

fn headless(ips: &[Ipv4Addr]) -> View {
    let mut v = View::default();
    v.services.insert(
        "default/db".into(),
        Arc::new(Service {
            metadata: meta("db"),
            spec: ServiceSpec {
                cluster_ip: "None".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
    );
    v.services.insert(
        "default/ext".into(),
        Arc::new(Service {
            metadata: meta("ext"),
            spec: ServiceSpec {
                type_: ServiceType::ExternalName,
                external_name: "example.com".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
    );
    v.endpoints.insert(
        "default/db".into(),
        Arc::new(Endpoints {
            metadata: meta("db"),
            subsets: vec![EndpointSubset {
                addresses: ips
                    .iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        hostname: String::new(),
                        node_name: String::new(),
                        target_ref: None,
                    })
                    .collect(),
                not_ready_addresses: vec![],
                ports: vec![],
            }],
            ..Default::default()
        }),
    );
    v
}

fn resolver(view: View) -> Resolver {
    Resolver::new(
        Zone::new("cluster.local").unwrap(),
        &Views::new(view),
        // No upstream: forwarded names fail at once (no socket is opened).
        Forwarder::new(vec![], 10),
    )
}

fn query(name: &str, t: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn ask(r: &Resolver, name: &str, t: RecordType, udp: bool, edns: bool) -> Message {
    let out = r.handle(&query(name, t, edns), udp).await.unwrap();
    Message::from_vec(&out).unwrap()
}

fn ips(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, 244, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect()
}

#[tokio::test]
async fn answers_are_authoritative_and_negative_ones_carry_the_soa() {
    let r = resolver(headless(&ips(2)));
    let m = ask(
        &r,
        "db.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(m.id(), 4242);
    assert_eq!(m.message_type(), MessageType::Response);
    assert!(m.authoritative() && m.recursion_desired() && m.recursion_available());
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 2);
    assert_eq!(
        m.queries(),
        Message::from_vec(&query(
            "db.default.svc.cluster.local.",
            RecordType::A,
            false
        ))
        .unwrap()
        .queries()
    );

    let m = ask(
        &r,
        "nope.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(m.answers().is_empty());
    assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);

    let m = ask(
        &r,
        "db.default.svc.cluster.local.",
        RecordType::AAAA,
        true,
        false,
    )
    .await;
    assert_eq!(m.response_code(), ResponseCode::NoError, "NODATA");
    assert!(m.answers().is_empty());
    assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    let s = r.stats.snapshot();
    assert_eq!(
        (s["cluster"].as_u64(), s["nxdomain"].as_u64()),
        (Some(2), Some(1))
    );
}

#[tokio::test]
async fn an_endpoints_change_is_answered_at_once() {
    let r = resolver(headless(&ips(3)));
    let m = ask(
        &r,
        "db.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(m.answers().len(), 3);
    // What the informers do on a scale-down: publish the next view.
    r.views.publish(
        headless(&ips(1)),
        &Changes {
            endpoints: ["default/db".to_string()].into(),
            ..Default::default()
        },
    );
    let m = ask(
        &r,
        "db.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(
        m.answers().len(),
        1,
        "no rebuild step: the next query sees the new view"
    );
    r.views.publish(headless(&[]), &Changes::default());
    let m = ask(
        &r,
        "db.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(
        (m.response_code(), m.answers().len()),
        (ResponseCode::NoError, 0)
    );
}

#[tokio::test]
async fn large_answers_are_truncated_over_udp_only() {
    // An A record is 16 bytes with the name compressed.
    let r = resolver(headless(&ips(40)));
    let name = "db.default.svc.cluster.local.";
    let m = ask(&r, name, RecordType::A, true, false).await;
    assert!(
        m.truncated() && m.answers().is_empty(),
        "40 A records exceed 512 bytes"
    );
    let m = ask(&r, name, RecordType::A, true, true).await;
    assert!(!m.truncated(), "but fit EDNS's 1232");
    assert_eq!(m.answers().len(), 40);
    assert_eq!(m.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
    let r = resolver(headless(&ips(500)));
    let m = ask(&r, name, RecordType::A, true, true).await;
    assert!(m.truncated());
    let m = ask(&r, name, RecordType::A, false, false).await;
    assert!(!m.truncated(), "TCP carries everything");
    assert_eq!(m.answers().len(), 500);
}

#[tokio::test]
async fn bad_requests_and_failed_upstreams() {
    let r = resolver(View::default());
    assert!(r.handle(&[1], true).await.is_none(), "too short to answer");
    let m = Message::from_vec(
        &r.handle(&[0x12, 0x34, 0xff, 0xff, 0, 9], true)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((m.id(), m.response_code()), (0x1234, ResponseCode::FormErr));
    let m = ask(&r, "example.com.", RecordType::A, true, false).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail, "no upstream");
    assert_eq!(r.stats.snapshot()["failed"].as_u64(), Some(1));
    // ExternalName: the CNAME even when its target cannot be followed.
    let r = resolver(headless(&[]));
    let m = ask(
        &r,
        "ext.default.svc.cluster.local.",
        RecordType::A,
        true,
        false,
    )
    .await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 1);
    assert_eq!(m.answers()[0].record_type(), RecordType::CNAME);
}

/// The UDP path keeps whole answers: asked again with another id, the
/// answer comes from the wire cache; once the next view is published
/// (whatever it changed), the question is answered from it.
#[tokio::test]
async fn udp_answers_are_kept_until_the_next_view() {
    let r = resolver(headless(&ips(3)));
    let name = "db.default.svc.cluster.local.";
    let udp = |id: u16| {
        let mut q = query(name, RecordType::A, true);
        q[..2].copy_from_slice(&id.to_be_bytes());
        q
    };
    let mut out = Vec::new();
    assert!(r.handle_udp(&udp(1), &mut out).await);
    let first = Message::from_vec(&out).unwrap();
    assert!(r.handle_udp(&udp(2), &mut out).await);
    let second = Message::from_vec(&out).unwrap();
    assert_eq!(second.id(), 2);
    assert_eq!(second.answers(), first.answers());
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    assert_eq!((n(&r.stats.cluster), n(&r.stats.kept)), (1, 1));

    r.views.publish(headless(&ips(1)), &Changes::default());
    assert!(r.handle_udp(&udp(3), &mut out).await);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!((m.id(), m.answers().len()), (3, 1), "the new view answers");
    assert_eq!((n(&r.stats.cluster), n(&r.stats.kept)), (2, 1));
    // Failures are not kept: a forwarded name with no upstream fails each time.
    for id in [4, 5] {
        let mut q = query("example.com.", RecordType::A, false);
        q[..2].copy_from_slice(&u16::to_be_bytes(id));
        assert!(r.handle_udp(&q, &mut out).await);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!((m.id(), m.response_code()), (id, ResponseCode::ServFail));
    }
    assert_eq!(n(&r.stats.failed), 2);
}
