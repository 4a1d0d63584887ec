//! keel-cni first in a `.conflist` chain with Debian's reference plugins
//! after it (tuning, bandwidth, portmap): each accepts keel's result as
//! `prevResult` and does its job on the attachment, CHECK passes through
//! the whole chain, and DEL in reverse order removes everything. The chain
//! runs the way libcni runs it (see keel_tests::cni::Chain); the runtime
//! test runs it through a real libcni.

use std::time::Duration;

use keel_tests::{
    cni::{Chain, Node, Pod, cni_path, listen_in, result_ip},
    require_root,
};
use serde_json::json;

fn tc_qdiscs(node: &Node, dev: &str) -> String {
    let out = node
        .ns
        .command("tc")
        .args(["qdisc", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nat_rules(node: &Node) -> String {
    let out = node
        .ns
        .command("iptables")
        .args(["-w", "5", "-t", "nat", "-S"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iptables: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn debian_tuning_bandwidth_and_portmap_accept_keels_result() {
    require_root();
    // Debian's plugins (1.1.1) speak up to spec 1.0.0.
    for version in ["0.3.1", "0.4.0", "1.0.0"] {
        let node = Node::new("cni-chain");
        let pod = Pod::new("cni-chainp");
        let chain = Chain {
            conflist: json!({
                "cniVersion": version,
                "name": "chain",
                "plugins": [
                    {"type": "keel", "subnet": "10.45.0.0/24", "mtu": 1400, "dataDir": node.data.path()},
                    {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}},
                    {"type": "bandwidth", "capabilities": {"bandwidth": true}},
                    {"type": "portmap", "capabilities": {"portMappings": true}},
                ],
            }),
            path: cni_path(false),
        };
        let runtime = json!({
            "bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 1_000_000},
            "portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}],
        });
        let attach = pod.attach();
        let result = chain.add(&node, &attach, &runtime);
        assert_eq!(result["cniVersion"], version, "{result}");
        let ip = result_ip(&result);
        let host = result["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(host, node.keel_links()[0].name);

        // tuning changed the sysctl inside the pod.
        let arp_notify = pod
            .ns
            .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/conf/eth0/arp_notify").unwrap());
        assert_eq!(arp_notify.trim(), "1", "{version}: tuning did not apply");
        // bandwidth found keel's host-side veth in the result and shaped it.
        let qdiscs = tc_qdiscs(&node, &host);
        assert!(
            qdiscs.contains("tbf"),
            "{version}: no tbf on {host}: {qdiscs}"
        );
        // portmap forwards the node's port 18080 to the pod's port 80.
        let rules = nat_rules(&node);
        assert!(
            rules.contains("CNI-DN-"),
            "{version}: no portmap chain: {rules}"
        );
        let _l = listen_in(&pod.ns, ip, 80);
        let gateway = "10.45.0.1".parse().unwrap();
        assert!(
            node.can_connect(gateway, 18080, Duration::from_secs(3)),
            "{version}: the host port does not reach the pod"
        );

        if version != "0.3.1" {
            match chain.check(&node, &attach, &result, &runtime) {
                Ok(()) => {}
                // Debian's portmap 1.1.1 CHECK also looks for IPv6 rules it
                // never made for an IPv4-only pod (containernetworking/
                // plugins#819, fixed upstream after 1.1.1). It has passed the
                // IPv4 check on keel's result by the time it fails there.
                Err((ty, e))
                    if ty == "portmap" && e.stdout.contains("could not check ipv6 dnat") => {}
                Err((ty, e)) => {
                    panic!("{version}: CHECK failed in {ty}: {} {}", e.stdout, e.stderr)
                }
            }
        }

        chain.del(&node, &attach, Some(&result), &runtime);
        assert!(node.keel_links().is_empty(), "{version}: the veth is gone");
        assert!(
            node.reservations("chain").is_empty(),
            "{version}: the address is released"
        );
        let rules = nat_rules(&node);
        assert!(
            !rules.contains("CNI-DN-"),
            "{version}: portmap's rules remain: {rules}"
        );
        // DEL again through the chain is fine (the runtime may retry).
        chain.del(&node, &attach, Some(&result), &runtime);
    }
}
