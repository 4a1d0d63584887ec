use keel_ebpf_common::lb::{
    SVC_F_AFFINITY, SVC_F_EXTERNAL_IP, SVC_F_LOCAL_ONLY, SVC_F_NODEPORT, SVC_F_SOCK, SVC_F_TC,
};
use serde_json::json;

use super::*;

fn node() -> NodeInfo {
    NodeInfo::new("n1", "10.0.0.1".parse().unwrap())
}

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn eps(v: serde_json::Value) -> Endpoints {
    serde_json::from_value(v).unwrap()
}

/// One line per frontend: `ADDR service flags timeout backends`.
fn lines(out: &[(Frontend, FrontendSpec)]) -> Vec<String> {
    out.iter()
        .map(|(fe, s)| {
            let backends: Vec<String> = s
                .backends
                .iter()
                .map(|b| format!("{}{}", b.addr, if b.local { "*" } else { "" }))
                .collect();
            format!(
                "{fe} {} flags={} affinity={} [{}]",
                s.service,
                s.flags,
                s.affinity_timeout,
                backends.join(" ")
            )
        })
        .collect()
}

fn web_endpoints() -> Endpoints {
    eps(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{
            "addresses": [
                {"ip": "10.244.2.5", "nodeName": "n2"},
                {"ip": "10.244.1.5", "nodeName": "n1"}
            ],
            "notReadyAddresses": [{"ip": "10.244.1.9", "nodeName": "n1"}],
            "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 5353, "protocol": "UDP"}
            ]
        }]
    }))
}

#[test]
fn table_of_services() {
    let sock = SVC_F_SOCK;
    let np = SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT;
    let ext = SVC_F_SOCK | SVC_F_TC | SVC_F_EXTERNAL_IP;
    /// What, the Service, its Endpoints, the frontend lines, how many errors.
    type Case = (&'static str, Service, Option<Endpoints>, Vec<String>, usize);
    let cases: Vec<Case> = vec![
        (
            "ClusterIP, two ports, only ready addresses, sorted, local marked",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.10", "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP"}
                ]}
            })),
            Some(web_endpoints()),
            vec![
                format!(
                    "10.96.0.10:80/TCP default/web:http flags={sock} affinity=0 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]"
                ),
                format!(
                    "10.96.0.10:53/UDP default/web:dns flags={sock} affinity=0 [10.244.1.5:5353/UDP* 10.244.2.5:5353/UDP]"
                ),
            ],
            0,
        ),
        (
            "no Endpoints yet: frontend with no backends (refuses)",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}
            })),
            None,
            vec![format!(
                "10.96.0.10:80/TCP default/web flags={sock} affinity=0 []"
            )],
            0,
        ),
        (
            "NodePort with externalIP and ClientIP affinity",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                    "externalIPs": ["192.0.2.7"],
                    "sessionAffinity": "ClientIP",
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}},
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
            })),
            Some(web_endpoints()),
            vec![
                format!(
                    "10.96.0.10:80/TCP default/web:http flags={} affinity=30 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]",
                    sock | SVC_F_AFFINITY
                ),
                format!(
                    "10.0.0.1:30080/TCP default/web:http flags={} affinity=30 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]",
                    np | SVC_F_AFFINITY
                ),
                format!(
                    "192.0.2.7:80/TCP default/web:http flags={} affinity=30 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]",
                    ext | SVC_F_AFFINITY
                ),
            ],
            0,
        ),
        (
            "ClientIP affinity without a timeout: Kubernetes' 3 hours",
            svc(json!({
                "metadata": {"name": "a", "namespace": "x"},
                "spec": {"clusterIP": "10.96.0.11", "sessionAffinity": "ClientIP",
                    "ports": [{"port": 80}]}
            })),
            None,
            vec![format!(
                "10.96.0.11:80/TCP x/a flags={} affinity=10800 []",
                sock | SVC_F_AFFINITY
            )],
            0,
        ),
        (
            "externalTrafficPolicy Local: external frontends keep local backends only",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                    "externalTrafficPolicy": "Local",
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
            })),
            Some(web_endpoints()),
            vec![
                format!(
                    "10.96.0.10:80/TCP default/web:http flags={sock} affinity=0 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]"
                ),
                format!(
                    "10.0.0.1:30080/TCP default/web:http flags={} affinity=0 [10.244.1.5:8080/TCP*]",
                    np | SVC_F_LOCAL_ONLY
                ),
            ],
            0,
        ),
        (
            "internalTrafficPolicy Local: the ClusterIP keeps local backends only, the NodePort all",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                    "internalTrafficPolicy": "Local",
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
            })),
            Some(web_endpoints()),
            vec![
                format!(
                    "10.96.0.10:80/TCP default/web:http flags={sock} affinity=0 [10.244.1.5:8080/TCP*]"
                ),
                format!(
                    "10.0.0.1:30080/TCP default/web:http flags={np} affinity=0 [10.244.1.5:8080/TCP* 10.244.2.5:8080/TCP]"
                ),
            ],
            0,
        ),
        (
            "port name or protocol that the endpoints lack: no backends",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.10", "ports": [
                    {"name": "metrics", "port": 9090},
                    {"name": "http", "port": 80, "protocol": "UDP"}
                ]}
            })),
            Some(web_endpoints()),
            vec![
                format!("10.96.0.10:9090/TCP default/web:metrics flags={sock} affinity=0 []"),
                format!("10.96.0.10:80/UDP default/web:http flags={sock} affinity=0 []"),
            ],
            0,
        ),
        (
            "bad clusterIP and externalIP are reported, the rest programmed",
            svc(json!({
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.300", "externalIPs": ["nope", "192.0.2.8"],
                    "ports": [{"port": 80}]}
            })),
            None,
            vec![format!(
                "192.0.2.8:80/TCP default/bad flags={ext} affinity=0 []"
            )],
            2,
        ),
        (
            "no cluster IP (not allocated): nothing for ClusterIP",
            svc(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"ports": [{"port": 80}]}
            })),
            None,
            vec![],
            0,
        ),
    ];
    for (what, s, e, want, nerr) in cases {
        let (out, errors) = frontends(&s, e.as_ref(), &node());
        assert_eq!(lines(&out), want, "{what}");
        assert_eq!(errors.len(), nerr, "{what}: {errors:?}");
    }
}

#[test]
fn errors_name_the_object_and_field() {
    let s = svc(json!({
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.300", "ports": [{"port": 80}]}
    }));
    let (_, errors) = frontends(&s, None, &node());
    assert_eq!(
        errors[0].to_string(),
        r#"service default/bad: spec.clusterIP: "10.96.0.300" is not an IPv4 address"#
    );
}

#[test]
fn addresses_round_trip_through_network_byte_order() {
    let a = Addr::new("10.96.0.10".parse().unwrap(), 8080, Proto::Udp);
    assert_eq!(a.ip_be().to_ne_bytes(), [10, 96, 0, 10]);
    assert_eq!(a.port_be().to_ne_bytes(), [0x1f, 0x90]);
    assert_eq!(Addr::from_be(a.ip_be(), a.port_be(), 17), Some(a));
    assert_eq!(Addr::from_be(a.ip_be(), a.port_be(), 1), None);
    assert_eq!(a.to_string(), "10.96.0.10:8080/UDP");
}

#[test]
fn headless_and_external_name_services_are_not_balanced() {
    for s in [
        json!({"metadata": {"name": "db", "namespace": "default"},
               "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        json!({"metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": "example.com"}}),
    ] {
        let (out, errors) = frontends(&svc(s), Some(&web_endpoints()), &node());
        assert!(out.is_empty() && errors.is_empty(), "{out:?} {errors:?}");
    }
}

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

#[test]
fn host_ports_forward_the_node_ip_to_the_pod() {
    let spec = json!({
        "nodeName": "n1",
        "containers": [
            {"name": "web", "image": "i", "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 81},
                {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "0.0.0.0"},
                {"containerPort": 82, "hostPort": 8082, "hostIP": "10.0.0.1"},
                {"containerPort": 83, "hostPort": 8083, "hostIP": "10.0.0.9"}
            ]}
        ]
    });
    let mut p = pod(json!({
        "metadata": {"name": "web", "namespace": "d"},
        "spec": spec,
        "status": {"podIP": "10.244.1.5", "phase": "Running"}
    }));
    let (out, errors) = host_ports(&p, &node());
    let f = SVC_F_SOCK | SVC_F_TC | SVC_F_NODEPORT;
    assert_eq!(
        lines(&out),
        [
            format!("10.0.0.1:8080/TCP d/web hostPort flags={f} affinity=0 [10.244.1.5:80/TCP*]"),
            format!("10.0.0.1:5353/UDP d/web hostPort flags={f} affinity=0 [10.244.1.5:53/UDP*]"),
            format!("10.0.0.1:8082/TCP d/web hostPort flags={f} affinity=0 [10.244.1.5:82/TCP*]"),
        ]
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.containers[0].ports[4].hostIP");
    assert_eq!(
        errors[0].to_string(),
        "service pod d/web: spec.containers[0].ports[4].hostIP: 10.0.0.9 is not this node's \
         address 10.0.0.1; hostPort 8083 is not forwarded"
    );

    // No IP yet, finished, another node's or hostNetwork: nothing.
    let mut none = p.clone();
    none.status.pod_ip.clear();
    assert!(host_ports(&none, &node()).0.is_empty());
    let mut done = p.clone();
    done.status.phase = Some(keel_api::pod::PodPhase::Failed);
    assert!(host_ports(&done, &node()).0.is_empty());
    let mut other = p.clone();
    other.spec.node_name = "n2".into();
    assert!(host_ports(&other, &node()).0.is_empty());
    p.spec.host_network = true;
    assert_eq!(host_ports(&p, &node()), (vec![], vec![]));
}

#[test]
fn nodeport_addresses_are_the_uplinks_within_the_cidrs() {
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
    let net = |s: &str| s.parse::<ipnet::Ipv4Net>().unwrap();
    let node = ip("10.0.0.1");
    let uplink = [ip("10.0.0.1"), ip("192.0.2.4"), ip("127.0.0.1")];
    assert_eq!(
        node_port_ips(node, &uplink, &[]),
        [ip("10.0.0.1"), ip("192.0.2.4")],
        "every uplink address but loopback"
    );
    assert_eq!(
        node_port_ips(node, &uplink, &[net("192.0.2.0/24")]),
        [ip("192.0.2.4")]
    );
    assert!(node_port_ips(node, &uplink, &[net("198.51.100.0/24")]).is_empty());
    assert_eq!(
        node_port_ips(node, &[], &[]),
        [node],
        "no uplink: the node's own"
    );

    let mut two = NodeInfo::new("n1", node);
    two.node_port_ips = vec![node, ip("192.0.2.4")];
    let s = svc(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
    }));
    let (out, errs) = frontends(&s, Some(&web_endpoints()), &two);
    assert!(errs.is_empty());
    let addrs: Vec<String> = lines(&out)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "10.96.0.10:80/TCP",
            "10.0.0.1:30080/TCP",
            "192.0.2.4:30080/TCP"
        ]
    );
}
