use keel_api::pod::{HostAlias, PodDnsConfig, PodDnsConfigOption};

use super::*;

fn node() -> NodeDns {
    NodeDns {
        cluster_dns: Some("169.254.20.10".parse().unwrap()),
        cluster_domain: "cluster.local".into(),
        host: ResolvConf::parse(
            "# the node's\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch corp.example lab.example.\noptions timeout:2 rotate\n",
        ),
    }
}

fn pod(policy: Option<DnsPolicy>, cfg: Option<PodDnsConfig>) -> Pod {
    let mut p = Pod::default();
    p.metadata.namespace = "shop".into();
    p.metadata.name = "web-1".into();
    p.spec.dns_policy = policy;
    p.spec.dns_config = cfg;
    p.status.pod_ip = "10.244.1.5".into();
    p
}

#[test]
fn parses_the_nodes_resolv_conf() {
    let rc = node().host;
    assert_eq!(rc.nameservers, ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(rc.searches, ["corp.example", "lab.example"]);
    assert_eq!(rc.options, ["timeout:2", "rotate"]);
    assert_eq!(
        rc.upstreams(Some("10.0.0.3".parse().unwrap())),
        ["10.0.0.2:53".parse().unwrap()]
    );
}

#[test]
fn resolv_conf_by_policy() {
    // ClusterFirst (also the default, and ClusterFirstWithHostNet).
    let want = "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 169.254.20.10\noptions ndots:5\n";
    for p in [
        None,
        Some(DnsPolicy::ClusterFirst),
        Some(DnsPolicy::ClusterFirstWithHostNet),
    ] {
        assert_eq!(resolv_conf(&pod(p, None), &node()).render(), want, "{p:?}");
    }
    // Default: the node's.
    assert_eq!(
        resolv_conf(&pod(Some(DnsPolicy::Default), None), &node()).render(),
        "search corp.example lab.example\nnameserver 10.0.0.2\nnameserver 10.0.0.3\noptions timeout:2 rotate\n"
    );
    // ClusterFirst without a cluster DNS: Default, as the kubelet does.
    let mut n = node();
    n.cluster_dns = None;
    assert_eq!(
        resolv_conf(&pod(None, None), &n),
        resolv_conf(&pod(Some(DnsPolicy::Default), None), &node())
    );
    // None: dnsConfig only.
    let cfg = PodDnsConfig {
        nameservers: vec!["1.2.3.4".into()],
        searches: vec![
            "ns1.svc.cluster-domain.example".into(),
            "my.dns.search.suffix".into(),
        ],
        options: vec![
            PodDnsConfigOption {
                name: "ndots".into(),
                value: Some("2".into()),
            },
            PodDnsConfigOption {
                name: "edns0".into(),
                value: None,
            },
        ],
    };
    // The Kubernetes documentation's own example and its result.
    assert_eq!(
        resolv_conf(&pod(Some(DnsPolicy::None), Some(cfg.clone())), &node()).render(),
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
    );
    // dnsConfig merged into ClusterFirst: appended, options replaced by name.
    assert_eq!(
        resolv_conf(&pod(None, Some(cfg)), &node()).render(),
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 169.254.20.10\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
    );
}

#[test]
fn resolv_conf_limits_and_duplicates() {
    let cfg = PodDnsConfig {
        nameservers: vec!["1.1.1.1".into(), "2.2.2.2".into(), "3.3.3.3".into()],
        searches: vec!["cluster.local".into(), "x.example".into()],
        options: vec![],
    };
    let rc = resolv_conf(&pod(None, Some(cfg)), &node());
    assert_eq!(rc.nameservers, ["169.254.20.10", "1.1.1.1", "2.2.2.2"]);
    assert_eq!(
        rc.searches,
        [
            "shop.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "corp.example",
            "lab.example",
            "x.example"
        ]
    );
}

#[test]
fn written_only_when_the_node_knows_its_dns() {
    assert!(node().writes_resolv_conf(&pod(None, None)));
    assert!(!NodeDns::default().writes_resolv_conf(&pod(None, None)));
    assert!(NodeDns::default().writes_resolv_conf(&pod(Some(DnsPolicy::None), None)));
}

#[test]
fn hosts_file_as_the_kubelet_writes_it() {
    let head = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";
    let mut p = pod(None, None);
    assert_eq!(
        hosts(&p, "cluster.local"),
        format!("{head}10.244.1.5\tweb-1\n")
    );
    p.spec.hostname = "db-0".into();
    p.spec.subdomain = "db".into();
    p.spec.host_aliases = vec![
        HostAlias {
            ip: "127.0.0.1".into(),
            hostnames: vec!["foo.local".into(), "bar.local".into()],
        },
        HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: vec!["foo.remote".into()],
        },
    ];
    assert_eq!(
        hosts(&p, "cluster.local"),
        format!(
            "{head}10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n"
        )
    );
    p.status.pod_ip.clear();
    assert!(hosts(&p, "cluster.local").contains("127.0.1.1\tdb-0\n"));
}

#[test]
fn hostname_is_the_kubelets() {
    let mut p = pod(None, None);
    assert_eq!(hostname(&p), "web-1");
    p.metadata.name = format!("{}-x", "a".repeat(62));
    assert_eq!(
        hostname(&p),
        "a".repeat(62),
        "truncated to 63, no trailing dash"
    );
    p.spec.hostname = "h".into();
    assert_eq!(hostname(&p), "h");
}

#[test]
fn host_network_pods_resolve_as_the_kubelet_says() {
    let host = |policy| {
        let mut p = pod(policy, None);
        p.spec.host_network = true;
        p
    };
    let cluster = resolv_conf(&pod(None, None), &node());
    let default = resolv_conf(&pod(Some(DnsPolicy::Default), None), &node());
    // ClusterFirst (and unset) on a hostNetwork pod is Default…
    assert_eq!(resolv_conf(&host(None), &node()), default);
    assert_eq!(
        resolv_conf(&host(Some(DnsPolicy::ClusterFirst)), &node()),
        default
    );
    // …ClusterFirstWithHostNet asks for the cluster DNS.
    assert_eq!(
        resolv_conf(&host(Some(DnsPolicy::ClusterFirstWithHostNet)), &node()),
        cluster
    );
    assert_eq!(
        resolv_conf(&host(Some(DnsPolicy::Default)), &node()),
        default
    );

    // The node's /etc/hosts, plus hostAliases.
    let mut p = host(None);
    assert_eq!(
        host_network_hosts("127.0.0.1 localhost\n10.0.0.7 node-a", &p),
        "127.0.0.1 localhost\n10.0.0.7 node-a\n"
    );
    p.spec.host_aliases = vec![HostAlias {
        ip: "10.1.2.3".into(),
        hostnames: vec!["db".into()],
    }];
    assert_eq!(
        host_network_hosts("127.0.0.1 localhost\n", &p),
        "127.0.0.1 localhost\n\n# Entries added by HostAliases.\n10.1.2.3\tdb\n"
    );
}
