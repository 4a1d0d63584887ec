//! 50 ADDs in parallel into 50 pod namespaces on one node: every one
//! succeeds, every address is distinct, every pod is reachable from the
//! node namespace; then 50 DELs in parallel leave nothing behind.

use std::{collections::HashSet, time::Duration, time::Instant};

use keel_tests::{
    cni::{Node, Pod, cni_path, keel_cni_bin, listen_in, result_ip},
    require_root,
};

const PODS: usize = 50;

#[test]
fn fifty_parallel_adds_get_distinct_reachable_addresses() {
    require_root();
    let node = Node::new("cni-par");
    let pods: Vec<Pod> = (0..PODS).map(|_| Pod::new("cni-parp")).collect();
    let conf = node.conf("1.1.0", "par", "10.40.0.0/24");
    let (bin, path) = (keel_cni_bin(false), cni_path(false));

    let start = Instant::now();
    let children: Vec<_> = pods
        .iter()
        .map(|p| node.spawn(&bin, "ADD", Some(&p.attach()), &path, &conf))
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    eprintln!("{PODS} parallel ADDs (debug build): {:?}", start.elapsed());

    let mut ips = HashSet::new();
    for (pod, out) in pods.iter().zip(&outputs) {
        assert!(
            out.status.success(),
            "ADD failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ip = result_ip(&result);
        assert!(ips.insert(ip), "{ip} handed out twice");
        assert_eq!(pod.links().len(), 2, "lo and eth0 in {}", pod.ns.name());
    }
    assert_eq!(node.reservations("par").len(), PODS);
    assert_eq!(node.keel_links().len(), PODS);

    // Every pod answers a TCP connection from the node namespace.
    let listeners: Vec<_> = pods
        .iter()
        .zip(&outputs)
        .map(|(p, out)| {
            let ip = result_ip(&serde_json::from_slice(&out.stdout).unwrap());
            (ip, listen_in(&p.ns, ip, 80))
        })
        .collect();
    for (ip, _l) in &listeners {
        assert!(
            node.can_connect(*ip, 80, Duration::from_secs(3)),
            "{ip} unreachable from the node"
        );
    }

    let children: Vec<_> = pods
        .iter()
        .map(|p| node.spawn(&bin, "DEL", Some(&p.attach()), &path, &conf))
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "DEL failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(node.reservations("par").is_empty());
    assert!(node.keel_links().is_empty());
}
