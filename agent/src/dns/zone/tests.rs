use std::sync::Arc;

use keel_api::{
    Endpoints, Pod, Service,
    endpoints::{EndpointAddress, EndpointPort, EndpointSubset},
    meta::ObjectMeta,
    service::{ServicePort, ServiceSpec},
};

use super::*;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: ns.into(),
        name: name.into(),
        ..Default::default()
    }
}

fn port(name: &str, port: i64, protocol: Protocol) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol,
        port,
        target_port: None,
        node_port: None,
        preserved: Default::default(),
    }
}

fn service(ns: &str, name: &str, spec: ServiceSpec) -> Service {
    Service {
        metadata: meta(ns, name),
        spec,
        ..Default::default()
    }
}

fn addr(ip: &str, hostname: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.into(),
        hostname: hostname.into(),
        node_name: String::new(),
        target_ref: None,
    }
}

fn endpoints(
    ns: &str,
    name: &str,
    ready: &[EndpointAddress],
    not_ready: &[EndpointAddress],
    ports: &[(&str, u16)],
) -> Endpoints {
    Endpoints {
        metadata: meta(ns, name),
        subsets: vec![EndpointSubset {
            addresses: ready.to_vec(),
            not_ready_addresses: not_ready.to_vec(),
            ports: ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: n.to_string(),
                    port: *p,
                    protocol: Protocol::Tcp,
                })
                .collect(),
        }],
        ..Default::default()
    }
}

/// web (ClusterIP 10.96.0.10, ports http/80 and dns/53 UDP), db (headless,
/// two ready pods, one of them named by hostname, one not ready), ext
/// (ExternalName), a local pod 10.244.1.7.
fn view() -> View {
    let mut v = View::default();
    let mut add_svc = |s: Service| {
        v.services.insert(
            format!("{}/{}", s.metadata.namespace, s.metadata.name),
            Arc::new(s),
        );
    };
    add_svc(service(
        "default",
        "web",
        ServiceSpec {
            cluster_ip: "10.96.0.10".into(),
            ports: vec![
                port("http", 80, Protocol::Tcp),
                port("dns", 53, Protocol::Udp),
            ],
            ..Default::default()
        },
    ));
    add_svc(service(
        "default",
        "db",
        ServiceSpec {
            cluster_ip: "None".into(),
            ports: vec![port("pg", 5432, Protocol::Tcp)],
            ..Default::default()
        },
    ));
    add_svc(service(
        "default",
        "empty",
        ServiceSpec {
            cluster_ip: "None".into(),
            ..Default::default()
        },
    ));
    add_svc(service(
        "other",
        "ext",
        ServiceSpec {
            type_: ServiceType::ExternalName,
            external_name: "example.com".into(),
            ..Default::default()
        },
    ));
    v.endpoints.insert(
        "default/db".into(),
        Arc::new(endpoints(
            "default",
            "db",
            &[addr("10.244.2.5", "db-0"), addr("10.244.1.6", "")],
            &[addr("10.244.1.9", "db-2")],
            &[("pg", 5433)],
        )),
    );
    v.endpoints.insert(
        "default/web".into(),
        Arc::new(endpoints(
            "default",
            "web",
            &[addr("10.244.1.8", "")],
            &[],
            &[("http", 8080)],
        )),
    );
    let mut pod = Pod {
        metadata: meta("default", "client"),
        ..Default::default()
    };
    pod.status.pod_ip = "10.244.1.7".into();
    v.pods.insert("default/client".into(), Arc::new(pod));
    v
}

/// An answer in dig's words: `NXDOMAIN`, `FORWARD`, `NODATA`, or the
/// records `name TYPE data` joined by `; ` (additionals after ` + `).
fn ask(name: &str, t: RecordType) -> String {
    let zone = Zone::new("cluster.local").unwrap();
    match zone.answer(&view(), &Name::from_ascii(name).unwrap(), t) {
        Answer::NxDomain => "NXDOMAIN".into(),
        Answer::Forward => "FORWARD".into(),
        Answer::Records { answers, .. } if answers.is_empty() => "NODATA".into(),
        Answer::Records {
            answers,
            additionals,
        } => {
            let f = |r: &Vec<Record>| {
                r.iter()
                    .map(|r| {
                        assert_eq!(r.ttl(), TTL);
                        format!("{} {} {}", r.name(), r.record_type(), r.data())
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if additionals.is_empty() {
                f(&answers)
            } else {
                format!("{} + {}", f(&answers), f(&additionals))
            }
        }
    }
}

#[test]
fn answers_from_the_view() {
    use RecordType::*;
    let cases: &[(&str, RecordType, &str)] = &[
        // A ClusterIP Service.
        (
            "web.default.svc.cluster.local.",
            A,
            "web.default.svc.cluster.local. A 10.96.0.10",
        ),
        (
            "WEB.Default.svc.Cluster.Local.",
            A,
            "WEB.Default.svc.Cluster.Local. A 10.96.0.10",
        ),
        ("web.default.svc.cluster.local.", AAAA, "NODATA"),
        ("web.default.svc.cluster.local.", TXT, "NODATA"),
        ("nope.default.svc.cluster.local.", A, "NXDOMAIN"),
        ("web.nope.svc.cluster.local.", A, "NXDOMAIN"),
        // SRV: named ports, on the port name and on the Service's name.
        (
            "_http._tcp.web.default.svc.cluster.local.",
            SRV,
            "_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local. + web.default.svc.cluster.local. A 10.96.0.10",
        ),
        (
            "_dns._udp.web.default.svc.cluster.local.",
            SRV,
            "_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local. + web.default.svc.cluster.local. A 10.96.0.10",
        ),
        ("_dns._tcp.web.default.svc.cluster.local.", SRV, "NXDOMAIN"),
        ("_http._tcp.web.default.svc.cluster.local.", A, "NODATA"),
        ("_nope._tcp.web.default.svc.cluster.local.", SRV, "NXDOMAIN"),
        (
            "web.default.svc.cluster.local.",
            SRV,
            "web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local.; web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local. + web.default.svc.cluster.local. A 10.96.0.10",
        ),
        // A headless Service: its ready pods, never the not-ready one.
        (
            "db.default.svc.cluster.local.",
            A,
            "db.default.svc.cluster.local. A 10.244.1.6; db.default.svc.cluster.local. A 10.244.2.5",
        ),
        (
            "_pg._tcp.db.default.svc.cluster.local.",
            SRV,
            "_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5433 10-244-1-6.db.default.svc.cluster.local.; _pg._tcp.db.default.svc.cluster.local. SRV 0 50 5433 db-0.db.default.svc.cluster.local. + 10-244-1-6.db.default.svc.cluster.local. A 10.244.1.6; db-0.db.default.svc.cluster.local. A 10.244.2.5",
        ),
        // Its pods by hostname (hostname + subdomain) or dashed IP.
        (
            "db-0.db.default.svc.cluster.local.",
            A,
            "db-0.db.default.svc.cluster.local. A 10.244.2.5",
        ),
        (
            "10-244-1-6.db.default.svc.cluster.local.",
            A,
            "10-244-1-6.db.default.svc.cluster.local. A 10.244.1.6",
        ),
        ("db-2.db.default.svc.cluster.local.", A, "NXDOMAIN"),
        ("db-0.db.default.svc.cluster.local.", AAAA, "NODATA"),
        ("10-244-1-8.web.default.svc.cluster.local.", A, "NXDOMAIN"),
        // A headless Service without endpoints still exists.
        ("empty.default.svc.cluster.local.", A, "NODATA"),
        // ExternalName: a CNAME whatever is asked.
        (
            "ext.other.svc.cluster.local.",
            A,
            "ext.other.svc.cluster.local. CNAME example.com.",
        ),
        (
            "ext.other.svc.cluster.local.",
            CNAME,
            "ext.other.svc.cluster.local. CNAME example.com.",
        ),
        // Pods by dashed address.
        (
            "10-244-9-9.default.pod.cluster.local.",
            A,
            "10-244-9-9.default.pod.cluster.local. A 10.244.9.9",
        ),
        ("10-244-9.default.pod.cluster.local.", A, "NXDOMAIN"),
        ("10-244-9-9.default.pod.cluster.local.", AAAA, "NODATA"),
        // The zone's inner names exist, others under it do not.
        ("cluster.local.", A, "NODATA"),
        ("svc.cluster.local.", A, "NODATA"),
        ("default.svc.cluster.local.", A, "NODATA"),
        ("nope.svc.cluster.local.", A, "NXDOMAIN"),
        ("foo.cluster.local.", A, "NXDOMAIN"),
        // A search-list expansion of a full name.
        (
            "web.default.svc.cluster.local.default.svc.cluster.local.",
            A,
            "NXDOMAIN",
        ),
        // Reverse: Services, endpoints, local pods; other addresses forwarded.
        (
            "10.0.96.10.in-addr.arpa.",
            PTR,
            "10.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local.",
        ),
        (
            "5.2.244.10.in-addr.arpa.",
            PTR,
            "5.2.244.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local.",
        ),
        (
            "8.1.244.10.in-addr.arpa.",
            PTR,
            "8.1.244.10.in-addr.arpa. PTR 10-244-1-8.web.default.svc.cluster.local.",
        ),
        (
            "7.1.244.10.in-addr.arpa.",
            PTR,
            "7.1.244.10.in-addr.arpa. PTR 10-244-1-7.default.pod.cluster.local.",
        ),
        ("10.0.96.10.in-addr.arpa.", A, "NODATA"),
        ("1.1.168.192.in-addr.arpa.", PTR, "FORWARD"),
        // Everything else.
        ("example.com.", A, "FORWARD"),
        ("local.", A, "FORWARD"),
        ("xcluster.local.", A, "FORWARD"),
    ];
    let mut failed = Vec::new();
    for (name, t, want) in cases {
        let got = ask(name, *t);
        if got != *want {
            failed.push(format!("{name} {t}:\n  got  {got}\n  want {want}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn another_cluster_domain() {
    let zone = Zone::new("Example.Internal.").unwrap();
    assert_eq!(zone.domain(), "example.internal");
    let name = Name::from_ascii("web.default.svc.example.internal.").unwrap();
    assert!(matches!(
        zone.answer(&view(), &name, RecordType::A),
        Answer::Records { answers, .. } if answers.len() == 1
    ));
    let name = Name::from_ascii("web.default.svc.cluster.local.").unwrap();
    assert_eq!(zone.answer(&view(), &name, RecordType::A), Answer::Forward);
    assert!(Zone::new("").is_err());
    assert!(Zone::new("bad_domain").is_err());
}

#[test]
fn negative_answers_carry_the_soa() {
    let zone = Zone::new("cluster.local").unwrap();
    let soa = zone.soa();
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name().to_ascii(), "cluster.local.");
    match soa.data() {
        RData::SOA(s) => assert_eq!(s.minimum(), TTL),
        d => panic!("{d:?}"),
    }
}
