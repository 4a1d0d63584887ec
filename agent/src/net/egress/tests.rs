use super::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn inputs(config: &EgressConfig) -> Inputs<'_> {
    Inputs {
        config,
        pod_cidr: net("10.244.0.0/24"),
        pod_cidrs: vec![
            net("10.244.0.0/24"),
            net("10.244.1.0/24"),
            net("10.244.3.0/24"),
        ],
        node_ips: vec![ip("172.30.0.11"), ip("172.30.1.12"), ip("172.30.0.11")],
        service_ips: vec![ip("10.96.0.1"), ip("10.96.0.10")],
        served: vec![
            served("10.244.0.7", L4::Udp, 53),
            served("10.244.0.5", L4::Tcp, 8080),
            served("10.244.0.7", L4::Udp, 53),
            // Another node's pod, and a hostNetwork pod's node address.
            served("10.244.1.9", L4::Tcp, 80),
            served("172.30.0.11", L4::Tcp, 80),
        ],
    }
}

fn served(a: &str, proto: L4, port: u16) -> Served {
    Served {
        ip: ip(a),
        proto,
        port,
    }
}

fn keep(r: &Rules) -> Vec<String> {
    r.keep.iter().map(|n| n.to_string()).collect()
}

#[test]
fn cluster_destinations_are_kept_and_merged() {
    let cfg = EgressConfig::default();
    let r = desired(&inputs(&cfg)).unwrap();
    assert_eq!(r.source, net("10.244.0.0/24"));
    assert_eq!(
        keep(&r),
        [
            // Adjacent pod CIDRs merge; the third stays apart.
            "10.96.0.1/32",
            "10.96.0.10/32",
            "10.244.0.0/23",
            "10.244.3.0/24",
            "172.30.0.11/32",
            "172.30.1.12/32",
        ]
    );
    // Only this node's pods' served ports, once each, sorted.
    assert_eq!(
        r.served,
        [
            served("10.244.0.5", L4::Tcp, 8080),
            served("10.244.0.7", L4::Udp, 53)
        ]
    );
}

#[test]
fn non_masquerade_cidrs_are_kept_and_swallow_what_they_cover() {
    let cfg = EgressConfig {
        masquerade: true,
        non_masquerade: vec![net("172.30.0.0/16"), net("192.168.7.0/24")],
    };
    let r = desired(&inputs(&cfg)).unwrap();
    assert_eq!(
        keep(&r),
        [
            "10.96.0.1/32",
            "10.96.0.10/32",
            "10.244.0.0/23",
            "10.244.3.0/24",
            "172.30.0.0/16",
            "192.168.7.0/24",
        ],
        "node IPs inside 172.30.0.0/16 are not listed twice (an interval set refuses overlaps)"
    );
    // Everything kept: a set with one element, nothing is masqueraded.
    let cfg = EgressConfig {
        masquerade: true,
        non_masquerade: vec![net("0.0.0.0/0")],
    };
    assert_eq!(keep(&desired(&inputs(&cfg)).unwrap()), ["0.0.0.0/0"]);
}

#[test]
fn masquerade_off_wants_no_table() {
    let cfg = EgressConfig {
        masquerade: false,
        non_masquerade: vec![],
    };
    assert_eq!(desired(&inputs(&cfg)), None);
}

#[test]
fn the_script_replaces_the_table_in_one_transaction() {
    let r = Rules {
        source: net("10.244.0.0/24"),
        keep: vec![net("10.244.0.0/16"), net("172.30.0.11/32")],
        served: vec![
            served("10.244.0.5", L4::Tcp, 8080),
            served("10.244.0.7", L4::Udp, 53),
        ],
    };
    let fp = r.fingerprint();
    assert_eq!(
        r.script(),
        format!(
            "table ip keel-egress
delete table ip keel-egress
table ip keel-egress {{
\tcomment \"keel egress masquerade fp={fp}\"
\tset no_masquerade {{
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = {{ 10.244.0.0/16, 172.30.0.11/32 }}
\t}}
\tset served {{
\t\ttype ipv4_addr . inet_proto . inet_service
\t\telements = {{ 10.244.0.5 . tcp . 8080, 10.244.0.7 . udp . 53 }}
\t}}
\tchain postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr . meta l4proto . th sport @served accept
\t\tip saddr 10.244.0.0/24 meta l4proto tcp tcp flags & (fin | syn | rst | ack) != syn accept
\t\tip saddr 10.244.0.0/24 ip daddr != @no_masquerade masquerade
\t}}
}}
"
        )
    );
    // The fingerprint follows the content.
    let other = Rules {
        keep: vec![net("10.244.0.0/16")],
        ..r.clone()
    };
    assert_ne!(other.fingerprint(), fp);
    // No served ports: an empty set (nft refuses `elements = { }`).
    let bare = Rules {
        served: vec![],
        ..r.clone()
    };
    assert!(
        bare.script()
            .contains("\tset served {\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t}\n"),
        "{}",
        bare.script()
    );
    assert_eq!(r.clone().fingerprint(), fp);
}

/// What `nft list table ip keel-egress` prints for a table made by
/// [`Rules::script`] (nft 1.0.6: /32s without their prefix, long element
/// lists wrapped).
fn listing(fp: &str) -> String {
    format!(
        "table ip keel-egress {{
\tcomment \"keel egress masquerade fp={fp}\"
\tset no_masquerade {{
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = {{ 10.244.0.0/16, 172.30.0.11,
\t\t\t     172.30.0.12 }}
\t}}

\tchain postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 10.244.0.0/24 ip daddr != @no_masquerade masquerade
\t}}
}}
"
    )
}

#[test]
fn observed_reads_the_fingerprint_and_the_rule() {
    let o = Observed::parse(Some(&listing("00ff00ff00ff00ff")));
    assert_eq!(
        o,
        Observed {
            present: true,
            fingerprint: Some("00ff00ff00ff00ff".into()),
            has_rule: true,
        }
    );
    assert_eq!(Observed::parse(None), Observed::default());
    // Someone deleted the rule by hand.
    let damaged = listing("00ff00ff00ff00ff").replace(
        "\t\tip saddr 10.244.0.0/24 ip daddr != @no_masquerade masquerade\n",
        "",
    );
    assert!(!Observed::parse(Some(&damaged)).has_rule);
    // A table of that name keel did not make.
    let foreign = Observed::parse(Some("table ip keel-egress {\n}\n"));
    assert_eq!((foreign.present, foreign.fingerprint), (true, None));
}

#[test]
fn plan_changes_only_what_differs() {
    let r = Rules {
        source: net("10.244.0.0/24"),
        keep: vec![net("10.244.0.0/16")],
        served: vec![],
    };
    let current = Observed::parse(Some(&listing(&r.fingerprint())));
    // Same content (a restarted agent): nothing, so no flow is touched.
    assert_eq!(plan(Some(&r), &current), None);
    // Missing, stale, damaged or foreign: replaced whole.
    let stale = Observed::parse(Some(&listing("0000000000000000")));
    let damaged = Observed {
        has_rule: false,
        ..current.clone()
    };
    let foreign = Observed::parse(Some("table ip keel-egress {\n}\n"));
    for have in [Observed::default(), stale, damaged, foreign] {
        assert_eq!(
            plan(Some(&r), &have),
            Some(Op::Replace(r.script())),
            "{have:?}"
        );
    }
    // Off: the table goes if it is there.
    assert_eq!(plan(None, &current), Some(Op::Delete));
    assert_eq!(plan(None, &Observed::default()), None);
}

#[test]
fn non_masquerade_cidr_values_are_checked() {
    assert_eq!(parse_cidr("10.0.0.0/8"), Ok(net("10.0.0.0/8")));
    let e = parse_cidr("10.1.0.0/8").unwrap_err();
    assert!(
        e.contains("host bits set (did you mean 10.0.0.0/8?)"),
        "{e}"
    );
    let e = parse_cidr("10.0.0.0").unwrap_err();
    assert!(e.contains("not an IPv4 CIDR"), "{e}");
    let e = parse_cidr("fd00::/8").unwrap_err();
    assert!(e.contains("not an IPv4 CIDR"), "{e}");
}
